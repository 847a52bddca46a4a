"""The browser microphone as a source: getUserMedia in the page, resampled in Python, into the graph."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from vkit.deprecation import renamed_keyword
from vkit.extras import require
from vkit.frames import AudioFrame
from vkit.graph import Pipe
from vkit.stage import StreamFormat
from vkit.units import pcm16_bytes_to_float, samples_to_whole_ns

require("anywidget", extra="notebook", feature="vkit.sources.BrowserMic")

import anywidget  # noqa: E402 - after the check that names the extra
import traitlets  # noqa: E402


class MicWidget(anywidget.AnyWidget):
    """The page side: a button, getUserMedia, and an AudioWorklet that sends Int16 chunks."""

    _esm = Path(__file__).with_name("browser_mic.js")
    frame_ms = traitlets.Int(40).tag(sync=True)


class BrowserMic(Pipe):
    """A microphone in the notebook's browser tab, usable as a graph source (``BrowserMic() | ...``).

    Display it to get its button. The page captures at the device's own rate (Firefox refuses mismatched
    rates) and sends Int16 chunks; they are resampled here to ``sample_rate_hz``. A live source: its edge
    drops the oldest frames when the graph falls behind.
    """

    live = True

    def __init__(self, *, sample_rate_hz: int = 24_000, frame_ms: int = 40, stream: str = "input",
                 chunk_ms: int | None = None) -> None:
        frame_ms = renamed_keyword("BrowserMic", "chunk_ms", "frame_ms", chunk_ms, frame_ms)
        self.widget = MicWidget(frame_ms=frame_ms)
        self.sample_rate_hz = sample_rate_hz
        self.frame_ms = frame_ms
        self.stream = stream
        self.format = StreamFormat(sample_rate_hz, 1)
        self.num_chunks = 0
        self._lock = threading.Lock()
        self._deliver: Any = None  # set while a graph runs: hands samples to the engine loop
        self._resampler: soxr.ResampleStream | None = None
        self._device_rate: int | None = None
        self.widget.on_msg(self._on_browser_message)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.widget._repr_mimebundle_(include=include, exclude=exclude)

    def _on_browser_message(self, widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        if content.get("type") != "mic" or not buffers:
            return
        rate = int(content["sample_rate_hz"])
        samples = pcm16_bytes_to_float(buffers[0])
        with self._lock:
            if self._resampler is None or rate != self._device_rate:
                self._device_rate = rate
                self._resampler = soxr.ResampleStream(rate, self.sample_rate_hz, 1, dtype="float32", quality="HQ")
            converted = self._resampler.resample_chunk(samples) if rate != self.sample_rate_hz else samples
            self.num_chunks += 1
            deliver = self._deliver
        if deliver is not None and converted.size:
            deliver(converted)  # may run on any thread (kernel main thread or a subshell)

    async def run(self, ctx: Any) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=256)

        def offer(samples: np.ndarray) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(samples)

        self._deliver = lambda samples: loop.call_soon_threadsafe(offer, samples)
        position = 0
        try:
            while True:
                samples = await queue.get()
                t_ns = ctx.clock.now_ns() - samples_to_whole_ns(samples.size, self.sample_rate_hz)
                await ctx.emit(AudioFrame(samples=samples.reshape(1, -1), sample_rate_hz=self.sample_rate_hz,
                                          start_sample=position, stream=self.stream, t_ns=t_ns))
                position += samples.size
        finally:
            self._deliver = None

    def __repr__(self) -> str:
        return f"BrowserMic(sample_rate_hz={self.sample_rate_hz}, chunks={self.num_chunks})"
