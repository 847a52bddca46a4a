"""The same audio, shifted against the model's windows, gives the same turns and the same ends."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vkit import filters
from vkit.data import sample_path
from vkit.evaluation import read_segments

WINDOW_MS = 32  # one Silero window, the unit the check used
SHIFTS = np.linspace(0, 511, 16).astype(int)  # samples at 16 kHz: every phase of a Silero window, and beyond


@pytest.mark.parametrize("model", ["silero", "webrtc", "energy"])
def test_turns_and_ends_do_not_depend_on_where_the_windows_fall(model):
    """The sample (16 kHz, 1 s of background first) is started 0..511 samples later, so the model's windows
    fall at 16 phases. With the default settings. (At ``min_silence_ms=100``, which counted in windows was
    4 Silero windows, a pause inside the first turn that Silero scores as 70-120 ms of silence, depending on
    the phase and on what came before, ends the turn at some phases and not at others: no post-processing
    decides a pause within a window of ``min_silence_ms`` the same way at every phase.)"""
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    truth = read_segments(sample_path("two_turns.segments.csv"))
    runs = []
    for shift in SHIFTS:
        segments = filters.VAD(model)(audio[shift:], rate)
        runs.append([(start + shift * 1000 / rate, end + shift * 1000 / rate) for start, end in segments])
    assert len({len(run) for run in runs}) == 1, [len(run) for run in runs]  # the same turns at every phase
    starts, ends = np.array(runs)[:, :, 0], np.array(runs)[:, :, 1]
    assert np.all(ends.max(0) - ends.min(0) <= WINDOW_MS), ends.max(0) - ends.min(0)
    assert np.all(starts.max(0) - starts.min(0) <= WINDOW_MS), starts.max(0) - starts.min(0)
    labels = np.array(truth)
    if model != "energy":  # the energy model also cuts the first turn where its level dips, at every phase
        assert len(runs[0]) == len(truth)
        assert np.all((starts < labels[:, 1]) & (ends > labels[:, 0]))  # and each is its labelled turn
    assert all(any(s < b and e > a for a, b in labels) for s, e in runs[0])  # none is outside the labelled speech


class _Curve:
    """A model whose probability is a fixed curve of time, sampled at each window's centre: what a graded
    model sees, with the window's phase as the only variable."""

    sample_rates_hz = (16_000,)

    def __init__(self, curve, shift: int) -> None:
        self.curve, self.shift, self.position = curve, shift, 0

    def window_samples(self, sample_rate_hz: int) -> int:
        return 512

    def reset(self) -> None:
        self.position = 0

    def score(self, window: np.ndarray, sample_rate_hz: int) -> float:
        centre_ms = (self.position + 256 - self.shift) / 16
        self.position += 512
        return float(self.curve(centre_ms))


@pytest.mark.parametrize(("gap_ms", "splits"), [(112, True), (88, False)])
def test_min_silence_is_measured_on_positions_not_counted_in_windows(gap_ms, splits):
    """Speech, a dip that stays under the negative threshold for ``gap_ms``, speech again. Counting whole
    windows made ``min_silence_ms=100`` four Silero windows: a 112 ms dip ended the turn at some phases only;
    on positions it does at every phase, and an 88 ms one at none."""
    ramp_ms = 40.0  # probability 1 -> 0 and back over 40 ms; 0.35 is crossed 26 ms into the fall

    def curve(t_ms: float) -> float:
        down, up = 1000.0 - 0.65 * ramp_ms, 1000.0 - 0.65 * ramp_ms + gap_ms + 0.3 * ramp_ms
        fall = np.clip(1 - (t_ms - down) / ramp_ms, 0, 1)  # starts at `down`, crosses 0.35 at 1000 ms
        rise = np.clip((t_ms - (up - 0.35 * ramp_ms)) / ramp_ms, 0, 1)  # back over 0.35 at 1000 + gap_ms
        return max(fall, rise) if t_ms < up + ramp_ms else 1.0

    for shift in range(0, 512, 32):
        vad = filters.VAD("energy", refine_end_ms=0, min_speech_ms=100, min_silence_ms=100, speech_pad_ms=0)
        vad._model = _Curve(curve, shift)  # noqa: SLF001 - the core's decisions on a known curve
        segments = vad(np.zeros(16_000 * 3, np.float32), 16_000)
        assert len(segments) == (2 if splits else 1), (shift, segments)
