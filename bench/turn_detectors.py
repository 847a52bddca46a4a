"""End-of-turn detectors compared with the field's metrics, and end-of-speech accuracy, on labelled speech.

The labelled set is generated (``vkit.corpus.generate``): synthesised multi-phrase turns whose pauses follow
unfinished fragments, labelled by construction before any noise is added, never by looking at vkit's
output; mixed with pink noise at each ``--snr-db``. Each VAD (Silero, WebRTC, energy) runs once per item
and its events are replayed through each detector setting (the same ``TurnDetector`` a graph runs, fed 20 ms
frames), so a sweep costs one VAD pass:

- silence timeouts after each VAD at several ``silence_ms``;
- Smart Turn v3.2 after Silero (``min_silence_ms=200``, as Pipecat pairs them) at several thresholds,
  falling back to a 1.5 s timeout.

Per detector: false cut-offs (share of turns declared over before their labelled end) at a 300 and 500 ms
mean-latency budget, and the p50/p90 latency at 5 % false cut-offs (eot-bench's operating points,
interpolated between the measured settings, marked ``~``; ``-``: no setting reached it), turns missed, and
what a decision costs (a silence timeout: the detector's CPU over the whole stream per decision; Smart
Turn: one model inference, the VAD not included). Then where each VAD puts the end of each turn's speech against the label, on the
generated set and on the project's own real clips (whose labels were made here after seeing vkit's output,
so they are not an independent check).

    python bench/turn_detectors.py [--num-utterances 12] [--snr-db 20 10 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime

import vkit
from vkit import corpus, evaluation, turn_eval
from vkit.filters.vad import VAD


def fmt_rate(point: evaluation.OperatingPoint) -> str:
    if math.isnan(point.value):
        return "-"
    return f"{'~' if point.interpolated else ''}{100 * point.value:.1f} %"


def fmt_ms(point: evaluation.OperatingPoint) -> str:
    if math.isnan(point.value):
        return "-"
    if math.isinf(point.value):
        return "never"
    return f"{'~' if point.interpolated else ''}{point.value:.0f}"


def model_ends(items: Sequence[corpus.CorpusItem]) -> evaluation.EndpointScores:
    """Silero's own end (no refinement) at each labelled turn end."""
    errors, num = [], 0
    for item in items:
        stream, _ = turn_eval.vad_stream(item.read(), item.sample_rate_hz, VAD("silero", refine_end_ms=0))
        scores = evaluation.score_speech_ends(turn_eval.speech_segments(stream), item.turns())
        errors += scores.errors_ms
        num += scores.num_labelled
    return evaluation.EndpointScores(tuple(errors), num)


def ends_row(name: str, scores: Sequence[evaluation.EndpointScores]) -> str:
    every = evaluation.EndpointScores(tuple(e for s in scores for e in s.errors_ms), sum(s.num_labelled for s in scores))
    return (f"  {name:36s} {every.num_labelled:5d} {every.num_missed:6d} {every.share_within(32):8.0%} "
            f"{every.share_within(100):8.0%} {every.median_error_ms:+9.1f} {every.p90_abs_error_ms:9.1f}")


ENDS_HEADER = (f"  {'VAD':36s} {'ends':>5s} {'missed':>6s} {'<=32 ms':>8s} {'<=100 ms':>8s} {'median':>9s} "
               f"{'p90 |err|':>9s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-utterances", type=int, default=12, help="items per SNR (3 turns each)")
    parser.add_argument("--snr-db", type=float, nargs="+", default=[20, 10, 5])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"vkit {vkit.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()}, {platform.machine()}")
    began = time.perf_counter()
    all_ends: dict[str, dict[float, evaluation.EndpointScores]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for snr_db in args.snr_db:
            items = corpus.generate(Path(tmp) / f"snr{snr_db:g}", num_utterances=args.num_utterances, seed=args.seed,
                                    snr_db=snr_db, noise="pink", gap_ms=(2000.0, 3500.0))
            sweep = turn_eval.sweep_turn_detectors(items, progress=False)
            curves, cost_us = sweep.curves, sweep.cost_us
            for name, scores in sweep.ends.items():
                all_ends.setdefault(name, {})[snr_db] = scores
            all_ends.setdefault("silero, the model's own end", {})[snr_db] = model_ends(items)
            some = next(iter(next(iter(curves.values())).values()))
            print(f"\npink noise at {snr_db:g} dB SNR: {len(items)} items, {some.num_turns} labelled turns, "
                  f"{some.num_pauses} pauses of 200 ms or more inside them (labels: {items[0].labels_source})")
            print(f"  {'detector':26s} {'cut-offs @300 ms':>16s} {'@500 ms':>9s} {'p50 @5 %':>9s} {'p90 @5 %':>9s} "
                  f"{'cost/decision':>14s}")
            for name, curve in curves.items():
                at300 = evaluation.cutoffs_at_latency(curve, 300.0, statistic="mean")
                at500 = evaluation.cutoffs_at_latency(curve, 500.0, statistic="mean")
                p50 = evaluation.latency_at_cutoff(curve, 0.05, statistic="p50")
                p90 = evaluation.latency_at_cutoff(curve, 0.05, statistic="p90")
                cost = ("-" if math.isnan(cost_us[name]) else f"{cost_us[name] / 1000:.1f} ms" if cost_us[name] >= 1000
                        else f"{cost_us[name]:.0f} us")
                print(f"  {name:26s} {fmt_rate(at300):>16s} {fmt_rate(at500):>9s} {fmt_ms(p50):>9s} {fmt_ms(p90):>9s} "
                      f"{cost:>14s}")
            print("  per setting: false cut-offs of turns (of pauses; count outside pauses), latency mean/p50/p90 ms, missed")
            for name, curve in curves.items():
                cells = []
                for setting, s in curve.items():
                    p90 = s.latency_ms(90)
                    cells.append(f"{setting:g}: {100 * s.cutoff_rate:.0f} % ({100 * s.pause_cutoff_rate:.0f} %; "
                                 f"{s.num_cutoffs_outside_pauses}) {s.mean_latency_ms:.0f}/{s.latency_ms(50):.0f}/"
                                 f"{'inf' if math.isinf(p90) else f'{p90:.0f}'} {s.num_missed}")
                print(f"  {name:26s} " + " | ".join(cells))
    print("\nEnd of speech at each labelled turn's end, generated set (the VAD's end refined as in a graph unless "
          "said; error = VAD end - label, ms):")
    print(ENDS_HEADER)
    for name, by_snr in all_ends.items():
        for snr_db, scores in by_snr.items():
            print(ends_row(f"{name}, {snr_db:g} dB", [scores]))
        print(ends_row(f"{name}, all", list(by_snr.values())))
    print("\nThe project's real clips (labels made in this project after seeing vkit's output: not independent):")
    print(ENDS_HEADER)
    clips = corpus.real_clips()
    for vad_name, vad in (("silero", VAD("silero")), ("silero, the model's own end", VAD("silero", refine_end_ms=0)),
                          ("webrtc", VAD("webrtc")), ("energy", VAD("energy"))):
        scores = []
        for item in clips:
            stream, _ = turn_eval.vad_stream(item.read(), item.sample_rate_hz, vad)
            scores.append(evaluation.score_speech_ends(turn_eval.speech_segments(stream), item.turns()))
        print(ends_row(vad_name, scores))
    print(f"\n{time.perf_counter() - began:.0f} s; command: python bench/{Path(sys.argv[0]).name} "
          + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
