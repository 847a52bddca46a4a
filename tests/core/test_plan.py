"""The compiled plan: unique names, formats configured once, channels, side links, one walk."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import vkit
from vkit import GraphWarning, filters, sinks, sources
from vkit.errors import GraphError
from vkit.plan import GraphPlan, PlanJoin, PlanTee
from vkit.realtime import Realtime


class CountsConfigure:
    """A sync stage that counts how often it is configured."""

    def __init__(self) -> None:
        self.num_configured = 0

    def configure(self, fmt: vkit.StreamFormat) -> vkit.StreamFormat:
        self.num_configured += 1
        return fmt

    def process(self, item):  # noqa: ANN001, ANN201
        return item


def test_nodes_edges_formats_and_channels(sine_16k: np.ndarray) -> None:
    graph = (sources.Array(sine_16k, 16_000) | filters.Resample(sample_rate_hz=24_000)
             | vkit.tee(sinks.Null()) | vkit.buffer(8, "drop_oldest") | sinks.VirtualSpeaker(stream="input"))
    plan = graph.plan()
    assert [n.name for n in plan.nodes] == ["Array", "Resample", "tee", "Null", "VirtualSpeaker"]
    assert [(plan.nodes[a].name, plan.nodes[b].name) for a, b in plan.edges] == [
        ("Array", "Resample"), ("Resample", "tee"), ("tee", "Null"), ("tee", "VirtualSpeaker")]
    resample = plan.node("Resample")
    assert resample.input_format.sample_rate_hz == 16_000 and resample.output_format.sample_rate_hz == 24_000
    speaker = plan.node("VirtualSpeaker")
    assert (speaker.channel.max_items, speaker.channel.policy, speaker.channel.explicit) == (8, "drop_oldest", True)
    assert isinstance(plan.root[2], PlanTee) and plan.output_format.sample_rate_hz == 24_000
    assert "[buffer 8 drop_oldest] | VirtualSpeaker" in graph.text()


def test_configure_runs_once_per_run(sine_16k: np.ndarray) -> None:
    counter = CountsConfigure()
    vkit.run(sources.Array(sine_16k, 16_000) | counter | sinks.Null())
    assert counter.num_configured == 1


def test_joins_name_their_points_and_keep_sourced_branches(sine_16k: np.ndarray) -> None:
    a = sources.Array(sine_16k, 16_000, stream="a")
    b = sources.Array(sine_16k, 16_000, stream="b")
    plan = GraphPlan(vkit.mix(a, b, stream="ab") | sinks.Null())
    join = plan.root[0]
    assert isinstance(join, PlanJoin) and join.sourced == (True, True) and join.stream == "ab"
    assert [n.kind for n in plan.nodes] == ["fork", "source", "source", "mix", "sync"]
    assert plan.describe()["edges"] == [["Array", "mix"], ["Array#2", "mix"], ["mix", "Null"]]


def test_a_realtime_stage_is_linked_to_the_sink_that_plays_its_answer() -> None:
    graph = sources.Silence(duration_ms=100, sample_rate_hz=24_000) | Realtime() | sinks.VirtualSpeaker()
    link = graph.plan().link_for("Realtime")
    assert (link.kind, link.target, link.stream) == ("playout", "VirtualSpeaker", "output")
    assert graph.describe()["links"] == [{"kind": "playout", "source": "Realtime", "target": "VirtualSpeaker",
                                          "stream": "output"}]


def test_a_realtime_stage_without_a_playing_sink_is_told_when_the_graph_is_checked() -> None:
    graph = sources.Silence(duration_ms=100, sample_rate_hz=24_000) | Realtime() | sinks.Memory()
    with pytest.warns(GraphWarning, match="no stage downstream plays the 'output' stream"):
        graph.validate()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph.svg()  # drawing the graph is not the time to warn
        (sources.Silence(duration_ms=100, sample_rate_hz=24_000) | Realtime(barge_in=False) | sinks.Memory()).validate()


def test_two_sinks_playing_the_same_answer_are_refused() -> None:
    graph = (sources.Silence(duration_ms=100, sample_rate_hz=24_000) | Realtime()
             | vkit.tee(sinks.VirtualSpeaker()) | sinks.VirtualSpeaker())
    with pytest.raises(GraphError, match=r"several play the 'output' stream.*VirtualSpeaker#2"):
        graph.plan()


def test_a_graph_displays_as_its_picture_not_as_a_stage_table(sine_16k: np.ndarray) -> None:
    graph = sources.Array(sine_16k, 16_000) | filters.Gain(gain_db=-6) | sinks.Null()
    bundle = graph._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml"} and not hasattr(graph, "_repr_html_")
    assert bundle["text/plain"].startswith("Array(") and "<svg" in bundle["image/svg+xml"]


def test_an_unfinished_chain_still_has_a_repr() -> None:
    assert "not runnable" in repr(filters.Gain(gain_db=1) | sinks.Null())
