"""Whisper-style log-mel features: the input Smart Turn v3 was trained on.

They are what ``transformers.WhisperFeatureExtractor`` computes for an 8 s chunk, with its defaults: the
waveform normalised to zero mean and unit variance, a centred (reflect-padded) periodic-Hann STFT of 400
samples every 160 at 16 kHz, the power spectrum through 80 Slaney mel filters (librosa), ``log10`` floored
at 1e-10, the last frame dropped, values clamped to ``max - 8`` and mapped by ``(x + 4) / 4``.
"""

from __future__ import annotations

import threading

import numpy as np

from vkit.errors import AudioInputError, got

SAMPLE_RATE_HZ = 16_000
WINDOW_SAMPLES = 8 * SAMPLE_RATE_HZ  # the model sees the last 8 s
N_FFT = 400
HOP_SAMPLES = 160
N_MELS = 80

_bank: dict[str, np.ndarray] = {}
_lock = threading.Lock()


def filter_bank() -> tuple[np.ndarray, np.ndarray]:
    """The Hann window and the ``(N_MELS, N_FFT // 2 + 1)`` Slaney mel matrix, built once (the first librosa
    import takes seconds: call this early to keep it off a hot path)."""
    with _lock:
        if not _bank:
            import librosa

            _bank["window"] = librosa.filters.get_window("hann", N_FFT, fftbins=True).astype(np.float64)
            _bank["mel"] = librosa.filters.mel(sr=SAMPLE_RATE_HZ, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0,
                                               fmax=SAMPLE_RATE_HZ / 2, htk=False, norm="slaney", dtype=np.float64)
            librosa.util.frame(np.zeros(N_FFT), frame_length=N_FFT, hop_length=HOP_SAMPLES)  # loads librosa.util
        return _bank["window"], _bank["mel"]


def last_window(audio: np.ndarray) -> np.ndarray:
    """The last 8 s of 16 kHz mono audio, zeros prepended when it is shorter (the model's training layout)."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1:
        raise AudioInputError(f"turn features take 1-D mono audio {got(audio.shape)}")
    if audio.size >= WINDOW_SAMPLES:
        return audio[audio.size - WINDOW_SAMPLES:]
    return np.concatenate([np.zeros(WINDOW_SAMPLES - audio.size, np.float32), audio])


def log_mel(audio: np.ndarray) -> np.ndarray:
    """``(N_MELS, 800)`` float32 features of 16 kHz mono audio (its last 8 s, left-padded)."""
    import librosa

    window, mel = filter_bank()
    x = last_window(audio)
    x = (x - x.mean()) / np.sqrt(x.var() + np.float32(1e-7))  # in float32, as the reference does
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = librosa.util.frame(padded, frame_length=N_FFT, hop_length=HOP_SAMPLES, axis=0)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (num_frames, N_FFT // 2 + 1)
    log_spec = np.log10(np.maximum(mel @ power.T, 1e-10))[:, :-1]
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)
