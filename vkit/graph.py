"""The graph DSL: chains built with ``|``, fan-out with ``tee``, fan-in with ``merge`` and ``mix``.

A graph is a value: it is built, validated (formats, item types, wiring) and rendered before it runs.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from vkit.errors import GraphError, got
from vkit.frames import AudioFrame, Item
from vkit.stage import StreamFormat, describe_stage, stage_kind, stage_name

__all__ = ["Pipe", "FunctionStage", "stage", "Chain", "Graph", "Tee", "Parallel", "Buffer", "tee", "merge", "mix", "buffer", "chain"]

BackpressurePolicy = Literal["block", "drop_oldest"]


@dataclass(frozen=True)
class Buffer:
    """Sets the channel in front of the next asynchronous stage: its size and backpressure policy."""

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

    # -- validation -----------------------------------------------------------------------------

    def validate(self) -> StreamFormat | None:
        """Check the wiring and the formats; return the output format. Raises GraphError."""
        if not self.elements:
            raise GraphError("the graph is empty: start it with a source, e.g. sources.File(path) | ...")
        return _validate(self.elements, None, upstream=False, where="the graph")

    # -- running --------------------------------------------------------------------------------

    def start(self, **options: Any) -> Any:
        """Run on the engine thread and return a Handle at once (notebook default)."""
        from vkit.runtime import start

        return start(self, **options)

    def run(self, **options: Any) -> Any:
        """Run to the end and return the Session (same as ``vkit.run(graph)``)."""
        from vkit.runtime import run

        return run(self, **options)

    # -- description and rendering --------------------------------------------------------------

    def nodes(self) -> tuple[list[_Node], list[tuple[int, int]]]:
        """The graph as nodes and edges (index pairs), names made unique."""
        builder = _Layout()
        builder.add_chain(self.elements, [])
        return builder.nodes, builder.edges

    def describe(self) -> dict[str, Any]:
        """The graph as plain data: nodes with class, kind and parameters, edges, text."""
        nodes, edges = self.nodes()
        return {
            "nodes": [
                {
                    "name": n.name,
                    "kind": n.kind,
                    "class": n.cls,
                    "params": n.params,
                    "latency_ms": n.latency_ms,
                }
                for n in nodes
            ],
            "edges": [[nodes[a].name, nodes[b].name] for a, b in edges],
            "text": self.text(),
        }

    def text(self) -> str:
        """A one-line-per-chain text rendering for terminals."""
        return _text(self.elements)

    def svg(self) -> str:
        """A pure-Python SVG drawing: boxes by kind, layered left to right."""
        nodes, edges = self.nodes()
        return _svg(nodes, edges)

    def mermaid(self) -> str:
        """Mermaid flowchart text for Markdown cells."""
        nodes, edges = self.nodes()
        lines = ["flowchart LR"]
        lines += [f'  n{i}["{n.name}"]' for i, n in enumerate(nodes)]
        lines += [f"  n{a} --> n{b}" for a, b in edges]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Graph({self.text()})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "image/svg+xml": self.svg()}


Graph = Chain


def chain(*stages: object) -> Chain:
    """Build a chain from stages (or one list of stages) without the ``|`` operator."""
    if len(stages) == 1 and isinstance(stages[0], (list, tuple)):
        stages = tuple(stages[0])
    return Chain(stages)


@dataclass
class Tee:
    """Fan-out: items pass through unchanged and a copy goes down every branch."""

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


def _starts_with_source(branch: Chain) -> bool:
    return bool(branch.elements) and _kind(branch.elements[0]) == "source"


def _kind(element: object) -> str:
    if isinstance(element, (Tee, Parallel, Buffer)):
        return type(element).__name__.lower()
    return stage_kind(element)


def _validate(
    elements: list[object], fmt: StreamFormat | None, *, upstream: bool, where: str
) -> StreamFormat | None:
    for index, element in enumerate(elements):
        kind = _kind(element)
        if kind == "buffer":
            continue
        if kind == "source":
            if upstream or index > 0:
                raise GraphError(
                    f"source {stage_name(element)} is in the middle of {where}: a source starts a chain; "
                    f"to combine two sources use vkit.merge(a | ..., b | ...) {got(element)}"
                )
            fmt = getattr(element, "format", None) or StreamFormat()
            upstream = True
            continue
        if kind == "parallel":
            outs = []
            for branch in element.branches:  # type: ignore[attr-defined]
                own = _starts_with_source(branch)
                if not own and not upstream:
                    raise GraphError(f"a {element.mode}() branch without a source has nothing upstream: "  # type: ignore[attr-defined]
                                     f"start the branch with a source or put a source before the block {got(branch.text())}")
                outs.append(_validate(branch.elements, None if own else fmt, upstream=not own, where="a branch"))
            fmt = _join_formats(element, outs)  # type: ignore[arg-type]
            upstream = True
            continue
        if not upstream:
            raise GraphError(
                f"{stage_name(element)} has nothing upstream: start {where} with a source, "
                f"e.g. sources.File(path) | {stage_name(element)}(...) {got(element)}"
            )
        if kind == "tee":
            for branch in element.branches:  # type: ignore[attr-defined]
                if _starts_with_source(branch):
                    raise GraphError(f"a tee branch cannot start with a source {got(branch.elements[0])}")
                _validate(branch.elements, fmt, upstream=True, where="a tee branch")
            continue
        configure = getattr(element, "configure", None)
        if callable(configure):
            try:
                result = configure(fmt or StreamFormat())
            except GraphError:
                raise
            except (ValueError, TypeError) as exc:
                raise GraphError(f"{stage_name(element)} does not fit after {fmt}: {exc}") from exc
            fmt = result if isinstance(result, StreamFormat) else fmt
    return fmt


def _join_formats(block: Parallel, formats: list[StreamFormat | None]) -> StreamFormat:
    rates = {f.sample_rate_hz for f in formats if f is not None and f.sample_rate_hz}
    channels = [f.num_channels for f in formats if f is not None and f.num_channels]
    if block.mode == "mix" and len(rates) > 1:
        raise GraphError(
            "mix() branches must share one sample rate: add filters.Resample(sample_rate_hz=...) to a branch "
            f"{got(sorted(rates))}"
        )
    if len(rates) == 1:
        return StreamFormat(rates.pop(), max(channels) if channels else None)
    return StreamFormat()


# -- layout and rendering -----------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    kind: str
    cls: str
    params: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    obj: object = None


class _Layout:
    """Flattens the nested structure into nodes and edges, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.edges: list[tuple[int, int]] = []
        self._names: dict[str, int] = {}

    def _add(self, obj: object, kind: str, name: str | None = None) -> int:
        base = name or stage_name(obj)
        count = self._names.get(base, 0) + 1
        self._names[base] = count
        unique = base if count == 1 else f"{base}#{count}"
        latency = getattr(obj, "latency_ms", None)
        params = describe_stage(obj) if kind in ("source", "sync", "async") else {}
        self.nodes.append(
            _Node(unique, kind, type(obj).__name__, params, latency if isinstance(latency, (int, float)) else None, obj)
        )
        return len(self.nodes) - 1

    def add_chain(self, elements: list[object], previous: list[int]) -> list[int]:
        for element in elements:
            if isinstance(element, Buffer):
                continue
            if isinstance(element, Tee):
                node = self._add(element, "tee", "tee")
                self.edges += [(p, node) for p in previous]
                for branch in element.branches:
                    self.add_chain(branch.elements, [node])
                previous = [node]
            elif isinstance(element, Parallel):
                fork = self._add(element, "fork", "fork")
                self.edges += [(p, fork) for p in previous]
                ends: list[int] = []
                for branch in element.branches:
                    ends += self.add_chain(branch.elements, [] if _starts_with_source(branch) else [fork])
                join = self._add(element, element.mode, element.mode)
                self.edges += [(e, join) for e in ends]
                previous = [join]
            else:
                node = self._add(element, stage_kind(element))
                self.edges += [(p, node) for p in previous]
                previous = [node]
        return previous


def _text(elements: list[object]) -> str:
    parts = []
    for element in elements:
        if isinstance(element, Buffer):
            parts.append(f"[buffer {element.max_items} {element.policy}]")
        elif isinstance(element, Tee):
            parts.append("tee(" + ", ".join(_text(b.elements) for b in element.branches) + ")")
        elif isinstance(element, Parallel):
            parts.append(f"{element.mode}(" + ", ".join(_text(b.elements) for b in element.branches) + ")")
        else:
            parts.append(_stage_label(element))
    return " | ".join(parts)


def _stage_label(obj: object) -> str:
    params = describe_stage(obj)
    shown = ", ".join(f"{k}={v!r}" for k, v in list(params.items())[:3])
    return f"{stage_name(obj)}({shown})"


_COLOURS = {
    "source": "#d8ecd2",
    "sync": "#dde8f6",
    "async": "#f8e3c6",
    "tee": "#eeeeee",
    "fork": "#eeeeee",
    "merge": "#eeeeee",
    "mix": "#eeeeee",
}


def _svg(nodes: list[_Node], edges: list[tuple[int, int]]) -> str:
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
