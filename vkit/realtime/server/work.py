"""The work a session hands out to its I/O layer (``take_work``): each is done outside the session, off its
clock, and its result comes back by id."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vkit.filters.turn import Pause, TurnDetector
from vkit.realtime.server.responders import Turn

__all__ = ["ReplyWork", "TranscriptionWork", "TurnWork", "Work"]


@dataclass(frozen=True)
class ReplyWork:
    """Ask the responder for ``turn``; give the answer to ``reply_ready(response_id, ...)``."""

    response_id: str
    turn: Turn


@dataclass(frozen=True)
class TranscriptionWork:
    """Transcribe ``audio``; give the text to ``transcription_ready(item_id, ...)``."""

    item_id: str
    audio: np.ndarray
    sample_rate_hz: int


@dataclass(frozen=True)
class TurnWork:
    """Judge a ``semantic_vad`` pause (``detector.judge(pause)``, blocking); give the verdict to
    ``turn_judged(work, verdict, ...)``."""

    detector: TurnDetector
    pause: Pause


Work = ReplyWork | TranscriptionWork | TurnWork
