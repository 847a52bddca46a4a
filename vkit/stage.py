"""What a stage is: duck-typed objects, wrapped once into nodes the runtime can drive.

A *sync stage* has ``process(item)``; an *async stage* has ``async def run(ctx)``; a *source* is an
async stage with no upstream and a ``format``. Everything else (``accepts``, ``flush``, ``reset``,
``latency_ms``, ``configure``, ``open``, ``close``) is optional.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from vkit.errors import GraphError, got
from vkit.frames import AudioFrame, Event, Item

__all__ = ["StreamFormat", "stage", "Pipe", "StageKind", "stage_kind", "stage_name", "describe_stage"]

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


class Pipe:
    """Mixin giving a stage the ``|`` operator (``a | b`` builds a chain) and a notebook rendering."""

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(repr(v))}</td></tr>"
                       for k, v in describe_stage(self).items())
        latency = getattr(self, "latency_ms", None)
        if isinstance(latency, (int, float)):
            rows += f"<tr><td><i>latency_ms</i></td><td>{latency:.2f}</td></tr>"
        return f"<div><b>{html.escape(type(self).__name__)}</b><table>{rows}</table></div>"

    def __or__(self, other: object) -> Any:
        from vkit.graph import Chain

        return Chain([self]) | other

    def __ror__(self, other: object) -> Any:
        from vkit.graph import Chain

        return Chain.of(other) | self


class FunctionStage(Pipe):
    """A plain function ``fn(frame) -> frame | list[frame] | None`` used as a stage."""

    def __init__(self, fn: Callable[[AudioFrame], Any], accepts: tuple[type, ...] = (AudioFrame,)) -> None:
        self.fn = fn
        self.accepts = accepts
        self.name = getattr(fn, "__name__", "function")

    def process(self, item: Item) -> Any:
        return self.fn(item)

    def __repr__(self) -> str:
        return f"stage({self.name})"


def stage(fn: Callable[..., Any] | None = None, *, accepts: tuple[type, ...] = (AudioFrame,)) -> Any:
    """Wrap a function as a stage: ``vkit.stage(fn)`` or ``@vkit.stage(accepts=(Event,))``."""
    if fn is None:
        return lambda f: FunctionStage(f, accepts)
    if not callable(fn):
        raise GraphError(f"vkit.stage() takes a function {got(fn)}")
    return FunctionStage(fn, accepts)


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
