"""LiveKit Agents' ``livekit.plugins.openai.realtime.RealtimeModel``, driven without a room.

The model's ``RealtimeSession`` is used as ``AgentSession`` uses it: audio pushed as ``rtc.AudioFrame``s,
``generate_reply()`` (which matches the reply by ``response.metadata.client_event_id``), generations read
from ``generation_created`` (message audio/text streams, function calls).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from interop_helpers import RATE_HZ

from vkit.realtime.server import LocalServer
from vkit.units import float_to_pcm16_bytes, ms_to_samples

lk_openai = pytest.importorskip("livekit.plugins.openai")
rtc = pytest.importorskip("livekit.rtc")
llm = pytest.importorskip("livekit.agents.llm")
realtime_types = pytest.importorskip("openai.types.realtime")
pytestmark = pytest.mark.timeout(60)


class LiveKitClient:
    """One LiveKit RealtimeSession against the local server, recording what it sees."""

    def __init__(self, server: LocalServer, **options: Any) -> None:
        base_url = server.url.replace("ws://", "http://").rsplit("/realtime", 1)[0]
        self.model = lk_openai.realtime.RealtimeModel(base_url=base_url, api_key="dummy-local-key", **options)
        self.events: list[dict[str, Any]] = []
        self.generations: list[dict[str, Any]] = []
        self.speech_started = 0
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> LiveKitClient:
        self.session = self.model.session()
        self.session.on("openai_server_event_received", self.events.append)
        self.session.on("generation_created", self._on_generation)
        self.session.on("input_speech_started", lambda _: setattr(self, "speech_started", self.speech_started + 1))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._readers:
            task.cancel()
        await self.session.aclose()
        await self.model.aclose()

    def _on_generation(self, event: Any) -> None:
        record: dict[str, Any] = {"user_initiated": event.user_initiated, "num_samples": 0, "text": "",
                                  "calls": [], "modalities": None, "done": False}
        self.generations.append(record)

        async def read() -> None:
            async for message in event.message_stream:
                async for frame in message.audio_stream:
                    record["num_samples"] += frame.samples_per_channel
                async for piece in message.text_stream:
                    record["text"] += str(piece)
                record["modalities"] = await message.modalities
            async for call in event.function_stream:
                record["calls"].append(call)
            record["done"] = True

        self._readers.append(asyncio.ensure_future(read()))

    def push(self, audio: np.ndarray, frame_ms: int = 20) -> None:
        step = ms_to_samples(frame_ms, RATE_HZ)
        for start in range(0, audio.size, step):
            chunk = audio[start : start + step]
            self.session.push_audio(rtc.AudioFrame(float_to_pcm16_bytes(chunk), RATE_HZ, 1, chunk.size))

    async def until(self, predicate: Any, timeout_s: float = 15.0) -> None:
        async def wait() -> None:
            while not predicate():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(wait(), timeout_s)

    def of(self, wire_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == wire_type]


def server_vad() -> Any:
    return realtime_types.realtime_audio_input_turn_detection.ServerVad(type="server_vad", create_response=True,
                                                                         interrupt_response=True)


def _run(body: Any, client_options: dict[str, Any] | None = None, **server_options: Any) -> LiveKitClient:
    async def main() -> LiveKitClient:
        async with LocalServer(**{"output_pace": 0, **server_options}) as server:
            async with LiveKitClient(server, **(client_options or {})) as client:
                await client.until(lambda: client.of("session.updated"))
                await body(client)
                return client

    return asyncio.run(main())


def test_a_server_vad_turn_streams_audio_back(turns_24k):
    async def body(client: LiveKitClient) -> None:
        client.push(turns_24k[0])
        await client.until(lambda: client.generations and client.generations[0]["done"])

    client = _run(body, {"turn_detection": server_vad()})
    assert client.speech_started == 1 and not client.generations[0]["user_initiated"]
    assert client.generations[0]["num_samples"] > 0 and "audio" in client.generations[0]["modalities"]
    assert not client.of("error")


def test_barge_in_interrupts_the_answer(turns_24k):
    async def body(client: LiveKitClient) -> None:
        client.push(turns_24k[0])
        await client.until(lambda: client.generations and client.generations[0]["num_samples"] > 0)
        client.push(turns_24k[1])
        await client.until(lambda: len(client.generations) == 2 and client.generations[1]["done"])

    client = _run(body, {"turn_detection": server_vad()}, output_pace=1.0)
    statuses = [e["response"]["status"] for e in client.of("response.done")]
    assert client.speech_started == 2 and statuses[:2] == ["cancelled", "completed"]


def test_generate_reply_returns_with_manual_turns(turns_24k):
    async def body(client: LiveKitClient) -> None:
        client.push(turns_24k[0])
        client.session.commit_audio()
        created = await asyncio.wait_for(client.session.generate_reply(), 4.0)
        assert created.user_initiated
        await client.until(lambda: client.generations and client.generations[0]["done"])

    client = _run(body, {"turn_detection": None})
    assert client.generations[0]["num_samples"] > 0


def test_a_function_call_reaches_the_function_stream(turns_24k):
    @llm.function_tool
    async def get_weather(city: str) -> str:
        """Get the weather in a city."""
        return f"sunny in {city}"

    async def body(client: LiveKitClient) -> None:
        await client.session.update_tools([get_weather])
        client.push(turns_24k[0])
        await client.until(lambda: client.generations and client.generations[0]["done"], timeout_s=5)

    client = _run(body, {"turn_detection": server_vad(), "tool_choice": "required"}, responder="tools")
    assert [c.name for c in client.generations[0]["calls"]] == ["get_weather"]


def test_text_modality(turns_24k):
    async def body(client: LiveKitClient) -> None:
        client.push(turns_24k[0])
        await client.until(lambda: client.generations and client.generations[0]["done"])

    client = _run(body, {"turn_detection": server_vad(), "modalities": ["text"]})
    assert client.of("response.done")[0]["response"]["output_modalities"] == ["text"]
    assert client.of("response.output_text.delta") and not client.of("response.output_audio.delta")
    assert client.generations[0]["modalities"] == ["text"] and client.generations[0]["text"]
