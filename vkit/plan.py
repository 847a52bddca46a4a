"""The compiled graph: one ``GraphPlan`` built once from a graph, read by everything else.

Planning walks the graph's nesting (chains, ``tee``, ``merge``/``mix``, ``buffer``) exactly once. It
names every node uniquely, checks the wiring, runs each stage's ``configure`` once (so every node
knows its input and output format), attaches each asynchronous stage's channel, and resolves the
side links a graph does not draw as edges: a stage that truncates at what a sink really played
(``uses_playout = "output"``) is linked to the sink downstream that plays that stream
(``provides_playout = "output"``). Validation, ``describe()``, the renderers and the runtime all
read the plan; none walks the graph again.

The plan reads the graph's structure by shape, not by class, so it sits below the DSL
(``vkit.graph``): a chain is an object whose class says ``vkit_block = "chain"`` and that has
``elements``; ``tee`` blocks have ``branches``; ``merge``/``mix`` blocks have ``branches``, ``mode``
and ``stream``; ``buffer`` blocks have ``max_items`` and ``policy``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from vkit.errors import GraphError, got
from vkit.stage import StreamFormat, describe_stage, stage_kind, stage_name

__all__ = ["GraphPlan", "PlanNode", "PlanTee", "PlanJoin", "SideLink", "ChannelSpec", "NodeKind", "GraphWarning"]

NodeKind = Literal["source", "sync", "async", "tee", "fork", "merge", "mix"]
DEFAULT_CHANNEL_ITEMS = 256


class GraphWarning(UserWarning):
    """A graph that runs, but not the way its author probably meant (said once, when it is planned)."""


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """The bounded channel in front of an asynchronous stage or a fan-in point."""

    max_items: int = DEFAULT_CHANNEL_ITEMS
    policy: Literal["block", "drop_oldest"] = "block"
    explicit: bool = False  # set by a vkit.buffer(...) in the graph, not by default


@dataclass(eq=False, slots=True)
class PlanNode:
    """One node: a stage (``obj``), or a tee / fork / join point of the graph's structure."""

    index: int
    name: str
    kind: NodeKind
    obj: object
    cls: str
    params: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    input_format: StreamFormat | None = None
    output_format: StreamFormat | None = None
    channel: ChannelSpec | None = None  # async stages and joins: what feeds them


@dataclass(frozen=True, slots=True)
class SideLink:
    """A dependency between two nodes that is not a stream edge (e.g. truncate at the sink's playout)."""

    kind: Literal["playout"]
    source: str  # the node that uses the link
    target: str  # the node that provides it
    stream: str


@dataclass(frozen=True, slots=True)
class PlanTee:
    """Fan-out: every branch gets a copy; the chain goes on after it."""

    node: PlanNode
    branches: tuple[tuple[Part, ...], ...]


@dataclass(frozen=True, slots=True)
class PlanJoin:
    """Fan-in: branches (each with its own source, or fed from upstream) meet at ``join``."""

    fork: PlanNode
    join: PlanNode
    mode: Literal["merge", "mix"]
    stream: str
    branches: tuple[tuple[Part, ...], ...]
    sourced: tuple[bool, ...]  # branch i starts with its own source


Part = PlanNode | PlanTee | PlanJoin


