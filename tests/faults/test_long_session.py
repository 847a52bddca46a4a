"""One hour of turns on the virtual clock, client and embedded server over 127.0.0.1: memory stays bounded."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import numpy as np
import psutil
import pytest

import vkit
from vkit import sinks
from vkit.frames import AudioFrame, SpeechStarted, SpeechStopped
from vkit.realtime import Realtime
from vkit.realtime.server import Reply, Turn
from vkit.sources.base import PacedSource
from vkit.stage import StreamFormat

pytestmark = pytest.mark.timeout(120)
RATE_HZ = 24_000
TURN_S, SPEECH_S = 10, 2  # each turn: 2 s of speech, then 8 s for the answer (4 s) and a pause
FRAME_MS = 200


class Turns(PacedSource):
    """``num_turns`` turns of a tone then silence, made as they are read (an hour in memory is 345 MB)."""

    def __init__(self, num_turns: int) -> None:
        super().__init__(frame_ms=FRAME_MS, pace="realtime")
        self.format = StreamFormat(RATE_HZ, 1)
        self.num_turns = num_turns

    def _blocks(self, num_samples: int) -> Iterator[np.ndarray]:
        t = np.arange(num_samples) / RATE_HZ
        speech = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32).reshape(1, -1)
        silence = np.zeros((1, num_samples), np.float32)
        per_turn, speaking = TURN_S * RATE_HZ // num_samples, SPEECH_S * RATE_HZ // num_samples
        for _ in range(self.num_turns):
            for index in range(per_turn):
                yield speech if index < speaking else silence


class Labels:
    """The turns' speech events, as a VAD would publish them (manual turns: the stage commits on each end)."""

    def process(self, frame: AudioFrame) -> list[object]:
        offset = frame.start_sample % (TURN_S * RATE_HZ)
        out: list[object] = [frame]
        if offset == 0:
            out.append(SpeechStarted(sample=frame.start_sample, sample_rate_hz=RATE_HZ, sample_t_ns=frame.t_ns))
        if offset + frame.num_samples == SPEECH_S * RATE_HZ:
            out.append(SpeechStopped(sample=frame.end_sample, sample_rate_hz=RATE_HZ, sample_t_ns=frame.t_ns,
                                     speech_end_sample=frame.end_sample, speech_end_t_ns=frame.t_ns))
        return out


class FreshAnswers:
    """A 4 s answer per turn, a new array each time (the echo responder's answer shares the user's audio)."""

    name = "fresh"

    async def reply(self, turn: Turn) -> Reply:
        return Reply(np.full(4 * RATE_HZ, 0.05, np.float32))


class Rss:
    """The process's RSS (client and server: the embedded server runs in this process) once a minute."""

    def __init__(self) -> None:
        self.samples_mb: list[float] = []

    def process(self, frame: AudioFrame) -> AudioFrame:
        if frame.start_sample % (60 * RATE_HZ) == 0:
            self.samples_mb.append(psutil.Process().memory_info().rss / 2**20)
        return frame


def _session(num_turns: int, rss: Rss) -> vkit.Session:
    graph = (Turns(num_turns) | Labels() | rss
             | Realtime(turn_detection="manual", frame_ms=FRAME_MS, server={"frame_ms": FRAME_MS, "max_session_s": 7200,
                                                                         "responder": FreshAnswers()})
             | sinks.VirtualSpeaker())
    return vkit.run(graph, clock="virtual")


def test_an_hour_of_turns_grows_client_and_server_memory_by_less_than_50_mb():
    _session(6, Rss())  # a minute first: models loaded, imports done, allocator pools made
    gc.collect()
    start_mb = psutil.Process().memory_info().rss / 2**20
    rss = Rss()
    session = _session(360, rss)
    gc.collect()
    end_mb = psutil.Process().memory_info().rss / 2**20
    turns = session.turns
    assert session.status == "complete" and len(turns) == 360
    assert all(t.voice_to_voice_ms is not None and t.voice_to_voice_ms > 0 for t in turns)
    assert session.events.num_dropped > 0  # the per-chunk events were let go, the rest kept
    growth_mb = max([*rss.samples_mb, end_mb]) - start_mb
    print(f"RSS {start_mb:.1f} MB at start, growth over the hour: "
          + ", ".join(f"{m - start_mb:+.1f}" for m in rss.samples_mb[::10]) + f", end {end_mb - start_mb:+.1f}")
    assert growth_mb < 50, (growth_mb, [round(m - start_mb, 1) for m in rss.samples_mb])
