"""Offline speech recognition with pocketsphinx, decoded in a worker process.

pocketsphinx holds the GIL while it decodes (about 0.3 s per second of speech here), which would freeze a
graph or an embedded server sharing the process; a worker process keeps them running. Recent utterances
are remembered, so the same audio asked twice (a transcript and an answer) is decoded once.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np
import soxr

from vkit.extras import require
from vkit.units import float_to_pcm16_bytes

RECOGNISER_RATE_HZ = 16_000
_RECENT_UTTERANCES = 8


class Recogniser:
    """pocketsphinx in one worker process; ``transcribe(audio, rate)`` blocks until the text is known."""

    def __init__(self) -> None:
        require("pocketsphinx", extra="cascade", feature="offline speech recognition")  # the worker imports it
        self._worker = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_load_recogniser)
        self._worker.submit(_recognise, b"")  # start the worker and load its model now, not at the first turn
        self._recognising: OrderedDict[bytes, Future[str]] = OrderedDict()
        self._lock = threading.Lock()
        self.num_decodes = 0  # utterances sent to the worker (a repeat of a recent one is not)

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> str:
        """The best hypothesis for one utterance (mono float32 at any rate)."""
        resample = sample_rate_hz != RECOGNISER_RATE_HZ and audio.size
        pcm = soxr.resample(audio, sample_rate_hz, RECOGNISER_RATE_HZ) if resample else audio
        data = float_to_pcm16_bytes(np.asarray(pcm, np.float32))
        key = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            future = self._recognising.get(key)
            if future is None:
                future = self._recognising[key] = self._worker.submit(_recognise, data)
                self.num_decodes += 1
                while len(self._recognising) > _RECENT_UTTERANCES:
                    self._recognising.popitem(last=False)
        return future.result()

    def close(self) -> None:
        """End the worker process."""
        self._worker.shutdown(wait=True, cancel_futures=True)


_recogniser = None  # in the worker process: its pocketsphinx decoder


def _load_recogniser() -> None:
    global _recogniser
    from pocketsphinx import Decoder

    _recogniser = Decoder(samprate=RECOGNISER_RATE_HZ, loglevel="FATAL")


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
