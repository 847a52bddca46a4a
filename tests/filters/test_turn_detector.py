"""Turn detection after a VAD: Smart Turn's features and probabilities against Pipecat's own analyser, the
stage's hold-and-release contract, and whole turns decided on speech with an utterance-internal pause."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

import vkit
from vkit import filters, sinks, sources
from vkit.errors import ConfigError
from vkit.filters.turn import SilenceTurn, SmartTurnModel, TurnDetector, detect_turns
from vkit.filters.turn.features import log_mel
from vkit.frames import AudioFrame, SpeechStarted, SpeechStopped, TurnEnded, VadScore

INCOMPLETE = "I was thinking that maybe we could go to the"  # Smart Turn: 0.01-0.11 after 100-600 ms of silence
COMPLETE = "cinema tomorrow."  # the whole: 0.76


def speech_16k(text: str) -> np.ndarray:
    from vkit.speech import Speech

    audio = Speech("espeak-ng").synthesise(text)
    audio = soxr.resample(audio, 24_000, 16_000).astype(np.float32)
    voiced = np.flatnonzero(np.abs(audio) > 1e-3)
    return audio[voiced[0]: voiced[-1] + 1]


def silence(ms: float) -> np.ndarray:
    return np.zeros(int(16 * ms), np.float32)


@pytest.fixture(scope="module")
def parts() -> tuple[np.ndarray, np.ndarray]:
    return speech_16k(INCOMPLETE), speech_16k(COMPLETE)


@pytest.fixture(scope="module")
def paused(parts) -> np.ndarray:
    """An incomplete utterance, a 1 s thinking pause, its completion, then silence."""
    first, second = parts
    return np.concatenate([silence(500), first, silence(1000), second, silence(3500)])


def test_features_and_probabilities_equal_pipecats_analyser(parts):
    """Pipecat's analyser as it ships lets onnxruntime fuse the int8 QDQ graph, whose integer kernels give
    other probabilities on other CPUs; vkit runs the graph unfused. Both are checked against vkit's
    features: the fused session equals Pipecat's analyser, the unfused one is what vkit reports."""
    features = pytest.importorskip("pipecat.audio.turn.smart_turn._whisper_features")
    local = pytest.importorskip("pipecat.audio.turn.smart_turn.local_smart_turn_v3")
    from vkit.filters.turn.model import MODEL_FILE
    from vkit.filters.vad.models import cpu_session

    analyser = local.LocalSmartTurnAnalyzerV3()
    analyser.set_sample_rate(16_000)
    fused = cpu_session(MODEL_FILE)
    first, second = parts
    incomplete = np.concatenate([silence(300), first, silence(200)])
    complete = np.concatenate([silence(300), first, silence(1000), second, silence(200)])
    model = SmartTurnModel()
    probabilities = []
    for audio in (incomplete, complete, np.concatenate([silence(9000), second])):  # shorter and longer than 8 s
        reference = features.compute_whisper_log_mel_features(np.pad(audio, (max(0, 128_000 - audio.size), 0))[-128_000:])
        np.testing.assert_allclose(log_mel(audio), reference, atol=1e-6)
        (as_pipecat,) = fused.run(None, {"input_features": log_mel(audio)[np.newaxis]})
        assert float(as_pipecat.reshape(-1)[0]) == pytest.approx(analyser._predict_endpoint(audio)["probability"], abs=1e-6)
        probability, inference_ms = model.probability(audio)
        assert inference_ms > 0
        probabilities.append(probability)
    assert probabilities[0] < 0.5 < probabilities[1]  # the pair means what the tests below rely on


def test_smart_turn_keeps_the_turn_through_an_incomplete_pause(paused, parts):
    first, second = parts
    first_end_ms = (8000 + first.size) / 16
    end_ms = (8000 + first.size + 16_000 + second.size) / 16
    stage = TurnDetector("smart_turn", threshold=0.5, max_silence_ms=3000)
    (turn,) = detect_turns(paused, 16_000, detector=stage)
    assert turn.reason == "model" and turn.probability >= 0.5
    assert abs(turn.speech_end_ms - end_ms) <= 64 and turn.start_ms < 520
    assert 0 < turn.delay_ms <= 300  # decided at the VAD's pause, not after a timeout
    assert len(stage.inference_ms) == 2 and turn.inference_ms == stage.inference_ms[-1]
    # a fixed silence shorter than the pause cuts the utterance in two; a longer one keeps it whole
    cut = detect_turns(paused, 16_000, detector="silence", silence_ms=500)
    assert len(cut) == 2 and abs(cut[0].speech_end_ms - first_end_ms) <= 64
    assert cut[0].decided_ms == cut[0].speech_end_ms + 500 and cut[0].probability is None
    (whole,) = detect_turns(paused, 16_000, detector="silence", silence_ms=1500)
    assert whole.decided_ms == whole.speech_end_ms + 1500 and abs(whole.speech_end_ms - end_ms) <= 64


def test_a_high_threshold_waits_for_max_silence(paused):
    # the wait must outlast the pause plus the VAD's min_speech_ms before it reports the resumed speech
    (turn,) = detect_turns(paused, 16_000, detector="smart_turn", threshold=0.999, max_silence_ms=1500)
    assert turn.reason == "timeout" and turn.probability < 0.999
    assert turn.decided_ms == turn.speech_end_ms + 1500


def _frame(start: int, num: int = 320) -> AudioFrame:
    return AudioFrame.mono(np.zeros(num, np.float32), 16_000, start_sample=start, t_ns=start * 62_500)


