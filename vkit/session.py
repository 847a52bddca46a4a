"""The live record of one run (``Session``) and the value it leaves (``SessionRecord``).

A ``Session`` is the bus of a running graph: stages publish events, subscribers (the recorder,
widgets) follow them, and ``turns`` is the latency table so far. When the run ends, whatever is
attached (a recorder) is finalised by ``finish``. A session pickles as its ``SessionRecord``: the
events the turn table needs, stage statistics, status, labels; that is what a worker process sends
back, and what a loaded recording gives too (``LoadedSession.record()``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from vkit.clock import SessionClock
from vkit.eventlog import EventLog
from vkit.frames import Event, Item, SpeechStarted, SpeechStopped
from vkit.latency import TurnEvents, compute_turns

__all__ = ["Session", "SessionRecord", "StageStats", "speech_segments"]

log = logging.getLogger(__name__)


class StageStats:
    """Per-stage counters and the last ``capacity`` processing times and queue waits (ns)."""

    __slots__ = ("name", "kind", "latency_ms", "num_untimed_items", "processing_log_ns", "max_logged", "_num_dropped",
                 "_capacity", "_waits", "_num_waits", "channel")

    def __init__(self, name: str, kind: str, latency_ms: float | None = None, capacity: int = 4096) -> None:
        self.name = name
        self.kind = kind
        self.latency_ms = latency_ms
        self.num_untimed_items = 0  # counted by the runtime without a time: what an async stage receives, a source emits
        # the newest times: whoever times the stage appends one per item (a list append on the hot path) and calls
        # trim() once max_logged are held, which drops the oldest capacity of them
        self.processing_log_ns: list[int] = []
        self.max_logged = 2 * capacity
        self._num_dropped = 0  # times trimmed off the front
        self._capacity = capacity
        self._waits: list[int] = []
        self._num_waits = 0
        self.channel: Any = None

    @property
    def num_items(self) -> int:
        return self.num_untimed_items + self._num_dropped + len(self.processing_log_ns)

    def trim(self) -> None:
        """Drop the oldest ``capacity`` logged times (counted still in ``num_items``)."""
        del self.processing_log_ns[: self._capacity]
        self._num_dropped += self._capacity

    def add_wait(self, duration_ns: int) -> None:
        waits = self._waits
        if len(waits) < self._capacity:
            waits.append(duration_ns)
        else:
            waits[self._num_waits % self._capacity] = duration_ns
        self._num_waits += 1

    @property
    def processing_ns(self) -> np.ndarray:
        return np.array(self.processing_log_ns[-self._capacity :], np.int64)

    @property
    def queue_wait_ns(self) -> np.ndarray:
        return np.array(self._waits, np.int64)

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


def speech_segments(events: Iterable[Event], stream: str = "input") -> list[tuple[float, float]]:
    """The VAD's (start_ms, end_ms) pairs on ``stream``, in media time (the one place they are paired)."""
    segments: list[tuple[float, float]] = []
    start: float | None = None
    for event in events:
        if isinstance(event, SpeechStarted) and event.stream == stream:
            start = event.ms
        elif isinstance(event, SpeechStopped) and event.stream == stream and start is not None:
            segments.append((start, event.ms))
            start = None
    return segments


class SessionRecord:
    """A finished run as a value: picklable, comparable, with the turn table and speech segments.

    ``events`` holds the events the turn table and the speech segments are computed from (not every
    audio chunk: the recording has those); ``stages`` the per-stage statistics; ``error`` the
    failure as text ("StageError: ...") or None.
    """

    def __init__(self, *, status: str, events: list[Event], stages: dict[str, dict[str, Any]],
                 error: str | None = None, ground_truth_segments_ms: list[tuple[float, float]] | None = None,
                 recording_path: str | None = None, graph: dict[str, Any] | None = None,
                 origin_unix_s: float | None = None) -> None:
        self.status = status
        self.events = events
        self.stages = stages
        self.error = error
        self.ground_truth_segments_ms = ground_truth_segments_ms
        self.recording_path = recording_path
        self.graph = graph
        self.origin_unix_s = origin_unix_s
        self._turns: Any = None

    @property
    def turns(self) -> Any:
        """The per-turn latency table (design section 7)."""
        if self._turns is None:
            self._turns = compute_turns(self.events, ground_truth_segments_ms=self.ground_truth_segments_ms)
        return self._turns

    def speech_segments(self, stream: str = "input") -> list[tuple[float, float]]:
        """The VAD's (start_ms, end_ms) pairs on ``stream``, in media time."""
        return speech_segments(self.events, stream)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_turns"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _turns=None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionRecord):
            return NotImplemented
        return (self.status, self.error, self.turns, self.speech_segments()) == (
            other.status, other.error, other.turns, other.speech_segments())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"SessionRecord(status={self.status!r}, num_turns={len(self.turns)}, "
                f"num_events={len(self.events)}, recording={self.recording_path!r})")


