"""The live latency inspector: per-turn waterfall with a time axis, the turn's breakdown, the p50/p90
summary and per-stage timing, updated a few times a second."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from vkit.latency import stage_table
from vkit.widgets.follow import follow_session


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# what the summary reports: (column, label); "playout" is first audio received -> played
SUMMARY = [("voice_to_voice_ms", "voice-to-voice"), ("end_of_turn_delay_ms", "end-of-turn detection"),
           ("server_first_audio_ms", "network + server"), ("playout_ms", "first audio to played")]


def latency_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """p50 and p90 (ms) of each summary column over the turns that have it, with the count."""
    out = []
    for column, label in SUMMARY:
        if column == "playout_ms":
            values = [r["first_audio_played_ms"] - r["first_audio_received_ms"] for r in rows
                      if r.get("first_audio_played_ms") is not None and r.get("first_audio_received_ms") is not None]
        else:
            values = [r[column] for r in rows if r.get(column) is not None]
        out.append({"column": column, "label": label, "num_turns": len(values),
                    "p50_ms": float(np.percentile(values, 50)) if values else None,
                    "p90_ms": float(np.percentile(values, 90)) if values else None})
    return out


class LatencyInspector(anywidget.AnyWidget):
    """Shows ``session.turns`` and the stages' timings; follows a running session from a background thread.

    Give it a live Session, a Handle (``graph.start()``), or a loaded recording. Only changes are sent,
    at most ``refresh_hz`` times a second, so the kernel stays responsive.
    """

    _esm = Path(__file__).with_name("inspector.js")
    turns = traitlets.List([]).tag(sync=True)
    summary = traitlets.List([]).tag(sync=True)
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
        stage_rows = stage_table(stages) if isinstance(stages, dict) else []
        table = [{k: _clean(v) for k, v in row.items()} for row in stage_rows]
        status = str(getattr(self.session, "status", "loaded"))
        changed = rows != self.turns or status != self.status or len(table) != len(self.stages)
        if changed or self._stages_moved(table):
            with self.hold_sync():
                self.turns, self.summary, self.stages, self.status = rows, latency_summary(rows), table, status
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
