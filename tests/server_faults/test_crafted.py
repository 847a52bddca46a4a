"""Crafted client events: each is answered by an OpenAI-shaped ``error`` event and a log line; the session lives."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from realtime_helpers import RawClient

from vkit.realtime.server import LocalServer

pytestmark = pytest.mark.timeout(60)
USER_TEXT = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
CRAFTED: dict[str, str | bytes] = {
    "item id a list": json.dumps({"type": "conversation.item.create", "item": {**USER_TEXT, "id": ["x"]}}),
    "retrieve id a list": json.dumps({"type": "conversation.item.retrieve", "item_id": ["x"]}),
    "session.audio a string": json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": "x"}}),
    "turn_detection a string": json.dumps({"type": "session.update", "session": {
        "type": "realtime", "audio": {"input": {"turn_detection": "server_vad"}}}}),
    "threshold high": json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "turn_detection": {"type": "server_vad", "threshold": "high"}}}}}),
    "nested 5,000": '{"type": "session.update", "session": ' + "[" * 5_000 + "]" * 5_000 + "}",
    "nested 100,000": "[" * 100_000 + "]" * 100_000,
    "a top-level array": "[1, 2]",
    "a number": "42",
    "a string": '"input_audio_buffer.commit"',
    "null": "null",
    "session null": json.dumps({"type": "session.update", "session": None}),
    "invalid UTF-8": b'{"type": "session.update", "x": "\xff\xfe"}',
    "binary JSON": json.dumps({"type": "input_audio_buffer.clear"}).encode(),
    "unknown type": json.dumps({"type": "session.explode"}),
    "type a list": json.dumps({"type": ["session.update"]}),
    "no type": json.dumps({"event_id": "e"}),
    "huge string": json.dumps({"type": "response.create", "response": {"instructions": 7, "x": "a" * 5_000_000}}),
    "audio not base64": json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}),
    "audio a number": json.dumps({"type": "input_audio_buffer.append", "audio": 3}),
    "item audio not base64": json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "%%%"}]}}),
    "response input audio odd": json.dumps({"type": "response.create", "response": {"input": [{
        "type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "AAEC"}]}]}}),
    "truncate a negative": json.dumps({"type": "conversation.item.truncate", "item_id": "x", "content_index": -1,
                                       "audio_end_ms": -5}),
}


async def _turn(client: RawClient) -> None:
    """A text turn: the session still answers."""
    count = sum(e["type"] == "response.done" for e in client.events)
    await client.send(type="conversation.item.create", item=USER_TEXT)
    await client.send(type="response.create")
    await client.wait_for("response.done", count=count + 1)


@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_event_gets_an_error_and_a_log_line_and_the_session_lives(name, caplog):
    caplog.set_level(logging.INFO, logger="vkit.realtime.server")

    async def main():
        async with LocalServer(output_pace=0) as server, RawClient(server.url) as client:
            await client.send(type="session.update", session={"type": "realtime", "output_modalities": ["text"]})
            await client.wait_for("session.updated")
            await client.ws.send(CRAFTED[name])
            (error,) = await client.wait_for("error")
            await _turn(client)
            return error, client.events

    error, events = asyncio.run(main())
    assert set(error) == {"type", "event_id", "error"}
    assert set(error["error"]) <= {"type", "code", "message", "param", "event_id"}
    assert error["error"]["type"] == "invalid_request_error" and error["error"]["message"]
    assert sum(e["type"] == "error" for e in events) == 1
    assert any("error" in r.getMessage() or "refused" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.INFO and r.name.startswith("vkit.realtime.server"))


def test_a_frame_over_the_size_limit_gets_an_error_and_the_session_lives():
    async def main():
        async with LocalServer(output_pace=0, max_message_bytes=100_000) as server, RawClient(server.url) as client:
            await client.send(type="session.update", session={"type": "realtime", "output_modalities": ["text"]})
            await client.wait_for("session.updated")
            await client.send(type="response.create", response={"instructions": "a" * 150_000})
            (error,) = await client.wait_for("error")
            await _turn(client)
            return error

    error = asyncio.run(main())
    assert error["error"]["code"] == "message_too_large" and "(got 150061)" in error["error"]["message"]


def test_past_max_bad_events_the_session_ends_with_an_error_and_a_log_line(caplog):
    """Malformed events are counted (state refusals are not); the one past the limit ends the session."""
    caplog.set_level(logging.INFO, logger="vkit.realtime.server")
    malformed = ["{oops", b"\x00binary", json.dumps({"type": "session.explode"}), CRAFTED["threshold high"],
                 CRAFTED["audio not base64"], CRAFTED["nested 5,000"]]

    async def main():
        async with LocalServer(output_pace=0, max_bad_events=5) as server, RawClient(server.url) as client:
            await client.send(type="session.update", session={"type": "realtime", "output_modalities": ["text"]})
            await client.wait_for("session.updated")
            for _ in range(8):  # refused for the session's state only: never counted
                await client.send(type="input_audio_buffer.commit")
            await client.wait_for("error", count=8)
            for frame in malformed[:5]:
                await client.ws.send(frame)
            await client.wait_for("error", count=13)
            await _turn(client)  # five bad events: the session still lives
            await client.ws.send(malformed[5])
            await client.ws.wait_closed()
            return client.events, client.ws.close_code, client.ws.close_reason

    events, code, reason = asyncio.run(main())
    errors = [e["error"] for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors[:8]] == ["input_audio_buffer_commit_empty"] * 8
    assert len(errors) == 15 and errors[-1]["code"] == "too_many_bad_events"
    assert "6 malformed client events, more than the server's limit of 5" in errors[-1]["message"]
    assert (code, reason) == (1008, "too many bad events")
    assert any(r.levelno == logging.WARNING and "6 malformed client events" in r.getMessage() for r in caplog.records)
