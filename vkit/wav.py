"""PCM16 WAV files as vkit writes them incrementally: read back trusting the file size over the header,
so a recording cut short by a crash (stale header) still reads."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from vkit.errors import RecordingError, got
from vkit.units import pcm16_to_float

__all__ = ["read_wav"]


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """Read a PCM16 WAV written by the recorder, trusting the file size over a stale header."""
    data = path.read_bytes()
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RecordingError(f"not a WAV file {got(str(path))}")
    num_channels, sample_rate_hz = struct.unpack("<HI", data[22:28])
    bits = struct.unpack("<H", data[34:36])[0]
    if num_channels == 0 or sample_rate_hz == 0:
        raise RecordingError(f"WAV header names no channels or no sample rate {got(str(path))}")
    if bits != 16 or data[36:40] != b"data":
        import soundfile

        try:
            samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise RecordingError(f"unreadable WAV ({exc}) {got(str(path))}") from exc
        return rate, samples.T.copy()
    usable = (len(data) - 44) // (2 * num_channels) * (2 * num_channels)
    pcm = np.frombuffer(data, "<i2", count=usable // 2, offset=44)
    return sample_rate_hz, pcm16_to_float(pcm.reshape(-1, num_channels).T)
