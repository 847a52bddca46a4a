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
what a decision costs. Then where each VAD puts the end of each turn's speech against the label, on the
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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from vkit.filters.turn import SmartTurn, SmartTurnModel, TurnDetector, Verdict

import vkit
from vkit import corpus, evaluation
from vkit.filters.vad import VAD
from vkit.frames import AudioFrame, Item, SpeechStopped, TurnEnded
from vkit.stage import as_items
from vkit.units import ms_to_samples, samples_to_ms

FRAME_MS = 20.0
SILENCE_MS = (200, 300, 500, 700, 900, 1100, 1400)
SMART_TURN_THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
SMART_TURN_MAX_SILENCE_MS = 1500.0
VADS: dict[str, Callable[[], VAD]] = {
    "silero": lambda: VAD("silero"),
    "webrtc": lambda: VAD("webrtc"),
    "energy": lambda: VAD("energy"),
}


def vad_items(audio: np.ndarray, rate_hz: int, vad: VAD) -> tuple[list[Item], float]:
    """What the VAD passes on for ``audio`` fed in 20 ms frames, and the seconds it took."""
    vad.reset()
    step = ms_to_samples(FRAME_MS, rate_hz)
    out: list[Item] = []
    began = time.perf_counter()
    for start in range(0, audio.size, step):
        out.extend(as_items(vad.process(AudioFrame.mono(audio[start:start + step], rate_hz, start_sample=start))))
    out.extend(as_items(vad.flush()))
    return out, time.perf_counter() - began


def decisions_ms(items: list[Item], detector: TurnDetector) -> tuple[list[float], float, int]:
    """Replay a VAD's output through ``detector``: the decisions (ms; end-of-stream flushes are not
    decisions), the seconds the detector took, and how many times it ran its policy's model."""
    detector.reset()
    before = len(detector.inference_ms)
    out: list[Item] = []
    began = time.perf_counter()
    for item in items:
        out.extend(as_items(detector.process(item)) if isinstance(item, detector.accepts) else (item,))
    out.extend(detector.flush())
    spent = time.perf_counter() - began
    found = [e.decided_ms for e in out if isinstance(e, TurnEnded) and e.reason != "end_of_stream"]
    return found, spent, len(detector.inference_ms) - before


class SharedSmartTurn:
    """Smart Turn's rule (``vkit.filters.turn.SmartTurn``: end the turn at the pause when the probability is
    at or above ``threshold``, else ``max_silence_ms`` after the end of speech) over one shared model whose
    answers are cached per (item, audio asked about), so a threshold sweep runs the model once per pause.
    ``check_matches_smart_turn`` proves it decides as the shipped policy does."""

    name = "smart_turn"
    context_ms = 500.0

    def __init__(self, model: SharedModel, threshold: float, max_silence_ms: float) -> None:
        self.model, self.threshold, self.max_silence_ms = model, threshold, max_silence_ms

    def on_pause(self, audio: np.ndarray, sample_rate_hz: int, speech_end_sample: int, now_sample: int) -> Verdict:
        probability, inference_ms = self.model.probability(audio, now_sample)
        if probability >= self.threshold:
            return Verdict(now_sample, "model", probability, inference_ms)
        return Verdict(speech_end_sample + ms_to_samples(self.max_silence_ms, sample_rate_hz), "timeout", probability,
                       inference_ms)


class SharedModel:
    def __init__(self) -> None:
        self.model = SmartTurnModel()
        self.cache: dict[tuple[str, int, int], tuple[float, float]] = {}
        self.item = ""
        self.calls_ms: list[float] = []

    def probability(self, audio: np.ndarray, now_sample: int) -> tuple[float, float]:
        key = (self.item, audio.size, now_sample)
        if key not in self.cache:
            self.cache[key] = self.model.probability(audio)
            self.calls_ms.append(self.cache[key][1])
        return self.cache[key][0], 0.0  # a repeated question costs nothing here


def check_matches_smart_turn(stream: list[Item], model: SharedModel, threshold: float) -> None:
    shipped = TurnDetector(SmartTurn(threshold=threshold, max_silence_ms=SMART_TURN_MAX_SILENCE_MS))
    shared = TurnDetector(SharedSmartTurn(model, threshold, SMART_TURN_MAX_SILENCE_MS))
    assert decisions_ms(stream, shipped)[0] == decisions_ms(stream, shared)[0], "the sweep's policy drifted"


def speech_ends(items: list[Item]) -> list[tuple[float, float]]:
    """The VAD's segments as (start, end of speech) in ms: the refined end, not the padded one."""
    out, start = [], None
    for item in items:
        if isinstance(item, vkit.SpeechStarted):
            start = item.ms
        elif isinstance(item, SpeechStopped) and start is not None:
            out.append((start, samples_to_ms(item.speech_end_sample, item.sample_rate_hz)))
            start = None
    return out


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


