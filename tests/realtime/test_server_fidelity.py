"""The local server behaves as OpenAI's does where a client can observe it (real sockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from realtime_helpers import RawClient
from strict_sdk import validate_strictly

from vkit.realtime.codec import encode_audio
from vkit.realtime.server import LocalServer

pytestmark = pytest.mark.timeout(60)

MANUAL = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "examples": ["Paris"]}},
                          "required": ["city"]}}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


def run(coro):
    return asyncio.run(coro)


def user_text(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


async def manual(client: RawClient, **session) -> None:
    await client.send(type="session.update", session={**MANUAL, **session})
    await client.wait_for("session.updated")


def test_a_full_session_validates_strictly_against_the_sdk(speech_24k):
    """Audio with server VAD, manual turns, cancel, truncate, tools, text: every event, both dialects."""
    audio, _ = speech_24k

    async def main(beta: bool):
        headers = {"OpenAI-Beta": "realtime=v1"} if beta else {}
        async with LocalServer(output_pace=4.0, responder="tools", tool_rules=['weather=get_weather:{"city":"Paris"}'],
                               frame_ms=20) as server, RawClient(server.url, headers) as c:
            await c.append(audio[: 24_000 * 5])  # one server-VAD turn, answered by echoing it
            await c.wait_for("response.done")
            off = {"turn_detection": None} if beta else MANUAL
            await c.send(type="session.update", session={**off, "tools": [WEATHER]})
            await c.wait_for("session.updated")
            await c.append(audio[: 24_000])
            await c.send(type="input_audio_buffer.commit")
            await c.send(type="response.create")  # a manual turn, cancelled mid-answer, then truncated
            delta = (await c.wait_for("response.audio.delta" if beta else "response.output_audio.delta", 2))[-1]
            await c.send(type="response.cancel")
            await c.wait_for("response.done", 2)
            await c.send(type="conversation.item.truncate", item_id=delta["item_id"], content_index=0, audio_end_ms=20)
            await c.wait_for("conversation.item.truncated")
            await c.send(type="conversation.item.create", item=user_text("what is the weather like"))
            await c.send(type="response.create")  # a tool call, its output, the spoken answer
            call = (await c.wait_for("response.done", 3))[-1]["response"]["output"][0]
            await c.send(type="conversation.item.create", item={"type": "function_call_output",
                                                                "call_id": call["call_id"], "output": "sunny"})
            await c.send(type="response.create")
            await c.wait_for("response.done", 4)
            text = {"modalities": ["text"]} if beta else {"output_modalities": ["text"]}
            await c.send(type="response.create", response={**text, "conversation": "none",
                                                           "input": [user_text("hello")]})
            await c.wait_for("response.done", 5)
            await c.send(type="conversation.item.retrieve", item_id=delta["item_id"])
            await c.wait_for("conversation.item.retrieved")
            return c.events

    for beta in (False, True):
        events = run(main(beta))
        validate_strictly(events, "beta" if beta else "ga")
        assert [e for e in events if e["type"] == "error"] == []
        statuses = [e["response"]["status"] for e in events if e["type"] == "response.done"]
        assert statuses == ["completed", "cancelled", "completed", "completed", "completed"]


def test_client_metadata_is_kept_and_vkit_adds_its_own_keys():
    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as c:
            await manual(c)
            await c.send(type="conversation.item.create", item=user_text("hi"))
            await c.send(type="response.create", response={"metadata": {"client_event_id": "ev_42", "topic": "x"}})
            return (await c.wait_for("response.created"))[0], (await c.wait_for("response.done"))[0]

    created, done = run(main())
    assert created["response"]["metadata"] == {"client_event_id": "ev_42", "topic": "x", "vkit_trigger": "response.create"}
    metadata = done["response"]["metadata"]
    assert metadata["client_event_id"] == "ev_42" and metadata["topic"] == "x"
    assert {k for k in metadata if k.startswith("vkit_")} == {
        "vkit_trigger", "vkit_injected_delay_ms", "vkit_processing_ms", "vkit_first_audio_after_trigger_ms"}


def test_text_responses_have_no_audio_and_audio_responses_carry_their_transcript():
    async def main():
        async with LocalServer(output_pace=0, responder="scripted", replies=["Nice to meet you."]) as server:
            async with RawClient(server.url) as c:
                await manual(c, output_modalities=["text"])
                await c.send(type="conversation.item.create", item=user_text("hello there"))
                await c.send(type="response.create")
                await c.wait_for("response.done")
                await c.send(type="response.create", response={"output_modalities": ["audio"]})
                await c.wait_for("response.done", 2)
                return c.events

    events = run(main())
    validate_strictly(events)
    first = events[: next(i for i, e in enumerate(events) if e["type"] == "response.done") + 1]
    types = [e["type"] for e in first]
    assert "response.output_text.delta" in types and not [t for t in types if "audio" in t]
    text_done = next(e for e in first if e["type"] == "response.output_text.done")
    assert text_done["text"] == "Nice to meet you."
    assert first[-1]["response"]["output_modalities"] == ["text"]
    assert first[-1]["response"]["output"][0]["content"] == [{"type": "output_text", "text": "Nice to meet you."}]
    second = events[len(first):]
    deltas = "".join(e["delta"] for e in second if e["type"] == "response.output_audio_transcript.delta")
    done = next(e for e in second if e["type"] == "response.output_audio_transcript.done")
    assert deltas == done["transcript"] == "Nice to meet you."
    assert any(e["type"] == "response.output_audio.delta" for e in second)
    assert second[-1]["response"]["output_modalities"] == ["audio"]


def test_out_of_band_responses_stay_out_of_the_conversation():
    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as c:
            await manual(c)
            await c.send(type="conversation.item.create", item={**user_text("remember me"), "id": "item_mine"})
            await c.wait_for("conversation.item.done")
            await c.send(type="response.create", response={
                "conversation": "none", "output_modalities": ["text"],
                "input": [{"type": "item_reference", "id": "item_mine"}, user_text("and this")]})
            done = (await c.wait_for("response.done"))[0]
            await c.send(type="conversation.item.retrieve", event_id="gone", item_id=done["response"]["output"][0]["id"])
            await c.send(type="response.create", event_id="ref", response={
                "conversation": "none", "input": [{"type": "item_reference", "id": "item_nope"}]})
            await c.wait_for("error", 2)
            return done, c.events

    done, events = run(main())
    validate_strictly(events)
    assert done["response"]["conversation_id"] is None
    assert done["response"]["output"][0]["content"][0]["text"] == "and this"  # the echo answered its own input
    added = [e["item"]["id"] for e in events if e["type"] == "conversation.item.added"]
    assert added == ["item_mine"]  # the answer was never added
    errors = {e["error"]["event_id"]: e["error"] for e in events if e["type"] == "error"}
    assert errors["gone"]["code"] == "item_retrieve_invalid_item_id"
    assert errors["ref"] == {"type": "invalid_request_error", "code": "invalid_value", "param": "response.input[0].id",
                             "message": "Invalid value: 'item_nope'. No item with this id is in the conversation.",
                             "event_id": "ref"}


@pytest.mark.parametrize(("event", "code", "param"), [
    ({"type": "session.update", "session": {"type": "realtime", "temperature": 0.7}}, "unknown_parameter",
     "session.temperature"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": "loud"}}, "invalid_type", "session.audio"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": "server"}}}},
     "invalid_type", "session.audio.input.turn_detection"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": {
        "type": "server_vad", "threshold": "high"}}}}}, "invalid_type", "session.audio.input.turn_detection.threshold"),
    ({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text", "audio"]}},
     "invalid_value", "session.output_modalities"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "alloy", "volume": 2}}}},
     "unknown_parameter", "session.audio.output.volume"),
    ({"type": "session.update", "session": {"model": "gpt-realtime"}}, "missing_required_parameter", "session.type"),
    ({"type": "conversation.item.create", "item": {"type": "message", "content": []}}, "missing_required_parameter",
     "item.role"),
    ({"type": "conversation.item.create", "item": {"id": ["a"], **user_text("x")}}, "invalid_type", "item.id"),
    ({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
        {"type": "input_text"}]}}, "missing_required_parameter", "item.content[0].text"),
    ({"type": "conversation.item.create", "item": {"type": "message", "role": "robot", "content": []}},
     "invalid_value", "item.role"),
    ({"type": "conversation.item.create", "item": {"type": "function_call_output", "output": "x"}},
     "missing_required_parameter", "item.call_id"),
    ({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_x",
                                                    "output": "x"}}, "invalid_value", "item.call_id"),
    ({"type": "response.create", "response": {"modalities": ["text"]}}, "unknown_parameter", "response.modalities"),
    ({"type": "response.create", "response": {"metadata": {"n": 1}}}, "invalid_type", "response.metadata.n"),
])
def test_strict_validation_answers_with_openais_codes_and_the_session_survives(event, code, param):
    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as c:
            await c.send(**event, event_id="bad")
            error = (await c.wait_for("error"))[0]
            await c.send(type="session.update", session=MANUAL)  # the session is still there, unchanged
            updated = (await c.wait_for("session.updated"))[0]
            return error, updated, c.events

    error, updated, events = run(main())
    assert (error["error"]["code"], error["error"]["param"], error["error"]["event_id"]) == (code, param, "bad")
    assert "temperature" not in updated["session"] and updated["session"]["output_modalities"] == ["audio"]
    assert [e["type"] for e in events].count("error") == 1
    validate_strictly(events)


def test_crafted_and_deep_events_get_an_error_never_a_silent_close():
    crafted = ['{"type":"conversation.item.delete","item_id":["x"]}', '{"type":"session.update","session":"x"}',
               "[" * 100_000 + "]" * 100_000, '{"type":"response.create","response":' + "[" * 5000 + "]" * 5000 + "}",
               '{"type":"input_audio_buffer.append","audio":"%%%"}', '{"type":"input_audio_buffer.append","audio":"AA=="}',
               '{"type":5}', '"just a string"', '{"type":"conversation.item.truncate","item_id":"x","content_index":0,'
               '"audio_end_ms":true}']

    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as c:
            for text in crafted:
                await c.send_raw(text)
            await c.wait_for("error", len(crafted))
            await c.send(type="input_audio_buffer.clear")
            await c.wait_for("input_audio_buffer.cleared")
            return c.events, c.ws.close_code

    events, close_code = run(main())
    assert close_code is None and [e["type"] for e in events].count("error") == len(crafted)
    validate_strictly(events)


def test_transcription_sessions_emit_only_transcription_events():
    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as c:
            await c.send(type="session.update", session={"type": "transcription", "audio": {"input": {
                "turn_detection": None, "transcription": {"model": "gpt-4o-transcribe"}}}})
            updated = (await c.wait_for("session.updated"))[0]
            await c.append(np.zeros(4800, np.float32))
            await c.send(type="input_audio_buffer.commit")
            await c.wait_for("conversation.item.input_audio_transcription.completed")
            await c.send(type="response.create", event_id="no")
            await c.wait_for("error")
            return updated, c.events

    updated, events = run(main())
    validate_strictly(events)
    assert set(updated["session"]) == {"type", "id", "object", "expires_at", "include", "audio"}
    assert updated["session"]["object"] == "realtime.transcription_session"
    assert [e["type"] for e in events[2:]] == [
        "input_audio_buffer.committed", "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed", "error"]
    completed = events[-2]
    assert completed["usage"] == {"type": "duration", "seconds": 0.2}


def test_retrieve_encodes_an_assistant_item_in_the_output_format():
    async def main():
        async with LocalServer(output_pace=0, responder="scripted", replies=[np.full(48_000, 0.1, np.float32)]) as server:
            async with RawClient(server.url) as c:
                await manual(c, audio={"input": {"turn_detection": None, "format": {"type": "audio/pcmu"}},
                                       "output": {"format": {"type": "audio/pcm", "rate": 24_000}}})
                await c.send(type="input_audio_buffer.append", audio=encode_audio(np.zeros(8000, np.float32), "g711_ulaw"))
                await c.send(type="input_audio_buffer.commit")
                await c.send(type="response.create")
                done = (await c.wait_for("response.done"))[0]
                user_id = next(e for e in c.events if e["type"] == "input_audio_buffer.committed")["item_id"]
                for item_id in (done["response"]["output"][0]["id"], user_id):
                    await c.send(type="conversation.item.retrieve", item_id=item_id)
                return await c.wait_for("conversation.item.retrieved", 2)

    assistant, user = run(main())
    assert len(base64.b64decode(assistant["item"]["content"][0]["audio"])) == 96_000  # 2 s of PCM16 at 24 kHz
    assert len(base64.b64decode(user["item"]["content"][0]["audio"])) == 8_000  # 1 s of mu-law at 8 kHz


def test_tools_full_sequence_parallel_calls_call_id_checks_and_the_answer():
    async def main():
        rule = 'weather and time=get_weather:{"city":"Paris"};get_time:{}'
        async with LocalServer(output_pace=0, responder="tools", tool_rules=[rule]) as server:
            async with RawClient(server.url) as c:
                await manual(c, tools=[WEATHER, TIME])
                await c.send(type="conversation.item.create", item=user_text("the weather and time please"))
                await c.send(type="response.create")
                parallel = (await c.wait_for("response.done"))[0]
                await c.send(type="conversation.item.create", item=user_text("do something"))
                await c.send(type="response.create", response={"tool_choice": "required"})
                required = (await c.wait_for("response.done", 2))[1]
                for call in parallel["response"]["output"]:
                    await c.send(type="conversation.item.create", item={
                        "type": "function_call_output", "call_id": call["call_id"],
                        "output": json.dumps({"weather": "sunny"} if call["name"] == "get_weather" else {"time": "9"})})
                await c.send(type="conversation.item.create", event_id="stale", item={
                    "type": "function_call_output", "call_id": "call_unknown", "output": "{}"})
                await c.send(type="response.create", response={"tool_choice": "none"})
                answer = (await c.wait_for("response.done", 3))[2]
                return parallel, required, answer, c.events

    parallel, required, answer, events = run(main())
    validate_strictly(events)
    calls = parallel["response"]["output"]
    assert [(c["type"], c["name"], json.loads(c["arguments"]), c["status"]) for c in calls] == [
        ("function_call", "get_weather", {"city": "Paris"}, "completed"), ("function_call", "get_time", {}, "completed")]
    first = parallel["response"]["id"]
    sequence = [(e["type"], e.get("output_index")) for e in events if e.get("response_id") == first]
    assert sequence == [
        ("response.output_item.added", 0), ("response.function_call_arguments.delta", 0),
        ("response.function_call_arguments.done", 0), ("response.output_item.done", 0),
        ("response.output_item.added", 1), ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.done", 1), ("response.output_item.done", 1)]
    done_args = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done_args["call_id"] == calls[0]["call_id"] and done_args["name"] == "get_weather"
    assert [(c["name"], json.loads(c["arguments"])) for c in required["response"]["output"]] == [
        ("get_weather", {"city": "Paris"})]  # the first declared tool, its arguments from the schema's examples
    error = next(e["error"] for e in events if e["type"] == "error")
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "item.call_id", "stale")
    spoken = answer["response"]["output"][0]
    assert spoken["content"][0]["transcript"].startswith("get_time says:")
    assert any(e["type"] == "response.output_audio.delta" and e["response_id"] == answer["response"]["id"]
               for e in events)


def test_the_echo_responder_transcribes_what_it_echoes_with_a_recogniser(speech_24k):
    audio, truth = speech_24k
    start, end = truth[1]

    async def main():
        async with LocalServer(output_pace=0, transcribe=True) as server, RawClient(server.url) as c:
            await manual(c, audio={"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}})
            await c.append(audio[int(start * 24) - 2400 : int(end * 24) + 2400])
            await c.send(type="input_audio_buffer.commit")
            await c.send(type="response.create")
            await c.wait_for("response.done", timeout_s=40)
            await c.wait_for("conversation.item.input_audio_transcription.completed", timeout_s=40)
            return c.events

    events = run(main())
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    heard = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert "table" in said and heard["transcript"] == said
    validate_strictly(events)


def test_vkit_serve_exposes_the_tools_responder_and_its_rules():
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "vkit", "serve", "--port", str(port), "--responder", "tools",
                               "--tool-rule", 'weather=get_weather:{"city": "Oslo"}'], stderr=subprocess.PIPE)
    try:
        assert b"on ws://127.0.0.1" in server.stderr.readline()  # printed once the server listens

        async def main():
            async with RawClient(f"ws://127.0.0.1:{port}/v1/realtime") as c:
                await manual(c, tools=[WEATHER])
                await c.send(type="conversation.item.create", item=user_text("weather in Oslo?"))
                await c.send(type="response.create")
                return (await c.wait_for("response.done"))[0]

        done = run(main())
    finally:
        server.terminate()
        server.wait(10)
    (call,) = done["response"]["output"]
    assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"city": "Oslo"})
