"""Resampler quality and streaming behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import vkit
from vkit import filters
from vkit.errors import AudioInputError, ConfigError
from vkit.frames import AudioFrame


def sweep(rate: int, seconds: float, f_hi: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(rate * seconds)) / rate
    freq = 20 + (f_hi - 20) * t / seconds  # linear sweep: instantaneous frequency
    phase = 2 * np.pi * np.cumsum(freq) / rate
    return (0.5 * np.sin(phase)).astype(np.float32), freq


@pytest.mark.parametrize("rate_in,rate_out", [(48_000, 16_000), (44_100, 24_000), (48_000, 24_000)])
def test_hq_rejects_aliases_by_at_least_90_db_on_a_sine_sweep(rate_in, rate_out):
    x, freq = sweep(rate_in, 4.0, rate_in / 2 * 0.98)
    y = filters.Resample(rate_out)(x, rate_in)
    freq_out = np.interp(np.arange(y.size) * rate_in / rate_out, np.arange(x.size), freq)
    level_in = np.sqrt(np.mean(x**2))
    alias = y[freq_out > 1.1 * rate_out / 2]
    passband = y[(freq_out > 100) & (freq_out < 0.8 * rate_out / 2)]
    margin = int(0.05 * rate_out)  # skip the band edge and the click where the signal stops
    alias_db = 20 * np.log10(np.sqrt(np.mean(alias[margin:-margin] ** 2)) / level_in)
    assert alias_db < -90, f"aliases at {alias_db:.1f} dB"
    assert abs(20 * np.log10(np.sqrt(np.mean(passband**2)) / level_in)) < 0.1


def test_low_latency_preset_is_clean_enough_and_fast_to_answer():
    x, freq = sweep(48_000, 2.0, 23_500)
    stage = filters.Resample(16_000, quality="low_latency")
    stage.configure(vkit.StreamFormat(48_000, 1))
    assert stage.latency_ms < 2.0
    y = stage(x, 48_000)
    freq_out = np.interp(np.arange(y.size) * 3, np.arange(x.size), freq)
    alias_db = 20 * np.log10(np.sqrt(np.mean(y[freq_out > 1.15 * 8000][800:-800] ** 2)) / np.sqrt(np.mean(x**2)))
    assert alias_db < -75
    first = stage.process(AudioFrame.mono(x[:960], 48_000))  # a 20 ms chunk comes straight back out
    assert first is not None and first.num_samples >= 300


def test_hq_latency_is_reported_and_positions_are_on_the_new_rate():
    stage = filters.Resample(16_000)
    stage.configure(vkit.StreamFormat(48_000, 1))
    assert 15 < stage.latency_ms < 40
    out = [stage.process(AudioFrame.mono(np.zeros(960, np.float32), 48_000, start_sample=i * 960, t_ns=i))
           for i in range(10)]
    frames = [f for f in out if f is not None]
    assert [f.sample_rate_hz for f in frames] == [16_000] * len(frames)
    assert frames[1].start_sample == frames[0].end_sample


def test_same_rate_passes_through_and_bad_input_is_named():
    x = np.ones(100, np.float32) * 0.1
    np.testing.assert_array_equal(filters.Resample(16_000)(x, 16_000), x)
    with pytest.raises(AudioInputError, match=r"Resample got NaN .*first at sample 3"):
        filters.Resample(16_000).process(AudioFrame.mono(np.array([0, 0, 0, np.nan], np.float32), 8000))
    with pytest.raises(ConfigError, match=r"\(got 12\)"):
        filters.Resample(12)
    with pytest.raises(ConfigError, match="quality"):
        filters.Resample(16_000, quality="best")  # type: ignore[arg-type]
