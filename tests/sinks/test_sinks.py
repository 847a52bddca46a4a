"""Sinks: files, memory, and the modelled speaker's playout."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import vkit
from vkit import sinks, sources
from vkit.data import sample_path
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
    assert speaker.tracker.played_sample(playouts[1].t_ns) == 24_000


def _playouts(session) -> list[tuple[str, int]]:
    return [(p.state, p.t_ns) for p in session.events_of(Playout)]


def test_a_speaker_is_fresh_when_its_graph_runs_again():
    speaker = sinks.VirtualSpeaker(stream="input", prebuffer_ms=60)
    graph = sources.Tone(duration_ms=300, pace="realtime") | speaker
    first = vkit.run(graph, clock="virtual")
    first_tracker = speaker.tracker
    second = vkit.run(graph, clock="virtual")
    assert _playouts(second) == _playouts(first) == [("started", 80_000_000), ("stopped", 380_000_000)]
    assert speaker.tracker.played_sample(380_000_000) == 7200  # the new run has its own tracker
    assert speaker.tracker is not first_tracker


def test_a_player_reused_in_a_new_graph_models_a_new_stream_and_ignores_old_reports():
    player = sinks.Player(prebuffer_ms=80)
    first = vkit.run(sources.Tone(duration_ms=300, pace="realtime", stream="output") | player, clock="virtual")
    player.widget._on_browser_message(player.widget, {"type": "played", "position": 7200, "state": "running",
                                                      "stream_id": player.widget.stream_id}, [])
    second = vkit.run(sources.Tone(duration_ms=500, pace="realtime", stream="output") | player, clock="virtual")
    assert _playouts(first)[0] == _playouts(second)[0] == ("started", 100_000_000)
    assert _playouts(second)[1] == ("stopped", 600_000_000)
    assert player.widget.played_position == 0 and not player.widget.browser_is_playing  # run 1's report is gone
    stale = {"type": "played", "position": 7200, "state": "running", "stream_id": player.widget.stream_id - 1}
    player.widget._on_browser_message(player.widget, stale, [])
    assert player.tracker.played_sample(200_000_000) == 2400  # the model, not the stale report


@pytest.mark.timeout(90)
def test_voice_to_voice_is_measured_on_every_run_of_the_same_graph():
    import soundfile as sf
    import soxr

    from vkit import filters
    from vkit.realtime import Realtime

    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    first_turn = soxr.resample(audio, rate, 24_000).astype(np.float32)[: 24_000 * 4]
    graph = (sources.Array(first_turn, 24_000, pace="realtime") | filters.VAD("silero")
             | Realtime(turn_detection="manual", server={"output_pace": 0}) | sinks.VirtualSpeaker())
    runs = [vkit.run(graph), vkit.run(graph)]
    for session in runs:
        assert len(session.turns) == 1
        turn = session.turns[0]
        assert turn.first_audio_played_ms > turn.first_audio_received_ms
        assert turn.voice_to_voice_ms == pytest.approx(turn.first_audio_played_ms - turn.user_speech_end_ms)


def test_a_run_started_while_the_last_one_plays_out_on_the_same_speaker_measures_both():
    speaker = sinks.VirtualSpeaker(stream="input", prebuffer_ms=60)
    first = (sources.Tone(duration_ms=1500, pace="realtime") | speaker).start()
    import time

    time.sleep(0.5)  # the first run is playing when the second one starts
    second = vkit.run(sources.Tone(duration_ms=300, pace="realtime") | speaker)
    first_session = first.wait(10)
    assert [p.state for p in first_session.events_of(Playout)] == ["started", "stopped"]
    assert [p.state for p in second.events_of(Playout)] == ["started", "stopped"]
    assert first_session.events_of(Playout)[1].sample == 36_000 and second.events_of(Playout)[1].sample == 7200


def test_a_player_viewed_in_the_browser_refuses_the_virtual_clock_until_its_views_close():
    player = sinks.Player()
    graph = sources.Tone(duration_ms=200, pace="realtime", stream="output") | player
    assert vkit.run(graph, clock="virtual").status == "complete"  # headless: the modelled device stands in
    for view in ("a", "b"):  # what player.js sends when a view renders
        player.widget._on_browser_message(player.widget, {"type": "view", "view_id": view, "open": True}, [])
    with pytest.raises(ConfigError, match=r"Player is shown in the browser \(2 view\(s\)\).*virtual clock.*"
                                          r"sinks.VirtualSpeaker\(\).*\(got 'virtual'\)"):
        vkit.run(graph, clock="virtual")
    assert vkit.run(graph).status == "complete"  # the system clock is fine
    for view in ("a", "b"):  # the views go (cell cleared, page closed)
        player.widget._on_browser_message(player.widget, {"type": "view", "view_id": view, "open": False}, [])
    assert vkit.run(graph, clock="virtual").status == "complete"
