"""The server side of the Responses API, sans-I/O: a request body in, the timed event stream out.

``ResponsesServerSession`` keeps the responses it produced (so ``previous_response_id`` continues a
conversation), validates a request as OpenAI does (an unknown previous response, a missing input, a second
response while one streams on a WebSocket) and returns each server event with its offset from the request,
from a ``RuleModel``: time to first token and tokens per second injectable, the answer from the transcript
(vkit.speech's rules), a function call when a declared tool's name matches what was said. The I/O layer
sleeps to each offset and sends. Usage is computed the way the API reports it (tokens at ~4 characters
each, the earlier conversation counted as cached input). No sockets, no clock.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vkit.errors import ConfigError, got
from vkit.speech.replies import answer
from vkit.units import ms_to_s

__all__ = ["ResponsesServerSession", "RuleModel", "Timed", "RequestRejected"]


@dataclass(frozen=True)
class Timed:
    """A server event due ``offset_s`` after the request arrived."""

    offset_s: float
    event: dict[str, Any]


class RequestRejected(Exception):
    """A request the server refuses: ``status`` for HTTP, ``error`` the API's error object."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = {"type": "invalid_request_error", "code": code, "message": message, "param": param}

    def websocket_event(self) -> dict[str, Any]:
        """The error as WebSocket mode sends it (the connection stays open)."""
        return {"type": "error", "status": self.status, "error": self.error}

    def http_body(self) -> dict[str, Any]:
        return {"error": self.error}


@dataclass
class RuleModel:
    """The local "model": ``first_token_ms`` before the first token, then ``tokens_per_s``."""

    first_token_ms: float = 200.0
    tokens_per_s: float = 50.0

    def __post_init__(self) -> None:
        if self.first_token_ms < 0:
            raise ConfigError(f"first_token_ms must be >= 0 {got(self.first_token_ms)}")
        if self.tokens_per_s <= 0:
            raise ConfigError(f"tokens_per_s must be > 0 {got(self.tokens_per_s)}")

    def decide(self, said: str, tool_output: str | None, tools: Sequence[dict[str, Any]]) -> tuple[str, Any]:
        """("text", answer) or ("call", (name, arguments)) for one turn."""
        if tool_output is not None:
            return "text", f"{tool_output.strip().rstrip('.')}."
        words = set(re.findall(r"[a-z]+", said.lower()))
        for tool in tools:
            name = tool.get("name", "")
            if tool.get("type") == "function" and words & {w for w in name.lower().split("_") if len(w) > 3}:
                properties = (tool.get("parameters") or {}).get("properties") or {}
                arguments = {k: said for k, v in properties.items() if v.get("type") == "string"}
                return "call", (name, json.dumps(arguments))
        return "text", answer(said)


def num_tokens(text: str) -> int:
    """Tokens as the local server counts them: about four characters each (OpenAI's rule of thumb)."""
    return math.ceil(len(text) / 4) if text else 0


@dataclass
class _Stored:
    context_tokens: int  # everything the conversation holds up to and including this response


