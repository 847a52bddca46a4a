"""Shared pieces of the interop suite: real third-party Realtime clients against vkit's local server.

Each client module skips when its package is not installed (``pip install -e '.[interop]'``). Features
the local server does not have yet are ``xfail(strict=True)`` marks naming the server feature, so a fixed
server turns them into failures to unmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from interop_helpers import RATE_HZ

from vkit.evaluation import read_segments
from vkit.units import ms_to_samples

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def turns_24k() -> list[np.ndarray]:
    """The three labelled utterances of data/two_turns.wav at 24 kHz, each with 1.2 s of silence after it."""
    audio, rate = sf.read(DATA / "two_turns.wav", dtype="float32")
    audio = soxr.resample(audio, rate, RATE_HZ).astype(np.float32)
    out = []
    for start_ms, end_ms in read_segments(DATA / "two_turns.segments.csv"):
        start, end = ms_to_samples(start_ms - 100, RATE_HZ), ms_to_samples(end_ms, RATE_HZ)
        out.append(np.concatenate([audio[max(start, 0) : end], np.zeros(ms_to_samples(1200, RATE_HZ), np.float32)]))
    return out
