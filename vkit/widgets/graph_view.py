"""The graph drawn as SVG, with live per-stage item counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

from vkit.render import graph_svg
from vkit.widgets.follow import follow_session


class GraphView(anywidget.AnyWidget):
    """Draw ``graph``; with ``session`` (or a Handle), show how many items each stage has handled."""

    _esm = Path(__file__).with_name("graph_view.js")
    svg = traitlets.Unicode("").tag(sync=True)
    counters = traitlets.Dict({}).tag(sync=True)

    def __init__(self, graph: Any, session: Any = None, *, refresh_hz: float = 2.0) -> None:
        plan = graph.plan()
        super().__init__(svg=graph_svg(plan.nodes, plan.edges))
        self.graph = graph
        self.session = getattr(session, "session", session)
        self._stop = None
        if self.session is not None:
            self.refresh()
            self._stop = follow_session(self.session, self.refresh, refresh_hz, "vkit-graph-view")

    def refresh(self) -> None:
        counts = {name: stats["num_items"] for name, stats in self.session.stages.items()}
        if counts != self.counters:
            self.counters = counts

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        super().close()

    def __repr__(self) -> str:
        return self.graph.text()
