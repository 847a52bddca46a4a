"""The graph drawn as SVG, with live per-stage item counts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anywidget
import traitlets


class GraphView(anywidget.AnyWidget):
    """Draw ``graph``; with ``session`` (or a Handle), show how many items each stage has handled."""

    _esm = Path(__file__).with_name("graph_view.js")
    svg = traitlets.Unicode("").tag(sync=True)
    counters = traitlets.Dict({}).tag(sync=True)

    def __init__(self, graph: Any, session: Any = None, *, refresh_hz: float = 2.0) -> None:
        super().__init__(svg=graph.svg())
        self.graph = graph
        self.session = getattr(session, "session", session)
        self._stop = threading.Event()
        if self.session is not None:
            self.refresh()
            if self.session.status == "running":
                threading.Thread(target=self._follow, args=(refresh_hz,), daemon=True, name="vkit-graph-view").start()

    def refresh(self) -> None:
        counts = {name: stats["num_items"] for name, stats in self.session.stages.items()}
        if counts != self.counters:
            self.counters = counts

    def _follow(self, refresh_hz: float) -> None:
        while not self._stop.wait(1.0 / refresh_hz):
            self.refresh()
            if self.session.status != "running":
                return

    def __repr__(self) -> str:
        return self.graph.text()
