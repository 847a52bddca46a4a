"""Utility filters: gain, re-framing, channel mixing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vkit.errors import ConfigError, got
from vkit.filters.base import Filter, check_finite, output_frame
from vkit.frames import AudioFrame
from vkit.stage import StreamFormat
from vkit.units import db_to_gain, ms_to_samples


class Gain(Filter):
    """Scale by ``gain_db`` (relative level)."""

    def __init__(self, gain_db: float) -> None:
        if not -120 <= gain_db <= 60:
            raise ConfigError(f"Gain gain_db must be in [-120, 60] {got(gain_db)}")
        self.gain_db = gain_db
        self._factor = np.float32(db_to_gain(gain_db))

    def process(self, frame: AudioFrame) -> AudioFrame:
        check_finite(frame, "Gain")
        return frame.replace(samples=frame.samples * self._factor)


class Reframe(Filter):
    """Re-cut the stream into frames of exactly ``frame_ms`` (the last one may be shorter at flush)."""

    def __init__(self, frame_ms: float) -> None:
        if not 0 < frame_ms <= 10_000:
            raise ConfigError(f"Reframe frame_ms must be in (0, 10000] {got(frame_ms)}")
        self.frame_ms = frame_ms
        self.reset()

    def reset(self) -> None:
        self._pending: np.ndarray | None = None
        self._position = 0
        self._last: AudioFrame | None = None

    def process(self, frame: AudioFrame) -> list[AudioFrame]:
        size = max(1, ms_to_samples(self.frame_ms, frame.sample_rate_hz))
        if self._pending is None:
            self._pending = frame.samples[:, :0]
            self._position = frame.start_sample
        pending = np.concatenate([self._pending, frame.samples], 1)
        self._last = frame
        out = []
        start = 0
        while pending.shape[1] - start >= size:
            out.append(output_frame(frame, pending[:, start : start + size], self._position, input_position=self._position))
            self._position += size
            start += size
        self._pending = pending[:, start:]
        return out

    def flush(self) -> list[AudioFrame]:
        if self._last is None or self._pending is None or self._pending.shape[1] == 0:
            return []
        out = output_frame(self._last, self._pending, self._position, input_position=self._position)
        self._pending = self._pending[:, :0]
        return [out]


class ChannelMix(Filter):
    """Change the channel layout: ``num_channels=1`` averages to mono, ``channels=[i, ...]`` selects,
    ``matrix`` (``(out, in)``) mixes arbitrarily, ``num_channels=N`` from mono duplicates."""

    def __init__(self, *, num_channels: int | None = None, channels: Sequence[int] | None = None,
                 matrix: Sequence[Sequence[float]] | None = None) -> None:
        if sum(x is not None for x in (num_channels, channels, matrix)) != 1:
            raise ConfigError("ChannelMix takes exactly one of num_channels=, channels=, matrix= "
                              f"{got((num_channels, channels, matrix))}")
        self.num_channels = num_channels
        self.channels = list(channels) if channels is not None else None
        self.matrix = np.asarray(matrix, np.float32) if matrix is not None else None

    def configure(self, fmt: StreamFormat) -> StreamFormat:
        if fmt.num_channels is not None:
            self._check(fmt.num_channels)
        return StreamFormat(fmt.sample_rate_hz, self._output_channels(fmt.num_channels))

    def _output_channels(self, num_in: int | None) -> int | None:
        if self.num_channels is not None:
            return self.num_channels
        if self.channels is not None:
            return len(self.channels)
        assert self.matrix is not None
        return self.matrix.shape[0]

    def _check(self, num_in: int) -> None:
        if self.channels is not None and any(not 0 <= c < num_in for c in self.channels):
            raise ConfigError(f"ChannelMix channel index out of range for {num_in} channels {got(self.channels)}")
        if self.matrix is not None and self.matrix.shape[1] != num_in:
            raise ConfigError(f"ChannelMix matrix needs {num_in} columns {got(self.matrix.shape)}")
        if self.num_channels not in (None, 1) and num_in not in (1, self.num_channels):
            raise ConfigError(f"ChannelMix can only duplicate mono to {self.num_channels} channels {got(num_in)}")

    def process(self, frame: AudioFrame) -> AudioFrame:
        x = frame.samples
        self._check(x.shape[0])
        if self.channels is not None:
            y = x[self.channels]
        elif self.matrix is not None:
            y = self.matrix @ x
        elif self.num_channels == 1:
            y = x.mean(axis=0, keepdims=True)
        else:
            y = np.repeat(x, self.num_channels // x.shape[0], axis=0)
        return frame.replace(samples=np.ascontiguousarray(y, np.float32))
