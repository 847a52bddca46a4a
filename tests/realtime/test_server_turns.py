"""The local server's semantic_vad over 127.0.0.1: Smart Turn after Silero keeps a turn through an
incomplete pause and ends it after the complete part; the detector is swappable (a silence cuts it)."""

from __future__ import annotations

import numpy as np
import pytest
from realtime_helpers import COMPLETE, INCOMPLETE, voiced_speech_24k

import vkit
from vkit import sinks, sources
from vkit.frames import ProtocolEvent
from vkit.realtime import Realtime
from vkit.realtime.server.turns import EAGERNESS_SMART_TURN, semantic_detector

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def paused() -> tuple[np.ndarray, float, float]:
    """An incomplete utterance, a 1 s pause, its completion; and where each part ends (ms)."""
    first, second = voiced_speech_24k(INCOMPLETE), voiced_speech_24k(COMPLETE)
    gap = np.zeros(24_000, np.float32)
    audio = np.concatenate([np.zeros(12_000, np.float32), first, gap, second, np.zeros(24_000 * 5, np.float32)])
    return audio, (12_000 + first.size) / 24, (12_000 + first.size + gap.size + second.size) / 24


def _received(session, wire_type: str) -> list[dict]:
    return [e.event.to_dict() for e in session.events_of(ProtocolEvent)
            if e.direction == "received" and e.type == wire_type]


def _run(audio: np.ndarray, **server) -> vkit.Session:
    stage = Realtime(turn_detection="semantic_vad", server={"output_pace": 0, **server})
    return vkit.run(sources.Array(audio, 24_000, pace="realtime") | stage | sinks.VirtualSpeaker(), clock="virtual")


def test_semantic_vad_ends_the_turn_after_the_complete_part(paused):
    audio, first_end_ms, end_ms = paused
    session = _run(audio)
    (started,) = _received(session, "input_audio_buffer.speech_started")
    (stopped,) = _received(session, "input_audio_buffer.speech_stopped")
    assert started["item_id"] == stopped["item_id"]
    assert end_ms < stopped["audio_end_ms"] <= end_ms + 600  # Smart Turn's decision, long before the 4 s wait
    assert len(_received(session, "input_audio_buffer.committed")) == 1
    assert len(_received(session, "response.done")) == 1
    turn = session.turns[0]
    assert turn.server_speech_stopped_ms is not None and turn.server_speech_stopped_ms > end_ms


def test_the_silence_detector_cuts_the_same_utterance_at_its_pause(paused):
    audio, first_end_ms, end_ms = paused
    session = _run(audio, turn_detector="silence")
    stopped = _received(session, "input_audio_buffer.speech_stopped")
    assert len(stopped) == 2  # eagerness "auto": 600 ms of silence, shorter than the 1 s pause
    assert first_end_ms < stopped[0]["audio_end_ms"] <= first_end_ms + 600 + 250


def test_eagerness_maps_to_thresholds_and_waits():
    assert EAGERNESS_SMART_TURN["auto"] == EAGERNESS_SMART_TURN["medium"]
    waits = [EAGERNESS_SMART_TURN[e][1] for e in ("low", "medium", "high")]
    thresholds = [EAGERNESS_SMART_TURN[e][0] for e in ("low", "medium", "high")]
    assert waits == [8000, 4000, 2000] and thresholds == sorted(thresholds, reverse=True)
    detector = semantic_detector("smart_turn", "high")
    assert detector.defer and detector.describe()["threshold"] == 0.3 and detector.describe()["max_silence_ms"] == 2000
    with pytest.raises(vkit.ConfigError, match="'semantic'"):
        semantic_detector("semantic", "auto")
