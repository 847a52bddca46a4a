"""Shared fixtures: small deterministic signals."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def sine_16k() -> np.ndarray:
    """One second of a 440 Hz sine at 16 kHz, mono float32."""
    t = np.arange(16_000) / 16_000
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
