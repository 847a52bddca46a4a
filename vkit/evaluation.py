"""Scoring a VAD against labels: frame-level precision/recall/F1, onset delay, offset hangover;
and mixing noise into speech at a known SNR."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vkit.errors import ConfigError, got

Segments = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class VadScores:
    """Frame-level agreement on a ``grid_ms`` grid, and boundary timing (medians, ms)."""

    precision: float
    recall: float
    f1: float
    onset_delay_ms: float
    offset_hangover_ms: float
    num_missed: int
    num_labelled: int


def read_segments(path: str | Path) -> list[tuple[float, float]]:
    """Read a ``start_ms,end_ms`` CSV (a header line is allowed)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.split(",")
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            continue
    return rows


def to_grid(segments: Segments, duration_ms: float, grid_ms: float = 10.0) -> np.ndarray:
    """A boolean speech mask with one cell per ``grid_ms`` (a cell is speech if its centre is)."""
    centres = (np.arange(int(np.ceil(duration_ms / grid_ms))) + 0.5) * grid_ms
    mask = np.zeros(centres.shape, bool)
    for start, end in segments:
        mask |= (centres >= start) & (centres < end)
    return mask


def score_vad(predicted: Segments, labelled: Segments, duration_ms: float, grid_ms: float = 10.0) -> VadScores:
    """Compare predicted speech segments with labelled ones."""
    if duration_ms <= 0:
        raise ConfigError(f"duration_ms must be positive {got(duration_ms)}")
    truth, guess = to_grid(labelled, duration_ms, grid_ms), to_grid(predicted, duration_ms, grid_ms)
    true_positive = float(np.sum(truth & guess))
    precision = true_positive / max(float(guess.sum()), 1.0)
    recall = true_positive / max(float(truth.sum()), 1.0)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    onsets, offsets, missed = [], [], 0
    for start, end in labelled:
        overlapping = [(a, b) for a, b in predicted if a < end and b > start]
        if not overlapping:
            missed += 1
            continue
        onsets.append(overlapping[0][0] - start)
        offsets.append(overlapping[-1][1] - end)
    return VadScores(precision, recall, f1, float(np.median(onsets)) if onsets else float("nan"),
                     float(np.median(offsets)) if offsets else float("nan"), missed, len(labelled))


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, speech_mask: np.ndarray | None = None) -> np.ndarray:
    """Add ``noise`` scaled so active-speech power / noise power equals ``snr_db``.

    Active-speech power is taken over ``speech_mask`` (per sample) when given, else over samples above
    1e-4 absolute amplitude. The noise is tiled or cut to the speech's length.
    """
    speech = np.asarray(speech, np.float64)
    noise = np.resize(np.asarray(noise, np.float64), speech.shape)
    active = speech_mask if speech_mask is not None else np.abs(speech) > 1e-4
    if not np.any(active):
        raise ConfigError(f"mix_at_snr found no active speech {got(speech.shape)}")
    speech_power = float(np.mean(speech[active] ** 2))
    noise_power = float(np.mean(noise**2))
    scale = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return (speech + scale * noise).astype(np.float32)


def pink_noise(num_samples: int, seed: int = 0) -> np.ndarray:
    """Pink (1/f) noise of unit RMS."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[0]), 1))
    noise = np.fft.irfft(spectrum, n=num_samples)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)
