"""The theme-aware graph renderer: stage names, rates and latencies on the edges, JupyterLab colours."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import vkit
from vkit import filters, sinks, sources
from vkit.render import graph_svg


def test_a_chain_draws_every_stage_and_labels_edges_with_rate_and_latency():
    graph = (sources.Silence(duration_ms=100, sample_rate_hz=16_000) | filters.Resample(sample_rate_hz=24_000)
             | filters.VAD("silero") | sinks.Null())
    plan = graph.plan()
    nodes, edges = plan.nodes, plan.edges
    svg = graph_svg(nodes, edges)
    root = ET.fromstring(svg)  # well-formed XML, so an <img> or a browser can show it
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert [g.get("data-stage") for g in root.iter("{http://www.w3.org/2000/svg}g")] == [n.name for n in nodes]
    assert {"Silence", "Resample", "VAD", "Null"} <= set(texts)
    rates = [t for t in texts if t and t.endswith("kHz")]
    assert rates == ["16 kHz", "24 kHz", "24 kHz"]  # the resampler changes the rate
    vad_latency = f"+{nodes[2].latency_ms:.3g} ms"
    assert texts[len(texts) - 1 - texts[::-1].index("24 kHz") + 1] == vad_latency  # the VAD's look-ahead is added on its way out
    assert len(root.findall("{http://www.w3.org/2000/svg}line")) == len(edges) == 3


def test_every_colour_is_a_theme_variable_with_a_light_fallback():
    graph = sources.Silence(duration_ms=100) | filters.VAD("silero") | sinks.Null()
    svg = graph.svg()
    colours = re.findall(r'(?:fill|stroke)="([^"]+)"', svg)
    assert colours and all(c == "none" or c.startswith("var(--jp-") for c in colours)
    assert "var(--jp-ui-font-color1, #1f1f1f)" in svg and "var(--jp-layout-color1, #ffffff)" in svg


def test_a_tee_lays_branches_out_in_rows():
    graph = sources.Silence(duration_ms=100) | vkit.tee(sinks.Null(), sinks.Memory())
    plan = graph.plan()
    nodes, edges = plan.nodes, plan.edges
    root = ET.fromstring(graph_svg(nodes, edges))
    ys = {g.get("data-stage"): float(g.find("{http://www.w3.org/2000/svg}rect").get("y"))
          for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert ys["Null"] != ys["Memory"]  # the two branches do not overlap
