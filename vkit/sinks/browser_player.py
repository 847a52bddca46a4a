"""The browser side of ``sinks.Player`` (an anywidget model): PCM16 over binary comm messages into an AudioWorklet.

``vkit.widgets.Player`` is this class."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vkit.extras import require
from vkit.frames import AudioFrame
from vkit.units import float_to_pcm16_bytes

require("anywidget", extra="notebook", feature="sinks.Player")

import anywidget  # noqa: E402 - after the check that names the extra
import traitlets  # noqa: E402


class BrowserPlayer(anywidget.AnyWidget):
    """Streams audio to the browser through a jitter buffer; reports back what was played.

    ``played_position`` is the stream position the browser reports as played (updated a few times a
    second while a view is open); ``reported_at`` is when (``time.monotonic()``), or 0 if never.
    However many cells display it, a player has one AudioContext in the page, so it plays once.
    ``muted`` silences every view (the stream still plays, so positions stay true). ``num_views`` is
    how many views the browser has open (each says so when it renders and when it goes); the kernel
    hears it once it is free to read widget messages, i.e. after the cell that displayed the player.
    """

    _esm = Path(__file__).with_name("browser_player.js")
    sample_rate_hz = traitlets.Int(24_000).tag(sync=True)
    prebuffer_ms = traitlets.Float(80.0).tag(sync=True)
    autostart = traitlets.Bool(True).tag(sync=True)
    muted = traitlets.Bool(False).tag(sync=True)
    player_key = traitlets.Unicode("").tag(sync=True)  # the model id: views share one AudioContext by it
    stream_id = traitlets.Int(0).tag(sync=True)  # bumped per run; reports about an older stream are ignored

    def __init__(self, *, sample_rate_hz: int = 24_000, prebuffer_ms: float = 80.0, autostart: bool = True) -> None:
        super().__init__(sample_rate_hz=sample_rate_hz, prebuffer_ms=prebuffer_ms, autostart=autostart)
        self.player_key = self.model_id
        self.played_position = 0
        self.buffered_samples = 0
        self.num_underruns = 0
        self.context_state = "off"
        self.reported_at = 0.0
        self.num_sent_samples = 0
        self._views: set[str] = set()
        self.on_msg(self._on_browser_message)

    def send_audio(self, frame: AudioFrame) -> None:
        """Queue one frame for playback (safe to call from the engine thread)."""
        mono = frame.samples.mean(axis=0) if frame.num_channels > 1 else frame.samples[0]
        self.send({"type": "pcm16", "start_sample": frame.start_sample, "sample_rate_hz": frame.sample_rate_hz},
                  buffers=[float_to_pcm16_bytes(mono)])
        self.num_sent_samples += mono.size

    def new_stream(self) -> None:
        """A new run starts its stream at sample 0: drop queued audio in every view and forget the
        positions reported for the previous stream until a view reports on the new one."""
        self.played_position = 0
        self.buffered_samples = 0
        self.reported_at = 0.0
        self.num_sent_samples = 0
        self.stream_id += 1  # the views drop what they hold when they see it change

    def flush(self) -> None:
        """Drop everything queued in the browser (barge-in)."""
        self.send({"type": "flush"})

    @property
    def num_views(self) -> int:
        """Views of this player open in a browser (a page closed without saying so may still count)."""
        return len(self._views)

    def _on_browser_message(self, widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        if content.get("type") == "view":
            view_id = str(content.get("view_id", ""))
            if content.get("open"):
                self._views.add(view_id)
            else:
                self._views.discard(view_id)
            return
        if content.get("type") != "played" or content.get("stream_id", 0) != self.stream_id:
            return
        self.played_position = int(content.get("position", 0))
        self.buffered_samples = int(content.get("buffered", 0))
        self.num_underruns = int(content.get("underruns", 0))
        self.context_state = str(content.get("state", "unknown"))
        self.reported_at = time.monotonic()

    @property
    def browser_is_playing(self) -> bool:
        """A view has reported a running AudioContext within the last second."""
        return self.context_state == "running" and time.monotonic() - self.reported_at < 1.0

    def __repr__(self) -> str:
        return (f"Player(sample_rate_hz={self.sample_rate_hz}, sent={self.num_sent_samples}, "
                f"played={self.played_position}, underruns={self.num_underruns}, views={self.num_views})")
