"""Sinks: files, memory, and the modelled speaker's playout."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import vkit
from vkit import sinks, sources
from vkit.errors import ConfigError, RecordingError, StageError
from vkit.frames import AudioFrame, Playout
from vkit.playout import PlayoutModel


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_wav_round_trip_fills_gaps_with_silence(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    sink = sinks.Wav(path)
    ones = np.full((1, 100), 0.5, np.float32)
    sink.process(AudioFrame(samples=ones, sample_rate_hz=8000, start_sample=1000))
    sink.process(AudioFrame(samples=ones, sample_rate_hz=8000, start_sample=1200))
    sink.process(AudioFrame(samples=ones, sample_rate_hz=8000, start_sample=1250))  # overlaps: first copy wins
    sink.close()
    data, rate = sf.read(path)
    assert rate == 8000 and data.shape == (350,)
    np.testing.assert_allclose(data[:100], 0.5, atol=1e-4)
    assert not data[100:200].any()
    np.testing.assert_allclose(data[200:], 0.5, atol=1e-4)


def test_wav_writes_one_stream_and_counts_the_rest(tmp_path):
    sink = sinks.Wav(tmp_path / "o.wav", stream="output")
    sink.process(AudioFrame(samples=np.zeros((1, 10), np.float32), sample_rate_hz=8000, stream="input"))
    assert sink.num_ignored == 1


def test_wav_refuses_unknown_suffix_and_unwritable_paths(tmp_path):
    with pytest.raises(ConfigError, match=r"\.wav or \.flac files \(got '.*x.mp4'\)"):
        sinks.Wav(tmp_path / "x.mp4")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StageError) as info:
        vkit.run(sources.Silence(duration_ms=100) | sinks.Wav(blocker / "sub" / "o.wav"))
    assert isinstance(info.value.__cause__, RecordingError) and "o.wav" in str(info.value)


def test_memory_assembles_streams_and_asks_which_one():
    mem = sinks.Memory()
    vkit.run(vkit.merge(sources.Silence(stream="a"), sources.Tone(stream="b")) | mem)
    assert mem.audio("b").shape == (1, 24_000)
    with pytest.raises(ConfigError, match="several streams"):
        mem.audio()


def test_playout_model_prebuffers_underruns_and_flushes():
    model = PlayoutModel(sample_rate_hz=1000, prebuffer_ms=50)
    assert model.add(0, 100, now_ns=0) == 50_000_000          # sound starts after the prebuffer
    assert model.played_sample(40_000_000) == 0
    assert model.played_sample(100_000_000) == 50
    assert model.add(100, 100, now_ns=100_000_000) is None      # still playing: no restart
    assert model.played_sample(400_000_000) == 200               # ran dry at 250 ms
    assert model.add(200, 100, now_ns=400_000_000) == 450_000_000
    assert model.num_underruns == 1
    assert model.flush(now_ns=470_000_000) == 220
    assert model.played_sample(600_000_000) == 220


def test_virtual_speaker_announces_when_sound_really_starts_and_stops():
    speaker = sinks.VirtualSpeaker(stream="input", prebuffer_ms=60)
    session = vkit.run(sources.Tone(duration_ms=1000, pace="realtime") | speaker, clock="virtual")
    playouts = session.events_of(Playout)
    assert [p.state for p in playouts] == ["started", "stopped"]
    assert playouts[0].t_ns == 20_000_000 + 60_000_000   # first frame complete at 20 ms, then the prebuffer
    assert playouts[1].sample == 24_000
    assert speaker.model.played_sample(playouts[1].t_ns) == 24_000
