"""Sweep scaling: wall time at 1 and 2 workers, per-item overhead of each executor against a bare loop,
and a paper estimate for 100 workers.

    python bench/sweep.py [--num-items 200] [--seconds 2.0]

Items are short slices of data/vad_eval.flac through Silero VAD, one per (slice, threshold).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import soundfile as sf

from vkit import filters, sinks
from vkit.runtime import run
from vkit.scale import RunInput, sweep

ROOT = Path(__file__).resolve().parents[1]


def make_graph(item: RunInput, threshold: float = 0.5):
    return item.source() | filters.VAD("silero", threshold=threshold) | sinks.Null()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-items", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=2.0, help="audio per item")
    args = parser.parse_args()
    audio, rate = sf.read(ROOT / "data/vad_eval.flac", dtype="float32")
    size = int(args.seconds * rate)
    num_slices = args.num_items // 2
    slices = [audio[(i * size) % (audio.size - size):][:size] for i in range(num_slices)]
    inputs = [RunInput(f"slice{i:03d}", samples=s, sample_rate_hz=rate) for i, s in enumerate(slices)]
    grid = {"threshold": [0.4, 0.6]}
    num_items = len(inputs) * 2

    started = time.perf_counter()
    for item in inputs:
        for threshold in grid["threshold"]:
            run(make_graph(item, threshold), clock="virtual")
    bare_s = time.perf_counter() - started
    rows = [("bare loop", 1, bare_s)]
    for executor, workers in (("inline", 1), ("local", 1), ("local", 2), ("dask", 2)):
        started = time.perf_counter()
        try:
            sweep(make_graph, grid, inputs=inputs, executor=executor, num_workers=workers, cache=False, progress=False)
        except ImportError:
            continue
        rows.append((executor, workers, time.perf_counter() - started))
    print(f"{num_items} items of {args.seconds:.1f} s audio (Silero VAD), 2-core shared machine")
    print(f"{'executor':10s} {'workers':>7s} {'wall s':>8s} {'ms/item':>8s} {'overhead ms/item vs bare':>25s}")
    for name, workers, wall in rows:
        per_item = wall / num_items * 1e3
        overhead = per_item * workers - bare_s / num_items * 1e3
        print(f"{name:10s} {workers:7d} {wall:8.2f} {per_item:8.2f} {overhead:25.2f}")
    walls = {(n, w): t for n, w, t in rows}
    if ("local", 1) in walls and ("local", 2) in walls:
        print(f"speed-up local 2 vs 1 workers: {walls[('local', 1)] / walls[('local', 2)]:.2f}x")
    item_ms = bare_s / num_items * 1e3
    task_overhead_ms = 1.0  # dask's documented scheduler cost is about 1 ms per task (centralised scheduler)
    print(f"paper estimate, 100 workers: a 100,000-item sweep takes {100_000 * item_ms / 100 / 1e3:.0f} s of compute "
          f"+ {100_000 * task_overhead_ms / 1e3:.0f} s of scheduler time, so items under "
          f"{100 * task_overhead_ms:.0f} ms are scheduler-bound: batch several items per task")


if __name__ == "__main__":
    main()
