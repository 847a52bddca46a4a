"""``VAD() | TurnDetector(...)`` in front of the Realtime stage (manual turns) and of the cascade: both act at
the detector's decision, once per turn, over an utterance with a thinking pause (real servers on 127.0.0.1)."""

from __future__ import annotations

import numpy as np
import pytest
from realtime_helpers import COMPLETE, INCOMPLETE, voiced_speech_24k

import vkit
from vkit import filters, sinks, sources
from vkit.cascade import LLM, STT, TTS
from vkit.filters.turn import TurnDetector
from vkit.frames import ProtocolEvent, SttTranscript, TurnEnded
from vkit.realtime import Realtime

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def paused() -> tuple[np.ndarray, float, float]:
    """An incomplete utterance, a 1 s pause, its completion, silence; where speech starts and ends (ms)."""
    first, second = voiced_speech_24k(INCOMPLETE), voiced_speech_24k(COMPLETE)
    audio = np.concatenate([np.zeros(12_000, np.float32), first, np.zeros(24_000, np.float32), second,
                            np.zeros(24_000 * 4, np.float32)])
    return audio, 500.0, (12_000 + first.size + 24_000 + second.size) / 24


def test_manual_realtime_commits_once_at_the_detectors_decision(paused):
    audio, _, end_ms = paused
    graph = (sources.Array(audio, 24_000, pace="realtime") | filters.VAD() | TurnDetector("smart_turn", threshold=0.5)
             | Realtime(turn_detection="manual", server={"output_pace": 0}) | sinks.VirtualSpeaker())
    session = vkit.run(graph, clock="virtual")
    (ended,) = session.events_of(TurnEnded)
    assert ended.reason == "model" and abs(ended.speech_end_ms - end_ms) <= 64
    commits = [e for e in session.events_of(ProtocolEvent) if e.direction == "sent" and e.type == "input_audio_buffer.commit"]
    assert len(commits) == 1 and 0 <= commits[0].t_ns - ended.t_ns < 50e6
    (turn,) = session.turns
    assert turn.vad_end_detected_ms == pytest.approx(ended.t_ns / 1e6)
    assert turn.user_speech_start_ms < 520 and turn.commit_sent_ms == pytest.approx(commits[0].t_ns / 1e6, abs=0.01)


def test_the_cascade_transcribes_the_whole_turn_at_the_detectors_decision(paused):
    audio, start_ms, end_ms = paused
    stt = STT()
    graph = (sources.Array(audio, 24_000, pace="realtime") | filters.VAD() | TurnDetector("smart_turn")
             | stt | LLM(server={"first_token_ms": 20}, instructions="Be brief.") | TTS()
             | sinks.VirtualSpeaker(prebuffer_ms=60))
    session = vkit.run(graph, clock="virtual")
    (ended,) = session.events_of(TurnEnded)
    (heard,) = session.events_of(SttTranscript)
    assert stt.num_utterances == 1 and heard.speech_end_t_ns == ended.speech_end_t_ns
    assert heard.audio_ms >= end_ms - start_ms - 64  # both parts, the pause between them included
    assert heard.t_ns >= ended.t_ns
    (turn,) = session.turns
    assert turn.vad_end_detected_ms == pytest.approx(ended.t_ns / 1e6) and turn.transcript == heard.text
