"""The graph DSL: chains built with ``|``, fan-out with ``tee``, fan-in with ``merge`` and ``mix``.

A graph is a value: it is built, validated (formats, item types, wiring) and rendered before it runs.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from vkit.errors import GraphError, got
from vkit.frames import AudioFrame, Item
from vkit.plan import GraphPlan, Part, PlanJoin, PlanNode, PlanTee
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
        return {**plan.describe(), "text": _text(plan.root)}

    def text(self) -> str:
        """A one-line-per-chain text rendering for terminals."""
        return _text(self.plan().root)

    def svg(self) -> str:
        """A pure-Python SVG drawing: boxes by kind, layered left to right."""
        plan = self.plan()
        return _svg(plan.nodes, plan.edges)

    def mermaid(self) -> str:
        """Mermaid flowchart text for Markdown cells."""
        plan = self.plan()
        lines = ["flowchart LR"]
        lines += [f'  n{n.index}["{n.name}"]' for n in plan.nodes]
        lines += [f"  n{a} --> n{b}" for a, b in plan.edges]
        return "\n".join(lines)

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
        plan = self.plan()
        return {"text/plain": _text(plan.root), "image/svg+xml": _svg(plan.nodes, plan.edges)}


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


# -- rendering ------------------------------------------------------------------------------------


def _text(parts: tuple[Part, ...]) -> str:
    out = []
    for part in parts:
        if isinstance(part, PlanTee):
            out.append("tee(" + ", ".join(_text(b) for b in part.branches) + ")")
        elif isinstance(part, PlanJoin):
            channel = part.join.channel
            prefix = f"[buffer {channel.max_items} {channel.policy}] | " if channel and channel.explicit else ""
            out.append(f"{prefix}{part.mode}(" + ", ".join(_text(b) for b in part.branches) + ")")
        else:
            label = _stage_label(part)
            if part.channel is not None and part.channel.explicit:
                label = f"[buffer {part.channel.max_items} {part.channel.policy}] | {label}"
            out.append(label)
    return " | ".join(out)


def _stage_label(node: PlanNode) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in list(node.params.items())[:3])
    return f"{node.name}({shown})"


_COLOURS = {
    "source": "#d8ecd2",
    "sync": "#dde8f6",
    "async": "#f8e3c6",
    "tee": "#eeeeee",
    "fork": "#eeeeee",
    "merge": "#eeeeee",
    "mix": "#eeeeee",
}


def _svg(nodes: list[PlanNode], edges: list[tuple[int, int]]) -> str:
    rank = [0] * len(nodes)
    for _ in range(len(nodes)):  # longest path from a source; graphs are small
        for a, b in edges:
            rank[b] = max(rank[b], rank[a] + 1)
    rows: dict[int, int] = {}
    row = []
    for i in range(len(nodes)):
        row.append(rows.get(rank[i], 0))
        rows[rank[i]] = row[-1] + 1
    box_w, box_h, gap_x, gap_y, pad = 150, 44, 40, 18, 10
    width = pad * 2 + (max(rank, default=0) + 1) * (box_w + gap_x) - gap_x
    height = pad * 2 + max(rows.values(), default=1) * (box_h + gap_y) - gap_y

    def xy(i: int) -> tuple[int, int]:
        return pad + rank[i] * (box_w + gap_x), pad + row[i] * (box_h + gap_y)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>',
    ]
    for a, b in edges:
        (xa, ya), (xb, yb) = xy(a), xy(b)
        out.append(
            f'<line x1="{xa + box_w}" y1="{ya + box_h // 2}" x2="{xb - 2}" y2="{yb + box_h // 2}" '
            'stroke="#555" marker-end="url(#arrow)"/>'
        )
    for i, node in enumerate(nodes):
        x, y = xy(i)
        detail = ""
        rate = node.params.get("sample_rate_hz")
        if rate:
            detail = f"{rate} Hz"
        elif node.latency_ms:
            detail = f"{node.latency_ms:.1f} ms"
        out.append(
            f'<g data-stage="{html.escape(node.name)}"><rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" '
            f'rx="6" fill="{_COLOURS.get(node.kind, "#fff")}" stroke="#333"/>'
            f'<text x="{x + box_w // 2}" y="{y + 18}" text-anchor="middle">{html.escape(node.name)}</text>'
            f'<text x="{x + box_w // 2}" y="{y + 34}" text-anchor="middle" fill="#555" font-size="10">'
            f"{html.escape(detail or node.kind)}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)
