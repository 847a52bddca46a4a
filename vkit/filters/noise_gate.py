"""A noise gate: RMS (or peak) detector, hysteresis, attack, hold, release, range, optional lookahead.

The gate runs at a control rate of one hop per millisecond on absolute sample positions, carrying
partial hops over to the next call, so its output does not depend on how the input is chunked.
Gain ramps are linear in dB and interpolated per sample.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

import numpy as np

from vkit.errors import ConfigError, got
from vkit.filters.base import Filter, check_finite, output_frame
from vkit.frames import AudioFrame
from vkit.units import ms_to_samples, rms_dbfs

_DETECTOR_MS = 10.0
_TRACE_HOPS = 60_000  # one minute of 1 ms hops: enough to plot, bounded however long the stream


class NoiseGate(Filter):
    """Attenuate by ``range_db`` while the level stays under the threshold.

    Opens when the level reaches ``threshold_dbfs``; closes once it has stayed under
    ``threshold_dbfs - hysteresis_db`` for ``hold_ms``. Gain rises over ``attack_ms`` and falls over
    ``release_ms``. ``lookahead_ms`` delays the audio (reported as ``latency_ms``) so onsets are not cut.
    """

    def __init__(self, threshold_dbfs: float = -50.0, *, hysteresis_db: float = 6.0, attack_ms: float = 2.0,
                 hold_ms: float = 100.0, release_ms: float = 150.0, range_db: float = -60.0, lookahead_ms: float = 0.0,
                 detector: Literal["rms", "peak"] = "rms") -> None:
        if not -120 <= threshold_dbfs <= 0:
            raise ConfigError(f"NoiseGate threshold_dbfs must be in [-120, 0] {got(threshold_dbfs)}")
        if hysteresis_db < 0 or range_db > 0:
            raise ConfigError(f"NoiseGate needs hysteresis_db >= 0 and range_db <= 0 {got((hysteresis_db, range_db))}")
        for name, value in (("attack_ms", attack_ms), ("hold_ms", hold_ms), ("release_ms", release_ms),
                            ("lookahead_ms", lookahead_ms)):
            if value < 0:
                raise ConfigError(f"NoiseGate {name} must be >= 0 {got(value)}")
        if detector not in ("rms", "peak"):
            raise ConfigError(f"NoiseGate detector must be 'rms' or 'peak' {got(detector)}")
        self.threshold_dbfs = threshold_dbfs
        self.hysteresis_db = hysteresis_db
        self.attack_ms = attack_ms
        self.hold_ms = hold_ms
        self.release_ms = release_ms
        self.range_db = range_db
        self.lookahead_ms = lookahead_ms
        self.detector = detector
        self.reset()

    @property
    def latency_ms(self) -> float:
        return self.lookahead_ms

    def reset(self) -> None:
        self._rate: int | None = None
        self._pending = np.zeros((1, 0), np.float32)  # samples waiting for a full hop
        self._delay_line: np.ndarray | None = None
        self._level = 0.0  # smoothed mean square (or peak)
        self._open = False
        self._hold_left_ms = 0.0
        self._gain_db = self.range_db
        self._position = 0
        self._origin = 0
        self.gain_db_trace: deque[float] = deque(maxlen=_TRACE_HOPS)  # gain after each 1 ms hop, last minute

    def process(self, frame: AudioFrame) -> AudioFrame | None:
        check_finite(frame, "NoiseGate")
        if self._rate != frame.sample_rate_hz:
            if self._rate is not None and self._position:
                raise ConfigError(f"NoiseGate sample rate changed mid-stream from {self._rate} {got(frame.sample_rate_hz)}")
            self._rate = frame.sample_rate_hz
            self._origin = frame.start_sample
            self._pending = np.zeros((frame.num_channels, 0), np.float32)
            self._delay_line = np.zeros((frame.num_channels, ms_to_samples(self.lookahead_ms, self._rate)), np.float32)
        pending = np.concatenate([self._pending, frame.samples], 1)
        hop = max(1, self._rate // 1000)
        usable = pending.shape[1] // hop * hop
        self._pending = pending[:, usable:]
        if usable == 0:
            return None
        return self._gate(frame, pending[:, :usable], hop)

    def flush(self) -> list[AudioFrame]:
        """Release the partial hop and the lookahead delay line."""
        if self._rate is None or self._delay_line is None:
            return []
        tail = np.concatenate([self._pending, np.zeros((self._pending.shape[0], self._delay_line.shape[1]), np.float32)], 1)
        self._pending = self._pending[:, :0]
        if tail.shape[1] == 0:
            return []
        hop = max(1, self._rate // 1000)
        padded = np.concatenate([tail, np.zeros((tail.shape[0], -tail.shape[1] % hop), np.float32)], 1)
        frame = AudioFrame(samples=padded, sample_rate_hz=self._rate, start_sample=self._position)
        out = self._gate(frame, padded, hop)
        return [out.replace(samples=out.samples[:, : tail.shape[1]])] if out is not None else []

    def _gate(self, frame: AudioFrame, x: np.ndarray, hop: int) -> AudioFrame:
        num_hops = x.shape[1] // hop
        hops = x.reshape(x.shape[0], num_hops, hop)
        if self.detector == "rms":
            powers = np.mean(np.square(hops, dtype=np.float64), axis=(0, 2))
        else:
            powers = np.max(np.abs(hops), axis=(0, 2)).astype(np.float64) ** 2
        smooth = math.exp(-1.0 / _DETECTOR_MS)  # one-pole over ~10 hops of 1 ms
        hop_ms = hop * 1000.0 / self._rate  # type: ignore[operator]
        attack_step = -self.range_db * hop_ms / self.attack_ms if self.attack_ms else np.inf
        release_step = -self.range_db * hop_ms / self.release_ms if self.release_ms else np.inf
        close_dbfs = self.threshold_dbfs - self.hysteresis_db
        ends = np.empty(num_hops)
        level, is_open, hold, gain = self._level, self._open, self._hold_left_ms, self._gain_db
        for i, power in enumerate(powers.tolist()):
            level = smooth * level + (1 - smooth) * power if self.detector == "rms" else max(power, level * smooth)
            level_dbfs = 10 * math.log10(level) if level > 1e-20 else -200.0
            if level_dbfs >= self.threshold_dbfs:
                is_open, hold = True, self.hold_ms
            elif is_open and level_dbfs < close_dbfs:
                hold -= hop_ms
                if hold <= 0:
                    is_open = False
            target = 0.0 if is_open else self.range_db
            gain = min(gain + attack_step, target) if target > gain else max(gain - release_step, target)
            ends[i] = gain
        starts = np.concatenate([[self._gain_db], ends[:-1]])
        self._level, self._open, self._hold_left_ms, self._gain_db = level, is_open, hold, gain
        self.gain_db_trace.extend(ends.tolist())
        ramp = (np.arange(1, hop + 1) / hop)[None, :]
        gains_db = starts[:, None] + (ends - starts)[:, None] * ramp
        gains = (10.0 ** (gains_db / 20.0)).reshape(-1).astype(np.float32)
        assert self._delay_line is not None
        delayed = np.concatenate([self._delay_line, x], 1)
        self._delay_line = delayed[:, x.shape[1]:]
        source_position = self._origin + self._position - self._delay_line.shape[1]
        out = output_frame(frame, delayed[:, : x.shape[1]] * gains[None, :], self._position,
                           input_position=source_position)
        self._position += x.shape[1]
        return out

    def calibrate(self, noise: np.ndarray, margin_db: float = 10.0) -> float:
        """Set the threshold ``margin_db`` above the RMS level of a noise-only recording; returns it."""
        self.threshold_dbfs = min(0.0, max(rms_dbfs(np.asarray(noise)), -200.0) + margin_db)
        return self.threshold_dbfs
