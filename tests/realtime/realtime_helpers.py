"""Helpers for Realtime tests: a raw loopback client and SDK schema validation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, get_args

import numpy as np
from websockets.asyncio.client import connect

from vkit.realtime.codec import encode_audio

DATA = Path(__file__).resolve().parents[2] / "data"


def validate_with_sdk(events: list[dict[str, Any]], dialect: str = "ga") -> None:
    """Every server event must validate against the official SDK's pydantic model for its type."""
    models = _sdk_models(dialect)
    for event in events:
        model = models.get(event["type"])
        assert model is not None, f"the SDK's {dialect} union has no event type {event['type']!r}"
        model.model_validate(event)


def _sdk_models(dialect: str) -> dict[str, Any]:
    if dialect == "ga":
        from openai.types.realtime import RealtimeServerEvent
    else:
        from openai.types.beta.realtime import RealtimeServerEvent
    union = get_args(RealtimeServerEvent)[0]
    return {get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(union)}


class RawClient:
    """A bare websockets client that records every server event with its arrival time."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.events: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RawClient:
        self.ws = await connect(self.url, additional_headers=self.headers, max_size=None)
        self._reader = asyncio.ensure_future(self._read())
        await self.wait_for("session.created")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._reader is not None
        self._reader.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        async for message in self.ws:
            self.events.append(json.loads(message))
            self.arrivals.append(asyncio.get_running_loop().time())

    async def send(self, **event: Any) -> None:
        await self.ws.send(json.dumps(event))

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def append(self, audio: np.ndarray, frame_ms: int = 20, realtime: bool = False) -> None:
        step = 24 * frame_ms
        for start in range(0, audio.size, step):
            await self.send(type="input_audio_buffer.append", audio=encode_audio(audio[start : start + step]))
            await asyncio.sleep(frame_ms / 1000 if realtime else 0)

    async def wait_for(self, wire_type: str, count: int = 1, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = [e for e in self.events if e["type"] == wire_type]
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {count} x {wire_type} within {timeout_s} s; got {[e['type'] for e in self.events]}")
            await asyncio.sleep(0.01)

    def of(self, wire_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == wire_type]


# A thinking pause that Smart Turn scores incomplete (0.01-0.11 after 100-600 ms of silence) and a completion it
# scores complete (0.76 for the whole): wide margins, so the tests hold on any CPU (the first half alone, "... we
# could", scored 0.33-0.81 and fell either side of 0.5 with the machine).
INCOMPLETE = "I was thinking that maybe we could go to the"
COMPLETE = "cinema tomorrow."


def voiced_speech_24k(text: str) -> np.ndarray:
    """espeak-ng speech of ``text`` at 24 kHz, trimmed to its first and last sample above -60 dBFS."""
    from vkit.speech import Speech

    audio = Speech("espeak-ng").synthesise(text)
    voiced = np.flatnonzero(np.abs(audio) > 1e-3)
    return audio[voiced[0]: voiced[-1] + 1]
