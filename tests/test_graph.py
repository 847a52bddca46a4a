"""The DSL: building, validating and rendering graphs."""

from __future__ import annotations

import numpy as np
import pytest

import vkit
from vkit import sinks, sources
from vkit.data import sample_path
from vkit.errors import GraphError
from vkit.stage import StreamFormat


class Needs16k:
    """A stage that only takes 16 kHz, like a model with a fixed rate."""

    def configure(self, fmt: StreamFormat) -> StreamFormat:
        if fmt.sample_rate_hz != 16_000:
            raise GraphError(f"Needs16k takes 16 kHz; put filters.Resample(sample_rate_hz=16000) before it "
                             f"(got {fmt.sample_rate_hz})")
        return fmt

    def process(self, frame):
        return frame


def test_a_class_instead_of_an_instance_names_the_fix(sine_16k):
    with pytest.raises(GraphError, match=r"Memory is a class.*Memory\(\.\.\.\)"):
        sources.Array(sine_16k, 16_000) | sinks.Memory


def test_a_sink_with_nothing_upstream_is_refused():
    with pytest.raises(GraphError, match="Null has nothing upstream: start the graph with a source"):
        vkit.chain(sinks.Null(), sinks.Memory()).validate()


def test_a_source_in_the_middle_is_refused(sine_16k):
    graph = sources.Array(sine_16k, 16_000) | sources.Array(sine_16k, 16_000)
    with pytest.raises(GraphError, match="in the middle"):
        graph.validate()


def test_a_plain_function_must_be_wrapped(sine_16k):
    def double(frame):
        return frame

    with pytest.raises(GraphError, match=r"vkit.stage\(double\)"):
        sources.Array(sine_16k, 16_000) | double


def test_wrong_rate_is_caught_when_built_with_the_stage_named(sine_16k):
    graph = sources.Array(sine_16k, 24_000) | Needs16k() | sinks.Null()
    with pytest.raises(GraphError, match=r"Needs16k takes 16 kHz.*\(got 24000\)"):
        graph.validate()
    assert (sources.Array(sine_16k, 16_000) | Needs16k() | sinks.Null()).validate() == StreamFormat(16_000, 1)


def test_mix_needs_one_sample_rate(sine_16k):
    a = sources.Array(sine_16k, 16_000)
    b = sources.Array(sine_16k, 24_000)
    with pytest.raises(GraphError, match=r"mix\(\) branches must share one sample rate.*\[16000, 24000\]"):
        vkit.chain(vkit.mix(a, b)).validate()


def test_empty_graph_and_tee_without_branches():
    with pytest.raises(GraphError, match="empty"):
        vkit.chain().validate()
    with pytest.raises(GraphError, match="at least one branch"):
        vkit.tee()


def test_chain_from_a_list_equals_the_pipe_form(sine_16k):
    src, mem = sources.Array(sine_16k, 16_000), sinks.Memory()
    assert vkit.chain([src, mem]).elements == (src | mem).elements


def test_text_svg_and_describe(sine_16k):
    graph = sources.Array(sine_16k, 16_000) | vkit.tee(sinks.Memory()) | sinks.Null()
    text = graph.text()
    assert text.startswith("Array(") and "tee(Memory())" in text and text.endswith("Null()")
    svg = graph.svg()
    assert svg.startswith("<svg") and svg.count("<g data-stage=") == 4 and 'data-stage="Null"' in svg
    bundle = graph._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml"}
    described = graph.describe()
    assert [n["name"] for n in described["nodes"]] == ["Array", "tee", "Memory", "Null"]
    assert ["tee", "Null"] in described["edges"]
    assert "flowchart LR" in graph.mermaid()


def test_describe_never_includes_secrets(sine_16k):
    class Client:
        def __init__(self, url: str, api_key: str) -> None:
            self.url = url
            self.api_key = api_key

        def process(self, frame):
            return frame

    graph = sources.Array(sine_16k, 16_000) | Client("ws://x", "sk-secret-123")
    assert "sk-secret-123" not in repr(graph.describe()) + graph.text() + graph.svg()


def test_duplicate_names_are_made_unique(sine_16k):
    graph = sources.Array(sine_16k, 16_000) | sinks.Null() | sinks.Null()
    assert [n["name"] for n in graph.describe()["nodes"]] == ["Array", "Null", "Null#2"]


def test_graph_is_a_value_that_can_run_twice(sine_16k):
    mem = sinks.Memory()
    graph = sources.Array(sine_16k, 16_000) | mem
    vkit.run(graph)
    first = mem.audio().copy()
    mem.reset()
    vkit.run(graph)
    np.testing.assert_array_equal(mem.audio(), first)


def test_a_graph_is_data_it_pickles_runs_the_same_after_and_carries_no_secret():
    import pickle

    from vkit import filters
    from vkit.realtime import Realtime

    data = sample_path("two_turns.wav")

    def analysis(model: str):
        return (sources.File(data) | filters.Resample(16_000) | filters.NoiseGate(threshold_dbfs=-50)
                | filters.VAD(model) | sinks.Null())

    for model in ("silero", "webrtc", "energy"):
        graph = analysis(model)
        shipped = pickle.loads(pickle.dumps(graph))  # what a process pool or a Dask worker receives
        assert vkit.run(shipped).speech_segments() == vkit.run(graph).speech_segments() != []
    stage = Realtime("wss://example.invalid/v1/realtime", api_key="sk-not-to-be-shipped", turn_detection="manual")
    blob = pickle.dumps(sources.Silence(duration_ms=100) | stage | sinks.Null())
    assert b"sk-not-to-be-shipped" not in blob and pickle.loads(blob).elements[1]._api_key is None
