"""Noise gate timing against envelopes computed by hand from its parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vkit import filters
from vkit.errors import AudioInputError, ConfigError
from vkit.frames import AudioFrame

RATE = 16_000


def burst() -> np.ndarray:
    """Silence, a 0.1-amplitude 1 kHz tone from 100 ms to 300 ms, silence to 600 ms."""
    x = np.zeros(int(0.6 * RATE), np.float32)
    t = np.arange(int(0.2 * RATE)) / RATE
    x[int(0.1 * RATE) : int(0.3 * RATE)] = 0.1 * np.sin(2 * np.pi * 1000 * t)
    return x


def test_open_attack_hold_release_follow_the_parameters():
    gate = filters.NoiseGate(-40, hysteresis_db=6, attack_ms=5, hold_ms=50, release_ms=20, range_db=-60)
    y = gate(burst(), RATE)
    trace = np.array(gate.gain_db_trace)
    assert trace.shape == (600,)
    a = math.exp(-1 / 10)  # the RMS detector's one-pole factor per 1 ms hop
    power = 0.1**2 / 2
    # opens in the first hop whose smoothed power reaches -40 dBFS
    open_hop = 100 + math.ceil(math.log(1 - 1e-4 / power) / math.log(a)) - 1
    assert trace[open_hop - 1] == -60
    np.testing.assert_allclose(trace[open_hop : open_hop + 5], [-48, -36, -24, -12, 0], atol=1e-9)
    # after the tone, power decays until it is under the close threshold (-46 dBFS), then 50 ms of hold
    below_hop = 300 + math.ceil(math.log(10 ** (-4.6) / power) / math.log(a)) - 1
    close_hop = below_hop + 49
    assert np.all(trace[open_hop + 4 : close_hop] == 0)
    np.testing.assert_allclose(trace[close_hop : close_hop + 20], -3 * np.arange(1, 21), atol=1e-9)
    assert np.all(trace[close_hop + 20 :] == -60)
    # the audio: untouched while open, attenuated by 60 dB while closed
    held = slice((open_hop + 5) * 16, 300 * 16)
    np.testing.assert_allclose(y[held], burst()[held], rtol=1e-6)


def test_lookahead_delays_audio_so_the_onset_is_not_cut():
    x = burst()
    plain = filters.NoiseGate(-40, attack_ms=5)(x, RATE)
    ahead = filters.NoiseGate(-40, attack_ms=5, lookahead_ms=5)(x, RATE)
    assert ahead.shape == (x.size + 80,) and filters.NoiseGate(-40, lookahead_ms=5).latency_ms == 5
    np.testing.assert_allclose(ahead[1680:1760], x[1600:1680], rtol=1e-6)  # the first 5 ms of the tone, intact
    assert np.sqrt(np.mean(plain[1600:1680] ** 2)) < 0.6 * np.sqrt(np.mean(x[1600:1680] ** 2))


def test_steady_noise_under_the_threshold_is_attenuated_by_the_range():
    noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 10 ** (-50 / 20)
    y = filters.NoiseGate(-40, range_db=-40)(noise, RATE)
    ratio_db = 20 * np.log10(np.std(y[RATE // 2 :]) / np.std(noise[RATE // 2 :]))
    assert abs(ratio_db + 40) < 0.1


def test_calibrate_sets_the_threshold_above_the_noise_floor():
    gate = filters.NoiseGate()
    noise = np.full(1000, 0.01, np.float32)
    assert gate.calibrate(noise, margin_db=10) == pytest.approx(-30.0)


def test_bad_parameters_and_input_are_named():
    with pytest.raises(ConfigError, match=r"threshold_dbfs must be in \[-120, 0\] \(got 3\)"):
        filters.NoiseGate(3)
    with pytest.raises(ConfigError, match=r"attack_ms must be >= 0 \(got -1\)"):
        filters.NoiseGate(attack_ms=-1)
    with pytest.raises(AudioInputError, match="NoiseGate got NaN"):
        filters.NoiseGate().process(AudioFrame.mono(np.full(10, np.inf, np.float32), RATE))


@pytest.mark.parametrize("detector", ["rms", "peak"])
def test_output_and_gain_trace_do_not_depend_on_the_chunk_size(detector):
    """Speech-like bursts with a lookahead, at 24 kHz: 1, 7, 480 and 4801-sample chunks give the
    one-shot output and trace bit for bit (partial hops carried, transitions inside a chunk)."""
    rate = 24_000
    rng = np.random.default_rng(1)
    envelope = np.repeat(rng.choice([0.0005, 0.003, 0.2], size=40, p=[0.5, 0.2, 0.3]), rate // 20)  # 50 ms steps
    x = (envelope * rng.standard_normal(envelope.size)).astype(np.float32)

    def gate() -> filters.NoiseGate:
        return filters.NoiseGate(-35, hysteresis_db=6, attack_ms=3, hold_ms=25, release_ms=40, range_db=-50,
                                 lookahead_ms=4, detector=detector)

    reference = gate()
    whole = reference(x, rate)
    trace = np.array(reference.gain_db_trace)
    num_opened = np.sum((trace[1:] == 0) & (trace[:-1] < 0))
    num_closed = np.sum((trace[1:] == -50) & (trace[:-1] > -50))
    assert num_opened >= 3 and num_closed >= 3  # ramps and hold periods inside chunks and across their edges
    for chunk in (1, 7, 480, 4801):
        chunked = gate()
        out = [chunked.process(AudioFrame.mono(x[i : i + chunk], rate, start_sample=i)) for i in range(0, x.size, chunk)]
        audio = np.concatenate([f.samples[0] for f in [*out, *chunked.flush()] if f is not None])
        np.testing.assert_array_equal(audio, whole, err_msg=f"chunk={chunk}")
        np.testing.assert_array_equal(np.array(chunked.gain_db_trace), trace, err_msg=f"chunk={chunk}")


def test_nan_in_a_partial_hop_is_refused_when_it_is_gated():
    gate = filters.NoiseGate()
    x = np.zeros(330, np.float32)
    x[325] = np.nan  # in the partial hop this call carries over
    gate.process(AudioFrame.mono(x, RATE))
    with pytest.raises(AudioInputError, match="first at sample 325"):
        gate.process(AudioFrame.mono(np.zeros(320, np.float32), RATE, start_sample=330))
