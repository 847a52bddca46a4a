"""The VAD trace: speech probability over time, the thresholds, and the detected speech spans, live."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from vkit.traces import TraceData, vad_thresholds
from vkit.units import ms_to_s, s_to_ms
from vkit.widgets.follow import follow_session


class VadTrace(anywidget.AnyWidget):
    """Draw a session's ``VadScore`` and speech events as SVG, following a running session.

    Give it a live Session, a Handle (``graph.start()``) or a loaded recording. While the session runs,
    only new events are read, and the drawing is resent at most ``refresh_hz`` times a second.
    The VAD must run with ``emit_scores=True`` (its default) for the probability line to exist.
    The threshold lines are the graph's VAD's (``threshold``/``negative_threshold`` override them).
    """

    _esm = Path(__file__).with_name("vad_trace.js")
    svg = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session: Any, *, threshold: float | None = None, negative_threshold: float | None = None,
                 stream: str = "input", width_px: int = 900, height_px: int = 160, refresh_hz: float = 4.0) -> None:
        super().__init__()
        self.session = getattr(session, "session", session)  # a Handle has .session
        graph_threshold, graph_negative = vad_thresholds(self.session)
        self.threshold = graph_threshold if threshold is None else threshold
        self.negative_threshold = graph_negative if negative_threshold is None else negative_threshold
        self.stream = stream
        self.width_px = width_px
        self.height_px = height_px
        self._trace = TraceData(stream)
        self._num_seen = 0
        self.refresh()
        self._stop = follow_session(self.session, self.refresh, refresh_hz, "vkit-vad-trace")

    def points(self) -> list[tuple[float, float]]:
        """(time_ms, probability) for every scored window on the stream, in media time."""
        return list(self._trace.points)

    def spans(self) -> list[tuple[float, float]]:
        """(start_ms, stop_ms) of every finished speech segment on the stream."""
        return list(self._trace.spans)

    def refresh(self) -> bool:
        """Read the events that arrived since the last call; returns True when the drawing changed."""
        since = getattr(self.session, "events_since", None)
        if since is not None:  # a live session: only what was published since the last call
            new, self._num_seen = since(self._num_seen)
        else:  # a loaded recording: a plain list
            new = self.session.events[self._num_seen :]
            self._num_seen += len(new)
        changed = self._trace.add(new)
        if changed or not self.svg:
            self.svg = self.to_svg()
        return changed

    def close(self) -> None:
        self._stop.set()
        super().close()

    def to_svg(self) -> str:
        """The trace as a standalone SVG document; an open speech segment is shaded up to the last score."""
        points = self._trace.points
        spans = list(self._trace.spans)
        last_ms = points[-1][0] if points else 0.0
        if self._trace.open_span_ms is not None:
            spans.append((self._trace.open_span_ms, max(last_ms, self._trace.open_span_ms)))
        width, height, pad = self.width_px, self.height_px, 20
        end_ms = max(last_ms, max((b for _, b in spans), default=0.0), 1.0)

        def x(t_ms: float) -> float:
            return pad + (width - 2 * pad) * t_ms / end_ms

        def y(p: float) -> float:
            return height - pad - (height - 2 * pad) * p

        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                 f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" font-size="10" '
                 'font-family="sans-serif">']
        for a, b in spans:
            parts.append(f'<rect x="{x(a):.1f}" y="{pad}" width="{x(b) - x(a):.1f}" height="{height - 2 * pad}" '
                         'fill="var(--jp-brand-color1, #1976d2)" opacity="0.18"/>')
        for level, dash in ((self.threshold, ""), (self.negative_threshold, ' stroke-dasharray="4 3"')):
            if level is not None:
                parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
                             f'stroke="var(--jp-error-color1, #d32f2f)"{dash}/>')
        muted = "var(--jp-ui-font-color2, #616161)"
        step_s = next(s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1e9) if s * 10 >= ms_to_s(end_ms))
        tick = 0.0
        while s_to_ms(tick) <= end_ms:  # a time axis in seconds along the bottom
            parts.append(f'<text x="{x(s_to_ms(tick)):.1f}" y="{height - 6}" text-anchor="middle" fill="{muted}">'
                         f'{tick:g} s</text>')
            tick = round(tick + step_s, 6)
        for level in (0.0, 1.0):
            parts.append(f'<text x="{pad - 4}" y="{y(level) + 3:.1f}" text-anchor="end" fill="{muted}">{level:g}</text>')
        line = " ".join(f"{x(t):.1f},{y(p):.1f}" for t, p in _at_most_two_per_pixel(points, end_ms, width))
        parts.append(f'<polyline points="{line}" fill="none" stroke="var(--jp-ui-font-color1, #1f1f1f)" stroke-width="1"/>')
        threshold = "" if self.threshold is None else f", threshold {self.threshold:g}"
        parts.append(f'<text x="{pad}" y="12" fill="var(--jp-ui-font-color1, #1f1f1f)">{html.escape(self.stream)}: '
                     f'VAD probability{threshold}, speech shaded</text></svg>')
        return "".join(parts)

    def __repr__(self) -> str:
        return f"VadTrace({len(self._trace.points)} windows, {len(self._trace.spans)} speech segments)"


def _at_most_two_per_pixel(points: list[tuple[float, float]], end_ms: float,
                           width_px: int) -> list[tuple[float, float]]:
    """Keep the lowest and highest probability in each pixel column, so long sessions draw fast and
    no peak disappears."""
    if len(points) <= 2 * width_px:
        return points
    columns: dict[int, list[tuple[float, float]]] = {}
    for point in points:
        column = columns.setdefault(int(point[0] / end_ms * width_px), [point, point])
        if point[1] < column[0][1]:
            column[0] = point
        if point[1] > column[1][1]:
            column[1] = point
    return [p for low, high in columns.values() for p in sorted({low, high})]
