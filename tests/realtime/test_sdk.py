"""The official openai SDK's realtime client completes sessions against ``vkit serve`` unchanged."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from openai import AsyncOpenAI
from realtime_helpers import validate_with_sdk

from vkit.realtime.codec import encode_audio
from vkit.realtime.server import LocalServer

pytestmark = pytest.mark.timeout(60)


async def _session(connection, audio_b64: str) -> list[dict]:
    received = []
    await connection.session.update(session={"type": "realtime", "instructions": "Be brief.",
                                              "audio": {"input": {"turn_detection": None}}})
    await connection.input_audio_buffer.append(audio=audio_b64)
    await connection.input_audio_buffer.commit()
    await connection.response.create()
    async for event in connection:
        received.append(event.model_dump(exclude_none=False, by_alias=True))
        if event.type == "response.done":
            break
    return received


def test_the_ga_sdk_client_completes_a_session():
    audio = encode_audio(0.1 * np.sin(np.arange(24_000) / 10).astype(np.float32))

    async def main():
        async with LocalServer(output_pace=0) as server:
            client = AsyncOpenAI(api_key="local-key-not-checked", websocket_base_url=server.url.rsplit("/realtime", 1)[0])
            async with client.realtime.connect(model="gpt-realtime") as connection:
                return await _session(connection, audio)

    events = asyncio.run(main())
    types = [e["type"] for e in events]
    assert types[0] == "session.created" and "session.updated" in types
    assert types.count("response.output_audio.delta") >= 10 and types[-1] == "response.done"
    assert events[-1]["response"]["status"] == "completed"
    validate_with_sdk([{k: v for k, v in e.items() if v is not None} for e in events], "ga")


def test_the_beta_sdk_client_completes_a_session():
    audio = encode_audio(0.1 * np.sin(np.arange(24_000) / 10).astype(np.float32))

    async def main():
        async with LocalServer(output_pace=0) as server:
            client = AsyncOpenAI(api_key="local", websocket_base_url=server.url.rsplit("/realtime", 1)[0])
            received = []
            async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as connection:
                await connection.session.update(session={"turn_detection": None})
                await connection.input_audio_buffer.append(audio=audio)
                await connection.input_audio_buffer.commit()
                await connection.response.create()
                async for event in connection:
                    received.append(event.type)
                    if event.type == "response.done":
                        break
            return received

    types = asyncio.run(main())
    assert types[:2] == ["session.created", "conversation.created"]
    assert "response.audio.delta" in types and types[-1] == "response.done"


def test_the_sync_sdk_client_talks_to_a_server_on_its_own_thread():
    from openai import OpenAI

    audio = encode_audio(0.1 * np.sin(np.arange(24_000) / 10).astype(np.float32))
    running = LocalServer(output_pace=0).run_in_thread()  # for synchronous code: scripts, the sync SDK
    try:
        client = OpenAI(api_key="local", websocket_base_url=running.url.rsplit("/realtime", 1)[0])
        with client.realtime.connect(model="gpt-realtime") as connection:
            connection.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
            connection.input_audio_buffer.append(audio=audio)
            connection.input_audio_buffer.commit()
            connection.response.create()
            types = []
            for event in connection:
                types.append(event.type)
                if event.type == "response.done":
                    break
        with pytest.raises(OSError):  # the port is taken: the error reaches the caller's thread
            LocalServer(port=int(running.url.split(":")[2].split("/")[0])).run_in_thread()
    finally:
        running.stop()
    assert types[0] == "session.created" and "response.output_audio.delta" in types and types[-1] == "response.done"
