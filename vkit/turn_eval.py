"""End-of-turn detectors run over labelled audio and scored: each VAD once per item, its events replayed
through every detector setting (the same ``TurnDetector`` a graph runs, fed 20 ms frames), so sweeping a
knob costs one VAD pass; the scores are ``vkit.evaluation``'s.

``sweep_turn_detectors(corpus)`` gives, per detector, ``{setting: TurnScores}`` (a trade-off curve), its
cost per decision, and per VAD where it put each turn's end of speech.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vkit import evaluation
from vkit.errors import ConfigError, got
from vkit.filters.turn import SmartTurn, SmartTurnModel, TurnDetector, Verdict
from vkit.filters.vad import VAD
from vkit.frames import AudioFrame, Item, SpeechStarted, SpeechStopped, TurnEnded
from vkit.stage import as_items
from vkit.units import ms_to_samples, samples_to_ms

__all__ = ["LabelledAudio", "DetectorSweep", "sweep_turn_detectors", "vad_stream", "replay", "speech_segments",
           "SweptSmartTurn", "SmartTurnCache", "FRAME_MS", "SILENCE_MS", "SMART_TURN_THRESHOLDS"]

FRAME_MS = 20.0
SILENCE_MS = (200, 300, 500, 700, 900, 1100, 1400)
SMART_TURN_THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


class LabelledAudio(Protocol):
    """What a sweep reads of an item (``vkit.corpus.CorpusItem`` is one)."""

    audio_path: Path
    sample_rate_hz: int

    def read(self) -> np.ndarray: ...
    def turns(self) -> list[tuple[float, float]]: ...
    def segments(self) -> list[tuple[float, float]]: ...


def vad_stream(audio: np.ndarray, sample_rate_hz: int, vad: VAD, *, frame_ms: float = FRAME_MS) -> tuple[list[Item], float]:
    """What ``vad`` (reset first) passes on for mono ``audio`` fed in ``frame_ms`` frames, and the seconds it took."""
    vad.reset()
    step = ms_to_samples(frame_ms, sample_rate_hz)
    out: list[Item] = []
    began = time.perf_counter()
    for start in range(0, audio.size, step):
        out.extend(as_items(vad.process(AudioFrame.mono(audio[start:start + step], sample_rate_hz, start_sample=start))))
    out.extend(as_items(vad.flush()))
    return out, time.perf_counter() - began


def replay(stream: Iterable[Item], detector: TurnDetector) -> tuple[list[TurnEnded], float]:
    """A VAD's output through ``detector`` (reset first): its decisions, without the one a stream's end forces
    (not a decision: the audio ran out), and the seconds the detector took."""
    detector.reset()
    out: list[Item] = []
    began = time.perf_counter()
    for item in stream:
        out.extend(as_items(detector.process(item)) if isinstance(item, detector.accepts) else (item,))
    out.extend(detector.flush())
    spent = time.perf_counter() - began
    return [e for e in out if isinstance(e, TurnEnded) and e.reason != "end_of_stream"], spent


def speech_segments(stream: Iterable[Item]) -> list[tuple[float, float]]:
    """A VAD's segments as (start, end of speech) in ms: the refined end (``speech_end_sample``), not the padded one."""
    out, start = [], None
    for item in stream:
        if isinstance(item, SpeechStarted):
            start = item.ms
        elif isinstance(item, SpeechStopped) and start is not None:
            out.append((start, samples_to_ms(item.speech_end_sample, item.sample_rate_hz)))
            start = None
    return out


class SmartTurnCache:
    """One Smart Turn model whose answers are kept per (item, audio asked about), so the settings of a
    threshold sweep ask it once per pause. ``calls_ms`` is what each real inference cost."""

    def __init__(self) -> None:
        self.model = SmartTurnModel()
        self.item: Hashable = None
        self.calls_ms: list[float] = []
        self._answers: dict[tuple[Hashable, int, int], float] = {}

    def probability(self, audio: np.ndarray, end_sample: int) -> float:
        """The model's probability for ``audio``, the input up to ``end_sample`` of the current item."""
        key = (self.item, audio.size, end_sample)
        if key not in self._answers:
            probability, inference_ms = self.model.probability(audio)
            self._answers[key] = probability
            self.calls_ms.append(inference_ms)
        return self._answers[key]


