"""What the local server answers with: ``echo`` (the user's own words back), ``scripted`` (given audio
or text), ``cascade`` (real offline STT -> rule-based reply -> TTS: pocketsphinx and espeak-ng/flite)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import multiprocessing
import re
import shutil
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import soxr

from vkit.errors import ConfigError, got
from vkit.extras import require

OUTPUT_RATE_HZ = 24_000


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


class Speech:
    """Offline text-to-speech through espeak-ng or flite (Debian packages), run as a subprocess."""

    def __init__(self, engine: str | None = None, voice: str | None = None) -> None:
        self.engine = engine or ("espeak-ng" if shutil.which("espeak-ng") else "flite" if shutil.which("flite") else "")
        if not self.engine or not shutil.which(self.engine):
            raise ConfigError("text-to-speech needs espeak-ng or flite (Debian: apt-get install espeak-ng) "
                              f"{got(engine)}")
        self.voice = voice

    def synthesise(self, text: str) -> np.ndarray:
        if self.engine == "espeak-ng":
            command = ["espeak-ng", "--stdout", "-s", "170", *(["-v", self.voice] if self.voice else []), text]
        else:
            command = ["flite", *(["-voice", self.voice] if self.voice else []), "-t", text, "-o", "/dev/stdout"]
        wav = subprocess.run(command, check=True, capture_output=True, timeout=30).stdout
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
        return soxr.resample(audio, rate, OUTPUT_RATE_HZ).astype(np.float32) * 0.7


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


_RULES = [
    (r"\b(book|table|reservation)\b", "Your table is booked."),
    (r"\b(weather|rain|sunny)\b", "Tomorrow looks sunny and mild."),
    (r"\b(hello|hi|hey)\b", "Hello! How can I help?"),
    (r"\b(stop|cancel)\b", "Okay, stopping."),
]


class CascadeResponder:
    """A real local cascade: pocketsphinx speech recognition, a rule-based reply, espeak-ng speech.

    Recognition runs in a worker process: pocketsphinx holds the GIL while it decodes (about 0.3 s per second
    of speech here), which would freeze the graph sharing this process with an embedded server. An utterance
    is recognised once, for its transcript and for the answer alike.
    """

    name = "cascade"

    def __init__(self, tts_engine: str | None = None) -> None:
        require("pocketsphinx", extra="cascade", feature="the cascade responder")  # the worker imports it
        self._speech = Speech(tts_engine)
        self._worker = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_load_recogniser)
        self._worker.submit(_recognise, b"")  # start the worker and load its model now, not at the first turn
        self._recognising: OrderedDict[bytes, Future[str]] = OrderedDict()
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> str:
        pcm = soxr.resample(audio, sample_rate_hz, 16_000) if sample_rate_hz != 16_000 else audio
        data = np.rint(np.clip(pcm, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()
        key = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            future = self._recognising.get(key)
            if future is None:
                future = self._recognising[key] = self._worker.submit(_recognise, data)
                while len(self._recognising) > _RECENT_UTTERANCES:
                    self._recognising.popitem(last=False)
        return future.result()

    @staticmethod
    def answer(text: str) -> str:
        for pattern, reply in _RULES:
            if re.search(pattern, text):
                return reply
        return f"You said: {text}." if text else "Sorry, I did not catch that."

    def _run(self, audio: np.ndarray, sample_rate_hz: int) -> Reply:
        heard = self.transcribe(audio, sample_rate_hz)
        text = self.answer(heard)
        return Reply(self._speech.synthesise(text), transcript=text, input_transcript=heard)

    async def reply(self, user_audio: np.ndarray, sample_rate_hz: int) -> Reply:
        return await asyncio.get_running_loop().run_in_executor(None, self._run, user_audio, sample_rate_hz)

    def close(self) -> None:
        """End the recognition worker."""
        self._worker.shutdown(wait=True, cancel_futures=True)


_RECENT_UTTERANCES = 8  # recognitions kept, so a transcript and an answer of the same audio share one
_recogniser = None  # in the worker process: its pocketsphinx decoder


def _load_recogniser() -> None:
    global _recogniser
    from pocketsphinx import Decoder

    _recogniser = Decoder(samprate=16_000, loglevel="FATAL")


def _recognise(pcm16: bytes) -> str:
    """In the worker process: the best hypothesis for one utterance of 16 kHz PCM16."""
    assert _recogniser is not None
    if not pcm16:
        return ""
    _recogniser.start_utt()
    _recogniser.process_raw(pcm16, full_utt=True)
    _recogniser.end_utt()
    hypothesis = _recogniser.hyp()
    return hypothesis.hypstr if hypothesis is not None else ""


def make_responder(name: str, replies: Sequence[str | Path | np.ndarray] | None = None) -> Responder:
    if name == "echo":
        return EchoResponder()
    if name == "scripted":
        return ScriptedResponder(replies or ["This is a scripted answer."])
    if name == "cascade":
        return CascadeResponder()
    raise ConfigError(f"responder must be 'echo', 'scripted' or 'cascade' {got(name)}")
