"""Typed Realtime protocol events, one class per wire ``type``, for both directions and both dialects.

vkit speaks one vocabulary internally: the GA names. The beta dialect's renamed server events
(``response.audio.delta`` and friends) are mapped to and from it by ``vkit.realtime.codec``. Event types
this module does not know are kept as ``UnknownEvent``, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, ClassVar

__all__ = ["RealtimeEvent", "ClientEvent", "ServerEvent", "UnknownEvent", "CLIENT_EVENTS", "SERVER_EVENTS",
           "BETA_SERVER_RENAMES", "event_class", "class_name"]


@dataclass(frozen=True, kw_only=True)
class RealtimeEvent:
    """A protocol event: its wire ``type``, its fields as attributes, and any extra keys in ``extra``."""

    type: ClassVar[str] = ""
    direction: ClassVar[str] = ""
    event_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The event as wire JSON data (GA spelling), omitting fields that are None."""
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RealtimeEvent:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "type"}
        return cls(**values, extra=extra)


@dataclass(frozen=True, kw_only=True)
class ClientEvent(RealtimeEvent):
    direction: ClassVar[str] = "client"


@dataclass(frozen=True, kw_only=True)
class ServerEvent(RealtimeEvent):
    direction: ClassVar[str] = "server"


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(RealtimeEvent):
    """An event of a type this version does not know; ``wire_type`` keeps the real string."""

    wire_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.wire_type, **({"event_id": self.event_id} if self.event_id else {}), **self.extra}


# type -> (required fields, optional fields). Field values are plain JSON data.
_CLIENT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "session.update": (("session",), ()),
    "input_audio_buffer.append": (("audio",), ()),
    "input_audio_buffer.commit": ((), ()),
    "input_audio_buffer.clear": ((), ()),
    "conversation.item.create": (("item",), ("previous_item_id",)),
    "conversation.item.retrieve": (("item_id",), ()),
    "conversation.item.truncate": (("item_id", "content_index", "audio_end_ms"), ()),
    "conversation.item.delete": (("item_id",), ()),
    "response.create": ((), ("response",)),
    "response.cancel": ((), ("response_id",)),
    "output_audio_buffer.clear": ((), ()),
    "transcription_session.update": (("session",), ()),  # beta only
}
_IDS = ("response_id", "item_id", "output_index", "content_index")
_SERVER: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "error": (("error",), ()),
    "session.created": (("session",), ()),
    "session.updated": (("session",), ()),
    "transcription_session.updated": (("session",), ()),
    "conversation.created": (("conversation",), ()),
    "input_audio_buffer.speech_started": (("audio_start_ms", "item_id"), ()),
    "input_audio_buffer.speech_stopped": (("audio_end_ms", "item_id"), ()),
    "input_audio_buffer.committed": (("item_id",), ("previous_item_id",)),
    "input_audio_buffer.cleared": ((), ()),
    "input_audio_buffer.timeout_triggered": (("audio_start_ms", "audio_end_ms", "item_id"), ()),
    "conversation.item.added": (("item",), ("previous_item_id",)),
    "conversation.item.done": (("item",), ("previous_item_id",)),
    "conversation.item.created": (("item",), ("previous_item_id",)),
    "conversation.item.retrieved": (("item",), ()),
    "conversation.item.truncated": (("item_id", "content_index", "audio_end_ms"), ()),
    "conversation.item.deleted": (("item_id",), ()),
    "conversation.item.input_audio_transcription.delta": (("item_id",), ("content_index", "delta", "logprobs")),
    "conversation.item.input_audio_transcription.completed": (("item_id", "content_index", "transcript"),
                                                              ("usage", "logprobs")),
    "conversation.item.input_audio_transcription.failed": (("item_id", "content_index", "error"), ()),
    "response.created": (("response",), ()),
    "response.done": (("response",), ()),
    "response.output_item.added": (("response_id", "output_index", "item"), ()),
    "response.output_item.done": (("response_id", "output_index", "item"), ()),
    "response.content_part.added": ((*_IDS, "part"), ()),
    "response.content_part.done": ((*_IDS, "part"), ()),
    "response.output_audio.delta": ((*_IDS, "delta"), ()),
    "response.output_audio.done": (_IDS, ()),
    "response.output_audio_transcript.delta": ((*_IDS, "delta"), ()),
    "response.output_audio_transcript.done": ((*_IDS, "transcript"), ()),
    "response.output_text.delta": ((*_IDS, "delta"), ()),
    "response.output_text.done": ((*_IDS, "text"), ()),
    "response.function_call_arguments.delta": (("response_id", "item_id", "output_index", "call_id", "delta"), ()),
    "response.function_call_arguments.done": (("response_id", "item_id", "output_index", "call_id", "arguments"),
                                              ("name",)),
    "rate_limits.updated": (("rate_limits",), ()),
    "output_audio_buffer.started": (("response_id",), ()),
    "output_audio_buffer.stopped": (("response_id",), ()),
    "output_audio_buffer.cleared": (("response_id",), ()),
}

#: beta wire name -> GA name, for server events whose names changed at GA
BETA_SERVER_RENAMES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}


def class_name(wire_type: str) -> str:
    """``input_audio_buffer.append`` -> ``InputAudioBufferAppend``."""
    return "".join(part.capitalize() for part in wire_type.replace(".", "_").split("_"))


def _make(wire_type: str, base: type[RealtimeEvent], required: tuple[str, ...], optional: tuple[str, ...]) -> type:
    spec = [(name, Any, field(default=None)) for name in (*required, *optional)]
    cls = make_dataclass(class_name(wire_type), spec, bases=(base,), frozen=True, kw_only=True,
                         namespace={"type": wire_type, "required": required, "__module__": __name__})
    return cls


CLIENT_EVENTS: dict[str, type[ClientEvent]] = {t: _make(t, ClientEvent, *spec) for t, spec in _CLIENT.items()}
SERVER_EVENTS: dict[str, type[ServerEvent]] = {t: _make(t, ServerEvent, *spec) for t, spec in _SERVER.items()}

for _cls in (*CLIENT_EVENTS.values(), *SERVER_EVENTS.values()):
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)


def event_class(wire_type: str, direction: str) -> type[RealtimeEvent] | None:
    """The class for a GA wire type sent by ``direction`` ("client" or "server"), or None."""
    return (CLIENT_EVENTS if direction == "client" else SERVER_EVENTS).get(wire_type)
