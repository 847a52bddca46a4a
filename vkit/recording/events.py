"""Typed events back from a recording's events.jsonl lines (to recompute turns, or follow a trace)."""

from __future__ import annotations

from typing import Any

from vkit.frames import (
    Event,
    LlmDone,
    LlmRequest,
    LlmText,
    Marker,
    Playout,
    ProtocolEvent,
    SpeechStarted,
    SpeechStopped,
    SpeechSynthesised,
    SttTranscript,
    ToolCall,
    Transcript,
    TurnEnded,
    VadScore,
)
from vkit.realtime import events as ev
from vkit.units import ms_to_ns

__all__ = ["events_from_records"]

_KINDS: dict[str, type[Event]] = {cls.__name__: cls for cls in (
    SpeechStarted, SpeechStopped, VadScore, TurnEnded, Marker, Playout, Transcript, ToolCall,
    SttTranscript, LlmRequest, LlmText, LlmDone, SpeechSynthesised)}


def events_from_records(records: list[dict[str, Any]]) -> list[Event]:
    """Rebuild typed events from events.jsonl lines (for recomputing turns of a loaded session)."""
    out: list[Event] = []
    for record in records:
        kind, payload = record.get("kind"), dict(record.get("payload") or {})
        t_ns = ms_to_ns(record.get("t_ms", 0))
        if kind in _KINDS:
            try:
                out.append(_KINDS[kind](t_ns=t_ns, stage=record.get("stage", ""), **payload))
            except TypeError:
                continue
        elif kind == "ProtocolEvent":
            body = payload.get("event") or {}
            cls = ev.event_class(payload.get("type", ""), "client" if payload.get("direction") == "sent" else "server")
            event = cls.from_dict(body) if cls is not None else None
            out.append(ProtocolEvent(t_ns=t_ns, stage=record.get("stage", ""), direction=payload.get("direction", "received"),
                                     type=payload.get("type", ""), event=event))
    return out
