"""Static plots for analysis (matplotlib): the per-turn waterfall, the VAD trace, latency distributions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["waterfall", "vad_trace", "latency_distribution", "compare"]

_STEPS = [("vad_end_detected_ms", "VAD end detected", "#72b7b2"),
          ("server_speech_stopped_ms", "server speech_stopped", "#54a24b"),
          ("commit_sent_ms", "commit sent", "#54a24b"),
          ("response_created_ms", "response.created", "#eeca3b"),
          ("first_audio_received_ms", "first audio received", "#f58518"),
          ("first_audio_played_ms", "first audio played", "#e45756")]


def _rows(turns: Any) -> list[dict[str, Any]]:
    if hasattr(turns, "rows"):
        return turns.rows()
    if hasattr(turns, "to_dict"):
        return turns.to_dict("records")
    return [dict(t) for t in turns]


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


def _value(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def waterfall(turns: Any, ax: Any = None, title: str = "Where each millisecond went") -> Any:
    """One bar per turn from the end of user speech to the first sound of the answer, split by step."""
    rows = _rows(turns)
    ax = _axes(ax, (9, 0.5 + 0.45 * max(len(rows), 1)))
    seen: set[str] = set()
    for index, row in enumerate(rows):
        start = _value(row, "user_speech_end_ms")
        if start is None:
            continue
        previous = 0.0
        for key, label, colour in _STEPS:
            value = _value(row, key)
            if value is None or value - start <= previous:
                continue
            ax.barh(index, value - start - previous, left=previous, color=colour,
                    label=None if label in seen else label)
            seen.add(label)
            previous = value - start
        v2v = _value(row, "voice_to_voice_ms")
        if v2v is not None:
            ax.text(previous + 5, index, f"{v2v:.0f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"turn {int(r['turn'])}" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("ms after the end of user speech")
    ax.set_title(title)
    if seen:
        ax.legend(fontsize=7, loc="lower right")
    return ax


def vad_trace(session: Any, ax: Any = None, threshold: float | None = None, stream: str = "input") -> Any:
    """VAD probability over media time, with the threshold (the graph's VAD's unless given) and the
    detected speech shaded."""
    from vkit.widgets.vad_trace import TraceData, vad_thresholds

    if threshold is None:
        threshold = vad_thresholds(getattr(session, "session", session))[0]
    trace = TraceData(stream)
    trace.add(list(getattr(session, "session", session).events))
    points = np.array(trace.points or [(0.0, 0.0)])
    ax = _axes(ax, (10, 2.5))
    ax.plot(points[:, 0] / 1000, points[:, 1], color="#333", linewidth=0.8, label="probability")
    ax.axhline(threshold, color="#e45756", linewidth=0.8, label="threshold")
    for start, end in trace.spans:
        ax.axvspan(start / 1000, end / 1000, color="#4c78a8", alpha=0.15)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("s")
    ax.set_ylabel("speech probability")
    ax.legend(fontsize=7, loc="upper right")
    return ax


def latency_distribution(tables: Mapping[str, Any], column: str = "voice_to_voice_ms", ax: Any = None) -> Any:
    """Empirical CDFs of one latency column for several runs (e.g. two server profiles)."""
    ax = _axes(ax, (6, 3.5))
    for name, turns in tables.items():
        values = np.sort([v for r in _rows(turns) if (v := _value(r, column)) is not None])
        if values.size:
            ax.step(values, np.arange(1, values.size + 1) / values.size, where="post",
                    label=f"{name} (median {np.median(values):.0f} ms)")
    ax.set_xlabel(column)
    ax.set_ylabel("fraction of turns")
    ax.legend(fontsize=8)
    return ax


def compare(tables: Mapping[str, Any], columns: Sequence[str] = ("end_of_turn_delay_ms", "server_first_audio_ms",
                                                                  "voice_to_voice_ms")) -> Any:
    """A summary DataFrame: median and p90 of each column for each run."""
    import pandas as pd

    records = []
    for name, turns in tables.items():
        rows = _rows(turns)
        for column in columns:
            values = [v for r in rows if (v := _value(r, column)) is not None]
            records.append({"run": name, "column": column, "turns": len(values),
                            "median_ms": float(np.median(values)) if values else None,
                            "p90_ms": float(np.percentile(values, 90)) if values else None})
    return pd.DataFrame(records).pivot(index="column", columns="run", values=["median_ms", "p90_ms"])
