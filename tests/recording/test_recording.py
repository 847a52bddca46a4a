"""Recordings: written while running, aligned on the clock, crash-safe, secret-free, replayable."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vkit
from vkit import filters, sinks, sources
from vkit.data import sample_path
from vkit.errors import AudioInputError, RecordingError
from vkit.frames import AudioFrame, Marker
from vkit.recording import Recorder, load_session, scrub
from vkit.recording.recorder import _Track

ROOT = Path(__file__).resolve().parents[2]


class ClickDetector:
    """Marks the capture time of every sample above 0.9 (a click)."""

    def process(self, frame: AudioFrame):
        hits = np.flatnonzero(np.abs(frame.samples[0]) > 0.9)
        if not hits.size:
            return frame
        t_ns = frame.t_ns + int(hits[0]) * 1_000_000_000 // frame.sample_rate_hz
        return [frame, Marker(name="click", t_ns=t_ns, data={"sample": frame.start_sample + int(hits[0])})]


def test_a_click_lands_at_the_same_clock_time_in_the_track_and_in_the_events(tmp_path):
    audio = np.zeros(16_000 * 3, np.float32)
    audio[16_000 + 1234] = 1.0
    graph = sources.Silence(duration_ms=500, sample_rate_hz=16_000) | sinks.Null()
    vkit.run(graph)  # warm-up: imports, so the real run starts promptly
    session = vkit.run(vkit.chain(sources.Array(audio, 16_000, pace="realtime"), ClickDetector(), sinks.Null()),
                       record=tmp_path / "rec", clock="virtual")
    loaded = load_session(tmp_path / "rec")
    rate, track = loaded.track("input")
    click_track_ms = np.flatnonzero(np.abs(track[0]) > 0.9)[0] * 1000 / rate
    click_event = next(e for e in loaded.events if e["kind"] == "Marker" and e["payload"]["name"] == "click")
    assert click_event["t_ms"] == pytest.approx(click_track_ms, abs=1000 / rate)
    assert click_event["t_ms"] == pytest.approx((16_000 + 1234) / 16, abs=0.1)
    assert loaded.status == "complete" and session.recording_path == str(tmp_path / "rec")


def test_round_trip_of_events_tracks_turns_and_frames(tmp_path):
    graph = (sources.File(sample_path("two_turns.wav"), pace="realtime") | filters.VAD("silero") | sinks.Null())
    session = vkit.run(graph, record=tmp_path / "rec", clock="virtual")
    loaded = load_session(tmp_path / "rec")
    assert len(loaded.events) == len(session.events)
    assert np.allclose(loaded.speech_segments(), session.speech_segments(), atol=0.01)
    assert len(loaded.turns) == len(session.turns) == 3
    assert loaded.turns[0]["user_speech_end_ms"] == pytest.approx(session.turns[0].user_speech_end_ms)
    rate, track = loaded.track("input")
    assert rate == 16_000 and abs(track.shape[1] - 16_000 * 14.185) < 400
    manifest = json.loads((tmp_path / "rec/manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["status"] == "complete"
    assert manifest["graph"]["nodes"][1]["params"]["model"] == "silero"
    assert manifest["tracks"][0]["sample_rate_hz"] == 16_000
    frame = loaded.events_frame()
    assert isinstance(frame, pd.DataFrame) and {"t_ms", "stage", "kind"} <= set(frame.columns)
    assert list(loaded.turns_frame()["turn"]) == [1.0, 2.0, 3.0]
    written = loaded.to_parquet(tmp_path / "parquet")
    assert pd.read_parquet(written[1]).shape[0] == 3


def test_secrets_never_reach_a_recording(tmp_path):
    recorder = Recorder(tmp_path / "rec", manifest={"endpoint": {"url": "wss://x", "api_key": "sk-live-abcdef123456",
                                                                 "headers": "Bearer sk-live-abcdef123456"}})
    recorder.write(Marker(name="note", t_ns=1, data={"Authorization": "Bearer abc", "text": "key sk-proj-ABCDEFGH12"}))
    recorder.close()
    blob = b"".join(p.read_bytes() for p in (tmp_path / "rec").rglob("*") if p.is_file())
    assert b"sk-live" not in blob and b"sk-proj" not in blob and b"Bearer abc" not in blob
    assert scrub({"token": "x", "nested": ["Bearer y"]}) == {"token": "[redacted]", "nested": ["[redacted]"]}


def test_a_full_disk_stops_the_recording_keeps_it_readable_and_says_so(tmp_path, monkeypatch):
    written = {"n": 0}
    original = _Track._append

    def failing_append(self, samples):
        written["n"] += 1
        if written["n"] > 20:
            raise OSError(28, "No space left on device")
        original(self, samples)

    monkeypatch.setattr(_Track, "_append", failing_append)
    memory = sinks.Memory()
    with pytest.raises(RecordingError) as info:  # reported at the first failed write, not when the run ends
        vkit.run(sources.Tone(duration_ms=1000, sample_rate_hz=16_000, pace="realtime") | memory,
                 record=tmp_path / "rec", clock="virtual")
    assert re.search(r"No space left on device \(got '.*rec'\)", str(info.value))
    session = info.value.session  # the run stopped at once, and what it measured is still there
    assert session.status == "error" and 0 < memory.audio().shape[1] < 16_000
    assert written["n"] == 21  # nothing more was attempted after the first failure
    loaded = load_session(tmp_path / "rec")
    assert loaded.status == "incomplete" and "No space left" in loaded.manifest["error"]
    assert 0 < loaded.track("input")[1].shape[1] < 16_000  # what was written before the disk filled
    assert not (tmp_path / "rec" / "manifest.json.tmp").exists()


def test_a_killed_demo_and_a_completed_one_both_load(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "vkit", "demo", "--record", str(killed), "--responder", "echo"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (killed / "tracks/output.wav").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    partial = load_session(killed)
    assert partial.status == "incomplete"
    assert any(e["kind"] == "SpeechStopped" for e in partial.events)
    rate, track = partial.track("input")
    assert 2.0 < track.shape[1] / rate < 14.0
    assert partial.track("output")[1].shape[1] > 0
    assert len(partial.turns) >= 1  # recomputed from the events: no turns.csv was written
    done = tmp_path / "done"
    subprocess.run([sys.executable, "-m", "vkit", "demo", "--record", str(done), "--responder", "echo", "--fast"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    complete = load_session(done)
    assert complete.status == "complete" and len(complete.turns) == 3
    summary = subprocess.run([sys.executable, "-m", "vkit", "inspect", str(done)], capture_output=True, text=True,
                             check=True).stdout
    assert "status     complete" in summary and "voice-to-voice" in summary


def test_replay_through_two_vads_gives_two_comparable_turn_tables(tmp_path):
    vkit.run(sources.File(sample_path("two_turns.wav"), pace="realtime") | sinks.Null(), record=tmp_path / "rec",
             clock="virtual")
    tables = {}
    for name, vad in (("quick", filters.VAD("silero", min_silence_ms=100)),
                      ("patient", filters.VAD("silero", min_silence_ms=400))):
        graph = sources.Replay(tmp_path / "rec", pace="realtime") | vad | sinks.Null()
        tables[name] = vkit.run(graph, clock="virtual").turns.to_frame().assign(variant=name)
    both = pd.concat(tables.values(), ignore_index=True)
    assert list(both["variant"]) == ["quick"] * 3 + ["patient"] * 3
    delays = both.groupby("variant")["end_of_turn_delay_ms"].median()
    assert delays["patient"] - delays["quick"] == pytest.approx(300, abs=40)


def test_missing_or_garbled_recordings_are_named(tmp_path):
    with pytest.raises(RecordingError, match=r"no manifest.json \(got '.*nothing'\)"):
        load_session(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/manifest.json").write_text("{oops")
    with pytest.raises(RecordingError, match="garbled"):
        load_session(tmp_path / "bad")


def test_an_existing_recording_is_refused_unless_overwrite(tmp_path):
    first = Recorder(tmp_path / "rec")
    first.close()
    with pytest.raises(RecordingError, match=r"already holds a recording; pass overwrite=True"):
        Recorder(tmp_path / "rec")
    (tmp_path / "rec" / "tracks" / "old.wav").write_bytes(b"RIFF")
    second = Recorder(tmp_path / "rec", overwrite=True)
    second.close("stopped", reason="Ctrl-C")
    loaded = load_session(tmp_path / "rec")
    assert loaded.status == "stopped" and loaded.manifest["reason"] == "Ctrl-C" and not loaded.tracks


@pytest.mark.parametrize("status", ["complete", "stopped", "timeout", "error", "incomplete"])
def test_close_writes_the_status_and_the_reason(tmp_path, status):
    recorder = Recorder(tmp_path / status)
    recorder.close(status, reason=f"why {status}")
    manifest = load_session(tmp_path / status).manifest
    assert manifest["status"] == status and manifest["reason"] == f"why {status}"
    with pytest.raises(RecordingError, match="status must be one of"):
        Recorder(tmp_path / "x").close("done")


def test_a_track_cut_before_its_header_does_not_block_the_others(tmp_path):
    recorder = Recorder(tmp_path / "rec")
    recorder.write(AudioFrame(samples=np.zeros((1, 480), np.float32), sample_rate_hz=24_000, t_ns=0))
    recorder.close()
    (tmp_path / "rec" / "tracks" / "output.wav").write_bytes(b"RIF")  # a SIGKILL in the first write
    loaded = load_session(tmp_path / "rec")
    assert list(loaded.tracks) == ["input"] and "not a WAV file" in loaded.bad_tracks["output"]


def test_deep_and_huge_payloads_are_recorded_cut_and_marked(tmp_path):
    deep: list = []
    node = deep
    for _ in range(5_000):
        node.append([])
        node = node[0]
    recorder = Recorder(tmp_path / "rec")
    recorder.write(Marker(name="deep", data={"deep": deep, "blob": "a" * 10_000_000}, t_ns=0))
    recorder.close()
    line = (tmp_path / "rec" / "events.jsonl").read_text()
    assert len(line) < 100_000 and "nested deeper than 64 levels" in line
    assert "[truncated: 9934464 more chars]" in line


def test_a_nan_frame_is_never_written(tmp_path):
    recorder = Recorder(tmp_path / "rec")
    recorder.write(AudioFrame(samples=np.zeros((1, 480), np.float32), sample_rate_hz=24_000, t_ns=0))
    bad = np.zeros((1, 480), np.float32)
    bad[0, 7] = np.nan
    with pytest.raises(AudioInputError, match="NaN"):
        recorder.write(AudioFrame(samples=bad, sample_rate_hz=24_000, start_sample=480, t_ns=20_000_000))
    recorder.close()
    rate, samples = load_session(tmp_path / "rec").track("input")
    assert samples.shape[1] == 480
