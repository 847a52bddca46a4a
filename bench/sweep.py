"""Sweep scaling: wall time at 1 and 2 workers, cold (started in the run) and warm (kept), per-item overhead of each executor against a bare loop,
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

from distributed import Client

import vkit
import vkit.corpus
from vkit import filters, sinks
from vkit.scale import RunInput, sweep
from vkit.scale.workers import close_workers, local_cluster_client

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
    rows = [("bare loop", "", 1, bare_s)]

    def timed_sweep(executor, workers: int, state: str) -> None:
        started = time.perf_counter()
        result = sweep(make_graph, GRID, inputs=corpus, executor=executor, num_workers=workers, cache=False,
                       progress=False)
        rows.append((executor, state, workers, time.perf_counter() - started))
        assert result.failures.empty and result.num_executed == num_items

    timed_sweep("inline", 1, "")
    for executor, workers in (("local", 1), ("local", 2), ("dask", 2)):
        close_workers()
        timed_sweep(executor, workers, "cold")  # starts the workers (and the LocalCluster for dask)
        timed_sweep(executor, workers, "warm")  # the same workers, kept from the cold run
    task_ms = scheduler_ms_per_task(local_cluster_client(2))
    close_workers()

    print(f"python {platform.python_version()}  vkit {vkit.__version__}  cores {os.cpu_count()}  "
          f"load average {os.getloadavg()[0]:.1f} (the machine is shared)")
    print(f"{num_items} items: {len(corpus)} corpus items ({made:.1f} s to generate) x {len(points)} grid points, "
          f"{audio_s / num_items:.1f} s of audio each, NoiseGate -> Silero VAD, virtual clock")
    print()
    print(f"{'executor':10s}{'workers':>8s}{'':>6s}{'wall s':>9s}{'ms/item':>9s}{'overhead ms/item':>18s}"
          f"{'speed-up':>10s}")
    bare_ms = bare_s / num_items * 1e3
    for name, state, workers, wall in rows:
        per_item = wall / num_items * 1e3
        print(f"{name:10s}{workers:8d}{state:>6s}{wall:9.2f}{per_item:9.2f}{per_item * workers - bare_ms:18.2f}"
              f"{bare_s / wall:9.2f}x")
    walls = {(n, s, w): t for n, s, w, t in rows}
    print()
    print("overhead: ms per item of worker time (wall x workers) beyond the bare loop's (this process warmed up "
          "first); cold: the workers start in the run (their start-up, imports and model loads count as "
          "overhead, and for dask the LocalCluster's start); warm: the workers kept from the cold run")
    for state in ("cold", "warm"):
        print(f"speed-up local 2 vs 1 worker, {state}: "
              f"{walls[('local', state, 1)] / walls[('local', state, 2)]:.2f}x")
    print(f"dask scheduler: {task_ms:.2f} ms of wall per trivial task (2 workers, 2000 tasks); a sweep sends up to "
          f"16 items per task")
    total, per_task = 100_000, 16
    compute_s = total * bare_ms / 1e3 / 100
    scheduler_s = total / per_task * task_ms / 1e3
    print(f"paper estimate, 100 workers, {total:,} items of this size in tasks of {per_task}: {compute_s:.0f} s of "
          f"compute spread over the workers, the scheduler's {scheduler_s:.0f} s in series with it -> about "
          f"{max(compute_s, scheduler_s):.0f}-{compute_s + scheduler_s:.0f} s; the scheduler becomes the bound "
          f"once an item takes less than {100 * task_ms / per_task:.1f} ms")
    print(f"items per second: bare loop {num_items / bare_s:.1f}, best executor here "
          f"{num_items / min(w for *_, w in rows[1:]):.1f}")


if __name__ == "__main__":
    main()
