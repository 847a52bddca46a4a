"""``vkit.sweep`` and ``vkit.batch``: one run per (input, parameter set), cached, failures collected.

Each item runs in a worker (see ``executors``) on the virtual clock with fast pacing (a graph with a
network endpoint: on the system clock, a bounded number at once) and returns a picklable summary of its
session (turn rows, speech segments, status, stage counters). Results are cached on disk by (graph
description, parameters, input content hash, vkit version), so a re-run computes only what changed, and
the output is sorted, so every executor gives the same table.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import pickle
import random
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vkit.errors import ConfigError, got
from vkit.scale.executors import run_tasks

log = logging.getLogger(__name__)

__all__ = ["RunInput", "SweepResult", "sweep", "batch"]


@dataclass
class RunInput:
    """One input of a sweep: an audio file, a recording folder (``sources.Replay``) or an array."""

    name: str
    path: str | None = None
    samples: np.ndarray | None = None
    sample_rate_hz: int | None = None
    segments_ms: list[tuple[float, float]] | None = None

    @property
    def kind(self) -> str:
        if self.samples is not None:
            return "array"
        return "recording" if self.path is not None and Path(self.path).is_dir() else "file"

    def source(self, **options: Any) -> Any:
        """The source that plays this input (fast pacing unless told otherwise)."""
        from vkit.sources import Array, File, Replay

        if self.kind == "array":
            assert self.samples is not None and self.sample_rate_hz is not None
            return Array(self.samples, self.sample_rate_hz, **options)
        if self.kind == "recording":
            return Replay(str(self.path), **options)
        return File(str(self.path), **options)

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        if self.samples is not None:
            digest.update(np.ascontiguousarray(self.samples, np.float32).tobytes())
            digest.update(str(self.sample_rate_hz).encode())
        else:
            assert self.path is not None
            root = Path(self.path)
            for file in sorted(root.rglob("*")) if root.is_dir() else [root]:
                if file.is_file():
                    digest.update(file.name.encode())
                    digest.update(file.read_bytes())
        digest.update(json.dumps(self.segments_ms).encode())
        return digest.hexdigest()


def _as_input(obj: Any, index: int) -> RunInput:
    if isinstance(obj, RunInput):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], np.ndarray):
        return RunInput(f"array{index}", samples=obj[0], sample_rate_hz=int(obj[1]))
    if getattr(obj, "audio_path", None) is not None:  # a vkit.corpus.CorpusItem, or anything shaped like one
        from vkit.evaluation import read_segments

        labels = getattr(obj, "segments_path", None)
        segments = read_segments(labels) if labels is not None and Path(labels).exists() else None
        return RunInput(str(getattr(obj, "item_id", Path(obj.audio_path).stem)), path=str(obj.audio_path),
                        segments_ms=segments)
    if isinstance(obj, (str, Path)):
        path = Path(obj)
        if not path.exists():
            raise ConfigError(f"sweep input not found {got(str(path))}")
        labels = path.with_suffix(".segments.csv")
        segments = None
        if path.is_file() and labels.exists():
            from vkit.evaluation import read_segments

            segments = read_segments(labels)
        return RunInput(path.name, path=str(path), segments_ms=segments)
    raise ConfigError(f"a sweep input is a path, a recording folder, (samples, sample_rate_hz), a corpus item or a "
                      f"RunInput {got(obj)}")


@dataclass
class SweepResult:
    """``table``: one row per turn (or segment) with parameters and input; ``metrics``: one row per run;
    ``failures``: the items that raised, with the error; ``num_executed``: items computed (not cached)."""

    table: Any
    metrics: Any
    failures: Any
    num_executed: int
    summaries: list[dict[str, Any]] = field(default_factory=list, repr=False)


def _prepare(graph: Any) -> tuple[Any, bool, list[str]]:
    """The graph as a chain, whether it talks to a network endpoint, and the sources switched to fast pacing.

    A graph with a stage that needs the real clock (a Realtime stage with a ``url``) runs on the system
    clock with its pacing as given (a remote server keeps real time). Any other graph runs on the virtual
    clock, so its real-time-paced sources are switched to ``pace="fast"`` (a sweep measures, it does not
    talk to a person)."""
    from vkit.graph import Chain, Parallel, Tee
    from vkit.sources.base import PacedSource

    chain = Chain.of(graph)
    if any(getattr(node.obj, "requires_real_clock", False) for node in chain.plan().stages()):
        return chain, True, []
    switched: list[str] = []

    def walk(elements: Iterable[object]) -> None:
        for element in elements:
            if isinstance(element, PacedSource) and element.pace == "realtime":
                element.pace = "fast"
                switched.append(type(element).__name__)
            elif isinstance(element, (Tee, Parallel)):
                for branch in element.branches:
                    walk(branch.elements)

    walk(chain.elements)
    return chain, False, switched


def summarize(session: Any) -> dict[str, Any]:
    """The picklable part of a finished session that a sweep needs (until the Session pickles itself)."""
    return {
        "status": session.status,
        "turns": session.turns.rows(),
        "segments": session.speech_segments(),
        "stages": {n: {"num_items": s["num_items"], "latency_ms": s["latency_ms"]} for n, s in session.stages.items()},
    }


def run_one(make_graph: Callable[..., Any], item: RunInput, params: dict[str, Any], seed: int,
            record_dir: str | None) -> dict[str, Any]:
    """Build and run one item; never raises (an error comes back in the summary)."""
    from vkit.launch import run

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        graph, network, _ = _prepare(make_graph(item, **params))
        record = None if record_dir is None else str(Path(record_dir) / f"{item.name}-{seed}")
        session = run(graph, clock="system" if network else "virtual", ground_truth=item.segments_ms, record=record)
        return {"error": None, **summarize(session)}  # becomes `session` once a Session pickles
    except Exception as exc:  # noqa: BLE001 - collected per item, never aborting the sweep
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def _cache_dir(cache: str | Path | bool | None) -> Path | None:
    if cache is False:
        return None
    if cache is None or cache is True:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "vkit" / "sweep"
    return Path(cache)


def _vkit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vkit")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def _key(graph_description: Any, params: dict[str, Any], input_hash: str) -> str:
    text = json.dumps([graph_description, params, input_hash, _vkit_version()], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def sweep(make_graph: Callable[..., Any], grid: Mapping[str, Sequence[Any]] | None = None, *,
          inputs: Sequence[Any], executor: Any = "local", cache: str | Path | bool | None = None,
          num_workers: int | None = None, rows: str = "turns", progress: bool = True,
          record_dir: str | Path | None = None, max_network_runs: int = 4,
          max_items_per_task: int = 16) -> SweepResult:
    """Run ``make_graph(input, **params)`` for every input and every point of ``grid``.

    ``inputs``: audio paths (a sibling ``.segments.csv`` gives labels), recording folders, ``(samples,
    sample_rate_hz)`` arrays, ``vkit.corpus`` items (labelled) or ``RunInput``s; ``make_graph`` gets each as a
    ``RunInput`` (``item.source()`` plays it).

    Graphs run on the virtual clock with fast pacing (real-time-paced sources are switched, with a
    warning). A graph that talks to a network endpoint (a ``Realtime(url)`` stage) runs on the system
    clock with its pacing as given, at most ``max_network_runs`` at once whatever the executor and its
    workers (an endpoint's rate limits and the machine's sockets are the bound, not its cores).

    Items travel to the workers in chunks of up to ``max_items_per_task`` (one task each on Dask), and
    the workers are kept warm for the next sweep (``vkit.scale.workers.close_workers()`` ends them)."""
    import pandas as pd
    from tqdm.auto import tqdm

    if rows not in ("turns", "segments"):
        raise ConfigError(f"rows must be 'turns' or 'segments' {got(rows)}")
    names = sorted(grid or {})
    points = [dict(zip(names, values, strict=True)) for values in itertools.product(*(list(grid[n]) for n in names))] \
        if names else [{}]
    items = [_as_input(obj, i) for i, obj in enumerate(inputs)]
    hashes = [item.content_hash() for item in items]
    if max_network_runs < 1:
        raise ConfigError(f"max_network_runs must be at least 1 {got(max_network_runs)}")
    directory = _cache_dir(cache)
    plan, network_runs, switched = [], set(), set()
    for i, item in enumerate(items):
        for params in points:
            try:
                graph, network, fast_names = _prepare(make_graph(item, **params))
                description: Any = graph.describe()
                switched.update(fast_names)
                if network:
                    network_runs.add(len(plan))
            except Exception as exc:  # noqa: BLE001 - the worker raises it again and it is collected there
                description = {"build_error": repr(exc)}
            plan.append((item, params, _key(description, params, hashes[i])))
    if switched:
        log.warning("sweep: %s switched from pace='realtime' to pace='fast': a sweep runs on the virtual clock "
                    "(only graphs with a network endpoint keep real time)", ", ".join(sorted(switched)))
    if network_runs:
        log.info("sweep: %d runs talk to a network endpoint, at most %d at once (max_network_runs)",
                 len(network_runs), max_network_runs)
    summaries: list[dict[str, Any] | None] = [None] * len(plan)
    tasks = []
    for index, (item, params, key) in enumerate(plan):
        path = directory / f"{key}.pkl" if directory is not None else None
        if path is not None and path.exists():
            summaries[index] = pickle.loads(path.read_bytes())
        else:
            seed = int(key[:8], 16)
            tasks.append((index, (make_graph, item, params, seed, None if record_dir is None else str(record_dir))))
    bar = tqdm(total=len(tasks), desc="vkit sweep", disable=not progress or not tasks)
    for index, summary in run_tasks(run_one, tasks, executor, num_workers, limited=network_runs,
                                    max_limited=max_network_runs, max_items_per_task=max_items_per_task):
        summaries[index] = summary
        if directory is not None and summary["error"] is None:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"{plan[index][2]}.pkl").write_bytes(pickle.dumps(summary))
        bar.update(1)
    bar.close()
    return _tidy(plan, summaries, names, rows, len(tasks), pd)


def batch(graph_or_factory: Any, inputs: Sequence[Any], *, executor: Any = "local", record_dir: str | Path | None = None,
          cache: str | Path | bool | None = False, **options: Any) -> SweepResult:
    """``sweep`` without a grid: ``graph_or_factory(input)`` (or a graph replacing its source per input)."""
    factory = graph_or_factory if callable(graph_or_factory) else None
    if factory is None:
        raise ConfigError(f"batch takes a factory make_graph(input) -> graph {got(graph_or_factory)}")
    return sweep(factory, None, inputs=inputs, executor=executor, cache=cache, record_dir=record_dir, **options)


def _tidy(plan: list[tuple[RunInput, dict[str, Any], str]], summaries: list[Any], names: list[str], rows: str,
          num_executed: int, pd: Any) -> SweepResult:
    from vkit.evaluation import score_vad

    table, metrics, failures = [], [], []
    for (item, params, key), summary in zip(plan, summaries, strict=True):
        base = {"input": item.name, **params}
        if summary["error"] is not None:
            failures.append({**base, "error": summary["error"], "traceback": summary.get("traceback", ""), "key": key})
            continue
        if rows == "turns":
            table += [{**base, **turn} for turn in summary["turns"]]
        else:
            table += [{**base, "segment": i + 1, "start_ms": a, "end_ms": b}
                      for i, (a, b) in enumerate(summary["segments"])]
        metric: dict[str, Any] = {**base, "status": summary["status"], "num_turns": len(summary["turns"]),
                                  "num_segments": len(summary["segments"])}
        if item.segments_ms:
            end_ms = max(max((b for _, b in item.segments_ms), default=0.0),
                         max((b for _, b in summary["segments"]), default=0.0)) + 1000.0
            score = score_vad(summary["segments"], item.segments_ms, end_ms)
            metric.update(precision=score.precision, recall=score.recall, f1=score.f1,
                          offset_hangover_ms=score.offset_hangover_ms, num_missed=score.num_missed)
        for column in ("end_of_turn_delay_ms", "voice_to_voice_ms"):
            values = [t[column] for t in summary["turns"] if t.get(column) is not None]
            metric[f"{column}_p50"] = float(np.percentile(values, 50)) if values else None
            metric[f"{column}_p90"] = float(np.percentile(values, 90)) if values else None
        metrics.append(metric)
    order = ["input", *names]
    frames = [pd.DataFrame(rows_) for rows_ in (table, metrics, failures)]
    frames = [f.sort_values(order + (["turn"] if "turn" in f else ["segment"] if "segment" in f else []),
                            kind="stable").reset_index(drop=True) if len(f) else f for f in frames]
    return SweepResult(frames[0], frames[1], frames[2], num_executed, summaries)