class GraphPlan:
    """Nodes with unique names, edges, formats, channels and side links of one graph."""

    def __init__(self, graph: object, *, warn: bool = True) -> None:
        elements = _elements(graph)
        if not elements:
            raise GraphError("the graph is empty: start it with a source, e.g. sources.File(path) | ...")
        self.nodes: list[PlanNode] = []
        self.edges: list[tuple[int, int]] = []
        self.links: list[SideLink] = []
        self._names: dict[str, int] = {}
        self.root, ends, self.output_format = self._segment(elements, [], None, upstream=False,
                                                            where="the graph")
        self._link_playout(warn)

    # -- views --------------------------------------------------------------------------------------

    def node(self, name: str) -> PlanNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node named {name!r} {got([n.name for n in self.nodes])}")

    def stages(self) -> list[PlanNode]:
        """The nodes that are stages (sources, sync and async stages), in graph order."""
        return [n for n in self.nodes if n.kind in ("source", "sync", "async")]

    def link_for(self, name: str, kind: str = "playout") -> SideLink | None:
        """The side link of ``kind`` that node ``name`` uses, if any."""
        return next((link for link in self.links if link.source == name and link.kind == kind), None)

    def describe(self) -> dict[str, Any]:
        """The graph as plain data: nodes with class, kind, parameters, formats; edges; side links."""
        return {
            "nodes": [{"name": n.name, "kind": n.kind, "class": n.cls, "params": n.params,
                       "latency_ms": n.latency_ms,
                       "output_format": _format_dict(n.output_format)} for n in self.nodes],
            "edges": [[self.nodes[a].name, self.nodes[b].name] for a, b in self.edges],
            "links": [{"kind": x.kind, "source": x.source, "target": x.target, "stream": x.stream}
                      for x in self.links],
        }

    # -- building -------------------------------------------------------------------------------------

    def _add(self, obj: object, kind: NodeKind, base: str | None = None) -> PlanNode:
        base = base or stage_name(obj)
        count = self._names.get(base, 0) + 1
        self._names[base] = count
        name = base if count == 1 else f"{base}#{count}"
        latency = getattr(obj, "latency_ms", None) if kind in ("source", "sync", "async") else None
        node = PlanNode(len(self.nodes), name, kind, obj, type(obj).__name__,
                        describe_stage(obj) if kind in ("source", "sync", "async") else {},
                        float(latency) if isinstance(latency, (int, float)) else None)
        self.nodes.append(node)
        return node

    def _connect(self, previous: list[PlanNode], node: PlanNode) -> None:
        self.edges += [(p.index, node.index) for p in previous]

    def _segment(self, elements: list[object], previous: list[PlanNode], fmt: StreamFormat | None, *,
                 upstream: bool, where: str) -> tuple[tuple[Part, ...], list[PlanNode], StreamFormat | None]:
        parts: list[Part] = []
        pending: Any = None
        for index, element in enumerate(elements):
            block = _block(element)
            if block == "buffer":
                pending = element
                continue
            if block == "tee":
                if not upstream:
                    raise GraphError(f"tee() has nothing upstream: start {where} with a source {got(element)}")
                node = self._add(element, "tee", "tee")
                node.input_format = node.output_format = fmt
                self._connect(previous, node)
                branches = []
                for branch in element.branches:
                    if _starts_with_source(branch):
                        raise GraphError(f"a tee branch cannot start with a source {got(_elements(branch)[0])}")
                    inner, _, _ = self._segment(_elements(branch), [node], fmt, upstream=True, where="a tee branch")
                    branches.append(inner)
                parts.append(PlanTee(node, tuple(branches)))
                previous = [node]
                continue
            if block == "parallel":
                join, fmt = self._join(element, previous, fmt, upstream, pending)
                pending = None
                parts.append(join)
                previous = [join.join]
                upstream = True
                continue
            kind = stage_kind(element)
            if kind == "source":
                if upstream or index > 0:
                    raise GraphError(
                        f"source {stage_name(element)} is in the middle of {where}: a source starts a chain; "
                        f"to combine two sources use vkit.merge(a | ..., b | ...) {got(element)}")
                node = self._add(element, "source")
                node.output_format = getattr(element, "format", None) or StreamFormat()
            else:
                if not upstream:
                    raise GraphError(
                        f"{stage_name(element)} has nothing upstream: start {where} with a source, "
                        f"e.g. sources.File(path) | {stage_name(element)}(...) {got(element)}")
                node = self._add(element, kind)  # type: ignore[arg-type]
                node.input_format = fmt
                node.output_format = _configure(element, fmt)
                if kind == "async":
                    node.channel = _channel(pending, live=bool(getattr(element, "live", False)))
            pending = None
            self._connect(previous, node)
            parts.append(node)
            previous = [node]
            fmt = node.output_format
            upstream = True
        return tuple(parts), previous, fmt

    def _join(self, block: Any, previous: list[PlanNode], fmt: StreamFormat | None, upstream: bool,
              pending: Any) -> tuple[PlanJoin, StreamFormat | None]:
        fork = self._add(block, "fork", "fork")
        fork.input_format = fork.output_format = fmt
        self._connect(previous, fork)
        branches, sourced, ends, formats = [], [], [], []
        for branch in block.branches:
            own = _starts_with_source(branch)
            if not own and not upstream:
                raise GraphError(f"a {block.mode}() branch without a source has nothing upstream: start the "
                                 f"branch with a source or put a source before the block {got(branch)}")
            inner, branch_ends, out = self._segment(_elements(branch), [] if own else [fork], None if own else fmt,
                                                    upstream=not own, where="a branch")
            branches.append(inner)
            sourced.append(own)
            ends += branch_ends
            formats.append(out)
        join = self._add(block, block.mode, block.mode)
        join.input_format = join.output_format = _join_formats(block, formats)
        join.channel = _channel(pending, live=False)
        for end in ends:
            self.edges.append((end.index, join.index))
        return PlanJoin(fork, join, block.mode, block.stream, tuple(branches), tuple(sourced)), join.output_format

    def _link_playout(self, warn: bool) -> None:
        downstream = _reachability(len(self.nodes), self.edges)
        for node in self.stages():
            stream = getattr(node.obj, "uses_playout", None)
            if not isinstance(stream, str):
                continue
            players = [self.nodes[i] for i in sorted(downstream[node.index])
                       if getattr(self.nodes[i].obj, "provides_playout", None) == stream]
            if not players:
                if not warn:
                    continue
                warnings.warn(
                    f"{node.name} stops and truncates its answer at what was really played, but no stage "
                    f"downstream plays the {stream!r} stream (sinks.Player, sinks.Speaker or "
                    f"sinks.VirtualSpeaker): barge-in will assume the answer played in real time from its "
                    f"first audio", GraphWarning, stacklevel=5)
                continue
            if len(players) > 1:
                raise GraphError(f"{node.name} can truncate at one playing sink, but several play the "
                                 f"{stream!r} stream downstream {got([p.name for p in players])}")
            self.links.append(SideLink("playout", node.name, players[0].name, stream))