def _stopped(sample: int, speech_end: int) -> SpeechStopped:
    return SpeechStopped(t_ns=1, stage="VAD", sample=sample, sample_rate_hz=16_000, speech_end_sample=speech_end,
                         speech_end_t_ns=speech_end * 62_500)


def test_the_stage_holds_the_vads_stop_until_it_decides_and_swallows_resumed_speech():
    stage = TurnDetector(SilenceTurn(silence_ms=300))
    assert stage.describe() == {"policy": "silence", "silence_ms": 300.0, "stream": "input"}
    started = SpeechStarted(t_ns=1, stage="VAD", sample=100, sample_rate_hz=16_000)
    assert stage.process(_frame(0)) is not None and stage.process(started) is started
    stage.process(_frame(320))
    assert stage.process(_stopped(3000, 2900)) is None  # held: 300 ms after 2900 is sample 7700
    assert stage.process(SpeechStarted(t_ns=1, stage="VAD", sample=4000, sample_rate_hz=16_000)) is None
    second = _stopped(9000, 8900)
    assert stage.process(second) is None
    score = VadScore(sample=0, num_samples=512, sample_rate_hz=16_000, probability=0.1)
    assert stage.process(score) is score
    for start in range(640, 13_440, 320):
        out = stage.process(_frame(start))
        assert isinstance(out, AudioFrame), start  # 8900 + 4800 = 13700 is not reached yet
    out = stage.process(_frame(13_440))
    assert isinstance(out, list) and out[1] is second
    ended = out[2]
    assert isinstance(ended, TurnEnded) and ended.detector == "silence" and ended.reason == "silence"
    assert ended.speech_end_sample == 8900 and ended.decided_sample == 13_700 and ended.probability is None
    assert ended.at_ns == 13_700 * 62_500 and ended.speech_end_t_ns == 8900 * 62_500
    assert ended.decided_ms == 856.25 and ended.speech_end_ms == 556.25
    # a stop still held at the end of the stream is released by flush
    stage.process(_stopped(14_000, 13_900))
    assert stage.process(_frame(13_760)) is not None
    held, last = stage.flush()
    assert held.speech_end_sample == 13_900 and last.reason == "end_of_stream" and last.decided_sample == 14_080
    assert stage.flush() == []


def test_a_graph_delivers_one_stop_per_turn_at_the_decision(paused):
    mem = sinks.Memory()
    graph = (sources.Array(paused, 16_000, pace="realtime") | filters.VAD()
             | TurnDetector("smart_turn", threshold=0.5) | mem)
    session = vkit.run(graph, clock="virtual")
    assert len(session.events_of(SpeechStopped)) == 2  # the record keeps the VAD's own events
    (ended,) = session.events_of(TurnEnded)
    downstream = [e for e in mem.events if isinstance(e, (SpeechStarted, SpeechStopped))]
    assert [type(e) for e in downstream] == [SpeechStarted, SpeechStopped]
    assert downstream[1].speech_end_sample == ended.speech_end_sample and ended.stage == "TurnDetector"
    (turn,) = session.turns
    assert turn.vad_end_detected_ms == pytest.approx(ended.t_ns / 1e6)
    assert turn.user_speech_end_ms == pytest.approx(ended.speech_end_t_ns / 1e6)


def test_configuration_errors_name_the_value():
    with pytest.raises(ConfigError, match="'sometimes'"):
        TurnDetector("sometimes")
    with pytest.raises(ConfigError, match="threshold"):
        TurnDetector("smart_turn", threshold=1.5)
    with pytest.raises(ConfigError, match="silence_ms"):
        TurnDetector("silence", silence_ms=-1)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        TurnDetector("silence", threshold=0.5)


def test_a_deferred_pause_is_judged_outside_and_a_stale_verdict_is_ignored():
    stage = TurnDetector("silence", silence_ms=100, defer=True)
    stage.process(_frame(0))
    stage.process(SpeechStarted(t_ns=1, stage="VAD", sample=0, sample_rate_hz=16_000))
    stage.process(_frame(320))
    assert stage.process(_stopped(640, 300)) is None
    first = stage.take_pause()
    assert first is not None and stage.take_pause() is None and first.now_sample == 640
    stage.process(SpeechStarted(t_ns=1, stage="VAD", sample=700, sample_rate_hz=16_000))  # resumed: first is stale
    assert stage.resolve(first, stage.judge(first)) == []
    stage.process(_frame(640))
    stage.process(_stopped(960, 900))
    second = stage.take_pause()
    verdict = stage.judge(second)
    assert verdict.deadline_sample == 2500 and stage.resolve(second, verdict) == []  # not reached yet
    stage.process(_frame(960, 1280))
    out = stage.process(_frame(2240))
    assert isinstance(out, list) and out[2].decided_sample == 2500 and out[1].speech_end_sample == 900


def test_smart_turn_hears_the_same_tail_however_late_the_pause_is_declared(parts):
    """The model's score moves with the trailing silence, so the policy cuts the audio at a fixed tail."""
    from vkit.filters.turn import SmartTurn

    first, _ = parts
    policy = SmartTurn(tail_ms=200.0)
    audio = np.concatenate([silence(500), first, silence(1000)])
    speech_end = 16 * 500 + first.size
    scores = {late_ms: policy.on_pause(audio[: speech_end + 16 * late_ms], 16_000, speech_end,
                                       speech_end + 16 * late_ms).probability for late_ms in (200, 320, 450)}
    assert scores[200] == pytest.approx(scores[320], abs=1e-6) == pytest.approx(scores[450], abs=1e-6)
    assert scores[200] < 0.5  # and the incomplete fragment keeps its turn open
