"""A bounded, ordered store for a session's events: what the turn table and widgets read, not every chunk.

A one-hour session publishes about 400,000 events, almost all of them per-chunk: every audio append
sent, every audio delta received, every VAD score. ``EventLog`` keeps every event of the rare kinds and
only the newest ``max_per_kind`` of each frequent kind; the recording (a subscriber) still gets all of
them. ``keep_all=True`` keeps everything, as a plain list would.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from typing import Any

__all__ = ["EventLog", "FREQUENT_KINDS", "MAX_PER_KIND"]

MAX_PER_KIND = 2_000  # per frequent kind: the last 40 s of 20 ms chunks
#: (event class name, protocol event type or "") of the per-chunk kinds that are bounded
FREQUENT_KINDS = frozenset({
    ("ProtocolEvent", "input_audio_buffer.append"), ("ProtocolEvent", "response.output_audio.delta"),
    ("ProtocolEvent", "response.audio.delta"), ("ProtocolEvent", "response.output_audio_transcript.delta"),
    ("ProtocolEvent", "response.audio_transcript.delta"), ("ProtocolEvent", "response.output_text.delta"),
    ("ProtocolEvent", "conversation.item.input_audio_transcription.delta"), ("VadScore", ""),
})


class EventLog:
    """A list-like event store (``append``, ``len``, iteration and indexing in publication order)."""

    def __init__(self, *, max_per_kind: int = MAX_PER_KIND, keep_all: bool = False) -> None:
        self.max_per_kind = max_per_kind
        self.keep_all = keep_all
        self._kept: dict[tuple[str, str], deque[tuple[int, Any]]] = {}
        self._num_published = 0
        self.num_dropped = 0  # events let go (they are still in the recording)

    def append(self, event: Any) -> None:
        key = _kind(event)
        frequent = not self.keep_all and key in FREQUENT_KINDS
        kept = self._kept.get(key)
        if kept is None:
            kept = self._kept[key] = deque(maxlen=self.max_per_kind if frequent else None)
        if kept.maxlen is not None and len(kept) == kept.maxlen:
            self.num_dropped += 1
        kept.append((self._num_published, event))
        self._num_published += 1

    @property
    def num_published(self) -> int:
        """Events appended so far, kept or not: a cursor for ``since``."""
        return self._num_published

    def since(self, cursor: int) -> tuple[list[Any], int]:
        """The kept events appended at or after ``cursor`` (a ``num_published`` value), in order, and the
        cursor to pass next time: how a follower reads only what is new, however much was let go."""
        new = []
        for kept in self._kept.values():
            for pair in reversed(kept):
                if pair[0] < cursor:
                    break
                new.append(pair)
        new.sort(key=lambda pair: pair[0])
        return [event for _, event in new], self._num_published

    def __iter__(self) -> Iterator[Any]:
        for _, event in heapq.merge(*self._kept.values(), key=lambda pair: pair[0]):
            yield event

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._kept.values())

    def __getitem__(self, index: int | slice) -> Any:
        return list(self)[index]

    def __repr__(self) -> str:
        return f"EventLog(num_events={len(self)}, num_dropped={self.num_dropped}, keep_all={self.keep_all})"


def _kind(event: Any) -> tuple[str, str]:
    return type(event).__name__, getattr(event, "type", "") if type(event).__name__ == "ProtocolEvent" else ""
