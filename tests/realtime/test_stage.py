"""The Realtime stage against the real local server over 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

import vkit
from vkit import filters, sinks, sources
from vkit.errors import ConnectionLost, StageError
from vkit.frames import Marker, Playout, ProtocolEvent
from vkit.latency import compute_turns
from vkit.realtime import Realtime
from vkit.realtime.server import LocalServer

pytestmark = pytest.mark.timeout(90)


def first_turn(speech_24k, seconds: float = 5.0) -> np.ndarray:
    audio, _ = speech_24k
    return audio[: int(24_000 * seconds)]


def received(session, wire_type: str) -> list[ProtocolEvent]:
    return [e for e in session.events_of(ProtocolEvent) if e.direction == "received" and e.type == wire_type]


def sent(session, wire_type: str) -> list[ProtocolEvent]:
    return [e for e in session.events_of(ProtocolEvent) if e.direction == "sent" and e.type == wire_type]


def test_server_vad_turn_streams_audio_out_as_frames(speech_24k):
    memory = sinks.Memory()
    stage = Realtime(server={"output_pace": 0, "response_delay_ms": 50})
    session = vkit.run(sources.Array(first_turn(speech_24k), 24_000, pace="realtime") | stage | memory, clock="virtual")
    assert len(received(session, "input_audio_buffer.speech_stopped")) == 1
    done = received(session, "response.done")
    assert len(done) == 1 and done[0].event.response["status"] == "completed"
    output = memory.audio("output")
    deltas = received(session, "response.output_audio.delta")
    assert output.shape[1] == sum(d.event.extra["num_samples"] for d in deltas) > 24_000
    appends = sent(session, "input_audio_buffer.append")
    assert all(a.event.audio is None and a.event.extra["num_samples"] == 960 for a in appends[:-1])  # 40 ms chunks
    frames = memory.frames["output"]
    assert frames[0].sample_rate_hz == 24_000 and frames[1].start_sample == frames[0].end_sample


def test_manual_turns_are_driven_by_vkits_vad(speech_24k):
    graph = (sources.Array(first_turn(speech_24k), 24_000, pace="realtime") | filters.VAD("silero")
             | Realtime(turn_detection="manual", server={"output_pace": 0}) | sinks.VirtualSpeaker())
    session = vkit.run(graph, clock="virtual")
    assert not received(session, "input_audio_buffer.speech_stopped")  # the server's VAD is off
    commits, creates = sent(session, "input_audio_buffer.commit"), sent(session, "response.create")
    assert len(commits) == len(creates) == 1
    stopped = session.events_of(vkit.SpeechStopped)[0]
    assert 0 <= commits[0].t_ns - stopped.t_ns < 50e6
    turn = session.turns[0]
    assert turn.commit_sent_ms is not None and turn.first_audio_played_ms > turn.first_audio_received_ms
    assert session.turns.rows() == compute_turns(session.events).rows()  # the live table skips nothing it needs
    assert turn.voice_to_voice_ms == pytest.approx(turn.first_audio_played_ms - turn.user_speech_end_ms)


def test_barge_in_cancels_and_truncates_at_the_position_played(speech_24k):
    reply = np.full(24_000 * 4, 0.05, np.float32)  # a 4 s answer, longer than the pause before turn two
    graph = (sources.Array(first_turn(speech_24k, 7.5), 24_000, pace="realtime") | filters.VAD("silero")
             | Realtime(turn_detection="manual", server={"responder": "scripted", "replies": [reply],
                                                          "output_pace": 4.0})
             | sinks.VirtualSpeaker(prebuffer_ms=60))
    session = vkit.run(graph, clock="virtual")
    barge = [e for e in session.events_of(Marker) if e.name == "barge_in"]
    assert len(barge) == 1
    truncate = sent(session, "conversation.item.truncate")[0].event
    truncated = received(session, "conversation.item.truncated")[0].event
    started = next(p for p in session.events_of(Playout) if p.state == "started")
    flushed = next(p for p in session.events_of(Playout) if p.state == "flushed")
    heard_ms = (barge[0].t_ns - started.t_ns) / 1e6
    assert truncate.audio_end_ms == truncated.audio_end_ms == barge[0].data["audio_end_ms"]
    assert abs(truncate.audio_end_ms - heard_ms) <= 25
    assert 0 < truncate.audio_end_ms < 4000
    assert abs(flushed.sample - started.sample - truncate.audio_end_ms * 24) <= 24 * 25
    # the answer was cancelled by the client, or had finished arriving before the barge-in
    assert sent(session, "response.cancel") or received(session, "response.done")[0].event.response["status"] == "completed"
    assert session.turns.rows() == compute_turns(session.events).rows() and session.turns[0].interrupted


def test_reconnect_after_the_server_drops_the_socket():
    async def main(reconnect: bool):
        async with LocalServer(output_pace=0) as server:
            async def drop_after(delay_s: float) -> None:
                await asyncio.sleep(delay_s)
                for connection in list(server.connections):
                    await connection.websocket.close(1011, "simulated crash")

            dropper = asyncio.ensure_future(drop_after(0.8))
            graph = (sources.Silence(duration_ms=2500, pace="realtime")
                     | Realtime(server.url, reconnect=reconnect, api_key="sk-test-secret-1234567890"))
            try:
                return await vkit.arun(graph, record=Path(tmp) / f"rec-{reconnect}")
            finally:
                await dropper

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        session = asyncio.run(main(True))
        markers = [e for e in session.events_of(Marker) if e.name == "reconnect"]
        assert len(markers) == 1 and markers[0].data["code"] == 1011
        assert len(received(session, "session.created")) == 2
        assert len(sent(session, "session.update")) == 2
        with pytest.raises(StageError) as info:
            asyncio.run(main(False))
        assert isinstance(info.value.__cause__, ConnectionLost)
        assert "code 1011" in str(info.value) and "127.0.0.1" in str(info.value)
        for path in Path(tmp).rglob("*"):
            if path.is_file():
                assert b"sk-test-secret" not in path.read_bytes(), path
    stage = Realtime("ws://127.0.0.1:1/v1/realtime", api_key="sk-test-secret-1234567890")
    assert "sk-test" not in repr(stage) + repr(vkit.chain(sources.Silence(), stage).describe())


def test_an_unreachable_endpoint_fails_clearly():
    with pytest.raises(StageError) as info:
        vkit.run(sources.Silence(duration_ms=100) | Realtime("ws://127.0.0.1:1/v1/realtime", open_timeout_s=2))
    assert isinstance(info.value.__cause__, ConnectionLost) and "cannot connect" in str(info.value)


def test_input_at_another_rate_is_resampled_to_24khz_and_endpoints_are_built_right():
    memory = sinks.Memory()
    tone = sources.Tone(440, duration_ms=1000, sample_rate_hz=16_000)
    session = vkit.run(tone | Realtime(turn_detection="manual", server={"output_pace": 0}) | memory, clock="virtual")
    appended = sum(e.event.extra["num_samples"] for e in sent(session, "input_audio_buffer.append"))
    assert abs(appended - 24_000) <= 48  # one second at the wire rate, less the resampler's tail
    from vkit.realtime.stage import _Session, _with_model

    azure = "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-rt"
    assert _with_model(azure, "gpt-realtime") == azure
    assert _with_model("wss://api.openai.com/v1/realtime", "gpt-realtime").endswith("?model=gpt-realtime")
    headers = _Session(Realtime(azure, api_key="k1"), None, azure)._headers()
    assert headers == {"api-key": "k1"}
    headers = _Session(Realtime("openai", api_key="k2", dialect="beta"), None, "wss://api.openai.com/v1/realtime")._headers()
    assert headers == {"Authorization": "Bearer k2", "OpenAI-Beta": "realtime=v1"}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("OPENAI_API_KEY", raising=False)
        with pytest.raises(vkit.ConfigError, match="needs an API key"):
            _Session(Realtime("openai"), None, "wss://api.openai.com/v1/realtime")._headers()


def test_the_drain_timeout_runs_on_the_session_clock(speech_24k):
    """An answer due 120 s after the turn, with drain_timeout_s=30: on the virtual clock the stage gives up
    exactly 30 s of session time after its input ended, at once in real time (the wait is not a real-time poll)."""
    stage = Realtime(drain_timeout_s=30, server={"output_pace": 0, "response_delay_ms": 120_000})
    started = time.monotonic()
    graph = sources.Array(first_turn(speech_24k), 24_000, pace="realtime") | stage | sinks.VirtualSpeaker()
    session = vkit.run(graph, clock="virtual")
    assert time.monotonic() - started < 20
    (stalled,) = [e for e in session.events_of(Marker) if e.name == "response_stalled"]
    assert "drain_timeout_s" in stalled.data["reason"]
    input_end_ns = max(e.t_ns for e in sent(session, "input_audio_buffer.append"))
    assert stalled.t_ns == input_end_ns + 30 * 10**9
    assert not received(session, "response.done") and session.turns[0].status == "stalled"
