"""Pacing shared by every source: real time (latency studies) or as fast as possible (offline work)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from vkit.errors import ConfigError, got
from vkit.frames import FINITE, AudioFrame
from vkit.graph import Pipe
from vkit.progress import in_notebook
from vkit.stage import StreamFormat
from vkit.units import ms_to_samples, samples_to_whole_ns

Pace = Literal["realtime", "fast"]

_YIELD_EVERY_FRAMES = 16


class PacedSource(Pipe):
    """A source that cuts its audio into ``frame_ms`` blocks and emits them at the chosen pace.

    With ``pace="realtime"`` frame k is emitted when its last sample would have been captured, and
    stamped with the clock time of its first sample; with ``pace="fast"`` frames go out back to back.
    Subclasses provide ``format`` and ``_blocks(num_samples)``, and set ``finite_blocks`` when their samples
    cannot be NaN or infinite (decoded from integers), which spares the next stage its check.
    """

    format: StreamFormat
    finite_blocks = False

    def __init__(self, *, frame_ms: float = 20.0, pace: Pace = "fast", stream: str = "input",
                 progress: bool | None = None) -> None:
        if pace not in ("realtime", "fast"):
            raise ConfigError(f"pace must be 'realtime' or 'fast' {got(pace)}")
        if not 0 < frame_ms <= 10_000:
            raise ConfigError(f"frame_ms must be in (0, 10000] {got(frame_ms)}")
        self.frame_ms = frame_ms
        self.pace = pace
        self.stream = stream
        self.progress = progress

    def _blocks(self, num_samples: int) -> Iterator[np.ndarray]:
        raise NotImplementedError

    async def run(self, ctx: Any) -> None:
        rate = self.format.sample_rate_hz
        assert rate is not None
        frame_samples = max(1, ms_to_samples(self.frame_ms, rate))
        clock = ctx.clock
        origin_ns = clock.now_ns()
        position = 0
        bar = self._progress_bar(rate)
        realtime = self.pace == "realtime"
        finite = self.finite_blocks
        for count, block in enumerate(self._blocks(frame_samples)):
            if bar is not None:
                bar.update(block.shape[1] / rate)
            if realtime:
                t_ns = origin_ns + samples_to_whole_ns(position, rate)
                await clock.sleep_until(origin_ns + samples_to_whole_ns(position + block.shape[1], rate))
            else:
                t_ns = clock.now_ns()
                if count % _YIELD_EVERY_FRAMES == _YIELD_EVERY_FRAMES - 1:
                    await asyncio.sleep(0)
            frame = AudioFrame(samples=block, sample_rate_hz=rate, start_sample=position, stream=self.stream, t_ns=t_ns)
            if finite:
                FINITE.samples = frame.samples
            await ctx.emit(frame)
            position += block.shape[1]
        if bar is not None:
            bar.close()

    def total_samples(self) -> int | None:
        """How many samples the source will produce, when known (for progress bars)."""
        return None

    def _progress_bar(self, rate: int) -> Any:
        """A tqdm bar in seconds of audio, for offline runs at fast pacing (a widget in notebooks).

        Shown when ``progress=True``, or by default for fast runs over more than 30 s of audio outside a
        notebook (there the waiting cell shows the run's own bar, ``vkit.progress``); tqdm itself stays
        quiet on a non-terminal unless the bar was asked for explicitly."""
        total = self.total_samples()
        wanted = self.progress if self.progress is not None else (
            self.pace == "fast" and total is not None and total > 30 * rate and not in_notebook())
        if not wanted:
            return None
        from tqdm.auto import tqdm

        quiet_off_terminal = None if self.progress is None else False
        bar = tqdm(total=None if total is None else round(total / rate, 2), unit="s", unit_scale=False,
                   desc=f"{type(self).__name__} {self.stream}", leave=False, disable=quiet_off_terminal,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]")
        return None if bar.disable else bar  # a quiet bar costs a call per frame for nothing

    @property
    def latency_ms(self) -> float:
        """A paced source delivers a frame only once all of it is captured: one frame of delay."""
        return self.frame_ms if self.pace == "realtime" else 0.0
