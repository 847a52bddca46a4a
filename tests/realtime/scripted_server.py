"""A tiny scripted Realtime server on 127.0.0.1 that answers the first turn with function calls.

It sends the event sequence OpenAI's server sends for a turn with parallel function calls (GA shapes; beta
names when the client asks for beta), then, after the client's ``function_call_output`` items and its
``response.create``, an audio answer with its transcript. It records every client event it receives and
every server event it sends, so tests can check both sides.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

from vkit.realtime.codec import encode_audio

_BETA_NAMES = {"response.output_audio.delta": "response.audio.delta", "response.output_audio.done": "response.audio.done",
               "response.output_audio_transcript.delta": "response.audio_transcript.delta",
               "response.output_audio_transcript.done": "response.audio_transcript.done",
               "conversation.item.added": "conversation.item.created"}


class ScriptedToolServer:
    """``calls``: (name, arguments dict) of the calls the first response makes, in parallel."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]], answer_text: str = "It is sunny in Paris.",
                 appends_before_turn: int = 5) -> None:
        self.calls = calls
        self.answer_text = answer_text
        self.appends_before_turn = appends_before_turn
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.errors: list[str] = []  # protocol rules the client broke
        self.url = ""
        self._ids = itertools.count(1)

    async def __aenter__(self) -> ScriptedToolServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None)
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1/realtime"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    async def _handle(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        beta = websocket.request.headers.get("OpenAI-Beta") == "realtime=v1"
        state = {"num_appends": 0, "turn_taken": False, "outputs": set(), "active": None, "call_ids": []}

        async def send(wire_type: str, **fields: Any) -> None:
            event = {"type": wire_type, "event_id": self._id("event"), **fields}
            self.sent.append(event)
            await websocket.send(json.dumps({**event, "type": _BETA_NAMES.get(wire_type, wire_type) if beta
                                             else wire_type}))

        session = {"type": "realtime", "object": "realtime.session", "id": "sess_scripted", "model": "gpt-realtime",
                   "output_modalities": ["audio"], "instructions": "", "tools": [], "tool_choice": "auto"}
        await send("session.created", session=session)
        async for message in websocket:
            event = json.loads(message)
            self.received.append(event)
            kind = event["type"]
            if kind == "session.update":
                session = {**session, **event["session"]}
                await send("session.updated", session=session)
            elif kind == "input_audio_buffer.append":
                state["num_appends"] += 1
                if state["num_appends"] == self.appends_before_turn and not state["turn_taken"]:
                    state["turn_taken"] = True
                    await self._user_turn(send, state)
            elif kind == "conversation.item.create":
                item = event["item"]
                if item.get("type") == "function_call_output":
                    if item.get("call_id") not in state["call_ids"]:
                        self.errors.append(f"function_call_output for unknown call_id {item.get('call_id')!r}")
                    state["outputs"].add(item["call_id"])
                    item_id = self._id("item")
                    stored = {"id": item_id, "object": "realtime.item", "type": "function_call_output",
                              "call_id": item["call_id"], "output": item["output"]}
                    await send("conversation.item.added", item=stored, previous_item_id=None)
                    await send("conversation.item.done", item=stored, previous_item_id=None)
            elif kind == "response.create":
                if state["active"] is not None:
                    self.errors.append("response.create while a response is active")
                elif set(state["call_ids"]) - state["outputs"]:
                    self.errors.append("response.create before every call had its output")
                else:
                    await self._answer(send)

    async def _user_turn(self, send: Any, state: dict[str, Any]) -> None:
        user_item = self._id("item")
        await send("input_audio_buffer.speech_started", audio_start_ms=0, item_id=user_item)
        await send("input_audio_buffer.speech_stopped", audio_end_ms=200, item_id=user_item)
        await send("input_audio_buffer.committed", item_id=user_item, previous_item_id=None)
        await send("conversation.item.input_audio_transcription.delta", item_id=user_item, content_index=0,
                   delta="What's the weather ")
        await send("conversation.item.input_audio_transcription.delta", item_id=user_item, content_index=0,
                   delta="in Paris?")
        await send("conversation.item.input_audio_transcription.completed", item_id=user_item, content_index=0,
                   transcript="What's the weather in Paris?",
                   usage={"type": "duration", "seconds": 0.2})
        response_id = self._id("resp")
        state["active"] = response_id
        response = {"object": "realtime.response", "id": response_id, "status": "in_progress", "output": [],
                    "conversation_id": "conv_scripted", "output_modalities": ["audio"], "metadata": None}
        await send("response.created", response=response)
        items = []
        for index, (name, arguments) in enumerate(self.calls):
            call_id, item_id = self._id("call"), self._id("item")
            state["call_ids"].append(call_id)
            item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                    "name": name, "call_id": call_id, "arguments": ""}
            await send("response.output_item.added", response_id=response_id, output_index=index, item=item)
            await send("conversation.item.added", item=item, previous_item_id=None)
            text = json.dumps(arguments)
            for start in range(0, len(text), 7):
                await send("response.function_call_arguments.delta", response_id=response_id, item_id=item_id,
                           output_index=index, call_id=call_id, delta=text[start : start + 7])
            await send("response.function_call_arguments.done", response_id=response_id, item_id=item_id,
                       output_index=index, call_id=call_id, name=name, arguments=text)
            done = {**item, "status": "completed", "arguments": text}
            await send("conversation.item.done", item=done, previous_item_id=None)
            await send("response.output_item.done", response_id=response_id, output_index=index, item=done)
            items.append(done)
        state["active"] = None
        await send("response.done", response={**response, "status": "completed", "output": items,
                                              "usage": _usage()})

    async def _answer(self, send: Any) -> None:
        response_id, item_id = self._id("resp"), self._id("item")
        response = {"object": "realtime.response", "id": response_id, "status": "in_progress", "output": [],
                    "conversation_id": "conv_scripted", "output_modalities": ["audio"], "metadata": None}
        await send("response.created", response=response)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        ids = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await send("response.output_item.added", response_id=response_id, output_index=0, item=item)
        await send("conversation.item.added", item=item, previous_item_id=None)
        await send("response.content_part.added", **ids, part={"type": "audio", "transcript": ""})
        tone = (0.2 * np.sin(np.arange(24_000 * 3 // 10) / 7)).astype(np.float32)
        words = self.answer_text.split(" ")
        for index, chunk in enumerate(np.array_split(tone, 3)):
            await send("response.output_audio.delta", **ids, delta=encode_audio(chunk))
            piece = " ".join(words[index * len(words) // 3 : (index + 1) * len(words) // 3])
            await send("response.output_audio_transcript.delta", **ids, delta=piece + (" " if index < 2 else ""))
        await send("response.output_audio.done", **ids)
        await send("response.output_audio_transcript.done", **ids, transcript=self.answer_text)
        part = {"type": "audio", "transcript": self.answer_text}
        await send("response.content_part.done", **ids, part=part)
        done = {**item, "status": "completed", "content": [{"type": "output_audio", "transcript": self.answer_text}]}
        await send("conversation.item.done", item=done, previous_item_id=None)
        await send("response.output_item.done", response_id=response_id, output_index=0, item=done)
        await send("response.done", response={**response, "status": "completed", "output": [done],
                                              "usage": _usage()})

    def of(self, wire_type: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["type"] == wire_type]


def _usage() -> dict[str, Any]:
    return {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10,
            "input_token_details": {"text_tokens": 10, "audio_tokens": 10, "cached_tokens": 0},
            "output_token_details": {"text_tokens": 5, "audio_tokens": 5}}

