"""``detect_turns``: a VAD and a turn detector over a whole array, outside a graph (for evaluation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vkit.errors import AudioInputError, ConfigError, got
from vkit.filters.turn.detector import TurnDetector
from vkit.filters.turn.policies import TurnPolicy
from vkit.filters.vad import VAD
from vkit.frames import AudioFrame, Item, SpeechStarted, TurnEnded
from vkit.stage import as_items
from vkit.units import ms_to_samples


@dataclass(frozen=True, slots=True)
class TurnDecision:
    """One turn a detector ended: its first speech (``start_ms``), the end of its speech, where the decision
    was made (all on the input's time line, ms from its first sample), the model's probability (None without
    a model), what the decision's inference cost, and why it ended ("silence", "model", "timeout",
    "end_of_stream")."""

    start_ms: float
    speech_end_ms: float
    decided_ms: float
    probability: float | None
    inference_ms: float
    reason: str

    @property
    def delay_ms(self) -> float:
        """From the end of speech to the decision."""
        return self.decided_ms - self.speech_end_ms


def detect_turns(audio: np.ndarray, sample_rate_hz: int, *, vad: VAD | None = None,
                 detector: str | TurnPolicy | TurnDetector = "silence", frame_ms: float = 20.0,
                 **options: Any) -> list[TurnDecision]:
    """The turns of mono ``audio``: it is fed in ``frame_ms`` frames through ``vad`` (default ``VAD()``) and a
    ``TurnDetector`` (a policy name with ``options``, a policy, or a detector), the same code a graph runs.
    Both are reset first."""
    samples = np.asarray(audio, np.float32)
    if samples.ndim != 1:
        raise AudioInputError(f"detect_turns takes 1-D mono audio {got(samples.shape)}")
    if frame_ms <= 0:
        raise ConfigError(f"frame_ms must be positive {got(frame_ms)}")
    vad = vad if vad is not None else VAD()
    stage = detector if isinstance(detector, TurnDetector) else TurnDetector(detector, **options)
    if isinstance(detector, TurnDetector) and options:
        raise ConfigError(f"options go to the TurnDetector's constructor {got(sorted(options))}")
    vad.reset()
    stage.reset()
    step = max(1, ms_to_samples(frame_ms, sample_rate_hz))
    out: list[Item] = []
    for start in range(0, samples.size, step):
        frame = AudioFrame.mono(samples[start:start + step], sample_rate_hz, start_sample=start)
        for item in as_items(vad.process(frame)):
            out.extend(as_items(stage.process(item)) if isinstance(item, stage.accepts) else (item,))
    for item in as_items(vad.flush()):
        out.extend(as_items(stage.process(item)) if isinstance(item, stage.accepts) else (item,))
    out.extend(stage.flush())
    decisions, start_ms = [], 0.0
    for item in out:
        if isinstance(item, SpeechStarted):
            start_ms = item.ms
        elif isinstance(item, TurnEnded):
            decisions.append(TurnDecision(start_ms, item.speech_end_ms, item.decided_ms, item.probability,
                                          item.inference_ms, item.reason))
    return decisions