class Session:
    """Everything a run produced, available while it runs and after.

    ``events`` holds the session's events on the session clock, bounded (``vkit.eventlog.EventLog``:
    every rare event, the newest 2000 of each per-chunk kind; ``keep_all_events=True`` keeps all);
    audio and every event go to subscribers (the recorder, widgets). ``turns`` is the per-turn latency table of design section 7.
    """

    def __init__(self, clock: SessionClock | None = None, *, graph: Any = None, keep_all_events: bool = False) -> None:
        self.clock = clock or SessionClock()
        self.graph = graph
        self.events = EventLog(keep_all=keep_all_events)
        self._stages: dict[str, StageStats] = {}
        self.subscribers: tuple[Callable[[Item], None], ...] = ()  # replaced, never changed in place: see subscribe
        self._lock = threading.Lock()
        self.status = "running"
        self.error: BaseException | None = None
        self.recording_path: str | None = None
        self.ground_truth_segments_ms: list[tuple[float, float]] | None = None
        self._turn_events = TurnEvents()
        self._turns_cache: tuple[int, Any] | None = None
        self._finalizers: list[Callable[[Session], None]] = []
        self.failure: Exception | None = None  # the first subscriber failure, which stopped the run
        self._on_failure: Callable[[Exception], None] | None = None

    # -- the bus ----------------------------------------------------------------------------------

    def publish(self, item: Item) -> None:
        """Record an event (or hand a frame to subscribers); never raises into the caller's stage."""
        if isinstance(item, Event):
            with self._lock:
                self.events.append(item)
                self._turn_events.add(item)
        for callback in self.subscribers:
            try:
                callback(item)
            except Exception as exc:  # a subscriber's failure (a full disk) ends the run, not the stage
                self._subscriber_failed(callback, exc)

    def _subscriber_failed(self, callback: Callable[[Item], None], exc: Exception) -> None:
        self._unsubscribe(callback)
        if self.failure is None:
            self.failure = exc
            log.error("a session subscriber failed, stopping the run: %s", exc)
            if self._on_failure is not None:
                self._on_failure(exc)

    def on_failure(self, callback: Callable[[Exception], None]) -> None:
        """Call ``callback(exc)`` when a subscriber fails (the runtime stops the run)."""
        self._on_failure = callback

    def subscribe(self, callback: Callable[[Item], None]) -> Callable[[], None]:
        """Call ``callback(item)`` for every published item; returns an unsubscribe function."""
        self.subscribers = (*self.subscribers, callback)
        return lambda: self._unsubscribe(callback)

    def _unsubscribe(self, callback: Callable[[Item], None]) -> None:
        remaining = list(self.subscribers)
        if callback in remaining:
            remaining.remove(callback)
            self.subscribers = tuple(remaining)

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
        turns = compute_turns(events, ground_truth_segments_ms=self.ground_truth_segments_ms)
        self._turns_cache = (len(events), turns)
        return turns

    def speech_segments(self, stream: str = "input") -> list[tuple[float, float]]:
        """The VAD's (start_ms, end_ms) pairs on ``stream``, in media time."""
        with self._lock:
            events = list(self._turn_events.events)
        return speech_segments(events, stream)

    # -- the end of a run ---------------------------------------------------------------------------

    def on_finish(self, callback: Callable[[Session], None]) -> None:
        """Call ``callback(session)`` once the run has ended and ``status`` is final (a recorder closes)."""
        self._finalizers.append(callback)

    def finish(self, status: str, error: BaseException | None = None) -> BaseException | None:
        """Set the final status and run the finish callbacks; returns the first callback failure."""
        self.status = status
        if error is not None:
            self.error = error
        first: BaseException | None = None
        for callback in self._finalizers:
            try:
                callback(self)
            except Exception as exc:  # every callback runs; the first failure is reported
                log.exception("finishing the session: %r failed", callback)
                first = first or exc
        return first

    def summary_line(self) -> str:
        """One line: status, turns so far, and where the recording is."""
        turns = self.turns
        answered = sum(1 for t in turns if t.first_audio_received_ms is not None)
        where = f"; recording {self.recording_path} marked {self.status}" if self.recording_path else ""
        return f"session {self.status} after {len(turns)} turn(s), {answered} answered{where}"

    def record(self) -> SessionRecord:
        """This session as a value (what pickling a Session gives)."""
        with self._lock:
            events = list(self._turn_events.events)
        error = None if self.error is None else f"{type(self.error).__name__}: {self.error}"
        return SessionRecord(status=self.status, events=events, stages=self.stages, error=error,
                             ground_truth_segments_ms=self.ground_truth_segments_ms,
                             recording_path=self.recording_path, graph=self.graph,
                             origin_unix_s=self.clock.origin_unix_s)

    def __reduce__(self) -> tuple[Any, ...]:
        record = self.record()
        return (_restore_record, (record.__getstate__(),))

    def events_since(self, cursor: int) -> tuple[list[Event], int]:
        """The events published since ``cursor`` (0 at first) and the next cursor (see ``EventLog.since``)."""
        with self._lock:
            return self.events.since(cursor)

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



def _restore_record(state: dict[str, Any]) -> SessionRecord:
    record = SessionRecord.__new__(SessionRecord)
    record.__setstate__(state)
    return record
