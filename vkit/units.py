"""Unit conversions: the one place where nanoseconds, milliseconds, samples, PCM16 and decibels meet.

Every conversion in vkit goes through here, so they all round the same way:
- times on the session clock are integer nanoseconds; milliseconds are floats rounded to the
  microsecond (3 decimals) when they are shown or tabled (``ns_to_ms``);
- sample counts are integers rounded to the nearest sample (``ms_to_samples``, ``ns_to_samples``);
- PCM16 is little-endian ``int16`` with full scale 32768 (``-1.0 -> -32768``, ``+1.0`` clips to 32767).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "NS_PER_US", "NS_PER_MS", "NS_PER_S",
    "ns_to_ms", "ms_to_ns", "s_to_ns", "ns_to_s", "ms_to_s", "s_to_ms",
    "ms_to_samples", "ms_to_whole_samples", "ms_to_fractional_samples", "samples_to_ms", "samples_to_whole_ms",
    "ns_to_samples", "ns_to_whole_samples", "samples_to_ns", "samples_to_whole_ns",
    "float_to_pcm16", "pcm16_to_float", "float_to_pcm16_bytes", "pcm16_bytes_to_float",
    "db_to_gain", "gain_to_db", "rms_dbfs",
]

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
_PCM16_SCALE = 32768.0
_PCM16_MAX = 32767.0 / 32768.0


# -- time ----------------------------------------------------------------------------------------


def ns_to_ms(t_ns: int | float) -> float:
    """Milliseconds, rounded to the microsecond (how every table and recording shows a time)."""
    return round(t_ns / NS_PER_MS, 3)


def ms_to_ns(t_ms: float) -> int:
    """Integer nanoseconds of ``t_ms`` (rounded to the nearest)."""
    return int(round(t_ms * NS_PER_MS))


def s_to_ns(t_s: float) -> int:
    """Integer nanoseconds of ``t_s`` seconds (rounded to the nearest)."""
    return int(round(t_s * NS_PER_S))


def ns_to_s(t_ns: int | float) -> float:
    """Seconds (unrounded)."""
    return t_ns / NS_PER_S


def ms_to_s(t_ms: float) -> float:
    """Seconds of ``t_ms`` milliseconds (unrounded; arrays work too)."""
    return t_ms / 1000.0


def s_to_ms(t_s: float) -> float:
    """Milliseconds of ``t_s`` seconds (unrounded; arrays work too)."""
    return t_s * 1000.0


def ms_to_samples(duration_ms: float, sample_rate_hz: int) -> int:
    """Number of samples in ``duration_ms`` at ``sample_rate_hz`` (rounded to nearest)."""
    return int(round(duration_ms * sample_rate_hz / 1000.0))


def ms_to_whole_samples(duration_ms: float, sample_rate_hz: int) -> int:
    """Whole samples that fit in ``duration_ms`` at ``sample_rate_hz`` (rounded down: a block or a limit)."""
    return int(duration_ms * sample_rate_hz // 1000)


def ms_to_fractional_samples(duration_ms: float, sample_rate_hz: int) -> float:
    """Samples in ``duration_ms`` at ``sample_rate_hz`` (unrounded: a bound compared with a sample index)."""
    return duration_ms * sample_rate_hz / 1000.0


def samples_to_ms(num_samples: int | float, sample_rate_hz: int) -> float:
    """Duration of ``num_samples`` in milliseconds (unrounded: a media position, not a table value)."""
    return num_samples * 1000.0 / sample_rate_hz


def samples_to_whole_ms(num_samples: int, sample_rate_hz: int) -> int:
    """Whole milliseconds of ``num_samples`` (rounded down: how the wire protocols count played audio)."""
    return num_samples * 1000 // sample_rate_hz


def ns_to_samples(duration_ns: int | float, sample_rate_hz: int) -> int:
    """Number of samples in ``duration_ns`` at ``sample_rate_hz`` (rounded to nearest)."""
    return int(round(duration_ns * sample_rate_hz / NS_PER_S))


def ns_to_whole_samples(duration_ns: int, sample_rate_hz: int) -> int:
    """Whole samples that fit in ``duration_ns`` (rounded down: how much has played, or been captured)."""
    return duration_ns * sample_rate_hz // NS_PER_S


def samples_to_ns(num_samples: int | float, sample_rate_hz: int) -> int:
    """Duration of ``num_samples`` in integer nanoseconds (rounded to nearest)."""
    return int(round(num_samples * NS_PER_S / sample_rate_hz))


def samples_to_whole_ns(num_samples: int, sample_rate_hz: int) -> int:
    """Nanoseconds of ``num_samples`` (rounded down: a sample's time on the clock, exact in integers)."""
    return num_samples * NS_PER_S // sample_rate_hz


# -- PCM16 -----------------------------------------------------------------------------------------


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to little-endian int16 (clipped; rounded to nearest)."""
    return np.rint(np.clip(samples, -1.0, _PCM16_MAX) * _PCM16_SCALE).astype("<i2")


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 samples to float32 in [-1, 1)."""
    return np.asarray(pcm).astype(np.float32) / np.float32(_PCM16_SCALE)


def float_to_pcm16_bytes(samples: np.ndarray) -> bytes:
    """Float samples to the bytes of little-endian PCM16 (interleave channels before calling)."""
    return float_to_pcm16(samples).tobytes()


def pcm16_bytes_to_float(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Bytes of little-endian PCM16 to float32 (an odd trailing byte is a ValueError)."""
    if len(data) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes (got {len(data)})")
    return pcm16_to_float(np.frombuffer(data, "<i2"))


# -- level -----------------------------------------------------------------------------------------


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
