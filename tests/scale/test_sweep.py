"""Sweeps: the same table on every executor, a re-run computes only what changed, failures collected."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import vkit
from vkit import filters, sinks
from vkit.data import sample_path
from vkit.realtime import LocalServer, Realtime
from vkit.scale import RunInput
from vkit.scale.executors import run_tasks


def make_graph(item: RunInput, threshold: float = 0.5, min_silence_ms: int = 300):
    if threshold > 1:
        raise ValueError("threshold above 1")
    return item.source(pace="realtime") | filters.VAD("silero", threshold=threshold, min_silence_ms=min_silence_ms) \
        | sinks.Null()


def test_same_table_inline_and_local_and_rerun_computes_only_new_items(tmp_path: Path):
    inputs = [sample_path("two_turns.wav")]
    grid = {"threshold": [0.3, 0.6]}
    inline = vkit.sweep(make_graph, grid, inputs=inputs, executor="inline", cache=tmp_path / "a", progress=False)
    local = vkit.sweep(make_graph, grid, inputs=inputs, executor="local", cache=False, num_workers=2, progress=False)
    assert inline.num_executed == 2 and len(inline.table) >= 4
    assert inline.table.equals(local.table) and inline.metrics.equals(local.metrics)
    assert set(inline.metrics["f1"]) and inline.metrics["f1"].min() > 0.5
    again = vkit.sweep(make_graph, {"threshold": [0.3, 0.7]}, inputs=inputs, executor="inline", cache=tmp_path / "a",
                       progress=False)
    assert again.num_executed == 1
    assert again.table[again.table.threshold == 0.3].reset_index(drop=True).equals(
        inline.table[inline.table.threshold == 0.3].reset_index(drop=True))


def test_failures_are_collected_and_arrays_are_inputs(tmp_path: Path):
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal(16_000)).astype(np.float32)
    result = vkit.sweep(make_graph, {"threshold": [0.5, 2.0]}, inputs=[(noise, 16_000)], executor="inline",
                        cache=False, progress=False)
    assert len(result.failures) == 1 and "threshold above 1" in result.failures.loc[0, "error"]
    assert result.failures.loc[0, "threshold"] == 2.0
    assert len(result.metrics) == 1 and result.metrics.loc[0, "status"] == "complete"


def test_batch_records_each_run(tmp_path: Path):
    result = vkit.batch(lambda item: make_graph(item), [sample_path("two_turns.wav")], executor="inline",
                        record_dir=tmp_path, progress=False)
    assert len(result.metrics) == 1 and list(tmp_path.iterdir())
    assert vkit.load_session(next(tmp_path.iterdir())).turns is not None


def test_unknown_executor_is_a_config_error():
    with pytest.raises(vkit.ConfigError, match="executor"):
        vkit.sweep(make_graph, {}, inputs=[sample_path("two_turns.wav")], executor="ray", cache=False, progress=False)


def test_dask_local_cluster_gives_the_same_table():
    distributed = pytest.importorskip("distributed")
    inputs, grid = [sample_path("two_turns.wav")], {"threshold": [0.3, 0.6]}
    inline = vkit.sweep(make_graph, grid, inputs=inputs, executor="inline", cache=False, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        on_dask = vkit.sweep(make_graph, grid, inputs=inputs, executor=client, cache=False, progress=False)
    assert on_dask.num_executed == 2 and on_dask.table.equals(inline.table) and on_dask.metrics.equals(inline.metrics)


def timed(delay_s: float) -> tuple[float, float]:
    started = time.time()
    time.sleep(delay_s)
    return started, time.time()


def test_limited_tasks_never_exceed_their_concurrency_limit_on_a_process_pool():
    tasks = [(i, (0.3,)) for i in range(5)]
    spans = dict(run_tasks(timed, tasks, "local", num_workers=2, limited={0, 1, 2}, max_limited=1))
    assert sorted(spans) == [0, 1, 2, 3, 4]
    network = sorted(spans[i] for i in (0, 1, 2))
    assert all(a[1] <= b[0] for a, b in zip(network, network[1:], strict=False))  # one at a time
    assert any(spans[i][0] < spans[3][1] and spans[3][0] < spans[i][1] for i in (0, 1, 2))  # the rest alongside


def make_network_graph(item: RunInput, threshold: float = 0.5, *, url: str):
    return item.source(pace="realtime") | Realtime(url, vad={"threshold": threshold}) | sinks.VirtualSpeaker()


def test_a_network_graph_keeps_real_time_against_a_real_server():
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    utterance = np.concatenate([audio[int(0.9 * rate):int(3.7 * rate)], np.zeros(rate, np.float32)])  # 3.8 s
    server = LocalServer(output_pace=0).run_in_thread()
    try:
        result = vkit.sweep(functools.partial(make_network_graph, url=server.url), {"threshold": [0.5]},
                            inputs=[(utterance, rate)], executor="inline", cache=False, progress=False)
    finally:
        server.stop()
    assert result.failures.empty and list(result.metrics["status"]) == ["complete"]
    assert len(result.table) == 1 and 0 < result.table.loc[0, "voice_to_voice_ms"] < 2000
    assert len(server.records) == 1


def test_real_time_pacing_is_switched_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="vkit.scale.sweep"):
        vkit.sweep(make_graph, {"threshold": [0.5]}, inputs=[sample_path("two_turns.wav")], executor="inline",
                   cache=False, progress=False)
    assert "File switched from pace='realtime' to pace='fast'" in caplog.text


def test_corpus_items_are_labelled_inputs(tmp_path: Path):
    corpus = pytest.importorskip("vkit.corpus")
    made = corpus.generate(tmp_path / "corpus", num_utterances=1, seed=2, snr_db=20.0, noise="pink", turns_per_item=1)
    result = vkit.sweep(make_graph, {"threshold": [0.5]}, inputs=made, executor="inline", cache=False, progress=False)
    assert list(result.metrics["input"]) == [made[0].item_id] and result.metrics.loc[0, "f1"] > 0.5
