"""A VAD trace: speech probability over time, the thresholds, and the detected speech spans."""

from __future__ import annotations

import html
from typing import Any

from vkit.frames import SpeechStarted, SpeechStopped, VadScore


class VadTrace:
    """Render a session's ``VadScore`` events as SVG (notebooks show it inline)."""

    def __init__(self, session: Any, *, threshold: float = 0.5, negative_threshold: float | None = 0.35,
                 stream: str = "input", width_px: int = 900, height_px: int = 160) -> None:
        session = getattr(session, "session", session)
        events = list(session.events)
        if events and isinstance(events[0], dict):  # a loaded recording: rebuild the typed events
            from vkit.recording.replay import events_from_records

            events = events_from_records(events)
        self.events = events
        self.threshold = threshold
        self.negative_threshold = negative_threshold
        self.stream = stream
        self.width_px = width_px
        self.height_px = height_px

    def points(self) -> list[tuple[float, float]]:
        """(time_ms, probability) for every scored window on the stream, in media time."""
        return [(e.sample * 1000 / e.sample_rate_hz, e.probability) for e in self.events
                if isinstance(e, VadScore) and e.stream == self.stream]

    def spans(self) -> list[tuple[float, float]]:
        spans, start = [], None
        for event in self.events:
            if isinstance(event, SpeechStarted) and event.stream == self.stream:
                start = event.ms
            elif isinstance(event, SpeechStopped) and event.stream == self.stream and start is not None:
                spans.append((start, event.ms))
                start = None
        return spans

    def _repr_svg_(self) -> str:
        points = self.points()
        width, height, pad = self.width_px, self.height_px, 20
        end_ms = max([t for t, _ in points] + [b for _, b in self.spans()] + [1.0])

        def x(t_ms: float) -> float:
            return pad + (width - 2 * pad) * t_ms / end_ms

        def y(p: float) -> float:
            return height - pad - (height - 2 * pad) * p

        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="10" '
                 'font-family="sans-serif">']
        for a, b in self.spans():
            parts.append(f'<rect x="{x(a):.1f}" y="{pad}" width="{x(b) - x(a):.1f}" height="{height - 2 * pad}" '
                         'fill="#4c78a8" opacity="0.15"/>')
        for level, dash in ((self.threshold, ""), (self.negative_threshold, ' stroke-dasharray="4 3"')):
            if level is not None:
                parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
                             f'stroke="#e45756"{dash}/>')
        line = " ".join(f"{x(t):.1f},{y(p):.1f}" for t, p in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#333" stroke-width="1"/>')
        parts.append(f'<text x="{pad}" y="12">{html.escape(self.stream)}: VAD probability, threshold '
                     f'{self.threshold}, speech shaded; {end_ms / 1000:.1f} s</text></svg>')
        return "".join(parts)

    def __repr__(self) -> str:
        return f"VadTrace({len(self.points())} windows, {len(self.spans())} speech segments)"
