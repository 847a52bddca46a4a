"""Turn detection on a session's input audio: Silero for ``server_vad``, Silero then a deferred
``TurnDetector`` for ``semantic_vad``, as the speech starts and stops the session acts on."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from vkit.errors import ConfigError, got
from vkit.filters.turn import TurnDetector, Verdict
from vkit.frames import AudioFrame, Item, SpeechStarted, SpeechStopped, TurnEnded
from vkit.realtime.server.work import TurnWork
from vkit.stage import as_items

__all__ = ["EAGERNESS_SMART_TURN", "Boundary", "TurnTaking", "semantic_detector"]

_EAGERNESS_SILENCE_MS = {"low": 1200, "medium": 600, "auto": 600, "high": 250}
#: semantic_vad with Smart Turn: eagerness -> (probability threshold, longest wait after speech ms). The waits are
#: OpenAI's documented maximums (8 / 4 / 2 s; auto is medium). 0.5 is the model's own boundary (Pipecat's);
#: "low" asks it for more confidence that the turn is complete before answering, "high" for less.
EAGERNESS_SMART_TURN = {"low": (0.7, 8000), "medium": (0.5, 4000), "auto": (0.5, 4000), "high": (0.3, 2000)}
_SEMANTIC_PAUSE_MS = 200  # Silero's silence before the detector is asked (Pipecat's VAD stop_secs with Smart Turn)


def semantic_detector(name: str, eagerness: str) -> TurnDetector:
    """The deferred turn detector a ``semantic_vad`` session runs after Silero: "smart_turn" (the model at each
    pause, thresholds and waits from ``EAGERNESS_SMART_TURN``) or "silence" (``_EAGERNESS_SILENCE_MS``)."""
    if name == "smart_turn":
        threshold, max_silence_ms = EAGERNESS_SMART_TURN.get(eagerness, EAGERNESS_SMART_TURN["auto"])
        return TurnDetector("smart_turn", threshold=threshold, max_silence_ms=max_silence_ms, defer=True)
    if name == "silence":
        return TurnDetector("silence", silence_ms=_EAGERNESS_SILENCE_MS.get(eagerness, 600), defer=True)
    raise ConfigError(f"turn_detector must be 'smart_turn' or 'silence' {got(name)}")


class Boundary(NamedTuple):
    """Speech started (``started``) or the turn ended, at input sample ``sample``."""

    started: bool
    sample: int


class TurnTaking:
    """One session's turn detection, built from its ``turn_detection`` config (rebuilt when that changes).

    ``process`` runs Silero on appended audio; under ``semantic_vad`` its pauses go to a deferred detector
    (``turn_detector``: "smart_turn" or "silence"), each pause handed out as ``TurnWork`` to be judged off the
    event loop and its verdict given back to ``judged``. Both return the turn boundaries found.
    """

    def __init__(self, detection: dict[str, Any], turn_detector: str) -> None:
        from vkit.filters import VAD

        semantic = detection.get("type") == "semantic_vad"
        silence_ms = (_SEMANTIC_PAUSE_MS if semantic
                      else detection.get("silence_duration_ms") or _EAGERNESS_SILENCE_MS["auto"])
        self.vad = VAD("silero", threshold=float(detection.get("threshold") or 0.5), min_speech_ms=100,
                       min_silence_ms=silence_ms, speech_pad_ms=0, emit_scores=False)
        self.detector = semantic_detector(turn_detector, detection.get("eagerness") or "auto") if semantic else None

    def process(self, audio: np.ndarray, sample_rate_hz: int, position: int) -> tuple[list[Boundary], TurnWork | None]:
        """The boundaries in ``audio`` (appended at input sample ``position``), and a pause to judge, if any."""
        result = self.vad.process(AudioFrame.mono(audio, sample_rate_hz, start_sample=position))
        items: list[Item] = result if isinstance(result, list) else [result]
        work = None
        if self.detector is not None:
            items = [out for item in items for out in as_items(self.detector.process(item))]
            pause = self.detector.take_pause()
            if pause is not None:
                work = TurnWork(self.detector, pause)
        return self._boundaries(items, position + audio.size), work

    def judged(self, work: TurnWork, verdict: Verdict) -> list[Boundary]:
        """The boundaries a verdict on ``work`` decides (none if it is not this detector's)."""
        if work.detector is not self.detector:
            return []
        return self._boundaries(work.detector.resolve(work.pause, verdict), 0)

    def _boundaries(self, items: list[Item], end_sample: int) -> list[Boundary]:
        """Silero's stop ends a ``server_vad`` turn at the end of the audio it was found in; a ``semantic_vad``
        turn ends at its detector's decision."""
        out = []
        for item in items:
            if isinstance(item, SpeechStarted):
                out.append(Boundary(True, item.sample))
            elif isinstance(item, TurnEnded):
                out.append(Boundary(False, item.decided_sample))
            elif isinstance(item, SpeechStopped) and self.detector is None:
                out.append(Boundary(False, end_sample))
        return out
