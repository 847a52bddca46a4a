"""Sweep scaling: wall time at 1 and 2 workers, per-item overhead of each executor against a bare loop,
the Dask scheduler's cost per task, and a paper estimate for 100 workers.

    python bench/sweep.py [--num-utterances 50] [--corpus-dir DIR]

Items: a labelled corpus made by ``vkit.corpus.generate`` (one turn per item, pink noise at 10 and 20 dB
SNR), each run through NoiseGate -> Silero VAD at every point of a 2 x 2 grid (VAD threshold x gate).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from distributed import Client, LocalCluster

import vkit
import vkit.corpus
from vkit import filters, sinks
from vkit.scale import RunInput, sweep

GRID = {"threshold": [0.4, 0.6], "gate_dbfs": [None, -40]}


def make_graph(item: RunInput, threshold: float = 0.5, gate_dbfs: float | None = None):
    graph = item.source()
    if gate_dbfs is not None:
        graph = graph | filters.NoiseGate(threshold_dbfs=gate_dbfs, attack_ms=2, hold_ms=60, release_ms=150)
    return graph | filters.VAD("silero", threshold=threshold) | sinks.Null()


def noop(x: int) -> int:
    return x


def scheduler_ms_per_task(client: Client, num_tasks: int = 2000) -> float:
    """Wall time per task of trivial tasks on the cluster: the scheduler's and the round trip's cost."""
    client.gather(client.map(noop, range(50), pure=False))  # warm
    started = time.perf_counter()
    client.gather(client.map(noop, range(num_tasks), pure=False))
    return (time.perf_counter() - started) / num_tasks * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-utterances", type=int, default=50, help="corpus items (x 4 grid points)")
    parser.add_argument("--corpus-dir", default=None, help="where the corpus is written (default: a temporary folder)")
    args = parser.parse_args()
    folder = args.corpus_dir or tempfile.mkdtemp(prefix="vkit-sweep-bench-")
    made = time.perf_counter()
    corpus = vkit.corpus.generate(folder, num_utterances=args.num_utterances, seed=17, snr_db=[10, 20],
                                  noise="pink", turns_per_item=1, overwrite=True)
    made = time.perf_counter() - made
    points = [{"threshold": t, "gate_dbfs": g} for t in GRID["threshold"] for g in GRID["gate_dbfs"]]
    num_items = len(corpus) * len(points)
    audio_s = sum(item.duration_ms for item in corpus) / 1000 * len(points)

    vkit.run(make_graph(RunInput("warm-up", path=str(corpus[0].audio_path))), clock="virtual")  # model, imports
    started = time.perf_counter()
    for item in corpus:
        for params in points:
            vkit.run(make_graph(RunInput(item.item_id, path=str(item.audio_path)), **params), clock="virtual")
    bare_s = time.perf_counter() - started
    rows = [("bare loop", 1, bare_s)]
    for executor, workers in (("inline", 1), ("local", 1), ("local", 2)):
        started = time.perf_counter()
        result = sweep(make_graph, GRID, inputs=corpus, executor=executor, num_workers=workers, cache=False,
                       progress=False)
        rows.append((executor, workers, time.perf_counter() - started))
        assert result.failures.empty and result.num_executed == num_items
    started = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        cluster_s = time.perf_counter() - started
        started = time.perf_counter()
        sweep(make_graph, GRID, inputs=corpus, executor=client, cache=False, progress=False)
        rows.append(("dask", 2, time.perf_counter() - started))
        task_ms = scheduler_ms_per_task(client)

    print(f"python {platform.python_version()}  vkit {vkit.__version__}  cores {os.cpu_count()}  "
          f"load average {os.getloadavg()[0]:.1f} (the machine is shared)")
    print(f"{num_items} items: {len(corpus)} corpus items ({made:.1f} s to generate) x {len(points)} grid points, "
          f"{audio_s / num_items:.1f} s of audio each, NoiseGate -> Silero VAD, virtual clock")
    print()
    print(f"{'executor':10s}{'workers':>8s}{'wall s':>9s}{'ms/item':>9s}{'overhead ms/item':>18s}{'speed-up':>10s}")
    bare_ms = bare_s / num_items * 1e3
    for name, workers, wall in rows:
        per_item = wall / num_items * 1e3
        print(f"{name:10s}{workers:8d}{wall:9.2f}{per_item:9.2f}{per_item * workers - bare_ms:18.2f}"
              f"{bare_s / wall:9.2f}x")
    walls = {(n, w): t for n, w, t in rows}
    print()
    print("overhead: ms per item of worker time (wall x workers) beyond the bare loop's (this process warmed up "
          "first; a worker's start-up, its imports and model load count as its overhead)")
    print(f"speed-up local 2 vs 1 worker: {walls[('local', 1)] / walls[('local', 2)]:.2f}x; "
          f"dask LocalCluster start {cluster_s:.1f} s (not in its row)")
    print(f"dask scheduler: {task_ms:.2f} ms of wall per trivial task (2 workers, 2000 tasks)")
    total = 100_000
    compute_s = total * bare_ms / 1e3 / 100
    scheduler_s = total * task_ms / 1e3
    print(f"paper estimate, 100 workers, {total:,} items of this size: {compute_s:.0f} s of compute spread over the "
          f"workers, the scheduler's {scheduler_s:.0f} s in series with it -> about {max(compute_s, scheduler_s):.0f}-"
          f"{compute_s + scheduler_s:.0f} s; the scheduler is the bound once an item takes less than "
          f"{100 * task_ms:.0f} ms (batch items per task then)")
    print(f"items per second: bare loop {num_items / bare_s:.1f}, best executor here "
          f"{num_items / min(w for _, _, w in rows[1:]):.1f}")


if __name__ == "__main__":
    main()
