"""Sweeping end-of-turn detectors: a VAD's events replayed through a detector decide as the offline API
does, the sweep's Smart Turn decides as the shipped policy, and the sweep's scores are the metrics' own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vkit import evaluation, turn_eval
from vkit.data import sample_path
from vkit.filters.turn import SmartTurn, TurnDetector, detect_turns
from vkit.filters.vad import VAD


@dataclass
class Sample:
    """The shipped three-turn sample as a labelled item (each labelled segment a turn)."""

    audio_path: Path = sample_path("two_turns.wav")
    sample_rate_hz: int = 16_000

    def read(self) -> np.ndarray:
        return sf.read(self.audio_path, dtype="float32")[0]

    def turns(self) -> list[tuple[float, float]]:
        return evaluation.read_segments(sample_path("two_turns.segments.csv"))

    segments = turns


def test_a_replayed_vad_stream_decides_as_detect_turns():
    audio = Sample().read()
    stream, seconds = turn_eval.vad_stream(audio, 16_000, VAD("silero"))
    assert seconds > 0
    for silence_ms in (300, 800):
        replayed, _ = turn_eval.replay(stream, TurnDetector("silence", silence_ms=silence_ms))
        offline = detect_turns(audio, 16_000, vad=VAD("silero"), detector="silence", silence_ms=silence_ms)
        assert [e.decided_ms for e in replayed] == [d.decided_ms for d in offline if d.reason != "end_of_stream"]
        assert len(replayed) == 3
    segments = turn_eval.speech_segments(stream)
    assert len(segments) == 3 and all(abs(end - label) < 100 for (_, end), (_, label) in zip(segments, Sample().turns(), strict=True))


@pytest.mark.timeout(120)
def test_the_sweeps_smart_turn_decides_as_the_shipped_policy():
    stream, _ = turn_eval.vad_stream(Sample().read(), 16_000, VAD("silero", min_silence_ms=200))
    cache = turn_eval.SmartTurnCache()
    for threshold in (0.2, 0.6, 0.97):
        shipped, _ = turn_eval.replay(stream, TurnDetector(SmartTurn(threshold=threshold, max_silence_ms=1500)))
        swept, _ = turn_eval.replay(stream, TurnDetector(turn_eval.SweptSmartTurn(cache, threshold, 1500)))
        assert [(e.decided_ms, e.reason, e.probability) for e in swept] == [
            (e.decided_ms, e.reason, pytest.approx(e.probability)) for e in shipped]
    assert 0 < len(cache.calls_ms) <= 6  # asked once per pause, not once per threshold


@pytest.mark.timeout(120)
def test_the_sweep_pools_the_metrics_of_each_setting():
    sweep = turn_eval.sweep_turn_detectors([Sample(), Sample()], vads=("silero", "energy"), silence_ms=(300, 800),
                                           smart_turn_thresholds=(0.5,), progress=False)
    assert set(sweep.curves) == {"silence after silero", "silence after energy", "smart_turn after silero"}
    stream, _ = turn_eval.vad_stream(Sample().read(), 16_000, VAD("silero"))
    found, _ = turn_eval.replay(stream, TurnDetector("silence", silence_ms=800))
    one = evaluation.score_turns([e.decided_ms for e in found], Sample().turns(), Sample().segments())
    pooled = sweep.curves["silence after silero"][800]
    assert pooled.num_turns == 6 and pooled.latencies_ms == one.latencies_ms * 2
    assert pooled.num_cut_turns == 2 * one.num_cut_turns
    assert sweep.ends["silero"].num_labelled == 6 and len(sweep.ends["silero"].errors_ms) == 6
    assert all(cost > 0 for cost in sweep.cost_us.values())
    rows = {r["detector"]: r for r in sweep.summary()}
    assert rows["silence after silero"]["cutoffs_at_300ms"] == pytest.approx(
        evaluation.cutoffs_at_latency(sweep.curves["silence after silero"], 300).value, nan_ok=True)
    assert set(rows["smart_turn after silero"]) >= {"p50_ms_at_5pct", "p90_ms_at_5pct", "cutoffs_at_500ms", "best_setting"}
