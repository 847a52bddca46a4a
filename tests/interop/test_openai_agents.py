"""The OpenAI Agents SDK's ``agents.realtime`` (``RealtimeAgent`` + ``RealtimeRunner``), pointed at 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vkit.realtime.server import LocalServer
from vkit.units import float_to_pcm16_bytes, ms_to_samples

agents = pytest.importorskip("agents")
realtime = pytest.importorskip("agents.realtime")
pytestmark = pytest.mark.timeout(60)


@agents.function_tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"sunny in {city}"


class AgentsClient:
    """One RealtimeSession; ``events`` are the session's events, ``raw`` the server events as dicts."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.events: list[Any] = []
        self.raw: list[dict[str, Any]] = []

    async def until(self, predicate: Any, timeout_s: float = 15.0) -> None:
        async def read() -> None:
            if predicate():
                return
            async for event in self.session:
                self.events.append(event)
                if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                    self.raw.append(event.data.data)
                if predicate():
                    return

        await asyncio.wait_for(read(), timeout_s)

    async def send(self, audio: Any, commit: bool = False) -> None:
        step = ms_to_samples(40, 24_000)
        for start in range(0, audio.size, step):
            last = start + step >= audio.size
            await self.session.send_audio(float_to_pcm16_bytes(audio[start : start + step]), commit=commit and last)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]

    def raw_of(self, wire_type: str) -> list[dict[str, Any]]:
        return [e for e in self.raw if e.get("type") == wire_type]


def _run(body: Any, settings: dict[str, Any], tools: list[Any] = (), **server_options: Any) -> AgentsClient:
    async def main() -> AgentsClient:
        async with LocalServer(**{"output_pace": 0, **server_options}) as server:
            agent = realtime.RealtimeAgent(name="assistant", instructions="Be brief.", tools=list(tools))
            runner = realtime.RealtimeRunner(agent, config={"model_settings": settings})
            session = await runner.run(model_config={"url": server.url + "?model=gpt-realtime",
                                                     "api_key": "dummy-local-key"})
            async with session:
                client = AgentsClient(session)
                await client.until(lambda: client.raw_of("session.updated"))
                await body(client)
                return client

    return asyncio.run(main())


SERVER_VAD = {"turn_detection": {"type": "server_vad", "interrupt_response": True}}


def test_a_server_vad_turn_plays_audio(turns_24k):
    async def body(client: AgentsClient) -> None:
        await client.send(turns_24k[0])
        await client.until(lambda: client.of("agent_end"))

    client = _run(body, SERVER_VAD)
    assert client.of("audio") and client.of("audio_end") and not client.of("error")
    assert client.raw_of("response.done")[0]["response"]["status"] == "completed"


def test_a_manual_turn(turns_24k):
    async def body(client: AgentsClient) -> None:
        await client.send(turns_24k[0], commit=True)
        await client.until(lambda: client.raw_of("input_audio_buffer.committed"))
        await client.session.model.send_event(realtime.model_inputs.RealtimeModelSendRawMessage(
            message={"type": "response.create"}))
        await client.until(lambda: client.of("agent_end"))

    client = _run(body, {"turn_detection": None})
    assert client.of("audio") and not client.raw_of("input_audio_buffer.speech_started")


def test_barge_in_interrupts_the_audio(turns_24k):
    async def body(client: AgentsClient) -> None:
        await client.send(turns_24k[0])
        await client.until(lambda: client.of("audio"))
        await client.send(turns_24k[1])
        await client.until(lambda: len(client.raw_of("response.done")) == 2)

    client = _run(body, SERVER_VAD, output_pace=1.0)
    assert client.of("audio_interrupted")
    assert [d["response"]["status"] for d in client.raw_of("response.done")] == ["cancelled", "completed"]
    assert not client.of("error")


def test_a_tool_round_trip(turns_24k):
    async def body(client: AgentsClient) -> None:
        await client.send(turns_24k[0])
        await client.until(lambda: client.of("tool_end"), timeout_s=5)
        await client.until(lambda: len(client.raw_of("response.done")) == 2)

    client = _run(body, {**SERVER_VAD, "tool_choice": "required"}, tools=[get_weather], responder="tools")
    assert client.of("tool_start")[0].tool.name == "get_weather"
    assert client.raw_of("response.done")[-1]["response"]["status"] == "completed"


def test_text_output(turns_24k):
    async def body(client: AgentsClient) -> None:
        await client.send(turns_24k[0])
        await client.until(lambda: client.raw_of("response.done"))

    client = _run(body, {**SERVER_VAD, "output_modalities": ["text"]})
    assert client.raw_of("response.output_text.delta") and not client.of("audio")
