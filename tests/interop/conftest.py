"""Shared pieces of the interop suite: real third-party Realtime clients against vkit's local server.

Each client module skips when its package is not installed (``pip install -e '.[interop]'``).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from interop_helpers import RATE_HZ

from vkit.data import sample_path
from vkit.evaluation import read_segments
from vkit.units import ms_to_samples


@pytest.fixture(scope="session")
def turns_24k() -> list[np.ndarray]:
    """The three labelled utterances of the demo sample at 24 kHz, each with 1.2 s of silence after it."""
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    audio = soxr.resample(audio, rate, RATE_HZ).astype(np.float32)
    out = []
    for start_ms, end_ms in read_segments(sample_path("two_turns.segments.csv")):
        start, end = ms_to_samples(start_ms - 100, RATE_HZ), ms_to_samples(end_ms, RATE_HZ)
        out.append(np.concatenate([audio[max(start, 0) : end], np.zeros(ms_to_samples(1200, RATE_HZ), np.float32)]))
    return out
