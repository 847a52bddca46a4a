"""Every filter gives the same output however its input is chunked (1 sample to the whole signal)."""

from __future__ import annotations

import numpy as np
import pytest

from vkit import filters
from vkit.frames import AudioFrame, Event


def run_chunked(stage, signal: np.ndarray, rate: int, chunk: int) -> tuple[np.ndarray, list[tuple]]:
    stage.reset()
    audio, events = [], []
    outputs = []
    for start in range(0, signal.shape[1], chunk):
        result = stage.process(AudioFrame(samples=signal[:, start : start + chunk], sample_rate_hz=rate,
                                          start_sample=start))
        outputs += result if isinstance(result, list) else [result] if result is not None else []
    outputs += stage.flush()
    for item in outputs:
        if isinstance(item, AudioFrame):
            audio.append(item)
        elif isinstance(item, Event):
            events.append((item.kind, getattr(item, "sample", None), round(getattr(item, "probability", 0.0), 6)))
    positions = [f.start_sample for f in audio]
    assert positions == sorted(positions)
    joined = np.concatenate([f.samples for f in audio], 1) if audio else np.zeros((signal.shape[0], 0))
    if audio:
        assert audio[0].start_sample == 0 and sum(f.num_samples for f in audio) == joined.shape[1]
    return joined, events


def speechy(rate: int, num_channels: int, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """Noise bursts with gaps: exercises gates and VADs."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    envelope = (np.sin(np.arange(n) / rate * 2 * np.pi * 3) > 0).astype(np.float32) * 0.3 + 0.002
    return (rng.standard_normal((num_channels, n)) * envelope).astype(np.float32)


CHUNKS_MS = [None, 10, 20, 37, "whole"]  # None = one sample


def chunk_sizes(rate: int, total: int) -> list[int]:
    return [1 if c is None else total if c == "whole" else rate * c // 1000 for c in CHUNKS_MS]


FACTORIES = {
    "resample_hq": lambda: filters.Resample(24_000),
    "resample_low_latency": lambda: filters.Resample(16_000, quality="low_latency"),
    "noise_gate": lambda: filters.NoiseGate(-30, attack_ms=3, hold_ms=20, release_ms=30, lookahead_ms=5),
    "gain": lambda: filters.Gain(-6),
    "reframe": lambda: filters.Reframe(23),
    "channel_mix": lambda: filters.ChannelMix(num_channels=1),
    "vad_energy": lambda: filters.VAD("energy", threshold_dbfs=-30, min_speech_ms=30, min_silence_ms=40),
    "vad_webrtc": lambda: filters.VAD("webrtc", min_speech_ms=30, min_silence_ms=60),
    "vad_silero": lambda: filters.VAD("silero", threshold=0.3, min_speech_ms=30, min_silence_ms=60),
}


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("rate,num_channels", [(8_000, 1), (16_000, 2), (44_100, 1), (48_000, 2)])
def test_chunked_output_equals_one_shot(name, rate, num_channels):
    signal = speechy(rate, num_channels)
    reference_audio, reference_events = run_chunked(FACTORIES[name](), signal, rate, signal.shape[1])
    assert reference_audio.shape[1] > 0
    for chunk in chunk_sizes(rate, signal.shape[1]):
        if chunk == 1 and name.startswith("vad_silero"):
            chunk = 7  # one-sample chunks work but cost seconds of model calls; 7 is as misaligned
        audio, events = run_chunked(FACTORIES[name](), signal, rate, chunk)
        np.testing.assert_array_equal(audio, reference_audio, err_msg=f"{name} chunk={chunk}")
        assert events == reference_events, f"{name} chunk={chunk}"
