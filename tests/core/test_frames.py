"""The data model: frames validated once, exact positions, events as plain data."""

from __future__ import annotations

import numpy as np
import pytest

from vkit.errors import AudioInputError
from vkit.frames import AudioFrame, Marker, SpeechStopped


def test_a_frame_is_float32_two_dimensional_with_exact_positions() -> None:
    frame = AudioFrame.mono(np.arange(480, dtype=np.float64) / 480, 24_000, start_sample=2_400)
    assert frame.samples.dtype == np.float32 and frame.samples.shape == (1, 480)
    assert (frame.start_ms, frame.duration_ms, frame.end_ms, frame.end_sample) == (100.0, 20.0, 120.0, 2_880)
    moved = frame.replace(stream="output")
    assert moved.stream == "output" and moved.samples is frame.samples and frame.stream == "input"


@pytest.mark.parametrize(("samples", "rate", "message"), [
    (np.zeros(10, np.float32), 16_000, r"2-D array \(num_channels, num_samples\) \(got \(10,\)\)"),
    (np.zeros((1, 10), np.float32), 0, r"sample_rate_hz must be positive \(got 0\)"),
])
def test_a_bad_frame_names_the_problem_and_the_value(samples: np.ndarray, rate: int, message: str) -> None:
    with pytest.raises(AudioInputError, match=message):
        AudioFrame(samples=samples, sample_rate_hz=rate)


def test_events_carry_their_own_fields_as_data() -> None:
    stopped = SpeechStopped(sample=16_000, sample_rate_hz=16_000, speech_end_sample=15_000, t_ns=5)
    assert stopped.kind == "SpeechStopped" and stopped.ms == 1000.0
    assert stopped.payload() == {"sample": 16_000, "sample_rate_hz": 16_000, "sample_t_ns": 0,
                                 "speech_end_sample": 15_000, "speech_end_t_ns": 0, "stream": "input"}
    assert Marker(name="x").t_ns == -1 and Marker(name="x").stage == ""  # unset until the runtime stamps it
