"""``TurnDetector``: the stage after a VAD that decides when the user's turn is over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vkit.errors import ConfigError, got
from vkit.filters.base import Filter, check_finite
from vkit.filters.turn.policies import TurnPolicy, Verdict, make_policy
from vkit.filters.vad.endpoint import RecentAudio
from vkit.frames import AudioFrame, Item, SpeechStarted, SpeechStopped, TurnEnded
from vkit.units import ms_to_samples, samples_to_ns

_WINDOW_S = 8  # the longest audio a policy reads


@dataclass(frozen=True, slots=True)
class Pause:
    """A pause to judge: the turn's audio up to ``now_sample`` (empty for a policy that reads none)."""

    number: int
    audio: np.ndarray
    sample_rate_hz: int
    speech_end_sample: int
    now_sample: int


class TurnDetector(Filter):
    """Turn the VAD's pauses into turn decisions: ``VAD() | TurnDetector("silence", silence_ms=500)`` or
    ``VAD() | TurnDetector("smart_turn", threshold=0.5, max_silence_ms=3000)`` (or a policy object).

    Audio passes through. The detector *holds back* the VAD's ``SpeechStopped`` until its policy ends the
    turn, then emits it (the VAD's own event: its samples and ``speech_end_sample`` unchanged) followed by a
    ``TurnEnded``; speech that resumes before the decision continues the same turn, so its ``SpeechStarted``
    is swallowed and the next pause is judged afresh. Downstream stages therefore see one
    ``SpeechStarted``/``SpeechStopped`` pair per turn, delivered at the decision: the Realtime stage's manual
    mode commits there, the cascade's STT transcribes the whole turn, and nothing changes for graphs without
    a detector. Holding the VAD's events instead of adding new ones keeps every consumer as it is; the session
    record still has every VAD event (the VAD published them), and ``TurnEnded`` marks the turns in it.

    ``inference_ms`` lists what each policy call cost (a model's inference), for benchmarks.

    ``defer=True`` is for callers that must not block (the local server): a pause is not judged inside
    ``process`` but handed out by ``take_pause()``; the caller runs ``judge(pause)`` wherever it likes (a thread)
    and gives the verdict back to ``resolve(pause, verdict)``, which returns the decision's items when it ends
    the turn. A verdict for a pause that speech has resumed over since is ignored.
    """

    accepts = (AudioFrame, SpeechStarted, SpeechStopped)

    def __init__(self, policy: str | TurnPolicy = "silence", *, stream: str = "input", defer: bool = False,
                 **options: Any) -> None:
        self.policy = make_policy(policy, **options)
        self.stream = stream
        self.defer = defer
        self.inference_ms: list[float] = []
        self.reset()

    def reset(self) -> None:
        self._rate = 0
        self._end_sample = 0
        self._last_frame: AudioFrame | None = None
        self._recent: RecentAudio | None = None
        self._started: SpeechStarted | None = None  # the turn's first SpeechStarted
        self._held: SpeechStopped | None = None
        self._verdict: Verdict | None = None
        self._num_pauses = 0
        self._pending: Pause | None = None  # a deferred pause not yet taken

    @property
    def latency_ms(self) -> float:
        return 0.0

    def describe(self) -> dict[str, Any]:
        from vkit.stage import describe_stage

        return {"policy": self.policy.name, **describe_stage(self.policy), "stream": self.stream}

    def process(self, item: Item) -> Item | list[Item] | None:
        if isinstance(item, AudioFrame):
            return self._audio(item)
        if not isinstance(item, (SpeechStarted, SpeechStopped)) or item.stream != self.stream:
            return item
        if isinstance(item, SpeechStarted):
            if self._held is not None:  # speech resumed before the decision: the same turn goes on
                self._held = self._verdict = self._pending = None
                return None
            self._started = item
            return item
        self._held, self._verdict = item, None
        pause = self._pause(item)
        if self.defer:
            self._pending = pause
            return None
        return self.resolve(pause, self.judge(pause)) or None

    def take_pause(self) -> Pause | None:
        """With ``defer=True``: the pause waiting to be judged, once."""
        pause, self._pending = self._pending, None
        return pause

    def is_open(self, pause: Pause) -> bool:
        """Whether ``pause`` still waits for a verdict (speech has not resumed over it, the turn has not ended)."""
        return pause.number == self._num_pauses and self._held is not None and self._verdict is None

    def judge(self, pause: Pause) -> Verdict:
        """Run the policy on ``pause`` (blocking: a model's inference); touches no state of the stage."""
        return self.policy.on_pause(pause.audio, pause.sample_rate_hz, pause.speech_end_sample, pause.now_sample)

    def resolve(self, pause: Pause, verdict: Verdict) -> list[Item]:
        """Take ``verdict`` on ``pause``: the held ``SpeechStopped`` and a ``TurnEnded`` when the turn ends now,
        else nothing (it ends when the audio reaches the verdict's deadline, unless speech resumes)."""
        if verdict.inference_ms:
            self.inference_ms.append(verdict.inference_ms)
        if not self.is_open(pause):
            return []  # speech resumed (or the turn ended) since
        self._verdict = verdict
        if verdict.deadline_sample <= self._end_sample:
            return self._decide(self._end_sample)
        return []

    def flush(self) -> list[Item]:
        if self._held is None:
            return []
        self._verdict = Verdict(self._end_sample, "end_of_stream", None, 0.0)
        return self._decide(self._end_sample)

    # -- internals ---------------------------------------------------------------------------------

    def _audio(self, frame: AudioFrame) -> AudioFrame | list[Item]:
        if frame.stream != self.stream:
            return frame
        if self._rate != frame.sample_rate_hz:
            if self._rate:
                raise ConfigError(f"TurnDetector sample rate changed mid-stream from {self._rate} "
                                  f"{got(frame.sample_rate_hz)}")
            self._rate = frame.sample_rate_hz
            if self.policy.context_ms > 0:
                self._recent = RecentAudio(_WINDOW_S * self._rate)
        self._last_frame = frame
        self._end_sample = frame.end_sample
        if self._recent is not None:
            check_finite(frame, "TurnDetector")
            self._recent.append(frame.samples.mean(axis=0) if frame.num_channels > 1 else frame.samples[0])
        if self._verdict is not None and self._verdict.deadline_sample <= frame.end_sample:
            return [frame, *self._decide(self._verdict.deadline_sample)]
        return frame

    def _pause(self, stopped: SpeechStopped) -> Pause:
        self._num_pauses += 1
        rate = self._rate or stopped.sample_rate_hz
        audio = np.zeros(0, np.float32)
        if self._recent is not None:
            first = (self._started.sample if self._started is not None else 0) - ms_to_samples(self.policy.context_ms, rate)
            audio = self._recent.read(max(first, 0), self._end_sample)
        return Pause(self._num_pauses, audio, rate, stopped.speech_end_sample, self._end_sample)

    def _decide(self, decided_sample: int) -> list[Item]:
        held, verdict = self._held, self._verdict
        assert held is not None and verdict is not None
        self._held = self._verdict = self._started = self._pending = None
        frame = self._last_frame
        at_ns = (frame.t_ns + samples_to_ns(decided_sample - frame.start_sample, frame.sample_rate_hz)
                 if frame is not None else held.sample_t_ns)
        ended = TurnEnded(speech_end_sample=held.speech_end_sample, decided_sample=decided_sample,
                          sample_rate_hz=held.sample_rate_hz, detector=self.policy.name,
                          probability=verdict.probability, at_ns=at_ns, speech_end_t_ns=held.speech_end_t_ns,
                          inference_ms=verdict.inference_ms, reason=verdict.reason, stream=held.stream)
        return [held, ended]
