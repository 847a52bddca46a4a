"""Unit conversions: the one place where milliseconds, samples and decibels meet."""

from __future__ import annotations

import math

import numpy as np


def ms_to_samples(duration_ms: float, sample_rate_hz: int) -> int:
    """Number of samples in ``duration_ms`` at ``sample_rate_hz`` (rounded to nearest)."""
    return int(round(duration_ms * sample_rate_hz / 1000.0))


def db_to_gain(gain_db: float) -> float:
    """Linear amplitude factor of a relative level in dB."""
    return 10.0 ** (gain_db / 20.0)


def gain_to_db(gain: float) -> float:
    """Relative level in dB of a linear amplitude factor (``-inf`` for 0)."""
    return 20.0 * math.log10(gain) if gain > 0 else -math.inf


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` in dBFS (full scale = 1.0); ``-inf`` for silence."""
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return gain_to_db(rms)
