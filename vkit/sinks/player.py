"""``sinks.Player``: playback in the notebook through the Player widget, with real playout positions."""

from __future__ import annotations

from typing import Any

from vkit.frames import AudioFrame
from vkit.sinks.speaker import VirtualSpeaker


class Player(VirtualSpeaker):
    """Play ``stream`` in the browser. While a view reports positions, barge-in truncation uses what the
    browser really played; without one (headless runs, tests) a modelled device with the same
    ``prebuffer_ms`` stands in, so latency figures stay meaningful."""

    def __init__(self, widget: Any = None, *, stream: str = "output", prebuffer_ms: float = 80.0) -> None:
        super().__init__(stream=stream, prebuffer_ms=prebuffer_ms)
        if widget is None:
            from vkit.sinks.browser_player import BrowserPlayer

            widget = BrowserPlayer(prebuffer_ms=prebuffer_ms)
        self.widget = widget

    def reset(self) -> None:
        """A new run: forget the modelled playout and the browser's old stream positions."""
        super().reset()
        self.widget.new_stream()

    def on_frame(self, frame: AudioFrame) -> None:
        if self.widget.sample_rate_hz != frame.sample_rate_hz:
            self.widget.sample_rate_hz = frame.sample_rate_hz
        self.widget.send_audio(frame)

    def on_flush(self) -> None:
        self.widget.flush()

    @property
    def requires_real_clock(self) -> str | bool:
        """A browser view plays in real time: its playout cannot follow a virtual clock."""
        views = getattr(self.widget, "num_views", 0)
        if not views:
            return False
        return (f"is shown in the browser ({views} view(s)), which plays in real time, so its playout cannot be "
                "measured on the virtual clock: run with the system clock, or play into sinks.VirtualSpeaker() "
                "for a virtual run")

    def reported_position(self) -> int | None:
        return self.widget.played_position if self.widget.browser_is_playing else None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.widget._repr_mimebundle_(include=include, exclude=exclude)

    def describe(self) -> dict[str, Any]:
        return {"stream": self.stream, "prebuffer_ms": self.prebuffer_ms}