@dataclass
class ResponsesServerSession:
    """The responses one server (or one WebSocket connection's store) produced, and the next ids."""

    model: RuleModel = field(default_factory=RuleModel)
    stored: dict[str, _Stored] = field(default_factory=dict)
    streaming: bool = False
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _id(self, prefix: str) -> str:
        return f"{prefix}_vkit{next(self._ids):06d}"

    def respond(self, body: Any, *, created_at_s: float) -> list[Timed]:
        """The events answering one request body, or RequestRejected."""
        if not isinstance(body, dict):
            raise RequestRejected(400, "invalid_request_body", "the request body must be a JSON object")
        if not isinstance(body.get("model"), str):
            raise RequestRejected(400, "missing_required_parameter", "Missing required parameter: 'model'.", "model")
        if "input" not in body:
            raise RequestRejected(400, "missing_required_parameter", "Missing required parameter: 'input'.", "input")
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.stored:
            raise RequestRejected(400, "previous_response_not_found",
                                  f"Previous response with id '{previous}' not found.", "previous_response_id")
        if self.streaming:
            raise RequestRejected(409, "response_already_in_progress",
                                  "A response is already in progress on this connection.")
        said, tool_output, input_text = _read_input(body["input"])
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        kind, result = self.model.decide(said, tool_output, tools)
        cached = self.stored[previous].context_tokens if previous else 0
        input_tokens = cached + num_tokens((body.get("instructions") or "") + input_text + json.dumps(tools))
        response_id, item_id = self._id("resp"), self._id("msg" if kind == "text" else "fc")
        response = {"id": response_id, "object": "response", "created_at": int(created_at_s), "model": body["model"],
                    "status": "in_progress", "output": [], "parallel_tool_calls": True, "tool_choice": "auto",
                    "tools": tools, "previous_response_id": previous, "instructions": body.get("instructions"),
                    "error": None, "incomplete_details": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0,
                    "usage": None}
        stream = _Stream(body.get("stream_id"))
        step_s = 1.0 / self.model.tokens_per_s
        t_s = 0.0
        stream.add(t_s, {"type": "response.created", "response": dict(response)})
        stream.add(t_s, {"type": "response.in_progress", "response": dict(response)})
        t_s = ms_to_s(self.model.first_token_ms)
        if body.get("generate") is False:  # warm the conversation's state: input kept, no output
            usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
                     "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": input_tokens}
            stream.add(0.0, {"type": "response.completed", "response": {**response, "status": "completed", "usage": usage}})
            self.stored[response_id] = _Stored(input_tokens)
            return stream.events
        if kind == "text":
            pieces = re.findall(r"\S+\s*", result)
            text = "".join(pieces)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
            stream.add(t_s, {"type": "response.output_item.added", "output_index": 0, "item": dict(item)})
            stream.add(t_s, {"type": "response.content_part.added", "item_id": item_id, "output_index": 0,
                             "content_index": 0, "part": dict(part)})
            for n, piece in enumerate(pieces):
                stream.add(t_s + n * step_s, {"type": "response.output_text.delta", "item_id": item_id,
                                              "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []})
            t_s += max(len(pieces) - 1, 0) * step_s
            done_part = {**part, "text": text}
            stream.add(t_s, {"type": "response.output_text.done", "item_id": item_id, "output_index": 0,
                             "content_index": 0, "text": text, "logprobs": []})
            stream.add(t_s, {"type": "response.content_part.done", "item_id": item_id, "output_index": 0,
                             "content_index": 0, "part": done_part})
            item = {**item, "status": "completed", "content": [done_part]}
            num_output = len(pieces)
        else:
            name, arguments = result
            call_id = self._id("call")
            item = {"id": item_id, "type": "function_call", "status": "in_progress", "call_id": call_id,
                    "name": name, "arguments": ""}
            stream.add(t_s, {"type": "response.output_item.added", "output_index": 0, "item": dict(item)})
            stream.add(t_s, {"type": "response.function_call_arguments.delta", "item_id": item_id,
                             "output_index": 0, "delta": arguments})
            stream.add(t_s, {"type": "response.function_call_arguments.done", "item_id": item_id,
                             "output_index": 0, "arguments": arguments, "name": name})
            item = {**item, "status": "completed", "arguments": arguments}
            num_output = num_tokens(name + arguments)
        stream.add(t_s, {"type": "response.output_item.done", "output_index": 0, "item": item})
        usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
                 "output_tokens": num_output, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": input_tokens + num_output}
        stream.add(t_s, {"type": "response.completed",
                         "response": {**response, "status": "completed", "output": [item], "usage": usage}})
        self.stored[response_id] = _Stored(input_tokens + num_output)
        return stream.events


class _Stream:
    def __init__(self, stream_id: str | None) -> None:
        self.events: list[Timed] = []
        self.lane = {"stream_id": stream_id} if isinstance(stream_id, str) else {}

    def add(self, offset_s: float, event: dict[str, Any]) -> None:
        self.events.append(Timed(offset_s, {**event, "sequence_number": len(self.events), **self.lane}))


def _read_input(items: Any) -> tuple[str, str | None, str]:
    """(what the user said last, the last tool output if the input ends with one, all input text)."""
    if isinstance(items, str):
        return items, None, items
    if not isinstance(items, list):
        raise RequestRejected(400, "invalid_type", f"'input' must be a string or a list {got(type(items).__name__)}",
                              "input")
    said, tool_output, texts = "", None, []
    for item in items:
        if not isinstance(item, dict):
            raise RequestRejected(400, "invalid_type", f"each input item must be an object {got(item)}", "input")
        if item.get("type") == "function_call_output":
            tool_output = str(item.get("output", ""))
            texts.append(tool_output)
            continue
        content = item.get("content", "")
        text = content if isinstance(content, str) else " ".join(
            str(c.get("text", "")) for c in content if isinstance(c, dict))
        texts.append(text)
        if item.get("role", "user") == "user":
            said, tool_output = text, None
    return said, tool_output, " ".join(texts)
