"""The Realtime client against a misbehaving server: closes, drops, refusals, stalls, a frozen reader,
hostile events. Loopback only; every test bounded."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import pytest
from misbehaving_server import FaultConnection, MisbehavingServer

import vkit
from vkit import sources
from vkit.errors import ConnectionLost, RemoteProtocolError, StageError
from vkit.frames import Marker, ProtocolEvent, ProtocolIssue, SpeechStopped
from vkit.realtime import Realtime

pytestmark = pytest.mark.timeout(30)
FAST = {"reconnect_timeout_s": 5.0, "ping_interval_s": None}


def run(server_scripts, stage_options, *, duration_ms=1500, pace="realtime", **server_options):
    async def main():
        async with MisbehavingServer(*server_scripts, **server_options) as server:
            graph = sources.Silence(duration_ms=duration_ms, pace=pace) | Realtime(server.url, **stage_options)
            return await vkit.arun(graph), server
    return asyncio.run(main())


def markers(session, name):
    return [e for e in session.events_of(Marker) if e.name == name]


def received(session, wire_type):
    return [e for e in session.events_of(ProtocolEvent) if e.direction == "received" and e.type == wire_type]


def closes_after_handshake(code, delay_s=0.3):
    async def script(conn: FaultConnection) -> None:
        await conn.handshake()
        await asyncio.sleep(delay_s)
        await conn.close(code, "fault script")
    return script


async def handshake(conn: FaultConnection) -> None:
    await conn.handshake()


@pytest.mark.parametrize("code", [1000, 1001])
def test_a_clean_close_without_reconnect_is_a_clear_connection_lost(code):
    with pytest.raises(StageError) as info:
        run([closes_after_handshake(code)], {**FAST, "reconnect": False})
    assert isinstance(info.value.__cause__, ConnectionLost)
    assert f"code {code} by the server: fault script" in str(info.value)


@pytest.mark.parametrize("code", [1000, 1001, 1011])
def test_reconnect_resends_the_session_config_and_keeps_the_input(code):
    session, server = run([closes_after_handshake(code), handshake], {**FAST, "reconnect": True})
    assert len(server.connections) == 2
    for conn in server.connections:  # each connection got the config first
        assert conn.received[0]["type"] == "session.update"
    assert [m.data["code"] for m in markers(session, "reconnect")] == [code]
    reconnected = markers(session, "reconnected")[0].data
    assert reconnected["num_dropped_samples"] == 0
    first, replacement = server.connections
    assert first.num_appended_samples > 0  # never committed by the first server: all of it sent again
    assert replacement.num_appended_samples == 24_000 * 1500 // 1000  # the outage lost no input


def test_a_refused_reconnect_is_retried_with_backoff():
    async def drop_and_refuse(conn: FaultConnection) -> None:
        await conn.handshake()
        await asyncio.sleep(0.2)
        conn.server.refuse(3)
        await conn.close(1011, "crash")

    session, server = run([drop_and_refuse, handshake], {**FAST, "reconnect": True}, duration_ms=2500)
    assert server.num_refused == 3 and len(server.connections) == 2
    assert markers(session, "reconnected")[0].data["num_attempts"] == 4


def test_reconnect_gives_up_after_its_time_budget():
    async def drop_and_refuse_all(conn: FaultConnection) -> None:
        await conn.handshake()
        conn.server.refuse(1000)
        await conn.close(1001, "going away")

    with pytest.raises(StageError) as info:
        run([drop_and_refuse_all], {"reconnect": True, "reconnect_timeout_s": 1.0, "ping_interval_s": None},
            duration_ms=5000)
    assert isinstance(info.value.__cause__, ConnectionLost)
    assert "could not reconnect within reconnect_timeout_s=1" in str(info.value)


def test_barge_in_after_a_reconnect_skips_the_item_the_new_connection_never_saw(caplog):
    async def drop_mid_answer(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.answer("resp_1", "item_1", num_deltas=10, stop_after=3)
        await conn.close(1001, "going away")

    async def user_speaks(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.send(type="input_audio_buffer.speech_started", audio_start_ms=100, item_id="item_user_2")

    with caplog.at_level(logging.INFO, logger="vkit"):
        session, server = run([drop_mid_answer, user_speaks], {**FAST, "reconnect": True})
    barge = markers(session, "barge_in")
    assert len(barge) == 1 and "never saw it" in barge[0].data["truncate_skipped"]
    assert not any(e["type"] == "conversation.item.truncate" for e in server.connections[1].received)
    assert "barge-in without truncation" in caplog.text


def test_a_server_that_stops_reading_fails_the_session_within_the_write_timeout():
    async def freeze(conn: FaultConnection) -> None:
        await conn.handshake()
        conn.freeze()

    with pytest.raises(StageError) as info:  # 10 minutes of input at fast pace: far more than the buffers hold
        run([freeze], {"write_timeout_s": 0.5, "ping_interval_s": 0.5, "ping_timeout_s": 0.5},
            duration_ms=600_000, pace="fast")
    assert isinstance(info.value.__cause__, ConnectionLost)
    assert "stopped reading" in str(info.value) or "keepalive" in str(info.value)


def test_a_stalled_answer_ends_with_a_warning_and_the_turn_marked(caplog):
    async def stall(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.answer("resp_1", "item_1", num_deltas=10, stop_after=2)
        await conn.hold()

    with caplog.at_level(logging.WARNING, logger="vkit"):
        # the input outlasts the stall: with an input shorter than the handshake takes under load, the session
        # could end before the answer began, and nothing would be stalled
        session, _ = run([stall], {"stall_timeout_s": 0.5, "ping_interval_s": None}, duration_ms=1200)
    stalled = markers(session, "response_stalled")
    assert len(stalled) == 1 and stalled[0].data["response_id"] == "resp_1"
    assert "abandoned: no server event for 0.5 s" in caplog.text
    assert session.turns[0].status == "stalled"


def test_bad_events_are_skipped_recorded_and_counted():
    async def hostile(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.send_raw('{"type": "x", "a": ' + "[" * 100_000 + "]" * 100_000 + "}")
        await conn.send_raw("{not json")
        await conn.send(type="response.output_audio.delta", response_id="r", item_id="i", output_index=0,
                        content_index=0, delta=base64.b64encode(b"\x00\x01\x02").decode())  # odd byte count
        await conn.send(type="response.output_audio.delta", response_id="r", item_id="i", output_index=0,
                        content_index=0, delta="!!!!")  # not base64
        await conn.answer("resp_ok", "item_ok", num_deltas=2)

    session, _ = run([hostile], {"ping_interval_s": None}, duration_ms=300)
    issues = session.events_of(ProtocolIssue)
    assert [i.num_issues for i in issues] == [1, 2, 3, 4]
    assert "nested deeper than 64" in issues[0].reason and "invalid JSON" in issues[1].reason
    assert "whole pcm16 samples" in issues[2].reason and "base64" in issues[3].reason
    assert len(received(session, "response.output_audio.delta")) == 2  # the good answer still played


def test_a_flood_of_bad_events_fails_past_the_threshold():
    async def flood(conn: FaultConnection) -> None:
        await conn.handshake()
        for _ in range(50):
            await conn.send_raw("[1, 2")
        await conn.hold()

    with pytest.raises(StageError) as info:
        run([flood], {"max_bad_events": 10, "ping_interval_s": None}, duration_ms=3000)
    assert isinstance(info.value.__cause__, RemoteProtocolError)
    assert "11 bad events, more than max_bad_events=10" in str(info.value)


def test_an_oversized_frame_is_refused_with_a_typed_error():
    async def blob(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.send_raw(json.dumps({"type": "x", "blob": "a" * (2 * 2**20)}))
        await conn.hold()

    with pytest.raises(StageError) as info:
        run([blob], {"max_frame_bytes": 2**20, "ping_interval_s": None}, duration_ms=3000)
    assert isinstance(info.value.__cause__, RemoteProtocolError) and "max_frame_bytes=1048576" in str(info.value)


def test_a_server_echoed_key_is_redacted_in_logs_and_reprs(caplog):
    canary = "canary-Zq81kV0pLx3mW7"

    async def echo_key(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.send(type="error", error={"type": "invalid_request_error", "code": "bad_key",
                                             "message": f"Incorrect API key provided: {canary}"})

    with caplog.at_level(logging.DEBUG):
        session, _ = run([echo_key], {"api_key": canary, "ping_interval_s": None}, duration_ms=300)
    assert "server error event" in caplog.text and "[redacted]" in caplog.text
    assert canary not in caplog.text and canary not in repr(session.events)


@pytest.mark.parametrize("reconnect", [False, True])
def test_a_text_frame_that_is_not_utf8_is_a_typed_error_naming_it(reconnect):
    async def garbled(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.websocket.send(b'{"type": "response.done", "x": "\xff\xfe"}', text=True)
        await conn.hold()

    with pytest.raises(StageError) as info:  # the server's bytes are wrong: reconnecting would not help
        run([garbled], {**FAST, "reconnect": reconnect}, duration_ms=3000)
    assert isinstance(info.value.__cause__, RemoteProtocolError)
    assert "a text frame that is not valid UTF-8 (invalid start byte at position" in str(info.value)


def test_a_server_that_never_answers_a_ping_is_named_in_the_connection_lost():
    async def deaf(conn: FaultConnection) -> None:
        await conn.handshake()
        conn.freeze()  # nothing is read, so no pong is sent; 3 s of input fits in the socket buffers

    with pytest.raises(StageError) as info:
        run([deaf], {"ping_interval_s": 0.2, "ping_timeout_s": 0.3, "write_timeout_s": 30}, duration_ms=3000)
    assert isinstance(info.value.__cause__, ConnectionLost)
    assert "did not answer a keepalive ping within ping_timeout_s=0.3" in str(info.value)


def test_input_that_ends_during_an_outage_is_delivered_after_the_reconnect():
    async def drop_near_the_end(conn: FaultConnection) -> None:
        await conn.handshake()
        await asyncio.sleep(0.9)
        conn.server.refuse(3)  # backoff of at least 0.05 + 0.1 + 0.2 s: reconnected after the input ended at 1 s
        await conn.close(1011, "crash")

    session, server = run([drop_near_the_end, handshake], {**FAST, "reconnect": True}, duration_ms=1000)
    (reconnected,) = markers(session, "reconnected")
    assert len(server.connections) == 2 and reconnected.data["num_dropped_samples"] == 0
    assert reconnected.t_ns > 1_000_000_000
    # what the first server never committed and the outage's input, sent on the new connection before the end
    assert server.connections[1].num_appended_samples == 24_000


def test_input_written_to_a_frozen_server_is_resent_after_the_keepalive_drops_it():
    committed_samples = 6000  # the frozen server committed the first 250 ms: never sent twice
    total_samples = 24_000 * 3

    async def commit_then_freeze(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.wait_for_samples(committed_samples)
        await conn.send(type="input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_user_1")
        await conn.send(type="input_audio_buffer.speech_stopped", audio_end_ms=250, item_id="item_user_1")
        await conn.send(type="input_audio_buffer.committed", item_id="item_user_1", previous_item_id=None)
        await conn.wait_for_samples(24_000 // 2)
        conn.freeze()  # stops reading and answering pings; what the client writes now fills socket buffers

    async def healthy(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.wait_for_samples(total_samples - committed_samples - 12_000)  # all but the last 0.5 s
        await conn.send(type="input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_user_2")
        await conn.send(type="input_audio_buffer.speech_stopped", audio_end_ms=1000, item_id="item_user_2")
        await conn.send(type="input_audio_buffer.committed", item_id="item_user_2", previous_item_id=None)
        await conn.answer("resp_2", "item_2", num_deltas=3)

    session, server = run([commit_then_freeze, healthy],
                          {"reconnect": True, "reconnect_timeout_s": 5.0, "ping_interval_s": 0.2,
                           "ping_timeout_s": 0.3, "outage_buffer_ms": 5000}, duration_ms=3000)
    frozen, replacement = server.connections
    (reconnect,) = markers(session, "reconnect")
    assert "keepalive ping" in reconnect.data["reason"]
    assert frozen.num_appended_samples >= 24_000 // 2
    assert markers(session, "reconnected")[0].data["num_dropped_samples"] == 0
    assert replacement.num_appended_samples == total_samples - committed_samples  # all of it, none twice
    assert [e.event.response.get("status") for e in received(session, "response.done")] == ["completed"]


class StopsSpeakingAt:
    """Manual turns: a SpeechStopped at ``sample``, as a VAD would publish it (the stage commits there)."""

    def __init__(self, sample: int) -> None:
        self.sample = sample

    def process(self, frame):
        if not frame.start_sample < self.sample <= frame.end_sample:
            return frame
        return [frame, SpeechStopped(sample=self.sample, sample_rate_hz=frame.sample_rate_hz, sample_t_ns=frame.t_ns,
                                     speech_end_sample=self.sample, speech_end_t_ns=frame.t_ns)]


def test_a_commit_a_frozen_server_never_confirmed_is_resent_in_its_place():
    async def freeze_at_the_commit(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.wait_for("input_audio_buffer.commit")
        conn.freeze()

    async def healthy(conn: FaultConnection) -> None:
        await conn.handshake()
        await conn.wait_for("input_audio_buffer.commit")
        await conn.send(type="input_audio_buffer.committed", item_id="item_user_1", previous_item_id=None)
        await conn.wait_for("response.create")
        await conn.answer("resp_1", "item_1", num_deltas=3)

    async def main():
        async with MisbehavingServer(freeze_at_the_commit, healthy) as server:
            graph = (sources.Silence(duration_ms=3000, pace="realtime") | StopsSpeakingAt(24_000)
                     | Realtime(server.url, turn_detection="manual", reconnect=True, reconnect_timeout_s=5.0,
                                ping_interval_s=0.2, ping_timeout_s=0.3, outage_buffer_ms=5000))
            return await vkit.arun(graph), server

    session, server = asyncio.run(main())
    assert len(server.connections) == 2 and "keepalive ping" in markers(session, "reconnect")[0].data["reason"]
    replacement = server.connections[1]
    types = [e["type"] for e in replacement.received]
    before_commit = replacement.received[:types.index("input_audio_buffer.commit")]
    assert sum(len(base64.b64decode(e["audio"])) // 2 for e in before_commit
               if e["type"] == "input_audio_buffer.append") == 24_000  # re-sent after the same input it followed
    assert types.count("response.create") == 1 and types.count("input_audio_buffer.commit") == 1
    assert replacement.num_appended_samples == 24_000 * 3
    assert [e.event.response.get("status") for e in received(session, "response.done")] == ["completed"]