def pooled(per_item: Sequence[evaluation.TurnScores]) -> evaluation.TurnScores:
    return evaluation.TurnScores(
        sum(s.num_turns for s in per_item), sum(s.num_cut_turns for s in per_item),
        sum(s.num_pauses for s in per_item), sum(s.num_cut_pauses for s in per_item),
        sum(s.num_cutoffs_outside_pauses for s in per_item), sum(s.num_extra_decisions for s in per_item),
        tuple(v for s in per_item for v in s.latencies_ms))


def run_snr(items: Sequence[corpus.CorpusItem]) -> tuple[dict, dict, dict]:
    """Per detector: {setting: pooled TurnScores}, its cost per decision (us), and per VAD its end errors."""
    curves: dict[str, dict[float, list[evaluation.TurnScores]]] = {}
    cost_s: dict[str, list[float]] = {}
    model = SharedModel()
    ends: dict[str, list[evaluation.EndpointScores]] = {}
    num_decisions: dict[str, int] = {}
    for item in items:
        audio = item.read()
        rate = item.sample_rate_hz
        turns, segments = item.turns(), item.segments()
        for vad_name, make in VADS.items():
            stream, _ = vad_items(audio, rate, make())
            ends.setdefault(vad_name, []).append(evaluation.score_speech_ends(speech_ends(stream), turns))
            name = f"silence after {vad_name}"
            for silence_ms in SILENCE_MS:
                found, spent, _ = decisions_ms(stream, TurnDetector("silence", silence_ms=silence_ms))
                curves.setdefault(name, {}).setdefault(silence_ms, []).append(evaluation.score_turns(found, turns, segments))
                cost_s[name] = [*cost_s.get(name, []), spent]
                num_decisions[name] = num_decisions.get(name, 0) + len(found)
        stream, _ = vad_items(audio, rate, VAD("silero", min_silence_ms=200))
        name = "smart_turn after silero"
        model.item = str(item.audio_path)
        if item is items[0]:
            check_matches_smart_turn(stream, model, 0.5)
        for threshold in SMART_TURN_THRESHOLDS:
            found, _, _ = decisions_ms(stream, TurnDetector(SharedSmartTurn(model, threshold, SMART_TURN_MAX_SILENCE_MS)))
            curves.setdefault(name, {}).setdefault(threshold, []).append(evaluation.score_turns(found, turns, segments))
    pooled_curves = {name: {k: pooled(v) for k, v in curve.items()} for name, curve in curves.items()}
    cost_us = {name: 1e6 * sum(cost_s[name]) / max(num_decisions[name], 1) for name in cost_s}
    cost_us["smart_turn after silero"] = 1000 * float(np.mean(model.calls_ms)) if model.calls_ms else math.nan
    return pooled_curves, cost_us, ends


def ends_row(name: str, scores: Sequence[evaluation.EndpointScores]) -> str:
    every = evaluation.EndpointScores(tuple(e for s in scores for e in s.errors_ms), sum(s.num_labelled for s in scores))
    return (f"  {name:28s} {every.num_labelled:5d} {every.num_missed:6d} {every.share_within(32):8.0%} "
            f"{every.share_within(100):8.0%} {every.median_error_ms:+9.1f} {every.p90_abs_error_ms:9.1f}")


ENDS_HEADER = (f"  {'VAD':28s} {'ends':>5s} {'missed':>6s} {'<=32 ms':>8s} {'<=100 ms':>8s} {'median':>9s} "
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
    all_ends: dict[str, list[evaluation.EndpointScores]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for snr_db in args.snr_db:
            items = corpus.generate(Path(tmp) / f"snr{snr_db:g}", num_utterances=args.num_utterances, seed=args.seed,
                                    snr_db=snr_db, noise="pink", gap_ms=(2000.0, 3500.0))
            curves, cost_us, ends = run_snr(items)
            for name, scores in ends.items():
                all_ends.setdefault(name, []).extend(scores)
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
                cost = f"{cost_us[name] / 1000:.1f} ms" if cost_us[name] >= 1000 else f"{cost_us[name]:.0f} us"
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
    print(f"\nEnd of speech at each labelled turn's end, generated set ({', '.join(f'{s:g}' for s in args.snr_db)} dB "
          f"pooled; VAD end refined as in a graph, error = VAD end - label, ms):")
    print(ENDS_HEADER)
    for name, scores in all_ends.items():
        print(ends_row(name, scores))
    print("\nThe project's real clips (labels made in this project after seeing vkit's output: not independent):")
    print(ENDS_HEADER)
    clips = corpus.real_clips()
    for vad_name, make in VADS.items():
        scores = []
        for item in clips:
            audio = item.read()
            stream, _ = vad_items(audio, item.sample_rate_hz, make())
            scores.append(evaluation.score_speech_ends(speech_ends(stream), item.turns()))
        print(ends_row(vad_name, scores))
    print(f"\n{time.perf_counter() - began:.0f} s; command: python bench/{Path(sys.argv[0]).name} "
          + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