def _block(element: object) -> str | None:
    """"chain", "tee", "parallel", "buffer" for the DSL's structure; None for a stage."""
    block = getattr(type(element), "vkit_block", None)
    return block if isinstance(block, str) else None


def _elements(graph: object) -> list[object]:
    if _block(graph) == "chain":
        return list(graph.elements)  # type: ignore[attr-defined]
    if isinstance(graph, (list, tuple)):
        return list(graph)
    return [graph]


def _starts_with_source(branch: object) -> bool:
    elements = _elements(branch)
    first = elements[0] if elements else None
    return first is not None and _block(first) is None and stage_kind(first) == "source"


def _configure(obj: object, fmt: StreamFormat | None) -> StreamFormat | None:
    configure = getattr(obj, "configure", None)
    if not callable(configure):
        return fmt
    try:
        result = configure(fmt or StreamFormat())
    except GraphError:
        raise
    except (ValueError, TypeError) as exc:
        raise GraphError(f"{stage_name(obj)} does not fit after {fmt}: {exc}") from exc
    return result if isinstance(result, StreamFormat) else fmt


def _channel(buffer: Any, *, live: bool) -> ChannelSpec:
    if buffer is not None:
        return ChannelSpec(buffer.max_items, buffer.policy, explicit=True)
    return ChannelSpec(DEFAULT_CHANNEL_ITEMS, "drop_oldest" if live else "block")


def _join_formats(block: Any, formats: list[StreamFormat | None]) -> StreamFormat:
    rates = {f.sample_rate_hz for f in formats if f is not None and f.sample_rate_hz}
    channels = [f.num_channels for f in formats if f is not None and f.num_channels]
    if block.mode == "mix" and len(rates) > 1:
        raise GraphError("mix() branches must share one sample rate: add filters.Resample(sample_rate_hz=...) "
                         f"to a branch {got(sorted(rates))}")
    if len(rates) == 1:
        return StreamFormat(rates.pop(), max(channels) if channels else None)
    return StreamFormat()


def _reachability(num_nodes: int, edges: list[tuple[int, int]]) -> list[set[int]]:
    after: list[list[int]] = [[] for _ in range(num_nodes)]
    for a, b in edges:
        after[a].append(b)
    reach: list[set[int]] = []
    for start in range(num_nodes):
        seen: set[int] = set()
        todo = list(after[start])
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo += after[i]
        reach.append(seen)
    return reach


def _format_dict(fmt: StreamFormat | None) -> dict[str, int | None] | None:
    if fmt is None:
        return None
    return {"sample_rate_hz": fmt.sample_rate_hz, "num_channels": fmt.num_channels}
