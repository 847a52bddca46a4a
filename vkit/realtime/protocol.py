"""Sans-I/O Realtime protocol state machines: text in, typed events out, text to send out.

``ClientProtocol`` tracks what a client needs (the session, the active response, how much audio each
output item has delivered, for truncation) and raises ``LocalProtocolError`` when we misuse the protocol.
Garbage from the server is recorded in ``remote_errors`` and surfaced as ``InvalidEvent``, never raised
out of the reader. ``ServerProtocol`` turns client text into typed events or OpenAI-shaped error events.
No sockets, no asyncio, no clock.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from vkit.errors import LocalProtocolError, RemoteProtocolError, got
from vkit.realtime import events as ev
from vkit.realtime.codec import AUDIO_FORMATS, MAX_DEPTH, Dialect, MissingParameter, decode_event, encode_event
from vkit.realtime.session_config import (
    default_session,
    from_beta,
    input_format_name,
    merge_session,
    output_format_name,
)
from vkit.units import ms_to_whole_samples, samples_to_ms

__all__ = ["ClientProtocol", "ServerProtocol", "InvalidEvent", "ClientState", "OutputItem", "error_event"]


@dataclass(frozen=True, kw_only=True)
class InvalidEvent(ev.UnknownEvent):
    """What the reader yields for a frame the peer should not have sent; ``reason`` says why."""

    reason: str = ""


class ClientState:
    """The states of a client connection, as data."""

    CONNECTING = "connecting"  # socket open, no session.created yet
    OPEN = "open"
    CLOSED = "closed"

    TRANSITIONS = {CONNECTING: {OPEN, CLOSED}, OPEN: {CLOSED}, CLOSED: set()}


@dataclass
class OutputItem:
    """Audio an assistant item has delivered so far (samples at the output format's rate)."""

    item_id: str
    response_id: str | None
    num_samples: int = 0
    transcript: str = ""


@dataclass
class _Response:
    response_id: str
    status: str = "in_progress"
    item_ids: list[str] = field(default_factory=list)


class ClientProtocol:
    """The client side of one Realtime connection."""

    def __init__(self, dialect: Dialect = "ga", *, max_depth: int = MAX_DEPTH) -> None:
        self.dialect = dialect
        self.max_depth = max_depth
        self.state = ClientState.CONNECTING
        self.session: dict[str, Any] = default_session()
        self.num_input_samples = 0  # appended, at the input format's rate
        self.active_response: _Response | None = None
        self.items: dict[str, OutputItem] = {}
        self.remote_errors: list[RemoteProtocolError] = []
        self.server_errors: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    # -- sending ------------------------------------------------------------------------------------

    def send(self, event: ev.ClientEvent) -> str:
        """Validate ``event`` against the connection's state and return the text to send."""
        if self.state == ClientState.CLOSED:
            raise LocalProtocolError(f"cannot send {event.type} on a closed connection {got(self.state)}")
        if event.type == "input_audio_buffer.append":
            self.num_input_samples += _num_samples(event.audio, input_format_name(self.session))  # type: ignore[attr-defined]
        elif event.type == "conversation.item.truncate":
            self._check_truncate(event)
        elif event.type == "input_audio_buffer.clear":
            pass
        if self.dialect == "beta" and event.type == "session.update" and "type" in event.session:  # type: ignore[attr-defined]
            raise LocalProtocolError(f"beta sessions are flat; pass to_beta(...) output {got(event.session)}")  # type: ignore[attr-defined]
        return encode_event(event, self.dialect)

    def _check_truncate(self, event: ev.ClientEvent) -> None:
        item_id, end_ms = event.item_id, event.audio_end_ms  # type: ignore[attr-defined]
        item = self.items.get(item_id)
        if item is None:
            raise LocalProtocolError(f"truncate names an item this connection never received {got(item_id)}")
        rate = AUDIO_FORMATS[output_format_name(self.session)][0]
        received_ms = samples_to_ms(item.num_samples, rate)
        if not 0 <= end_ms <= received_ms + 1e-6:
            raise LocalProtocolError(f"truncate audio_end_ms must be within the {received_ms:.0f} ms received "
                                     f"for {item_id} {got(end_ms)}")

    def next_event_id(self) -> str:
        return f"event_vkit_{next(self._ids)}"

    def close(self) -> None:
        self._move(ClientState.CLOSED)
        self.active_response = None

    def _move(self, state: str) -> None:
        """Change state along ``ClientState.TRANSITIONS`` (staying put is allowed)."""
        if state != self.state and state not in ClientState.TRANSITIONS[self.state]:
            raise RemoteProtocolError(f"the connection cannot go from {self.state} to {state} {got(state)}")
        self.state = state

    # -- receiving ----------------------------------------------------------------------------------

    def receive(self, text: str | bytes) -> ev.RealtimeEvent:
        """Parse one server frame and update the state; bad frames come back as InvalidEvent."""
        try:
            event = decode_event(text, "server", self.dialect, max_depth=self.max_depth)
        except RemoteProtocolError as exc:
            self.remote_errors.append(exc)
            return InvalidEvent(wire_type="vkit.invalid_event", reason=str(exc))
        handler = getattr(self, "_on_" + event.type.replace(".", "_"), None)
        if handler is not None:
            try:
                handler(event)
            except (TypeError, ValueError, KeyError, AttributeError, RemoteProtocolError) as exc:
                error = RemoteProtocolError(f"{event.type} has malformed fields or comes out of order ({exc}) "
                                            f"{got(event.to_dict())}")
                self.remote_errors.append(error)
                return InvalidEvent(wire_type=event.type, reason=str(error))
        return event

    def _on_session_created(self, event: ev.ServerEvent) -> None:
        self._move(ClientState.OPEN)
        self._take_session(event.session)  # type: ignore[attr-defined]

    def _on_session_updated(self, event: ev.ServerEvent) -> None:
        self._take_session(event.session)  # type: ignore[attr-defined]

    def _take_session(self, session: dict[str, Any]) -> None:
        if not isinstance(session, dict):
            raise TypeError("session must be an object")
        ga = session if "audio" in session or session.get("type") else from_beta(session)
        self.session = merge_session(self.session, ga)

    def _on_response_created(self, event: ev.ServerEvent) -> None:
        self.active_response = _Response(event.response["id"])  # type: ignore[attr-defined]

    def _on_response_done(self, event: ev.ServerEvent) -> None:
        if self.active_response is not None and self.active_response.response_id == event.response.get("id"):  # type: ignore[attr-defined]
            self.active_response = None

    def _on_response_output_item_added(self, event: ev.ServerEvent) -> None:
        item = event.item  # type: ignore[attr-defined]
        self.items.setdefault(item["id"], OutputItem(item["id"], event.response_id))  # type: ignore[attr-defined]
        if self.active_response is not None:
            self.active_response.item_ids.append(item["id"])

    def _on_response_output_audio_delta(self, event: ev.ServerEvent) -> None:
        audio_format = output_format_name(self.session)
        delta = event.delta  # type: ignore[attr-defined]
        if not isinstance(event.item_id, str):  # type: ignore[attr-defined]
            raise TypeError(f"item_id must be a string {got(event.item_id)}")  # type: ignore[attr-defined]
        if isinstance(delta, str) and (len(delta) % 4 or _num_bytes(delta) % AUDIO_FORMATS[audio_format][1]):
            raise ValueError(f"audio delta is not whole {audio_format} samples in base64 {got(len(delta))}")
        num_samples = _num_samples(delta, audio_format)
        item = self.items.setdefault(event.item_id, OutputItem(event.item_id, event.response_id))  # type: ignore[attr-defined]
        item.num_samples += num_samples

    def _on_response_output_audio_transcript_delta(self, event: ev.ServerEvent) -> None:
        item = self.items.setdefault(event.item_id, OutputItem(event.item_id, event.response_id))  # type: ignore[attr-defined]
        item.transcript += event.delta  # type: ignore[attr-defined]

    def _on_conversation_item_truncated(self, event: ev.ServerEvent) -> None:
        item = self.items.get(event.item_id)  # type: ignore[attr-defined]
        if item is not None:
            rate = AUDIO_FORMATS[output_format_name(self.session)][0]
            item.num_samples = min(item.num_samples, ms_to_whole_samples(event.audio_end_ms, rate))  # type: ignore[attr-defined]

    def _on_error(self, event: ev.ServerEvent) -> None:
        self.server_errors.append(event.error)  # type: ignore[attr-defined]


def _num_samples(audio_b64: str, audio_format: str) -> int:
    if not isinstance(audio_b64, str):
        raise TypeError(f"audio must be base64 text {got(type(audio_b64).__name__)}")
    return _num_bytes(audio_b64) // AUDIO_FORMATS[audio_format][1]


def _num_bytes(audio_b64: str) -> int:
    return len(audio_b64) * 3 // 4 - audio_b64[-2:].count("=")


# -- the server side -----------------------------------------------------------------------------------


def error_event(code: str, message: str, *, param: str | None = None, event_id: str | None = None,
                error_type: str = "invalid_request_error", server_event_id: str = "event_error") -> ev.ServerEvent:
    """An ``error`` event shaped as OpenAI shapes it."""
    return ev.SERVER_EVENTS["error"](event_id=server_event_id, error={
        "type": error_type, "code": code, "message": message, "param": param, "event_id": event_id})


class ClientEventError(Exception):
    """A client frame the server must answer with an error event (carried in ``event``)."""

    def __init__(self, event: ev.ServerEvent) -> None:
        super().__init__(event.error["message"])  # type: ignore[attr-defined]
        self.event = event


_TYPES = {
    "input_audio_buffer.append": {"audio": str},
    "conversation.item.truncate": {"item_id": str, "content_index": int, "audio_end_ms": int},
    "conversation.item.retrieve": {"item_id": str},
    "conversation.item.delete": {"item_id": str},
    "conversation.item.create": {"item": dict},
    "session.update": {"session": dict},
    "transcription_session.update": {"session": dict},
    "response.create": {"response": dict},
    "response.cancel": {"response_id": str},
}


class ServerProtocol:
    """The server side of one Realtime connection: parses client text, builds server events."""

    def __init__(self, dialect: Dialect = "ga") -> None:
        self.dialect = dialect
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def receive(self, text: str | bytes) -> ev.ClientEvent:
        """A typed client event, or ClientEventError carrying the error event to send back."""
        event_id = _event_id_of(text)
        try:
            event = decode_event(text, "client", self.dialect)
        except MissingParameter as exc:
            raise ClientEventError(self.error("missing_required_parameter", str(exc), param=exc.param,
                                              event_id=event_id)) from exc
        except RemoteProtocolError as exc:
            raise ClientEventError(self.error("invalid_json" if "JSON" in str(exc) else "invalid_value",
                                              f"Invalid event: {exc}", event_id=event_id)) from exc
        if isinstance(event, ev.UnknownEvent):
            supported = ", ".join(f"'{t}'" for t in ev.CLIENT_EVENTS if t != "transcription_session.update")
            raise ClientEventError(self.error("invalid_value", f"Invalid value: '{event.wire_type}'. Supported values "
                                              f"are: {supported}.", param="type", event_id=event_id))
        if event.type == "transcription_session.update" and self.dialect == "ga":
            raise ClientEventError(self.error("invalid_value", "Invalid value: 'transcription_session.update'. Use "
                                              "session.update with session.type 'transcription'.", param="type",
                                              event_id=event_id))
        for name, expected in _TYPES.get(event.type, {}).items():
            value = getattr(event, name)
            if value is not None and (not isinstance(value, expected) or isinstance(value, bool)):
                raise ClientEventError(self.error(
                    "invalid_type", f"Invalid type for '{name}': expected {_type_word(expected)}, but got "
                    f"{_type_word(type(value))} instead.", param=name, event_id=event_id))
        return event

    def event(self, wire_type: str, **fields: Any) -> ev.ServerEvent:
        """Build a server event (GA name) with a fresh event_id."""
        return ev.SERVER_EVENTS[wire_type](event_id=self.new_id("event"), **fields)

    def error(self, code: str, message: str, *, param: str | None = None, event_id: str | None = None,
              error_type: str = "invalid_request_error") -> ev.ServerEvent:
        return error_event(code, message, param=param, event_id=event_id, error_type=error_type,
                           server_event_id=self.new_id("event"))

    def encode(self, event: ev.ServerEvent) -> str:
        return encode_event(event, self.dialect)


def _event_id_of(text: str | bytes) -> str | None:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    event_id = data.get("event_id") if isinstance(data, dict) else None
    return event_id if isinstance(event_id, str) else None


def _type_word(kind: type) -> str:
    return {str: "a string", int: "an integer", dict: "an object", float: "a number", list: "an array",
            bool: "a boolean", type(None): "null"}.get(kind, kind.__name__)
