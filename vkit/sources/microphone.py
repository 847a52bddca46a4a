"""The system microphone through sounddevice (optional extra ``vkit[devices]``)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from vkit.devices import buffer_offset_ns, import_sounddevice
from vkit.errors import AudioInputError, got
from vkit.frames import AudioFrame, Marker
from vkit.graph import Pipe
from vkit.stage import StreamFormat
from vkit.units import ms_to_samples


class Microphone(Pipe):
    """Capture from a system input device; a live source, so its edge drops the oldest frames when full."""

    live = True

    requires_real_clock = True  # PortAudio's ADC clock

    def __init__(self, *, sample_rate_hz: int = 48_000, num_channels: int = 1, frame_ms: float = 20.0,
                 device: int | str | None = None, stream: str = "input") -> None:
        self.sample_rate_hz = sample_rate_hz
        self.num_channels = num_channels
        self.frame_ms = frame_ms
        self.device = device
        self.stream = stream
        self.format = StreamFormat(sample_rate_hz, num_channels)

    @property
    def latency_ms(self) -> float:
        return self.frame_ms

    async def run(self, ctx: Any) -> None:
        sd = import_sounddevice()
        try:
            sd.check_input_settings(device=self.device, channels=self.num_channels, samplerate=self.sample_rate_hz)
        except Exception as exc:
            raise AudioInputError(f"no usable input device ({exc}) {got(self.device)}") from exc
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[AudioFrame] = asyncio.Queue(maxsize=256)
        clock, rate = ctx.clock, self.sample_rate_hz
        captured = [0]  # samples captured so far: positions stay true even when blocks are dropped

        def on_block(block: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            t_ns = clock.now_ns() + buffer_offset_ns(time_info, "input", frames / rate)
            frame = AudioFrame(samples=block.T.copy(), sample_rate_hz=rate, start_sample=captured[0],
                               stream=self.stream, t_ns=t_ns)
            captured[0] += frames
            loop.call_soon_threadsafe(_offer, queue, frame, ctx)

        with sd.InputStream(samplerate=rate, channels=self.num_channels, dtype="float32",
                            blocksize=ms_to_samples(self.frame_ms, rate), device=self.device, callback=on_block):
            while True:
                await ctx.emit(await queue.get())


def _offer(queue: asyncio.Queue[AudioFrame], frame: AudioFrame, ctx: Any) -> None:
    """Hand a captured block to the loop; when the loop has fallen 256 blocks behind, drop the oldest
    and say so on the session record (the positions of later frames keep the gap visible)."""
    if queue.full():
        dropped = queue.get_nowait()
        ctx.publish(Marker(name="input_overflow", t_ns=dropped.t_ns, data={
            "stream": dropped.stream, "start_sample": dropped.start_sample, "num_samples": dropped.num_samples}))
    queue.put_nowait(frame)
