"""The end of speech, refined against the silence after it, on signals whose end is known to the sample."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vkit import evaluation, filters
from vkit.data import sample_path
from vkit.filters.vad.endpoint import RecentAudio, refine_speech_end
from vkit.frames import AudioFrame, SpeechStopped

DATA = Path(__file__).resolve().parents[2] / "data"
RATE_HZ = 16_000


def vowel(seconds: float, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced sound: 20 harmonics of a wandering 140 Hz pitch, falling 6 dB an octave."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    phase = 2 * np.pi * np.cumsum(140 + 10 * np.sin(2 * np.pi * 3 * t)) / RATE_HZ
    sound = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 21))
    return scaled(sound, level_dbfs)


def fricative(seconds: float, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """An unvoiced sound: noise above about 3 kHz."""
    noise = rng.standard_normal(int(seconds * RATE_HZ))
    spectrum = np.fft.rfft(noise)
    spectrum[: int(3000 * noise.size / RATE_HZ)] = 0
    return scaled(np.fft.irfft(spectrum, noise.size), level_dbfs)


def scaled(signal: np.ndarray, level_dbfs: float) -> np.ndarray:
    return signal * 10 ** (level_dbfs / 20) / np.sqrt(np.mean(signal**2))


def with_background(speech: np.ndarray, background_dbfs: float | None, after_s: float, rng: np.random.Generator) -> np.ndarray:
    signal = np.concatenate([speech, np.zeros(int(after_s * RATE_HZ))])
    if background_dbfs is not None:
        signal = signal + scaled(rng.standard_normal(signal.size), background_dbfs)
    return signal.astype(np.float32)


@pytest.mark.parametrize("background_dbfs", [None, -80, -60, -50])
@pytest.mark.parametrize("model_late_ms", [0, 40, 100, 250])
def test_the_end_moves_back_to_where_the_sound_stops(background_dbfs, model_late_ms):
    rng = np.random.default_rng(1)
    speech = vowel(0.4, -26, rng)
    audio = with_background(speech, background_dbfs, 0.4, rng)
    model_end = speech.size + model_late_ms * RATE_HZ // 1000
    end = refine_speech_end(audio, model_end, RATE_HZ)
    assert end <= model_end
    assert abs(end - speech.size) <= 6 * RATE_HZ // 1000, (end - speech.size) / 16


def test_a_quiet_fricative_the_background_does_not_explain_is_kept():
    rng = np.random.default_rng(2)
    speech = np.concatenate([vowel(0.3, -26, rng), fricative(0.08, -50, rng)])  # 24 dB under the vowel
    audio = with_background(speech, -65, 0.4, rng)
    end = refine_speech_end(audio, speech.size + 1600, RATE_HZ)
    assert abs(end - speech.size) <= 8 * RATE_HZ // 1000, (end - speech.size) / 16


def test_a_murmur_under_500_hz_is_kept_though_the_whole_spectrum_would_lose_it():
    """A nasal's fading murmur: the three lowest harmonics only, as loud as the whole background; over all
    the bins its evidence averages out, in the lowest band it does not."""
    rng = np.random.default_rng(7)
    t = np.arange(int(0.06 * RATE_HZ)) / RATE_HZ
    murmur = scaled(sum(np.sin(2 * np.pi * 140 * k * t) / k for k in (1, 2, 3)), -65)
    speech = np.concatenate([vowel(0.3, -26, rng), murmur])
    audio = with_background(speech, -65, 0.4, rng)
    end = refine_speech_end(audio, speech.size + 1600, RATE_HZ)
    assert abs(end - speech.size) <= 8 * RATE_HZ // 1000, (end - speech.size) / 16


def test_real_speech_ends_within_one_silero_window_of_hand_labels():
    """The ten real clips of ``data/make_data.py``'s hand labels, at 32 dB SNR: vkit's end against Silero's own."""
    spec = importlib.util.spec_from_file_location("make_data", DATA / "make_data.py")
    assert spec is not None and spec.loader is not None
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    errors_ms: dict[float, list[float]] = {0: [], 300: []}
    for index, (clip, label_ms) in enumerate(make_data.LAST_SOUND_MS.items()):
        speech = make_data.active_level(make_data.read_clip(make_data.TESTDATA / clip))
        audio = np.concatenate([np.zeros(RATE_HZ // 2), speech, np.zeros(RATE_HZ)])
        audio = (audio + scaled(np.random.default_rng(index).standard_normal(audio.size), -58)).astype(np.float32)
        for refine_ms in errors_ms:
            vad = filters.VAD("silero", refine_end_ms=refine_ms)
            result = vad.process(AudioFrame.mono(audio, RATE_HZ))
            ends = [e.speech_end_sample / 16 for e in [*result, *vad.flush()] if isinstance(e, SpeechStopped)]
            errors_ms[refine_ms].append(min(ends, key=lambda e: abs(e - 500 - label_ms)) - 500 - label_ms)
    within = {refine_ms: sum(abs(e) <= 32 for e in errors) for refine_ms, errors in errors_ms.items()}
    assert within[300] >= 9 and within[300] > within[0], errors_ms
    assert max(np.abs(errors_ms[300])) <= 2 * 32 < max(np.abs(errors_ms[0])), errors_ms  # Silero's: up to +84 ms


def test_the_background_is_the_silence_nearest_the_end():
    """A recording's own noise, then a quieter line: the noise right after the word is the background, so the
    end does not depend on how much silence the VAD waits for (``min_silence_ms``)."""
    rng = np.random.default_rng(8)
    speech = vowel(0.4, -26, rng)
    tail = np.concatenate([scaled(rng.standard_normal(int(0.25 * RATE_HZ)), -48), np.zeros(int(0.4 * RATE_HZ))])
    audio = np.concatenate([speech + scaled(rng.standard_normal(speech.size), -48), tail])
    audio = (audio + scaled(rng.standard_normal(audio.size), -65)).astype(np.float32)
    for silence_ms in (100, 400):
        model_end = speech.size + 1600
        end = refine_speech_end(audio[: model_end + silence_ms * RATE_HZ // 1000], model_end, RATE_HZ)
        assert abs(end - speech.size) <= 6 * RATE_HZ // 1000, (silence_ms, (end - speech.size) / 16)


def test_a_background_that_fades_like_a_gate_releasing_is_still_background():
    rng = np.random.default_rng(9)
    speech = vowel(0.4, -26, rng)
    after = int(0.5 * RATE_HZ)
    gain = np.clip(1 - (np.arange(after) - 0.06 * RATE_HZ) / (0.15 * RATE_HZ), 0, 1)  # holds 60 ms, fades over 150
    audio = np.concatenate([speech, np.zeros(after)]) + scaled(rng.standard_normal(speech.size + after), -60)
    audio[speech.size :] *= gain
    model_end = speech.size + 1600
    end = refine_speech_end(audio.astype(np.float32), model_end, RATE_HZ)
    assert abs(end - speech.size) <= 6 * RATE_HZ // 1000, (end - speech.size) / 16


def test_under_loud_noise_the_model_keeps_the_end():
    """5 dB under the speech, the background masks a word's quiet end: the spectral test does not decide."""
    rng = np.random.default_rng(3)
    speech = vowel(0.4, -26, rng)
    audio = with_background(speech, -31, 0.4, rng)
    model_end = speech.size + 1600
    assert refine_speech_end(audio, model_end, RATE_HZ) >= model_end - 8 * RATE_HZ // 1000


def test_too_little_silence_to_compare_with_keeps_the_end():
    rng = np.random.default_rng(4)
    speech = vowel(0.4, -26, rng)
    audio = with_background(speech, -60, 0.1, rng)
    model_end = speech.size + 800  # 50 ms after the sound, 50 ms before the audio ends
    assert refine_speech_end(audio, model_end, RATE_HZ) == model_end
    assert refine_speech_end(audio, 0, RATE_HZ) == 0
    assert refine_speech_end(audio[:100], 50, RATE_HZ) == 50


def test_other_model_rates():
    rng = np.random.default_rng(5)
    for rate in (8_000, 32_000, 48_000):
        speech = np.interp(np.arange(int(0.4 * rate)) * RATE_HZ / rate, np.arange(6400), vowel(0.4, -26, rng))
        audio = np.concatenate([speech, np.zeros(int(0.3 * rate))]) + scaled(rng.standard_normal(speech.size + int(0.3 * rate)), -70)
        end = refine_speech_end(audio.astype(np.float32), speech.size + rate // 10, rate)
        assert abs(end - speech.size) <= 6 * rate // 1000, (rate, (end - speech.size) * 1000 / rate)


def test_recent_audio_keeps_the_last_samples_by_absolute_index():
    rng = np.random.default_rng(6)
    stream = rng.standard_normal(20_000).astype(np.float32)
    recent = RecentAudio(1000)
    position = 0
    for size in [1, 7, 999, 1000, 1001, 3, 2500, 450, 4000, 12]:
        recent.append(stream[position : position + size])
        position += size
        assert recent.end == position and recent.start <= max(0, position - size - 1000)  # the append, 1000 before
        assert position - recent.start < size + 2 * 1000 + 4000  # and bounded: twice that, and a chunk
        np.testing.assert_array_equal(recent.read(0, position), stream[recent.start : position])
        np.testing.assert_array_equal(recent.read(position - 10, position + 50), stream[max(0, position - 10) : position])
    assert recent.read(position, position + 5).size == 0


def test_refined_ends_do_not_depend_on_chunking_and_move_back_from_the_model():
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    audio = filters.Resample(24_000)(audio, rate)

    def speech_ends(vad: filters.VAD, chunk: int) -> list[int]:
        vad.reset()
        out = []
        for start in range(0, audio.size, chunk):
            result = vad.process(AudioFrame.mono(audio[start : start + chunk], 24_000, start_sample=start))
            out += [e for e in result if isinstance(e, SpeechStopped)] if isinstance(result, list) else []
        return [e.speech_end_sample for e in out + vad.flush()]

    refined = speech_ends(filters.VAD("silero"), audio.size)
    model = speech_ends(filters.VAD("silero", refine_end_ms=0), audio.size)
    assert len(refined) == len(model) == 3
    assert all(r <= m for r, m in zip(refined, model, strict=True)) and refined != model
    for chunk in (480, 37 * 24, 1601):  # 20 ms, 37 ms, 66.7 ms
        assert speech_ends(filters.VAD("silero"), chunk) == refined, chunk
    # turn 2 is synthesised (flite), and ends where its sound does: Silero's end is late, the refined one is not
    tts_end_ms = evaluation.read_segments(sample_path("two_turns.segments.csv"))[1][1]
    assert model[1] / 24 - tts_end_ms > 60
    assert abs(refined[1] / 24 - tts_end_ms) <= 32
