"""The stage contract: what a stage is, and what an asynchronous stage sees of the runtime.

A *sync stage* has ``process(item)``; an *async stage* has ``async def run(ctx)``; a *source* is an
async stage with no upstream and a ``format``. Everything else (``accepts``, ``flush``, ``reset``,
``latency_ms``, ``configure``, ``open``, ``close``) is optional, and so are three declarations the
plan reads: ``provides_playout = "output"`` (a sink that really plays that stream),
``uses_playout = "output"`` (a stage that truncates at what was played: linked to that sink), and
``requires_real_clock = True`` (a device, a browser or a remote peer: refused on the virtual clock; a string
instead of True says why, and the refusal quotes it after the stage's name). Stages are duck-typed: the Protocols
below say what the runtime calls, no base class is needed. This module imports nothing above the
data model; the DSL (``|``, ``tee``, ...) is ``vkit.graph``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from vkit.clock import SessionClock
from vkit.errors import GraphError, got
from vkit.frames import AudioFrame, Event, Item

__all__ = ["StreamFormat", "StageKind", "SyncStage", "AsyncStage", "Source", "Context", "PlayoutTracker", "stage_kind", "stage_name",
           "describe_stage", "accepted_types", "as_items"]

StageKind = Literal["source", "sync", "async"]


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """The audio format on an edge; ``None`` means not known until the first frame."""

    sample_rate_hz: int | None = None
    num_channels: int | None = None

    def __str__(self) -> str:
        rate = f"{self.sample_rate_hz} Hz" if self.sample_rate_hz else "? Hz"
        channels = f"{self.num_channels} ch" if self.num_channels else "? ch"
        return f"{rate}, {channels}"


@runtime_checkable
class SyncStage(Protocol):
    """A synchronous stage: ``process(item)`` returns an item, a list of items, or None."""

    def process(self, item: Any) -> Any: ...


class PlayoutTracker(Protocol):
    """What a playing sink provides: how much of its stream was really played (for barge-in)."""

    def played_sample(self, now_ns: int) -> int:
        """Samples of the stream actually played by ``now_ns``."""
        ...

    def flush(self) -> None:
        """Drop everything queued but not yet played (barge-in)."""
        ...


class Context(Protocol):
    """What an asynchronous stage or a source sees of the runtime while it runs."""

    name: str
    clock: SessionClock
    input_format: StreamFormat | None

    async def receive(self) -> Item | None:
        """The next item from upstream, or None at the end of the stream."""
        ...

    def __aiter__(self) -> AsyncIterator[Item]: ...

    async def emit(self, item: Item) -> None:
        """Send an item downstream (waits while a blocking channel is full)."""
        ...

    def publish(self, event: Event) -> Event:
        """Put an event on the session record without sending it downstream."""
        ...

    def provide_playout(self, tracker: PlayoutTracker) -> None:
        """For a sink with ``provides_playout = stream``: what it really plays, for linked stages."""
        ...

    def linked_playout(self) -> PlayoutTracker | None:
        """For a stage with ``uses_playout = stream``: the tracker of the sink the plan linked it to."""
        ...


@runtime_checkable
class AsyncStage(Protocol):
    """An asynchronous stage: reads ``ctx``, emits downstream, returns at the end of its input."""

    async def run(self, ctx: Context) -> None: ...


@runtime_checkable
class Source(Protocol):
    """An asynchronous stage with no upstream, whose output ``format`` is known when it is built."""

    format: StreamFormat

    async def run(self, ctx: Context) -> None: ...


def stage_kind(obj: object) -> StageKind:
    """Classify a stage object, or raise a GraphError that says how to fix it."""
    if isinstance(obj, type):
        raise GraphError(
            f"{obj.__name__} is a class, not a stage: write {obj.__name__}(...) to make an instance {got(obj)}"
        )
    run = getattr(obj, "run", None)
    if run is not None and inspect.iscoroutinefunction(run):
        return "source" if hasattr(obj, "format") and not hasattr(obj, "process") else "async"
    if callable(getattr(obj, "process", None)):
        return "sync"
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        raise GraphError(f"a plain function needs wrapping: use vkit.stage({obj.__name__}) {got(obj)}")
    raise GraphError(
        "not a stage: a stage has process(item) or async run(ctx); "
        f"wrap functions with vkit.stage(fn) {got(obj)}"
    )


def stage_name(obj: object) -> str:
    """The stage's own name, or its class name."""
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) and name else type(obj).__name__


def describe_stage(obj: object) -> dict[str, Any]:
    """Parameters of a stage as plain data: its ``describe()`` or the attributes named like its
    constructor parameters. Secrets (anything named like a key or token) are never included."""
    custom = getattr(obj, "describe", None)
    if callable(custom):
        params = dict(custom())
    else:
        params = {}
        try:
            signature = inspect.signature(type(obj).__init__)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            for pname in signature.parameters:
                if pname == "self" or not hasattr(obj, pname):
                    continue
                value = getattr(obj, pname)
                if isinstance(value, (int, float, str, bool, type(None))):
                    params[pname] = value
                elif isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, str)) for v in value):
                    params[pname] = list(value)
    return {k: v for k, v in params.items() if not _looks_secret(k)}


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in ("key", "token", "secret", "password", "authorization"))


def accepted_types(obj: object) -> tuple[type, ...]:
    accepts = getattr(obj, "accepts", None)
    if accepts is None:
        return (AudioFrame,)
    if isinstance(accepts, type):
        return (accepts,)
    return tuple(accepts)


def as_items(result: object) -> Iterable[Item]:
    """Normalise a ``process``/``flush`` result to an iterable of items."""
    if result is None:
        return ()
    if isinstance(result, (AudioFrame, Event)):
        return (result,)
    return result  # type: ignore[return-value]
