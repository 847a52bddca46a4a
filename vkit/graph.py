"""The graph DSL: chains built with ``|``, fan-out with ``tee``, fan-in with ``merge`` and ``mix``.

A graph is a value: it is built, validated (formats, item types, wiring) and rendered before it runs.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from vkit import render
from vkit.errors import GraphError, got
from vkit.frames import AudioFrame, Item
from vkit.plan import GraphPlan
from vkit.stage import StreamFormat, describe_stage, stage_kind, stage_name

__all__ = ["Pipe", "FunctionStage", "stage", "Chain", "Graph", "Tee", "Parallel", "Buffer", "tee", "merge", "mix", "buffer", "chain"]

BackpressurePolicy = Literal["block", "drop_oldest"]


@dataclass(frozen=True)
class Buffer:
    """Sets the channel in front of the next asynchronous stage: its size and backpressure policy."""

    vkit_block: ClassVar[str] = "buffer"

    max_items: int = 256
    policy: BackpressurePolicy = "block"

    def __post_init__(self) -> None:
        if self.max_items < 1:
            raise GraphError(f"buffer max_items must be at least 1 {got(self.max_items)}")
        if self.policy not in ("block", "drop_oldest"):
            raise GraphError(f"buffer policy must be 'block' or 'drop_oldest' {got(self.policy)}")


class Pipe:
    """Mixin giving a stage the ``|`` operator (``a | b`` builds a chain) and a notebook rendering."""

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(repr(v))}</td></tr>"
                       for k, v in describe_stage(self).items())
        latency = getattr(self, "latency_ms", None)
        if isinstance(latency, (int, float)):
            rows += f"<tr><td><i>latency_ms</i></td><td>{latency:.2f}</td></tr>"
        return f"<div><b>{html.escape(type(self).__name__)}</b><table>{rows}</table></div>"

    def __or__(self, other: object) -> Chain:
        return Chain([self]) | other

    def __ror__(self, other: object) -> Chain:
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



class Chain:
    """A linear sequence of stages and blocks; ``Graph`` is the same thing.

    Not a ``Pipe``: a graph displays as its picture, never as a stage's parameter table.
    """

    vkit_block = "chain"

    def __init__(self, elements: Iterable[object] = ()) -> None:
        self.elements: list[object] = []
        for element in elements:
            if isinstance(element, Chain):
                self.elements.extend(element.elements)
            else:
                _check_element(element)
                self.elements.append(element)

    @classmethod
    def of(cls, obj: object) -> Chain:
        if isinstance(obj, Chain):
            return obj
        if isinstance(obj, (list, tuple)):
            return cls(obj)
        return cls([obj])

    def __or__(self, other: object) -> Chain:
        return Chain([*self.elements, *Chain.of(other).elements])

    def __ror__(self, other: object) -> Chain:
        return Chain([*Chain.of(other).elements, *self.elements])

    def __iter__(self) -> Iterator[object]:
        return iter(self.elements)

    def __len__(self) -> int:
        return len(self.elements)

    # -- the plan, and what reads it -------------------------------------------------------------

    def plan(self, *, warn: bool = False) -> GraphPlan:
        """Compile the graph (names, wiring, formats, channels, side links); raises GraphError.
        ``warn=True`` also warns (GraphWarning) about what runs but probably not as meant."""
        return GraphPlan(self, warn=warn)

    def validate(self) -> StreamFormat | None:
        """Check the wiring and the formats; return the output format. Raises GraphError."""
        return self.plan(warn=True).output_format

    def describe(self) -> dict[str, Any]:
        """The graph as plain data: nodes with class, kind, parameters and formats, edges, links, text."""
        plan = self.plan()
        return {**plan.describe(), "text": render.graph_text(plan)}

    def text(self) -> str:
        """A one-line-per-chain text rendering for terminals."""
        return render.graph_text(self.plan())

    def svg(self) -> str:
        """A theme-aware SVG drawing (``vkit.render.graph_svg``): rates and latencies on the edges."""
        plan = self.plan()
        return render.graph_svg(plan.nodes, plan.edges)

    def mermaid(self) -> str:
        """Mermaid flowchart text for Markdown cells."""
        return render.graph_mermaid(self.plan())

    # -- running --------------------------------------------------------------------------------

    def start(self, **options: Any) -> Any:
        """Run on the engine thread and return a Handle at once (notebook default)."""
        return _runner().start(self, **options)

    def run(self, **options: Any) -> Any:
        """Run to the end and return the Session (same as ``vkit.run(graph)``)."""
        return _runner().run(self, **options)

    def __repr__(self) -> str:
        try:
            return f"Graph({self.text()})"
        except GraphError as exc:  # a graph still being built (no source yet) still has a repr
            return f"Graph({' | '.join(stage_name(e) for e in self.elements)}; not runnable: {exc})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Text in a terminal; in JupyterLab the SVG inline (text/html), where the theme's colours apply
        (an ``image/svg+xml`` output is shown in an ``<img>``, which the page's CSS never reaches)."""
        plan = self.plan()
        svg = render.graph_svg(plan.nodes, plan.edges)
        return {"text/plain": render.graph_text(plan), "text/html": svg, "image/svg+xml": svg}


