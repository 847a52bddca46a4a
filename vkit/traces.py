"""What a VAD trace draws, read from a session's events: the probability per window, the speech spans,
and the thresholds of the graph's VAD. Shared by the live ``VadTrace`` widget and ``plots.vad_trace``."""

from __future__ import annotations

from typing import Any

from vkit.frames import SpeechStarted, SpeechStopped, VadScore
from vkit.recording.events import events_from_records
from vkit.units import samples_to_ms

__all__ = ["TraceData", "vad_thresholds"]


def vad_thresholds(session: Any) -> tuple[float | None, float | None]:
    """(threshold, negative_threshold) of the first VAD in a session's graph: a live graph's description,
    or the one a recording's manifest holds; (None, None) when there is no VAD."""
    graph = getattr(session, "graph", None)  # a session keeps its graph's description
    if isinstance(graph, dict):
        description = graph
    elif graph is not None and hasattr(graph, "describe"):
        description = graph.describe()
    else:
        manifest = getattr(session, "manifest", None)
        description = manifest.get("graph") if isinstance(manifest, dict) else None
    for node in (description or {}).get("nodes", []):
        params = node.get("params") or {}
        if node.get("class") == "VAD" and "threshold" in params:
            return params["threshold"], params.get("negative_threshold")
    return None, None


class TraceData:
    """The probability points and speech spans of one stream, accumulated from events as they come."""

    def __init__(self, stream: str = "input") -> None:
        self.stream = stream
        self.points: list[tuple[float, float]] = []  # (media time ms, probability)
        self.spans: list[tuple[float, float]] = []  # finished speech segments (start ms, stop ms)
        self.open_span_ms: float | None = None  # start of a segment still under way

    def add(self, events: list[Any]) -> bool:
        """Take events (typed, or the dict records of a loaded recording); True when any was relevant."""
        if events and isinstance(events[0], dict):
            events = events_from_records(events)
        changed = False
        for event in events:
            if getattr(event, "stream", None) != self.stream:
                continue
            if isinstance(event, VadScore):
                self.points.append((samples_to_ms(event.sample, event.sample_rate_hz), event.probability))
            elif isinstance(event, SpeechStarted):
                self.open_span_ms = event.ms
            elif isinstance(event, SpeechStopped) and self.open_span_ms is not None:
                self.spans.append((self.open_span_ms, event.ms))
                self.open_span_ms = None
            else:
                continue
            changed = True
        return changed
