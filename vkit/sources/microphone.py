"""The system microphone through sounddevice (optional extra ``vkit[devices]``)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from vkit.errors import AudioInputError, ConfigError, got
from vkit.frames import AudioFrame
from vkit.stage import Pipe, StreamFormat
from vkit.units import ms_to_samples


def import_sounddevice() -> Any:
    """Import sounddevice or explain what is missing (the package, or PortAudio on a headless box)."""
    try:
        import sounddevice
    except ImportError as exc:
        raise ConfigError("audio devices need the sounddevice package: pip install 'vkit[devices]' "
                          f"{got(str(exc))}") from exc
    except OSError as exc:
        raise ConfigError("audio devices need the PortAudio library (Debian: apt-get install libportaudio2) "
                          f"{got(str(exc))}") from exc
    return sounddevice


class Microphone(Pipe):
    """Capture from a system input device; a live source, so its edge drops the oldest frames when full."""

    live = True

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
        queue: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=256)

        def on_block(block: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            loop.call_soon_threadsafe(_offer, queue, block.T.copy())

        position = 0
        with sd.InputStream(samplerate=self.sample_rate_hz, channels=self.num_channels, dtype="float32",
                            blocksize=ms_to_samples(self.frame_ms, self.sample_rate_hz), device=self.device,
                            callback=on_block):
            while True:
                block = await queue.get()
                t_ns = ctx.clock.now_ns() - block.shape[1] * 1_000_000_000 // self.sample_rate_hz
                await ctx.emit(AudioFrame(samples=block, sample_rate_hz=self.sample_rate_hz, start_sample=position,
                                          stream=self.stream, t_ns=t_ns))
                position += block.shape[1]


def _offer(queue: asyncio.Queue[np.ndarray], block: np.ndarray) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(block)