Graph = Chain


def chain(*stages: object) -> Chain:
    """Build a chain from stages (or one list of stages) without the ``|`` operator."""
    if len(stages) == 1 and isinstance(stages[0], (list, tuple)):
        stages = tuple(stages[0])
    return Chain(stages)


@dataclass
class Tee:
    """Fan-out: items pass through unchanged and a copy goes down every branch."""

    vkit_block: ClassVar[str] = "tee"

    branches: list[Chain]

    def __or__(self, other: object) -> Chain:
        return Chain([self]) | other

    def __ror__(self, other: object) -> Chain:
        return Chain.of(other) | Chain([self])


@dataclass
class Parallel:
    """Fan-in: branches run side by side and their outputs meet again.

    A branch that starts with a source runs on its own input; any other branch gets a copy of the
    upstream items. ``merge`` interleaves the outputs; ``mix`` sums audio sample-aligned onto one
    stream (``stream`` label) and passes events through.
    """

    vkit_block: ClassVar[str] = "parallel"
    branches: list[Chain]
    mode: Literal["merge", "mix"] = "merge"
    stream: str = "mix"

    def __or__(self, other: object) -> Chain:
        return Chain([self]) | other

    def __ror__(self, other: object) -> Chain:
        return Chain.of(other) | Chain([self])


def tee(*branches: object) -> Tee:
    """Copy the stream to each branch (e.g. a recorder and a player) and pass it on unchanged."""
    if not branches:
        raise GraphError("tee() needs at least one branch, e.g. tee(sinks.Wav('in.wav'))")
    return Tee([Chain.of(b) for b in branches])


def merge(*branches: object) -> Parallel:
    """Run branches side by side and interleave their outputs in arrival order."""
    if len(branches) < 2:
        raise GraphError(f"merge() needs at least two branches {got(len(branches))}")
    return Parallel([Chain.of(b) for b in branches], "merge")


def mix(*branches: object, stream: str = "mix") -> Parallel:
    """Run branches side by side and sum their audio sample-aligned onto one stream."""
    if len(branches) < 2:
        raise GraphError(f"mix() needs at least two branches {got(len(branches))}")
    return Parallel([Chain.of(b) for b in branches], "mix", stream)


def buffer(max_items: int = 256, policy: BackpressurePolicy = "block") -> Buffer:
    """An explicit edge: ``... | vkit.buffer(32, "drop_oldest") | Realtime() | ...``."""
    return Buffer(max_items, policy)


def _check_element(element: object) -> None:
    if isinstance(element, (Tee, Parallel, Buffer)):
        return
    stage_kind(element)  # raises a GraphError that says how to fix it


# -- running: the layer above registers how (recording, widgets and the runtime sit above the DSL) ----


class Runner(Protocol):
    """What ``graph.run()`` and ``graph.start()`` call: ``vkit.run`` and ``vkit.start``."""

    def run(self, graph: Chain, **options: Any) -> Any: ...

    def start(self, graph: Chain, **options: Any) -> Any: ...


_RUNNERS: list[Runner] = []


def set_runner(runner: Runner) -> None:
    """Register what runs a graph (``import vkit`` does, with ``vkit.run`` and ``vkit.start``)."""
    _RUNNERS[:] = [runner]


def _runner() -> Runner:
    if not _RUNNERS:
        raise RuntimeError("no runner registered: import vkit (not only vkit.graph) to run a graph")
    return _RUNNERS[0]
