"""Feeding a recording back through a (changed) graph."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vkit.errors import RecordingError, got
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
    Transcript,
    VadScore,
)
from vkit.realtime import events as ev
from vkit.recording.load import LoadedSession
from vkit.sources.base import Pace, PacedSource
from vkit.stage import StreamFormat


class Replay(PacedSource):
    """Stream a recorded track (default: the "input" as captured) from a session folder."""

    def __init__(self, path: str | Path, *, stream: str = "input", frame_ms: float = 20.0, pace: Pace = "fast",
                 trim_leading_silence: bool = True) -> None:
        super().__init__(frame_ms=frame_ms, pace=pace, stream=stream)
        self.path = str(path)
        rate, samples = LoadedSession(path).track(stream)
        if trim_leading_silence:
            nonzero = np.flatnonzero(np.any(samples != 0, axis=0))
            samples = samples[:, nonzero[0]:] if nonzero.size else samples
        if samples.shape[1] == 0:
            raise RecordingError(f"track {stream!r} of the recording is empty {got(self.path)}")
        self.samples = samples
        self.format = StreamFormat(rate, samples.shape[0])

    def _blocks(self, num_samples: int) -> Iterator[np.ndarray]:
        for start in range(0, self.samples.shape[1], num_samples):
            yield self.samples[:, start : start + num_samples]


_KINDS: dict[str, type[Event]] = {cls.__name__: cls for cls in (SpeechStarted, SpeechStopped, VadScore, Marker, Playout,
                                                                Transcript, LlmRequest, LlmText, LlmDone, SpeechSynthesised)}


def events_from_records(records: list[dict[str, Any]]) -> list[Event]:
    """Rebuild typed events from events.jsonl lines (for recomputing turns of a loaded session)."""
    out: list[Event] = []
    for record in records:
        kind, payload = record.get("kind"), dict(record.get("payload") or {})
        t_ns = int(round(record.get("t_ms", 0) * 1e6))
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
