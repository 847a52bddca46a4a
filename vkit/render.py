"""A graph drawn: as text for terminals, as Mermaid, and as theme-aware SVG: stages as boxes, layered left to right, the sample rate and the
stage latency written on each edge.

Colours are JupyterLab's CSS variables with light fallbacks, so the picture follows the theme when
the SVG is inline in the page (a widget, text/html) and stays a readable light card where it is shown
as an image (``image/svg+xml`` in an ``<img>``, GitHub, nbconvert), since it paints its own background.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Protocol

from vkit.plan import GraphPlan, Part, PlanJoin, PlanNode, PlanTee

__all__ = ["graph_svg", "graph_text", "graph_mermaid"]

# boxes are the theme's second layer colour (light or dark), told apart by a border in the kind's colour
_KIND_STROKES = {
    "source": "var(--jp-success-color1, #388e3c)",
    "sync": "var(--jp-brand-color1, #1976d2)",
    "async": "var(--jp-warn-color1, #f57c00)",
}
_JOIN_STROKE = "var(--jp-border-color1, #9e9e9e)"
_BOX = "var(--jp-layout-color2, #eeeeee)"
_BACKGROUND = "var(--jp-layout-color1, #ffffff)"
_TEXT = "var(--jp-ui-font-color1, #1f1f1f)"
_MUTED = "var(--jp-ui-font-color2, #616161)"
_LINE = "var(--jp-ui-font-color2, #616161)"
_FONT = "var(--jp-ui-font-family, system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif)"


class GraphNode(Protocol):
    """What the renderer reads of a node (``vkit.graph``'s nodes have these)."""

    name: str
    kind: str
    cls: str
    params: dict[str, Any]
    latency_ms: float | None


def _ranks(num_nodes: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Longest path from a source (graphs are small and acyclic)."""
    rank = [0] * num_nodes
    for _ in range(num_nodes):
        for a, b in edges:
            rank[b] = max(rank[b], rank[a] + 1)
    return rank


def _rates(nodes: Sequence[GraphNode], edges: Sequence[tuple[int, int]], rank: list[int]) -> list[int | None]:
    """The sample rate leaving each node: its own ``sample_rate_hz``, else the one that reaches it."""
    rates: list[int | None] = [None] * len(nodes)
    for i in sorted(range(len(nodes)), key=rank.__getitem__):
        own = nodes[i].params.get("sample_rate_hz")
        if isinstance(own, (int, float)) and own > 0:
            rates[i] = int(own)
        else:
            incoming = [rates[a] for a, b in edges if b == i and rates[a] is not None]
            rates[i] = incoming[0] if incoming else None
    return rates


def _edge_labels(rate_hz: int | None, latency_ms: float | None) -> tuple[str, str]:
    """(above the arrow, below it): the rate flowing, and the latency the upstream stage adds."""
    return (f"{rate_hz / 1000:g} kHz" if rate_hz else "", f"+{latency_ms:.3g} ms" if latency_ms else "")


def graph_svg(nodes: Sequence[GraphNode], edges: Sequence[tuple[int, int]]) -> str:
    """The graph as a standalone SVG document (``<svg ...>...</svg>``).

    A box per node (name, and the class when it differs, else the kind), coloured by kind; an arrow
    per edge labelled with the sample rate flowing on it (above) and the upstream stage's algorithmic
    latency (``+32 ms``, below), so the picture shows where delay is added. Stages carry ``data-stage`` for live labels.
    """
    rank = _ranks(len(nodes), edges)
    rates = _rates(nodes, edges, rank)
    rows: dict[int, int] = {}
    row = []
    for i in range(len(nodes)):
        row.append(rows.get(rank[i], 0))
        rows[rank[i]] = row[-1] + 1
    box_w, box_h, gap_x, gap_y, pad = 132, 46, 64, 22, 12
    width = pad * 2 + (max(rank, default=0) + 1) * (box_w + gap_x) - gap_x
    height = pad * 2 + max(rows.values(), default=1) * (box_h + gap_y) - gap_y + 12

    def xy(i: int) -> tuple[int, int]:
        return pad + rank[i] * (box_w + gap_x), pad + 12 + row[i] * (box_h + gap_y)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="vkit graph" data-testid="vkit-graph-svg" style="max-width:100%;height:auto" '
        f'font-family="{_FONT}" font-size="12">',
        f'<rect width="{width}" height="{height}" rx="4" fill="{_BACKGROUND}"/>',
        '<defs><marker id="vkit-arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        f'<path d="M0,0 L8,4 L0,8 z" fill="{_LINE}"/></marker></defs>',
    ]
    for a, b in edges:
        (xa, ya), (xb, yb) = xy(a), xy(b)
        x1, y1, x2, y2 = xa + box_w, ya + box_h // 2, xb - 2, yb + box_h // 2
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{_LINE}" stroke-width="1.2" '
                   'marker-end="url(#vkit-arrow)"/>')
        for label, dy in zip(_edge_labels(rates[a], nodes[a].latency_ms), (-5, 13), strict=True):
            if label:
                out.append(f'<text x="{(x1 + x2) / 2:.0f}" y="{(y1 + y2) / 2 + dy:.0f}" text-anchor="middle" '
                           f'font-size="10" fill="{_MUTED}">{html.escape(label)}</text>')
    for i, node in enumerate(nodes):
        x, y = xy(i)
        stroke = _KIND_STROKES.get(node.kind, _JOIN_STROKE)
        detail = node.cls if node.cls and node.cls != node.name.split("#")[0] else node.kind
        tip = ", ".join(f"{k}={v!r}" for k, v in node.params.items())
        out.append(
            f'<g data-stage="{html.escape(node.name)}"><title>{html.escape(node.name)} ({html.escape(node.kind)})'
            f'{": " + html.escape(tip) if tip else ""}</title>'
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="{_BOX}" stroke="{stroke}" stroke-width="2"/>'
            f'<text x="{x + box_w // 2}" y="{y + 19}" text-anchor="middle" font-weight="600" '
            f'fill="{_TEXT}">{html.escape(node.name)}</text>'
            f'<text x="{x + box_w // 2}" y="{y + 35}" text-anchor="middle" font-size="10" '
            f'fill="{_MUTED}">{html.escape(detail)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def graph_text(plan: GraphPlan) -> str:
    """One line: stages with their first parameters, ``tee(...)``, ``merge(...)``, explicit buffers."""
    return _text(plan.root)


def graph_mermaid(plan: GraphPlan) -> str:
    """Mermaid flowchart text for Markdown cells."""
    lines = ["flowchart LR"]
    lines += [f'  n{n.index}["{n.name}"]' for n in plan.nodes]
    lines += [f"  n{a} --> n{b}" for a, b in plan.edges]
    return "\n".join(lines)


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
