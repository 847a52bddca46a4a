"""The live (or finished) record of one run: clock, events, stage statistics, playout, turns."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from vkit.clock import SessionClock
from vkit.frames import Event, Item, SpeechStarted, SpeechStopped
from vkit.latency import TurnEvents, compute_turns

__all__ = ["Session", "StageStats", "PlayoutTracker"]

log = logging.getLogger(__name__)


class PlayoutTracker(Protocol):
    """What a playing sink registers in ``session.playout[stream]``."""

    def played_sample(self, now_ns: int) -> int:
        """Samples of the stream actually played by ``now_ns``."""
        ...

    def flush(self) -> None:
        """Drop everything queued but not yet played (barge-in)."""
        ...


class StageStats:
    """Per-stage counters and the last ``capacity`` processing times and queue waits (ns)."""

    __slots__ = ("name", "kind", "latency_ms", "num_items", "total_processing_ns", "_processing", "_waits",
                 "_num_waits", "channel")

    def __init__(self, name: str, kind: str, latency_ms: float | None = None, capacity: int = 4096) -> None:
        self.name = name
        self.kind = kind
        self.latency_ms = latency_ms
        self.num_items = 0
        self.total_processing_ns = 0
        self._processing = np.zeros(capacity, np.int64)
        self._waits = np.zeros(capacity, np.int64)
        self._num_waits = 0
        self.channel: Any = None

    def add_processing(self, duration_ns: int) -> None:
        self._processing[self.num_items % self._processing.shape[0]] = duration_ns
        self.num_items += 1
        self.total_processing_ns += duration_ns

    def add_wait(self, duration_ns: int) -> None:
        self._waits[self._num_waits % self._waits.shape[0]] = duration_ns
        self._num_waits += 1

    @property
    def processing_ns(self) -> np.ndarray:
        return self._processing[: min(self.num_items, self._processing.shape[0])].copy()

    @property
    def queue_wait_ns(self) -> np.ndarray:
        return self._waits[: min(self._num_waits, self._waits.shape[0])].copy()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "latency_ms": self.latency_ms,
            "num_items": self.num_items,
            "processing_ns": self.processing_ns,
            "queue_wait_ns": self.queue_wait_ns,
        }
        if self.channel is not None:
            out["channel"] = self.channel.statistics()
        return out


class Session:
    """Everything a run produced, available while it runs and after.

    ``events`` holds every event on the session clock; audio goes only to subscribers (the recorder,
    widgets). ``turns`` is the per-turn latency table of design section 7.
    """

    def __init__(self, clock: SessionClock | None = None, *, graph: Any = None) -> None:
        self.clock = clock or SessionClock()
        self.graph = graph
        self.events: list[Event] = []
        self.playout: dict[str, PlayoutTracker] = {}
        self._stages: dict[str, StageStats] = {}
        self._subscribers: list[Callable[[Item], None]] = []
        self._lock = threading.Lock()
        self.status = "running"
        self.error: BaseException | None = None
        self.recording_path: str | None = None
        self.ground_truth_segments_ms: list[tuple[float, float]] | None = None
        self._turn_events = TurnEvents()
        self._turns_cache: tuple[int, Any] | None = None

    # -- the bus ----------------------------------------------------------------------------------

    def publish(self, item: Item) -> None:
        """Record an event (or hand a frame to subscribers); never raises into the caller's stage."""
        if isinstance(item, Event):
            with self._lock:
                self.events.append(item)
                self._turn_events.add(item)
        for callback in tuple(self._subscribers):
            callback(item)

    def subscribe(self, callback: Callable[[Item], None]) -> Callable[[], None]:
        """Call ``callback(item)`` for every published item; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def stats_for(self, name: str, kind: str, latency_ms: float | None = None) -> StageStats:
        stats = StageStats(name, kind, latency_ms)
        self._stages[name] = stats
        return stats

    # -- views ------------------------------------------------------------------------------------

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        """Per-stage statistics: items, processing-time and queue-wait samples (ns), latency_ms."""
        return {name: stats.as_dict() for name, stats in self._stages.items()}

    @property
    def turns(self) -> Any:
        """The per-turn latency table (a list-like of Turn rows; ``.to_frame()`` for pandas)."""
        with self._lock:
            events = list(self._turn_events.events)
        cached = self._turns_cache
        if cached is not None and cached[0] == len(events):
            return cached[1]
        turns = compute_turns(events, ground_truth_segments_ms=self.ground_truth_segments_ms,
                              stage_latencies_ms=self.stage_latencies_ms())
        self._turns_cache = (len(events), turns)
        return turns

    def stage_latencies_ms(self) -> dict[str, float]:
        return {n: s.latency_ms for n, s in self._stages.items() if s.latency_ms}

    def speech_segments(self, stream: str = "input") -> list[tuple[float, float]]:
        """The VAD's (start_ms, end_ms) pairs on ``stream``, in media time."""
        segments: list[tuple[float, float]] = []
        start: float | None = None
        for event in self.events:
            if isinstance(event, SpeechStarted) and event.stream == stream:
                start = event.ms
            elif isinstance(event, SpeechStopped) and event.stream == stream and start is not None:
                segments.append((start, event.ms))
                start = None
        return segments

    def events_of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]

    def __repr__(self) -> str:
        return (
            f"Session(status={self.status!r}, num_events={len(self.events)}, "
            f"num_stages={len(self._stages)}, recording={self.recording_path!r})"
        )

    def _repr_html_(self) -> str:
        turns = self.turns
        table = turns._repr_html_() if hasattr(turns, "_repr_html_") else f"<pre>{turns!r}</pre>"
        return f"<div><b>vkit session</b> {self.status}, {len(self.events)} events</div>{table}"

