"""Fixtures for Realtime tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from vkit.evaluation import read_segments

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def speech_24k() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The labelled three-turn sample at 24 kHz and its (start_ms, end_ms) turns."""
    audio, rate = sf.read(DATA / "two_turns.wav", dtype="float32")
    return soxr.resample(audio, rate, 24_000).astype(np.float32), read_segments(DATA / "two_turns.segments.csv")


