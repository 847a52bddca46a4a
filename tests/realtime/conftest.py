"""Fixtures for Realtime tests."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from vkit.data import sample_path
from vkit.evaluation import read_segments


@pytest.fixture(scope="session")
def speech_24k() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The labelled three-turn sample at 24 kHz and its (start_ms, end_ms) turns."""
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    return soxr.resample(audio, rate, 24_000).astype(np.float32), read_segments(sample_path("two_turns.segments.csv"))


