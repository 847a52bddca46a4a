"""The one conversion module: exact round trips and stated rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vkit import units


def test_time_conversions_round_as_stated() -> None:
    assert units.ns_to_ms(1_234_567) == 1.235 and units.ms_to_ns(1.2345678) == 1_234_568
    assert units.s_to_ns(0.5) == 500_000_000 and units.ns_to_s(250_000_000) == 0.25
    assert units.ms_to_samples(20, 24_000) == 480 and units.samples_to_ms(480, 24_000) == 20.0
    assert units.ns_to_samples(20_000_000, 16_000) == 320 and units.samples_to_ns(1, 3) == 333_333_333
    assert units.ms_to_samples(0.03125, 16_000) == 0  # 0.5 sample rounds half to even


def test_whole_conversions_round_down_and_fractional_ones_do_not() -> None:
    assert units.ms_to_whole_samples(20, 44_100) == 882 and units.ms_to_whole_samples(0.99, 1_000) == 0
    assert units.ms_to_whole_samples(2.5, 1_000) == 2 and units.ms_to_samples(2.6, 1_000) == 3
    assert units.ms_to_fractional_samples(0.5, 1_000) == 0.5
    assert units.samples_to_whole_ms(479, 24_000) == 19 and units.samples_to_whole_ms(480, 24_000) == 20
    assert units.samples_to_whole_ns(2, 3) == 666_666_666 and units.samples_to_ns(2, 3) == 666_666_667
    assert units.ns_to_whole_samples(20_833_332, 24_000) == 499 and units.ns_to_samples(20_833_332, 24_000) == 500
    assert units.ms_to_s(1500) == 1.5 and units.s_to_ms(0.25) == 250.0
    assert np.array_equal(units.ms_to_s(np.array([1000.0, 250.0])), [1.0, 0.25])
    assert isinstance(units.ms_to_whole_samples(20, 24_000), int) and units.NS_PER_US * 1000 == units.NS_PER_MS


def test_pcm16_full_scale_clips_and_round_trips() -> None:
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 3.0, -3.0], np.float32)
    pcm = units.float_to_pcm16(x)
    assert pcm.dtype == np.dtype("<i2") and pcm.tolist() == [-32768, -16384, 0, 16384, 32767, 32767, -32768]
    back = units.pcm16_bytes_to_float(units.float_to_pcm16_bytes(x[:5]))
    assert back.dtype == np.float32 and np.abs(back - x[:5]).max() <= 1 / 32768
    every = np.arange(-32768, 32768, dtype=np.int16)
    assert np.array_equal(units.float_to_pcm16(units.pcm16_to_float(every)), every)


def test_an_odd_byte_count_is_refused_with_the_count() -> None:
    with pytest.raises(ValueError, match=r"even number of bytes \(got 3\)"):
        units.pcm16_bytes_to_float(b"\x00\x01\x02")


def test_levels() -> None:
    assert units.rms_dbfs(np.zeros(10)) == -math.inf and units.gain_to_db(0) == -math.inf
    assert units.rms_dbfs(np.ones(10)) == 0.0 and math.isclose(units.db_to_gain(-6.0206), 0.5, rel_tol=1e-4)
