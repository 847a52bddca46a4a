"""The client side of the Responses API, sans-I/O: request bodies in, typed stream events out.

One ``ResponsesClient`` holds a conversation: each ``request(...)`` carries only the new input items plus
``previous_response_id`` (the server keeps the state), the same body whether it goes out as a WebSocket-mode
``response.create`` event or as the JSON of ``POST /v1/responses`` with ``stream: true``. ``receive`` turns
one server event (a WebSocket message or one server-sent event's data) into a typed event, checking the
stream's ``sequence_number``. ``ServerSentEvents`` splits an HTTP body into events. No sockets, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from vkit.errors import LocalProtocolError, RemoteProtocolError, got

__all__ = ["ResponsesClient", "ResponseStarted", "TextDelta", "ToolCall", "ResponseCompleted", "ResponseError",
           "ServerSentEvents", "encode_sse"]

Transport = Literal["websocket", "http"]


@dataclass(frozen=True)
class ResponseStarted:
    """``response.created``: the server accepted the request."""

    response_id: str


@dataclass(frozen=True)
class TextDelta:
    """A piece of output text (``response.output_text.delta``)."""

    response_id: str
    text: str


@dataclass(frozen=True)
class ToolCall:
    """A complete function call (``response.output_item.done`` of a ``function_call`` item)."""

    response_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ResponseCompleted:
    """``response.completed`` (or ``.incomplete``/``.failed``): the response's text, calls and usage."""

    response_id: str
    status: str
    text: str
    usage: dict[str, Any] = field(default_factory=dict)
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class ResponseError:
    """An ``error`` event: the server refused the request (the conversation is unchanged)."""

    code: str | None
    message: str


StreamEvent = ResponseStarted | TextDelta | ToolCall | ResponseCompleted | ResponseError | None


class ResponsesClient:
    """One conversation's client state: the model, tools, and the last completed response."""

    def __init__(self, model: str, *, instructions: str | None = None,
                 tools: Sequence[dict[str, Any]] = ()) -> None:
        self.model = model
        self.instructions = instructions
        self.tools = list(tools)
        self.previous_response_id: str | None = None
        self.active_response_id: str | None = None
        self.pending = False
        self._last_sequence: int | None = None
        self._text: list[str] = []
        self._calls: list[ToolCall] = []

    def request(self, input_items: str | Sequence[dict[str, Any]], *, transport: Transport,
                generate: bool = True) -> dict[str, Any]:
        """The body of the next turn: only ``input_items`` are new; the rest is by ``previous_response_id``.
        ``generate=False`` prepares the conversation's state without output (a warm-up)."""
        if self.pending:
            raise LocalProtocolError(f"a response is still streaming; wait for it before the next request "
                                     f"{got(self.active_response_id)}")
        body: dict[str, Any] = {"model": self.model, "input": input_items if isinstance(input_items, str)
                                else list(input_items)}
        if self.previous_response_id is not None:
            body["previous_response_id"] = self.previous_response_id
        if self.instructions is not None:
            body["instructions"] = self.instructions
        if self.tools:
            body["tools"] = self.tools
        if not generate:
            body["generate"] = False
        if transport == "http":
            body["stream"] = True
        self.pending = True
        self._last_sequence = None
        self._text, self._calls = [], []
        return body

    @staticmethod
    def websocket_message(body: dict[str, Any]) -> str:
        """A request body as the WebSocket mode's ``response.create`` client event."""
        return json.dumps({"type": "response.create", **{k: v for k, v in body.items() if k != "stream"}})

    def receive(self, data: str | bytes | dict[str, Any]) -> StreamEvent:
        """One server event -> a typed event (None for events that carry nothing the client acts on)."""
        event = data if isinstance(data, dict) else _loads(data)
        kind = event.get("type")
        sequence = event.get("sequence_number")
        if isinstance(sequence, int):
            if self._last_sequence is not None and sequence != self._last_sequence + 1:
                raise RemoteProtocolError(f"server events out of order: sequence_number after "
                                          f"{self._last_sequence} {got(sequence)}")
            self._last_sequence = sequence
        if kind == "error":
            self.pending = False
            error = event.get("error") if isinstance(event.get("error"), dict) else event
            return ResponseError(error.get("code"), str(error.get("message", "")))
        response = event.get("response") or {}
        if kind == "response.created":
            self.active_response_id = response.get("id")
            return ResponseStarted(str(self.active_response_id))
        rid = self.active_response_id or ""
        if kind == "response.output_text.delta":
            self._text.append(event["delta"])
            return TextDelta(rid, event["delta"])
        if kind == "response.output_item.done" and (event.get("item") or {}).get("type") == "function_call":
            item = event["item"]
            call = ToolCall(rid, item["call_id"], item["name"], item.get("arguments", ""))
            self._calls.append(call)
            return call
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.pending = False
            self.active_response_id = None
            status = response.get("status", kind.rsplit(".", 1)[1])
            if status != "failed":
                self.previous_response_id = response.get("id")
            return ResponseCompleted(response.get("id", rid), status, "".join(self._text), response.get("usage") or {},
                                     tuple(self._calls))
        return None


def tool_outputs(calls: Sequence[ToolCall], run: Callable[[ToolCall], str]) -> list[dict[str, Any]]:
    """The ``function_call_output`` input items answering ``calls`` (``run`` computes each output)."""
    return [{"type": "function_call_output", "call_id": c.call_id, "output": run(c)} for c in calls]


class ServerSentEvents:
    """Split a ``text/event-stream`` body, fed in arbitrary chunks, into each event's ``data``."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        out = []
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            data = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
            if data and data != [b"[DONE]"]:
                out.append(b"\n".join(data).decode())
        return out


def encode_sse(event: dict[str, Any]) -> bytes:
    """One server-sent event as the Responses API frames it: ``event:`` its type, ``data:`` its JSON."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _loads(data: str | bytes) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise RemoteProtocolError(f"the server sent a frame that is not JSON {got(str(data)[:80])}") from exc
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise RemoteProtocolError(f"the server sent an event without a type {got(str(data)[:80])}")
    return event