class SweptSmartTurn:
    """``vkit.filters.turn.SmartTurn``'s rule over a shared ``SmartTurnCache``: at a pause the model hears the
    turn up to the shipped policy's ``tail_ms`` after the end of speech; the turn ends if the probability is at
    or above ``threshold``, else ``max_silence_ms`` after the end of speech unless speech resumes. Its knobs'
    defaults are read off a ``SmartTurn``; a test holds it to the shipped policy's decisions."""

    name = "smart_turn"

    def __init__(self, cache: SmartTurnCache, threshold: float, max_silence_ms: float) -> None:
        shipped = SmartTurn(threshold=threshold, max_silence_ms=max_silence_ms)
        self.cache, self.threshold, self.max_silence_ms = cache, threshold, max_silence_ms
        self.context_ms, self.tail_ms = shipped.context_ms, shipped.tail_ms

    def on_pause(self, audio: np.ndarray, sample_rate_hz: int, speech_end_sample: int, now_sample: int) -> Verdict:
        if sample_rate_hz != self.cache.model.sample_rate_hz:
            raise ConfigError(f"SweptSmartTurn needs {self.cache.model.sample_rate_hz} Hz audio {got(sample_rate_hz)}")
        beyond_tail = now_sample - speech_end_sample - ms_to_samples(self.tail_ms, sample_rate_hz)
        if beyond_tail > 0:
            audio = audio[: max(0, audio.size - beyond_tail)]
        probability = self.cache.probability(audio, now_sample - max(beyond_tail, 0))
        if probability >= self.threshold:
            return Verdict(now_sample, "model", probability)
        return Verdict(speech_end_sample + ms_to_samples(self.max_silence_ms, sample_rate_hz), "timeout", probability)


@dataclass
class DetectorSweep:
    """Per detector, ``curves[name][setting]`` pooled over the items and ``cost_us[name]`` (a silence timeout:
    the detector's time per decision; Smart Turn: per model inference); per VAD, ``ends[vad]`` at each
    labelled turn's end."""

    curves: dict[str, dict[Hashable, evaluation.TurnScores]] = field(default_factory=dict)
    cost_us: dict[str, float] = field(default_factory=dict)
    ends: dict[str, evaluation.EndpointScores] = field(default_factory=dict)
    knobs: dict[str, str] = field(default_factory=dict)

    def summary(self, cutoff_budget: float = 0.05, latency_budgets_ms: Sequence[float] = (300.0, 500.0)) -> list[dict[str, Any]]:
        """One row per detector: false cut-offs at each mean-latency budget, p50/p90 latency at the cut-off
        budget (interpolated on the curve: ``*_interpolated``), the best measured settings, cost per decision."""
        rows = []
        for name, curve in self.curves.items():
            row: dict[str, Any] = {"detector": name}
            for budget in latency_budgets_ms:
                point = evaluation.cutoffs_at_latency(curve, budget, statistic="mean")
                row[f"cutoffs_at_{budget:g}ms"] = point.value
                row[f"cutoffs_at_{budget:g}ms_interpolated"] = point.interpolated
            for statistic in ("p50", "p90"):
                point = evaluation.latency_at_cutoff(curve, cutoff_budget, statistic=statistic)  # type: ignore[arg-type]
                row[f"{statistic}_ms_at_{100 * cutoff_budget:g}pct"] = point.value
                row[f"{statistic}_ms_at_{100 * cutoff_budget:g}pct_interpolated"] = point.interpolated
                if statistic == "p50":
                    row["best_setting"] = point.measured
            row["cost_us_per_decision"] = self.cost_us.get(name, math.nan)
            rows.append(row)
        return rows


