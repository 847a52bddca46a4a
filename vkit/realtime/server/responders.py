"""What the local server answers with: ``echo`` (the user's own words back), ``scripted`` (given audio
or text), ``cascade`` (real offline STT -> rule-based reply -> TTS: pocketsphinx and espeak-ng/flite)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import soxr

from vkit.errors import ConfigError, got
from vkit.speech import OUTPUT_RATE_HZ, Recogniser, Speech, answer

__all__ = ["Reply", "Responder", "EchoResponder", "ScriptedResponder", "CascadeResponder", "Speech", "make_responder",
           "OUTPUT_RATE_HZ"]


@dataclass
class Reply:
    """An answer: mono float32 audio at 24 kHz, its transcript, and what the user was heard to say."""

    audio: np.ndarray
    transcript: str = ""
    input_transcript: str | None = None


class Responder(Protocol):
    name: str

    async def reply(self, user_audio: np.ndarray, sample_rate_hz: int) -> Reply: ...


class EchoResponder:
    """Answers with the user's own utterance (no model; deterministic)."""

    name = "echo"

    async def reply(self, user_audio: np.ndarray, sample_rate_hz: int) -> Reply:
        audio = user_audio if sample_rate_hz == OUTPUT_RATE_HZ else soxr.resample(user_audio, sample_rate_hz, OUTPUT_RATE_HZ)
        return Reply(np.asarray(audio, np.float32), transcript="", input_transcript=None)


class ScriptedResponder:
    """Answers from a list of replies in turn (cycling): audio arrays at 24 kHz, audio files, or text."""

    name = "scripted"

    def __init__(self, replies: Sequence[str | Path | np.ndarray]) -> None:
        if not replies:
            raise ConfigError(f"the scripted responder needs at least one reply {got(replies)}")
        self._replies: list[Reply] = []
        speech: Speech | None = None
        for reply in replies:
            if isinstance(reply, np.ndarray):
                self._replies.append(Reply(reply.astype(np.float32)))
            elif isinstance(reply, Path) or (isinstance(reply, str) and Path(reply).suffix in (".wav", ".flac")):
                audio, rate = sf.read(str(reply), dtype="float32", always_2d=True)
                self._replies.append(Reply(soxr.resample(audio.mean(1), rate, OUTPUT_RATE_HZ).astype(np.float32)))
            else:
                speech = speech or Speech()
                self._replies.append(Reply(speech.synthesise(str(reply)), transcript=str(reply)))
        self._next = 0

    async def reply(self, user_audio: np.ndarray, sample_rate_hz: int) -> Reply:
        reply = self._replies[self._next % len(self._replies)]
        self._next += 1
        return reply


class CascadeResponder:
    """A real local cascade: pocketsphinx speech recognition, a rule-based reply, espeak-ng speech.

    Recognition runs in a worker process: pocketsphinx holds the GIL while it decodes (about 0.3 s per second
    of speech here), which would freeze the graph sharing this process with an embedded server. An utterance
    is recognised once, for its transcript and for the answer alike.
    """

    name = "cascade"

    def __init__(self, tts_engine: str | None = None) -> None:
        self._recogniser = Recogniser()
        self._speech = Speech(tts_engine)

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> str:
        return self._recogniser.transcribe(audio, sample_rate_hz)

    @staticmethod
    def answer(text: str) -> str:
        return answer(text)

    def _run(self, audio: np.ndarray, sample_rate_hz: int) -> Reply:
        heard = self.transcribe(audio, sample_rate_hz)
        text = self.answer(heard)
        return Reply(self._speech.synthesise(text), transcript=text, input_transcript=heard)

    async def reply(self, user_audio: np.ndarray, sample_rate_hz: int) -> Reply:
        return await asyncio.get_running_loop().run_in_executor(None, self._run, user_audio, sample_rate_hz)

    def close(self) -> None:
        """End the recognition worker."""
        self._recogniser.close()


def make_responder(name: str, replies: Sequence[str | Path | np.ndarray] | None = None) -> Responder:
    if name == "echo":
        return EchoResponder()
    if name == "scripted":
        return ScriptedResponder(replies or ["This is a scripted answer."])
    if name == "cascade":
        return CascadeResponder()
    raise ConfigError(f"responder must be 'echo', 'scripted' or 'cascade' {got(name)}")
