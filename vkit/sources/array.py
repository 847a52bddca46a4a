"""In-memory sources: numpy arrays and signal generators (tone, noise, silence)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np

from vkit.errors import AudioInputError, ConfigError, got
from vkit.sources.base import Pace, PacedSource
from vkit.stage import StreamFormat
from vkit.units import db_to_gain, ms_to_samples

MAX_PEAK = 2.0  # samples beyond +/-1 are clipped at the wire; beyond this they are refused as a scaling mistake


class Array(PacedSource):
    """Stream a numpy array: 1-D (mono) or 2-D ``(num_channels, num_samples)``."""

    def __init__(self, samples: np.ndarray, sample_rate_hz: int, *, frame_ms: float = 20.0, pace: Pace = "fast",
                 stream: str = "input", progress: bool | None = None) -> None:
        super().__init__(frame_ms=frame_ms, pace=pace, stream=stream, progress=progress)
        array = np.asarray(samples)
        if np.iscomplexobj(array):
            raise AudioInputError(f"samples must be real; take .real or abs() of a complex array first {got(array.dtype)}")
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2:
            raise AudioInputError(f"samples must be 1-D or (num_channels, num_samples) {got(np.shape(samples))}")
        if array.shape[0] > 64 >= array.shape[1]:
            raise AudioInputError("samples look like (num_samples, num_channels); pass samples.T "
                                  f"{got(array.shape)}")
        if not np.issubdtype(array.dtype, np.number):
            raise AudioInputError(f"samples must be numeric {got(array.dtype)}")
        if np.issubdtype(array.dtype, np.integer):
            raise AudioInputError(f"samples must be float in [-1, 1]; convert PCM with x / 32768 {got(array.dtype)}")
        if array.size == 0:
            raise AudioInputError(f"samples hold no audio {got(array.shape)}")
        bad = ~np.isfinite(array)
        if bad.any():
            first = int(np.argwhere(bad)[0][1])
            raise AudioInputError(f"samples contain NaN or infinite values, first at sample {first} "
                                  f"{got(int(bad.sum()))}")
        peak = float(np.max(np.abs(array)))
        if peak > MAX_PEAK:
            raise AudioInputError(f"samples must be float in [-1, 1]; these reach {peak:g}, which clipping would "
                                  f"distort (scale them, e.g. x / np.abs(x).max()) {got(peak)}")
        if not isinstance(sample_rate_hz, (int, np.integer)) or sample_rate_hz <= 0:
            raise ConfigError(f"sample_rate_hz must be a positive integer {got(sample_rate_hz)}")
        self.samples = np.ascontiguousarray(array, dtype=np.float32)
        self.sample_rate_hz = int(sample_rate_hz)
        self.format = StreamFormat(self.sample_rate_hz, self.samples.shape[0])

    def _blocks(self, num_samples: int) -> Iterator[np.ndarray]:
        for start in range(0, self.samples.shape[1], num_samples):
            yield self.samples[:, start : start + num_samples]

    def total_samples(self) -> int:
        return self.samples.shape[1]

    def describe(self) -> dict[str, object]:
        return {"sample_rate_hz": self.sample_rate_hz, "num_channels": self.samples.shape[0],
                "num_samples": self.samples.shape[1], "pace": self.pace, "frame_ms": self.frame_ms}


class Tone(Array):
    """A sine tone at ``frequency_hz`` and ``level_dbfs`` (peak level)."""

    def __init__(self, frequency_hz: float = 440.0, *, duration_ms: float = 1000.0, sample_rate_hz: int = 24_000,
                 level_dbfs: float = -20.0, num_channels: int = 1, **options: object) -> None:
        if not 0 < frequency_hz < sample_rate_hz / 2:
            raise ConfigError(f"frequency_hz must be between 0 and half the sample rate {got(frequency_hz)}")
        t = np.arange(ms_to_samples(duration_ms, sample_rate_hz)) / sample_rate_hz
        wave = db_to_gain(level_dbfs) * np.sin(2 * np.pi * frequency_hz * t)
        super().__init__(np.tile(wave, (num_channels, 1)), sample_rate_hz, **options)  # type: ignore[arg-type]
        self.frequency_hz = frequency_hz
        self.level_dbfs = level_dbfs


class Noise(Array):
    """White or pink noise at ``level_dbfs`` RMS, reproducible from ``seed``."""

    def __init__(self, *, duration_ms: float = 1000.0, sample_rate_hz: int = 24_000, level_dbfs: float = -40.0,
                 color: Literal["white", "pink"] = "white", seed: int = 0, num_channels: int = 1,
                 **options: object) -> None:
        if color not in ("white", "pink"):
            raise ConfigError(f"color must be 'white' or 'pink' {got(color)}")
        rng = np.random.default_rng(seed)
        num_samples = ms_to_samples(duration_ms, sample_rate_hz)
        noise = rng.standard_normal((num_channels, num_samples))
        if color == "pink" and num_samples > 1:
            spectrum = np.fft.rfft(noise, axis=1)
            spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[1]), 1))
            noise = np.fft.irfft(spectrum, n=num_samples, axis=1)
        noise *= db_to_gain(level_dbfs) / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
        super().__init__(noise, sample_rate_hz, **options)  # type: ignore[arg-type]
        self.level_dbfs = level_dbfs
        self.color = color
        self.seed = seed


class Silence(Array):
    """Digital silence."""

    def __init__(self, *, duration_ms: float = 1000.0, sample_rate_hz: int = 24_000, num_channels: int = 1,
                 **options: object) -> None:
        zeros = np.zeros((num_channels, ms_to_samples(duration_ms, sample_rate_hz)), np.float32)
        super().__init__(zeros, sample_rate_hz, **options)  # type: ignore[arg-type]
        self.duration_ms = duration_ms
