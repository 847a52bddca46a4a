"""The official ``openai`` SDK's Realtime client (GA ``client.realtime`` and beta ``client.beta.realtime``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
from interop_helpers import undeclared_keys

from vkit.realtime.codec import encode_audio
from vkit.realtime.server import LocalServer

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.timeout(60)

BETA_AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}


class Client:
    """One SDK connection and the events it has parsed."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.events: list[Any] = []

    async def until(self, wire_type: str, count: int = 1, timeout_s: float = 15.0) -> list[Any]:
        async def read() -> None:
            while sum(e.type == wire_type for e in self.events) < count:
                self.events.append(await self.connection.recv())

        await asyncio.wait_for(read(), timeout_s)
        return [e for e in self.events if e.type == wire_type]

    async def append(self, audio: np.ndarray, frame_ms: int = 40) -> None:
        step = 24 * frame_ms
        for start in range(0, audio.size, step):
            await self.connection.input_audio_buffer.append(audio=encode_audio(audio[start : start + step]))

    def of(self, wire_type: str) -> list[Any]:
        return [e for e in self.events if e.type == wire_type]


async def _run(dialect: str, body: Any, **server_options: Any) -> Client:
    async with LocalServer(**{"output_pace": 0, **server_options}) as server:
        client = openai.AsyncOpenAI(api_key="dummy-local-key", websocket_base_url=server.url.rsplit("/realtime", 1)[0])
        realtime = client.realtime if dialect == "ga" else client.beta.realtime
        async with realtime.connect(model="gpt-realtime" if dialect == "ga" else "gpt-4o-realtime-preview") as conn:
            wrapped = Client(conn)
            await wrapped.until("session.created")
            await body(wrapped)
            return wrapped


def _manual(dialect: str) -> dict[str, Any]:
    return {"type": "realtime", "audio": {"input": {"turn_detection": None}}} if dialect == "ga" else {
        "turn_detection": None}


def _check_strict(client: Client) -> None:
    extra = [(e.type, k) for e in client.events for k in undeclared_keys(e)]
    assert not extra, f"server events carry keys the SDK's models do not declare: {extra[:5]}"


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_audio_in_audio_out_with_manual_turns(dialect, turns_24k):
    async def body(client: Client) -> None:
        await client.connection.session.update(session=_manual(dialect))
        await client.until("session.updated")
        await client.append(turns_24k[0])
        await client.connection.input_audio_buffer.commit()
        await client.connection.response.create()
        await client.until("response.done")

    client = asyncio.run(_run(dialect, body))
    assert client.of("response.done")[0].response.status == "completed"
    audio = sum(len(e.delta) for e in client.of(BETA_AUDIO_DELTA[dialect]))
    assert audio > 0 and not client.of("error")
    _check_strict(client)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_server_vad_turn(dialect, turns_24k):
    async def body(client: Client) -> None:
        await client.append(turns_24k[0])
        await client.until("response.done")

    client = asyncio.run(_run(dialect, body))
    stopped = client.of("input_audio_buffer.speech_stopped")
    assert len(client.of("input_audio_buffer.speech_started")) == len(stopped) == 1
    assert client.of("input_audio_buffer.committed")[0].item_id == stopped[0].item_id
    assert client.of(BETA_AUDIO_DELTA[dialect]) and client.of("response.done")[0].response.status == "completed"
    _check_strict(client)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_barge_in_cancels_the_answer_and_truncates_it(dialect, turns_24k):
    async def body(client: Client) -> None:
        await client.append(turns_24k[0])
        await client.until(BETA_AUDIO_DELTA[dialect], count=3)
        delta = client.of(BETA_AUDIO_DELTA[dialect])[0]
        await client.append(turns_24k[1])  # the user speaks over the answer: server VAD interrupts it
        await client.until("input_audio_buffer.speech_started", count=2)
        await client.connection.conversation.item.truncate(item_id=delta.item_id, content_index=0, audio_end_ms=40)
        await client.until("conversation.item.truncated")
        await client.until("response.done", count=2)

    client = asyncio.run(_run(dialect, body, output_pace=1.0))
    first, second = client.of("response.done")[:2]
    assert first.response.status == "cancelled" and second.response.status == "completed"
    assert client.of("conversation.item.truncated")[0].audio_end_ms == 40 and not client.of("error")


async def get_weather_schema() -> dict[str, Any]:
    return {"type": "function", "name": "get_weather", "description": "Get the weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "default": "Paris"}},
                           "required": ["city"]}}


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_tool_round_trip(dialect, turns_24k):
    async def body(client: Client) -> None:
        session = {**_manual(dialect), "tools": [await get_weather_schema()], "tool_choice": "required"}
        await client.connection.session.update(session=session)
        await client.until("session.updated")
        await client.append(turns_24k[0])
        await client.connection.input_audio_buffer.commit()
        await client.connection.response.create()
        done = await client.until("response.function_call_arguments.done", timeout_s=5)
        await client.until("response.done")
        await client.connection.conversation.item.create(item={
            "type": "function_call_output", "call_id": done[0].call_id, "output": json.dumps({"sky": "clear"})})
        await client.connection.response.create()
        await client.until("response.done", count=2)

    client = asyncio.run(_run(dialect, body, responder="tools"))
    assert client.of("response.done")[1].response.status == "completed"


def test_text_output():
    async def body(client: Client) -> None:
        await client.connection.session.update(session={**_manual("ga"), "output_modalities": ["text"]})
        await client.until("session.updated")
        await client.connection.conversation.item.create(item={
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello there"}]})
        await client.connection.response.create()
        await client.until("response.done")

    client = asyncio.run(_run("ga", body, responder="scripted", replies=["Hello back"]))
    assert client.of("response.done")[0].response.output_modalities == ["text"]
    assert client.of("response.output_text.delta") and not client.of("response.output_audio.delta")


def test_response_metadata_is_returned_as_sent(turns_24k):
    async def body(client: Client) -> None:
        await client.connection.session.update(session=_manual("ga"))
        await client.append(turns_24k[0])
        await client.connection.input_audio_buffer.commit()
        await client.connection.response.create(response={"metadata": {"client_event_id": "abc"}})
        await client.until("response.done")

    client = asyncio.run(_run("ga", body))
    assert (client.of("response.created")[0].response.metadata or {}).get("client_event_id") == "abc"
