"""Turn policies: when a pause the VAD found ends the user's turn.

A policy is asked once per pause (the VAD's ``SpeechStopped``) and answers with a ``Verdict``: the input
sample at which the turn ends unless speech resumes first. The stage (``TurnDetector``) does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vkit.errors import ConfigError, got
from vkit.units import ms_to_samples


@dataclass(frozen=True, slots=True)
class Verdict:
    """End the turn at input sample ``deadline_sample`` (now, if it has passed) for ``reason``."""

    deadline_sample: int
    reason: str
    probability: float | None = None
    inference_ms: float = 0.0


class TurnPolicy(Protocol):
    name: str
    context_ms: float  # audio wanted before the turn's first speech sample; 0: the policy reads no audio

    def on_pause(self, audio: np.ndarray, sample_rate_hz: int, speech_end_sample: int, now_sample: int) -> Verdict:
        """``audio``: mono input-rate samples of the turn ending at ``now_sample`` (empty when ``context_ms``
        is 0), ``speech_end_sample``: where the speech before this pause ended."""
        ...


class SilenceTurn:
    """The turn ends ``silence_ms`` after the end of speech (measured from the VAD's ``speech_end_sample``)."""

    name = "silence"
    context_ms = 0.0

    def __init__(self, silence_ms: float = 500.0) -> None:
        if silence_ms < 0:
            raise ConfigError(f"silence_ms must be >= 0 {got(silence_ms)}")
        self.silence_ms = silence_ms

    def on_pause(self, audio: np.ndarray, sample_rate_hz: int, speech_end_sample: int, now_sample: int) -> Verdict:
        return Verdict(speech_end_sample + ms_to_samples(self.silence_ms, sample_rate_hz), "silence")


class SmartTurn:
    """Smart Turn v3.2 on the turn's audio (its last 8 s, from ``context_ms`` before its first speech) at each
    pause: a probability at or above ``threshold`` ends the turn there; otherwise it ends ``max_silence_ms``
    after the end of speech unless speech resumes. The model is asked once per pause, when the VAD
    declares it (``VAD(min_silence_ms=...)`` sets how soon), as Pipecat does. The model hears the turn up to
    ``tail_ms`` after the end of speech, however late the VAD declared the pause: its score moves with the
    length of the trailing silence (on one espeak-ng pair, an incomplete part scores 0.08 with 150 ms of
    tail and 0.71 with 300 ms), so a fixed tail keeps the decision independent of the VAD's timing and
    window phase. 200 ms is the pause after which Pipecat asks the model (``stop_secs=0.2``)."""

    name = "smart_turn"

    def __init__(self, threshold: float = 0.5, max_silence_ms: float = 3000.0, context_ms: float = 500.0,
                 tail_ms: float = 200.0) -> None:
        if not 0 < threshold < 1:
            raise ConfigError(f"smart_turn threshold must be in (0, 1) {got(threshold)}")
        if max_silence_ms < 0:
            raise ConfigError(f"max_silence_ms must be >= 0 {got(max_silence_ms)}")
        if tail_ms < 0:
            raise ConfigError(f"tail_ms must be >= 0 {got(tail_ms)}")
        self.tail_ms = tail_ms
        self.threshold = threshold
        self.max_silence_ms = max_silence_ms
        self.context_ms = context_ms
        self._model: Any = None  # loaded by the first pause (where a caller that must not block runs it)

    def on_pause(self, audio: np.ndarray, sample_rate_hz: int, speech_end_sample: int, now_sample: int) -> Verdict:
        if self._model is None:
            from vkit.filters.turn.model import SmartTurnModel

            self._model = SmartTurnModel()
        beyond_tail = now_sample - speech_end_sample - ms_to_samples(self.tail_ms, sample_rate_hz)
        if beyond_tail > 0:
            audio = audio[: max(0, audio.size - beyond_tail)]
        rate = self._model.sample_rate_hz
        if sample_rate_hz != rate and audio.size:
            import soxr

            audio = soxr.resample(audio, sample_rate_hz, rate, quality="HQ").astype(np.float32)
        probability, inference_ms = self._model.probability(audio)
        if probability >= self.threshold:
            return Verdict(now_sample, "model", probability, inference_ms)
        deadline = speech_end_sample + ms_to_samples(self.max_silence_ms, sample_rate_hz)
        return Verdict(deadline, "timeout", probability, inference_ms)


POLICIES: dict[str, type] = {"silence": SilenceTurn, "smart_turn": SmartTurn}


def make_policy(policy: str | TurnPolicy, **options: float) -> TurnPolicy:
    """A policy from its name and options, or the policy object itself."""
    if not isinstance(policy, str):
        if options:
            raise ConfigError(f"options go to the policy's constructor, not with a policy object {got(sorted(options))}")
        return policy
    if policy not in POLICIES:
        raise ConfigError(f"turn detector must be one of {', '.join(map(repr, POLICIES))} {got(policy)}")
    try:
        return POLICIES[policy](**options)
    except TypeError as exc:
        raise ConfigError(f"turn detector {policy!r}: {exc} {got(sorted(options))}") from None
