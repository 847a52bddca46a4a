"""The live latency inspector: per-turn table, waterfall, and per-stage timing, at a few hertz."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from vkit.latency import stage_table
from vkit.widgets.follow import follow_session


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class LatencyInspector(anywidget.AnyWidget):
    """Shows ``session.turns`` and the stages' timings; follows a running session from a background thread.

    Give it a live Session, a Handle (``graph.start()``), or a loaded recording. Only changes are sent,
    at most ``refresh_hz`` times a second, so the kernel stays responsive.
    """

    _esm = Path(__file__).with_name("inspector.js")
    turns = traitlets.List([]).tag(sync=True)
    stages = traitlets.List([]).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session: Any, *, refresh_hz: float = 5.0) -> None:
        super().__init__()
        self.session = getattr(session, "session", session)  # a Handle has .session
        self.refresh_hz = refresh_hz
        self.refresh()
        self._stop = follow_session(self.session, self.refresh, refresh_hz, "vkit-inspector")

    def refresh(self) -> bool:
        """Pull the latest table; returns True when something changed and was sent."""
        turns = self.session.turns
        rows = turns.rows() if hasattr(turns, "rows") else list(turns)
        rows = [{k: _clean(v) for k, v in row.items()} for row in rows]
        stages = getattr(self.session, "stages", None)
        stage_rows = [{k: _clean(v) for k, v in r.items()} for r in stage_table(stages)] if isinstance(stages, dict) else []
        status = str(getattr(self.session, "status", "loaded"))
        changed = rows != self.turns or status != self.status or len(stage_rows) != len(self.stages)
        if changed or self._stages_moved(stage_rows):
            self.turns, self.stages, self.status = rows, stage_rows, status
            return True
        return False

    def _stages_moved(self, rows: list[dict[str, Any]]) -> bool:
        old = {r["stage"]: r["num_items"] for r in self.stages}
        return any(old.get(r["stage"]) != r["num_items"] for r in rows)

    def close(self) -> None:
        self._stop.set()
        super().close()

    def __repr__(self) -> str:
        turns = self.session.turns
        return turns.to_text() if hasattr(turns, "to_text") else f"LatencyInspector({len(self.turns)} turns)"