def _pooled(parts: Sequence[evaluation.TurnScores]) -> evaluation.TurnScores:
    return evaluation.TurnScores(
        sum(s.num_turns for s in parts), sum(s.num_cut_turns for s in parts), sum(s.num_pauses for s in parts),
        sum(s.num_cut_pauses for s in parts), sum(s.num_cutoffs_outside_pauses for s in parts),
        sum(s.num_extra_decisions for s in parts), tuple(v for s in parts for v in s.latencies_ms))


def sweep_turn_detectors(items: Sequence[LabelledAudio], *, vads: Sequence[str] = ("silero", "webrtc", "energy"),
                         silence_ms: Sequence[float] = SILENCE_MS,
                         smart_turn_thresholds: Sequence[float] = SMART_TURN_THRESHOLDS,
                         smart_turn_max_silence_ms: float = 1500.0, progress: bool = True) -> DetectorSweep:
    """Score silence timeouts after each of ``vads`` at each ``silence_ms``, and Smart Turn v3.2 after Silero at
    each threshold (Silero with ``min_silence_ms=200``, as Pipecat pairs them; empty: skipped), on every item.

    Each item's turns are its labelled turns, its pauses the gaps between its labelled segments; end of speech
    is scored at each turn's end. ``progress`` shows a bar over the items (tqdm; a widget in a notebook).
    """
    from tqdm.auto import tqdm

    parts: dict[str, dict[Hashable, list[evaluation.TurnScores]]] = {}
    spent_s: dict[str, float] = {}
    num_decisions: dict[str, int] = {}
    errors: dict[str, list[float]] = {}
    num_ends: dict[str, int] = {}
    cache = SmartTurnCache() if smart_turn_thresholds else None
    result = DetectorSweep()
    for item in tqdm(items, desc="turn detectors", unit="item", disable=not progress):
        audio, rate = item.read(), item.sample_rate_hz
        turns, segments = item.turns(), item.segments()
        for vad_name in vads:
            stream, _ = vad_stream(audio, rate, VAD(vad_name))  # type: ignore[arg-type]
            ends = evaluation.score_speech_ends(speech_segments(stream), turns)
            errors.setdefault(vad_name, []).extend(ends.errors_ms)
            num_ends[vad_name] = num_ends.get(vad_name, 0) + ends.num_labelled
            name = f"silence after {vad_name}"
            result.knobs[name] = " ms"
            for setting in silence_ms:
                found, spent = replay(stream, TurnDetector("silence", silence_ms=setting))
                scores = evaluation.score_turns([e.decided_ms for e in found], turns, segments)
                parts.setdefault(name, {}).setdefault(setting, []).append(scores)
                spent_s[name] = spent_s.get(name, 0.0) + spent
                num_decisions[name] = num_decisions.get(name, 0) + len(found)
        if cache is not None:
            stream, _ = vad_stream(audio, rate, VAD("silero", min_silence_ms=200))
            cache.item = str(item.audio_path)
            name = "smart_turn after silero"
            result.knobs[name] = ""
            for threshold in smart_turn_thresholds:
                found, _ = replay(stream, TurnDetector(SweptSmartTurn(cache, threshold, smart_turn_max_silence_ms)))
                scores = evaluation.score_turns([e.decided_ms for e in found], turns, segments)
                parts.setdefault(name, {}).setdefault(threshold, []).append(scores)
    result.curves = {name: {k: _pooled(v) for k, v in curve.items()} for name, curve in parts.items()}
    result.cost_us = {name: 1e6 * spent_s[name] / num_decisions[name] if num_decisions[name] else math.nan
                      for name in spent_s}
    if cache is not None and cache.calls_ms:
        result.cost_us["smart_turn after silero"] = 1000 * float(np.mean(cache.calls_ms))
    result.ends = {name: evaluation.EndpointScores(tuple(e), num_ends[name]) for name, e in errors.items()}
    return result
