"""The local server over real sockets on 127.0.0.1: turns, errors, robustness, schema fidelity."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from realtime_helpers import RawClient
from strict_sdk import validate_strictly
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from vkit.realtime.server import LocalServer

pytestmark = pytest.mark.timeout(60)


def run(coro):
    return asyncio.run(coro)


def test_server_vad_finds_each_turn_at_the_right_place_and_answers(speech_24k):
    audio, truth = speech_24k

    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as client:
            await client.append(audio)
            await client.wait_for("response.done", 3)
            return client.events

    events = run(main())
    started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
    stopped = [e for e in events if e["type"] == "input_audio_buffer.speech_stopped"]
    assert len(started) == len(stopped) == 3
    for start, stop, (truth_start, truth_end) in zip(started, stopped, truth, strict=True):
        assert abs(start["audio_start_ms"] - (truth_start - 300)) <= 120  # prefix_padding_ms = 300
        assert 0 <= stop["audio_end_ms"] - truth_end <= 500 + 200           # silence_duration_ms = 500
        assert start["item_id"] == stop["item_id"]
    order = [e["type"] for e in events]
    first = order.index("input_audio_buffer.speech_stopped")
    assert order[first : first + 8] == [
        "input_audio_buffer.speech_stopped", "input_audio_buffer.committed", "conversation.item.added",
        "conversation.item.done", "response.created", "rate_limits.updated", "response.output_item.added",
        "conversation.item.added"]
    done = [e for e in events if e["type"] == "response.done"]
    assert all(d["response"]["status"] == "completed" and d["response"]["usage"]["output_tokens"] > 0 for d in done)
    validate_strictly(events, "ga")


def test_beta_clients_get_the_beta_dialect(speech_24k):
    audio, _ = speech_24k

    async def main():
        async with LocalServer(output_pace=0) as server:
            async with RawClient(server.url, {"OpenAI-Beta": "realtime=v1"}) as client:
                await client.send(type="session.update", session={"turn_detection": None, "voice": "shimmer"})
                await client.wait_for("session.updated")
                await client.append(audio[: 24_000 * 3])
                await client.send(type="input_audio_buffer.commit")
                await client.send(type="response.create")
                await client.wait_for("response.done")
                return client.events

    events = run(main())
    types = [e["type"] for e in events]
    assert types[:2] == ["session.created", "conversation.created"]
    assert "response.audio.delta" in types and "response.output_audio.delta" not in types
    assert "conversation.item.created" in types and "conversation.item.added" not in types
    updated = next(e for e in events if e["type"] == "session.updated")["session"]
    assert updated["turn_detection"] is None and updated["voice"] == "shimmer"
    validate_strictly(events, "beta")


def test_each_error_is_answered_and_the_session_survives():
    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as client:
            await client.send_raw("{this is not json")
            await client.send(type="no.such.event", event_id="c1")
            await client.send(type="input_audio_buffer.commit", event_id="c2")  # empty
            await client.send(type="input_audio_buffer.append", audio="AAAA" * 100)  # 300 bytes: 150 samples, 6.25 ms
            await client.send(type="input_audio_buffer.commit", event_id="c3")
            await client.send(type="response.cancel", event_id="c4")
            await client.send(type="session.update", event_id="c5", session={"type": "realtime", "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 16000}}}})
            await client.send(type="conversation.item.truncate", event_id="c6", item_id="nope", content_index=0,
                              audio_end_ms=10)
            await client.send(type="session.update", event_id="c7", session={"type": "realtime", "audio": {
                "input": {"turn_detection": None}}})
            await client.send(type="input_audio_buffer.append", audio="AAAA" * 4000)
            await client.send(type="input_audio_buffer.commit")
            await client.send(type="response.create")
            await client.send(type="response.create", event_id="c8")
            await client.wait_for("response.done")
            return client.events

    events = run(main())
    errors = {e["error"].get("event_id"): e["error"] for e in events if e["type"] == "error"}
    assert errors[None]["code"] == "invalid_json"
    assert errors["c1"]["code"] == "invalid_value" and errors["c1"]["param"] == "type"
    assert errors["c2"]["code"] == "input_audio_buffer_commit_empty"
    assert errors["c3"]["message"] == ("Error committing input audio buffer: buffer too small. Expected at least "
                                       "100ms of audio, but buffer only has 6.25ms of audio.")
    assert errors["c4"]["code"] == "response_cancel_not_active"
    assert errors["c5"]["param"] == "session.audio.input.format.rate"
    assert errors["c6"]["code"] == "item_truncate_invalid_item_id"
    assert errors["c8"]["code"] == "conversation_already_has_active_response"
    assert [e["type"] for e in events].count("response.done") == 1
    validate_strictly(events, "ga")


def test_manual_turn_cancel_truncate_retrieve_delete():
    async def main():
        async with LocalServer(output_pace=1.0, responder="scripted",
                               replies=[np.full(24_000 * 2, 0.1, np.float32)]) as server, RawClient(server.url) as client:
            await client.send(type="session.update", session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
            await client.append(np.zeros(4800, np.float32))
            await client.send(type="input_audio_buffer.commit")
            await client.send(type="response.create")
            deltas = await client.wait_for("response.output_audio.delta", 5)
            item_id = deltas[0]["item_id"]
            await client.send(type="response.cancel")
            done = (await client.wait_for("response.done"))[0]
            await client.send(type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=100)
            await client.send(type="conversation.item.truncate", event_id="too_far", item_id=item_id, content_index=0,
                              audio_end_ms=100_000)
            await client.send(type="conversation.item.retrieve", item_id=item_id)
            await client.send(type="conversation.item.delete", item_id=item_id)
            await client.send(type="conversation.item.delete", event_id="again", item_id=item_id)
            await client.wait_for("conversation.item.deleted")
            await client.wait_for("error", 2)
            return done, client.events

    done, events = run(main())
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    truncated = next(e for e in events if e["type"] == "conversation.item.truncated")
    assert truncated["audio_end_ms"] == 100
    retrieved = next(e for e in events if e["type"] == "conversation.item.retrieved")
    assert len(retrieved["item"]["content"][0]["audio"]) == 6400  # 100 ms of PCM16 at 24 kHz, base64
    codes = {e["error"]["event_id"]: e["error"]["code"] for e in events if e["type"] == "error"}
    assert codes == {"too_far": "invalid_value", "again": "item_delete_invalid_item_id"}
    validate_strictly(events, "ga")


def test_bad_clients_do_not_disturb_a_healthy_session(speech_24k):
    audio, _ = speech_24k

    async def dropper(url: str) -> None:
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {
                "input": {"turn_detection": None}}}}))
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA" * 4000}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            await ws.send(json.dumps({"type": "response.create"}))
            async for message in ws:
                if "output_audio.delta" in message:
                    break  # leaves mid-response
        # the context manager closed the socket without waiting for the answer

    async def garbage(url: str) -> None:
        async with connect(url) as ws:
            for i in range(200):
                await ws.send(b"\x00\xff" * 50 if i % 2 else "{{{{")

    async def flood(url: str) -> None:
        async with connect(url) as ws:
            chunk = json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA" * 240})
            for _ in range(3000):
                await ws.send(chunk)

    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as healthy:
            bad = asyncio.gather(dropper(server.url), garbage(server.url), flood(server.url))
            await healthy.append(audio)
            await bad
            await healthy.wait_for("response.done", 3)
            for _ in range(200):
                if len(server.connections) == 1:
                    break
                await asyncio.sleep(0.05)
            return healthy.events, len(server.connections)

    events, remaining = run(main())
    assert [e["type"] for e in events].count("response.done") == 3
    assert [e for e in events if e["type"] == "error"] == []
    assert remaining == 1


def test_limits_on_sessions_and_session_length():
    async def main():
        async with LocalServer(max_sessions=1, max_session_s=0.5) as server, RawClient(server.url) as client:
            with pytest.raises(InvalidStatus) as rejected:
                async with connect(server.url):
                    pass
            await asyncio.sleep(0.8)
            return rejected.value.response.status_code, client.events, client.ws.close_code, server.num_rejected

    status, events, close_code, num_rejected = run(main())
    assert status == 503 and num_rejected == 1
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "session_expired"
    assert close_code == 1000


def test_wrong_paths_are_not_found_and_the_server_binds_loopback():
    async def main():
        async with LocalServer() as server:
            assert server.url.startswith("ws://127.0.0.1:")
            with pytest.raises(InvalidStatus) as info:
                async with connect(server.url.replace("/v1/realtime", "/nope")):
                    pass
            return info.value.response.status_code

    assert run(main()) == 404


def test_transcripts_message_size_limit_and_the_cascade_responder(speech_24k):
    audio, truth = speech_24k

    async def main():
        async with LocalServer(output_pace=0, responder="cascade", max_message_bytes=200_000) as server:
            async with RawClient(server.url) as client:
                await client.send(type="session.update", session={"type": "realtime", "audio": {"input": {
                    "turn_detection": None, "transcription": {"model": "local"}}}})
                start, end = truth[1]
                await client.append(audio[int(start * 24) - 2400 : int(end * 24) + 2400])
                await client.send(type="input_audio_buffer.commit")
                await client.send(type="response.create")
                await client.wait_for("response.done", timeout_s=60)
                await client.wait_for("conversation.item.input_audio_transcription.completed", timeout_s=30)
                events = client.events
            async with RawClient(server.url) as big:
                await big.send_raw('{"type":"input_audio_buffer.append","audio":"' + "A" * 300_000 + '"}')
                (refused,) = await big.wait_for("error")  # over the limit: refused, the session lives
                await big.send_raw('{"type":"input_audio_buffer.append","audio":"' + "A" * 500_000 + '"}')
                await asyncio.sleep(0.5)
                return events, (refused["error"]["code"], big.ws.close_code)

    events, close_code = run(main())
    heard = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert "table" in heard["transcript"]
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert said["transcript"] == "Your table is booked."
    assert sum(len(e["delta"]) for e in events if e["type"] == "response.output_audio.delta") > 24_000
    assert close_code == ("message_too_large", 1009)  # past twice the limit, websockets closes: 1009
    validate_strictly(events, "ga")


def test_the_cascade_recognises_each_utterance_once_without_freezing_its_process(speech_24k):
    """pocketsphinx holds the GIL while it decodes: in this process it would stall an embedded server's graph."""
    from vkit.realtime.server import CascadeResponder, Turn

    audio, truth = speech_24k
    start, end = truth[1]
    turn = audio[int(start * 24) - 2400 : int(end * 24) + 2400]
    responder = CascadeResponder()
    try:
        async def main():
            lag_s, ticking = [], True

            async def tick():
                while ticking:
                    before = asyncio.get_running_loop().time()
                    await asyncio.sleep(0.005)
                    lag_s.append(asyncio.get_running_loop().time() - before - 0.005)

            ticker = asyncio.ensure_future(tick())
            began = asyncio.get_running_loop().time()
            loop = asyncio.get_running_loop()
            heard, reply = await asyncio.gather(loop.run_in_executor(None, responder.transcribe, turn, 24_000),
                                                responder.reply(Turn(turn, 24_000)))
            took_s = asyncio.get_running_loop().time() - began
            ticking = False
            await ticker
            return heard, reply, took_s, max(lag_s)

        heard, reply, took_s, max_lag_s = run(main())
        assert "table" in heard and reply.input_transcript == heard and reply.transcript == "Your table is booked."
        assert responder.recogniser.num_decodes == 1  # the transcript and the answer shared one decode
        assert max_lag_s < took_s / 4, (max_lag_s, took_s)  # decoding took most of took_s, elsewhere
    finally:
        responder.close()
