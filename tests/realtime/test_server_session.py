"""The sans-I/O server session, driven by hand with exact times; and whole virtual sessions over loopback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from strict_sdk import validate_strictly

import vkit
from vkit import sinks, sources
from vkit.frames import ProtocolEvent
from vkit.realtime import Realtime
from vkit.realtime.codec import encode_audio
from vkit.realtime.server import DelayModel, Reply, ServerOptions, ServerSession
from vkit.realtime.server.work import ReplyWork

MS = 1_000_000
pytestmark = pytest.mark.timeout(60)


class Driver:
    """Feeds a ServerSession client events at given times and runs its deadlines, collecting what it sends."""

    def __init__(self, dialect: str = "ga", **options) -> None:
        self.session = ServerSession(ServerOptions(**options), dialect=dialect)
        self.events: list[tuple[int, dict]] = []
        self.now_ns = 0
        self._collect()

    def _collect(self) -> None:
        self.events += [(self.now_ns, json.loads(text)) for text in self.session.events_to_send()]

    def advance(self, until_ns: int) -> None:
        """Run every deadline up to ``until_ns``, each at its own time."""
        while (deadline := self.session.next_deadline_ns()) is not None and deadline <= until_ns:
            self.now_ns = max(self.now_ns, deadline)
            self.session.on_deadline(self.now_ns)
            self._collect()
        self.now_ns = until_ns

    def send(self, at_ns: int, **event) -> None:
        self.advance(at_ns)
        self.session.receive_text(json.dumps(event), at_ns)
        self._collect()

    def answer(self, reply: Reply, at_ns: int | None = None) -> bool:
        """Answer the response the session asked for, if it asked (True)."""
        works = [w for w in self.session.take_work() if isinstance(w, ReplyWork)]
        for work in works:
            self.session.reply_ready(work.response_id, reply, self.now_ns if at_ns is None else at_ns)
        self._collect()
        return bool(works)

    def of(self, wire_type: str) -> list[tuple[int, dict]]:
        return [(t, e) for t, e in self.events if e["type"] == wire_type]


def test_usage_counts_the_audio_and_text_that_went_in_and_out():
    driver = Driver(output_pace=0)
    driver.send(0, type="session.update", session={"type": "realtime", "instructions": "Be brief.",
                                                   "audio": {"input": {"turn_detection": None}}})
    driver.send(0, type="input_audio_buffer.append", audio=encode_audio(np.zeros(24_000, np.float32)))  # 1 s
    driver.send(0, type="input_audio_buffer.commit")
    driver.send(0, type="response.create")
    driver.answer(Reply(np.full(48_000, 0.1, np.float32), transcript="abcd efgh"))  # 2 s, 9 characters
    driver.advance(10_000 * MS)
    (_, done), = driver.of("response.done")
    assert done["response"]["usage"] == {
        "total_tokens": 3 + 10 + 40 + 3, "input_tokens": 3 + 10, "output_tokens": 40 + 3,
        "input_token_details": {"text_tokens": 3, "audio_tokens": 10, "image_tokens": 0, "cached_tokens": 0,
                                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
        "output_token_details": {"text_tokens": 3, "audio_tokens": 40}}  # 1 s in: 10; 2 s out: 40; text: chars/4


def test_pacing_and_the_injected_delay_are_deadlines_at_exact_times():
    driver = Driver(output_pace=1.0, frame_ms=100, delay=DelayModel(250))
    driver.send(0, type="session.update", session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    driver.send(0, type="input_audio_buffer.append", audio=encode_audio(np.zeros(4800, np.float32)))
    driver.send(0, type="input_audio_buffer.commit")
    driver.send(10 * MS, type="response.create")
    driver.answer(Reply(np.full(24_000, 0.1, np.float32)), at_ns=30 * MS)  # 20 ms of processing
    driver.advance(5_000 * MS)
    deltas = [t for t, _ in driver.of("response.output_audio.delta")]
    assert deltas == [(280 + 100 * k) * MS for k in range(10)]  # 30 ms + 250 ms injected, then real-time pace
    (t_done, done), = driver.of("response.done")
    assert t_done == 1280 * MS
    assert done["response"]["metadata"]["vkit_first_audio_after_trigger_ms"] == "270.000"
    assert done["response"]["metadata"]["vkit_processing_ms"] == "20.000"
    validate_strictly([e for _, e in driver.events])


def test_idle_timeout_fires_timeout_triggered_commits_and_answers():
    driver = Driver(output_pace=0)
    driver.send(0, type="session.update", session={"type": "realtime", "audio": {"input": {"turn_detection": {
        "type": "server_vad", "idle_timeout_ms": 5000}}}})
    silence = encode_audio(np.zeros(2400, np.float32))  # 100 ms
    for k in range(70):  # 7 s of silence, appended in real time
        driver.send(k * 100 * MS, type="input_audio_buffer.append", audio=silence)
    ((t, triggered),) = driver.of("input_audio_buffer.timeout_triggered")
    assert t == 5000 * MS and (triggered["audio_start_ms"], triggered["audio_end_ms"]) == (0, 5000)
    committed = driver.of("input_audio_buffer.committed")
    assert [e["item_id"] for _, e in committed] == [triggered["item_id"]]
    (_, created), = driver.of("response.created")
    assert created["response"]["metadata"]["vkit_trigger"] == "idle_timeout"
    validate_strictly([e for _, e in driver.events])


def _virtual_session(audio: np.ndarray) -> list[tuple[int, str, str]]:
    stage = Realtime(server={"response_delay_ms": "normal:200,40", "output_pace": 1.5, "seed": 7})
    session = vkit.run(sources.Array(audio, 24_000, pace="realtime") | stage | sinks.VirtualSpeaker(), clock="virtual")
    return [(e.t_ns, e.direction, e.type) for e in session.events_of(ProtocolEvent)
            if e.type != "input_audio_buffer.append"]


def test_a_virtual_session_over_loopback_is_exactly_reproducible(speech_24k):
    """Client, embedded server, pacing and playout on one virtual clock: the same times, to the nanosecond."""
    audio, _ = speech_24k
    runs = [_virtual_session(audio[: 24_000 * 9]) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    types = [t for _, _, t in runs[0]]
    assert types.count("response.done") >= 2 and types.count("input_audio_buffer.speech_stopped") >= 2


@pytest.mark.parametrize("beta", [False, True])
def test_a_session_update_of_beta_and_ga_spells_the_session_its_way(beta):
    driver = Driver("beta" if beta else "ga")
    update = {"turn_detection": None, "voice": "ash"} if beta else {
        "type": "realtime", "audio": {"input": {"turn_detection": None}, "output": {"voice": "ash"}}}
    driver.send(0, type="session.update", session=update)
    (_, updated), = driver.of("session.updated")
    voice = updated["session"]["voice"] if beta else updated["session"]["audio"]["output"]["voice"]
    assert voice == "ash"
    validate_strictly([e for _, e in driver.events], "beta" if beta else "ga")


def test_speech_during_an_answer_cancels_it_with_turn_detected(speech_24k):
    audio, truth = speech_24k
    driver = Driver(output_pace=1.0)
    step = 2400  # 100 ms appends, in real time
    for k, start in enumerate(range(0, int((truth[1][0] + 500) * 24), step)):
        driver.send(k * 100 * MS, type="input_audio_buffer.append", audio=encode_audio(audio[start : start + step]))
        driver.answer(Reply(np.full(24_000 * 10, 0.05, np.float32), transcript="a long answer"))
    (_, done), = driver.of("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["response"]["output"][0]["status"] == "incomplete"
    starts = [t for t, _ in driver.of("input_audio_buffer.speech_started")]
    assert len(starts) == 2 and starts[1] == max(t for t, _ in driver.events if _["type"] == "response.done")
    validate_strictly([e for _, e in driver.events])


class _SlowEcho:
    """An echo whose answer takes 50 ms of real work in a thread."""

    name = "slow-echo"

    async def reply(self, turn):
        import time

        await turn.run_blocking(time.sleep, 0.05)
        return Reply(turn.audio)


def test_blocking_work_of_a_responder_takes_no_virtual_time(speech_24k):
    audio, _ = speech_24k
    stage = Realtime(server={"responder": _SlowEcho(), "output_pace": 0})
    session = vkit.run(sources.Array(audio[: 24_000 * 9], 24_000, pace="realtime") | stage | sinks.Null(),
                       clock="virtual")
    done = [e.event.response for e in session.events_of(ProtocolEvent)
            if e.type == "response.done" and e.direction == "received"]
    assert len(done) >= 2 and {d["metadata"]["vkit_processing_ms"] for d in done} == {"0.000"}
    assert [t.server_first_audio_ms for t in session.turns if t.server_first_audio_ms is not None] == [0.0] * len(done)


def test_transcription_sessions_by_intent_and_by_the_beta_event():
    by_intent = ServerSession(ServerOptions(), transcription=True)
    created = json.loads(by_intent.events_to_send()[0])
    assert created["session"]["type"] == "transcription"
    validate_strictly([created])
    driver = Driver("beta")
    driver.send(0, type="transcription_session.update", session={
        "input_audio_format": "g711_ulaw", "input_audio_transcription": {"model": "gpt-4o-transcribe"},
        "turn_detection": None})
    (_, updated), = driver.of("transcription_session.updated")
    assert updated["session"]["input_audio_format"] == "g711_ulaw" and updated["session"]["turn_detection"] is None
    driver.send(0, type="input_audio_buffer.append", audio=encode_audio(np.zeros(800, np.float32), "g711_ulaw"))
    driver.send(0, type="input_audio_buffer.commit")
    assert [e["type"] for _, e in driver.events][-1] == "input_audio_buffer.committed"  # no item, no response
    # the SDK types transcription_session.updated with its REST model (a required client_secret): check the
    # documented wire keys here, and every other event strictly
    assert set(updated["session"]) == {"id", "object", "modalities", "input_audio_format", "input_audio_transcription",
                                       "turn_detection", "input_audio_noise_reduction", "include"}
    validate_strictly([e for _, e in driver.events if e["type"] != "transcription_session.updated"], "beta")
