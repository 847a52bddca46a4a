"""Gain, reframing, channel mixing and network conditions."""

from __future__ import annotations

import numpy as np
import pytest

import vkit
from vkit import filters, sinks, sources
from vkit.errors import ConfigError
from vkit.frames import AudioFrame


def test_gain_reframe_and_channel_mix():
    x = np.stack([np.full(1000, 0.5, np.float32), np.full(1000, -0.1, np.float32)])
    np.testing.assert_allclose(filters.Gain(-6.0206)(x, 8000), x / 2, rtol=1e-4)
    frames = filters.Reframe(20).process(AudioFrame(samples=x, sample_rate_hz=8000))
    assert [f.num_samples for f in frames] == [160] * 6 and frames[1].start_sample == 160
    np.testing.assert_allclose(filters.ChannelMix(num_channels=1)(x, 8000)[0], 0.2, rtol=1e-6)
    np.testing.assert_array_equal(filters.ChannelMix(channels=[1])(x, 8000), x[1:])
    np.testing.assert_allclose(filters.ChannelMix(matrix=[[1, 1], [1, -1]])(x, 8000)[1], 0.6, rtol=1e-6)
    with pytest.raises(ConfigError, match="exactly one of"):
        filters.ChannelMix()
    graph = sources.Tone(num_channels=1) | filters.ChannelMix(matrix=[[1, 1]]) | sinks.Null()
    with pytest.raises(vkit.GraphError, match=r"matrix needs 1 columns"):
        graph.validate()


def test_network_schedule_is_seeded_ordered_and_loses_the_asked_fraction():
    a = filters.NetworkSchedule(delay_ms=50, jitter_ms=10, loss_rate=0.2, seed=7, keep_order=True)
    b = filters.NetworkSchedule(delay_ms=50, jitter_ms=10, loss_rate=0.2, seed=7, keep_order=True)
    sent = [i * 20_000_000 for i in range(5000)]
    first = [a.arrival_ns(t) for t in sent]
    assert first == [b.arrival_ns(t) for t in sent]
    arrived = [(s, t) for s, t in zip(sent, first, strict=True) if t is not None]
    assert abs(1 - len(arrived) / len(sent) - 0.2) < 0.02
    assert all(t >= s + 50_000_000 for s, t in arrived)
    times = [t for _, t in arrived]
    assert times == sorted(times)


def test_network_conditions_in_a_graph_delay_frames_in_session_time():
    mem = sinks.Memory()
    stage = filters.NetworkConditions(delay_ms=80, loss_rate=0.1, seed=1)
    vkit.run(sources.Silence(duration_ms=2000, sample_rate_hz=8000, pace="realtime") | stage | mem, clock="virtual")
    frames = mem.frames["input"]
    assert len(frames) + stage.num_lost == 100 and stage.num_lost > 0
    assert all(f.t_ns == f.start_sample * 125_000 + 20_000_000 + 80_000_000 for f in frames)
