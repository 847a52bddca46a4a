"""Where speech really ended: a spectral test against the silence that followed it.

Silero's recurrent state keeps its probability high for 50-110 ms after the sound of a word has stopped (WebRTC's
hangover does the same), so the end of the last window it scores as speech is late. Once the VAD has seen
``min_silence_ms`` of non-speech, that silence is a sample of the background, and the end can be put where the
signal last differed from it. The test is the likelihood ratio of the statistical VAD (Sohn, Kim and Sung, IEEE
Signal Processing Letters 6(1), 1999): per frequency bin, the a-posteriori SNR ``gamma`` against the background
spectrum gives ``gamma - ln(gamma) - 1`` (0 where ``gamma`` < 1), about 0.15 on average for background alone.
A frame is speech when that mean exceeds the threshold in any one of four bands (``BANDS_HZ``), and so
whenever it does over the whole spectrum, in two frames running: the last sound of a word is often narrow, a
nasal's murmur under 500 Hz or a fricative's hiss above 4 kHz, and averaged over the whole spectrum it would
vanish into the background 20-90 ms too early.

Under loud noise the quiet end of a word is masked, and a spectral test would cut it off where a trained model
still hears it; so a frame within ``LOUD_WITHIN_DB`` of the loud frames before the end (the last words, not the
whole utterance) always counts as speech, which leaves the model's end in place when the background is that
close to the speech it would cut. A background that only changes level, as a noise gate's does when it holds
and then releases, is still background: each frame is scaled to the background's level first.
``bench/endpoint.py`` measures both ends against labels.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from typing import NamedTuple

import numpy as np

from vkit.units import ms_to_fractional_samples, ms_to_samples

LIKELIHOOD_RATIO_THRESHOLD = 2.0  # mean per-bin log-likelihood ratio above which a frame is not background
BANDS_HZ = (0.0, 500.0, 1500.0, 4000.0)  # lower edges: voicing and nasals, first formant, second and third, frication
LOUD_WITHIN_DB = 10.0  # a frame this close to the loud frames (their 90th percentile) is speech
FRAME_MS = 16.0  # Hann-windowed analysis frames, hopped by a quarter frame (4 ms)
MIN_BACKGROUND_MS = 64.0  # less silence than this after the model's end: too little to compare with
BACKGROUND_MS = 100.0  # the silence compared with: only the nearest, since the background may change after it
NOISE_FLOOR_DBFS = -100.0  # the background is never taken as quieter (digital silence)


def refine_speech_end(audio: np.ndarray, speech_end: int, sample_rate_hz: int) -> int:
    """The index in ``audio`` where speech ended, at or before the model's ``speech_end``.

    ``audio`` is mono: the look-back before ``speech_end`` (how far back the end may move), then the silence
    the model scored after it, whose first ``BACKGROUND_MS`` are taken as the background. The end is put half a
    hop after the centre of the last frame that is speech. With too little silence to compare with,
    ``speech_end`` is kept.
    """
    analysis = _analysis(sample_rate_hz)
    frame, hop = analysis.frame, analysis.hop
    if not 0 < speech_end <= audio.shape[0] - ms_to_fractional_samples(MIN_BACKGROUND_MS, sample_rate_hz) or audio.shape[0] < frame:
        return speech_end
    background_end = speech_end + ms_to_fractional_samples(BACKGROUND_MS, sample_rate_hz)
    audio = audio[: math.ceil(background_end)]  # the frames past the background's would be analysed for nothing
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), frame)[::hop]
    centres = np.arange(frames.shape[0]) * hop + frame // 2
    power = np.abs(np.fft.rfft(frames * analysis.window, axis=1)[:, 1:-1]) ** 2  # without DC and Nyquist
    background = power[(centres - frame // 2 >= speech_end) & (centres + frame // 2 <= background_end)]
    before = power[centres <= speech_end]
    if background.shape[0] == 0 or before.shape[0] == 0:
        return speech_end
    noise = np.maximum(np.median(background, axis=0) / np.log(2), analysis.floor)  # the median, unmoved by a click
    snr = before / noise
    # the background's own level may change (a gate holding, then releasing): a frame is first scaled by its
    # level against the background, read from its quietest quarter of bins, which the end of a word leaves alone
    # (for an exponential power ratio of mean 1, the first quartile is ln(4/3))
    snr /= np.maximum(_first_quartile(snr) / np.log(4 / 3), 1.0)[:, None]
    gamma = np.maximum(snr, 1.0)  # quieter than the background: no evidence of speech
    ratio = gamma - np.log(gamma) - 1
    band_ratio = np.stack([ratio[:, band].mean(axis=1) for band in analysis.bands], axis=1)
    unexplained = np.max(band_ratio, axis=1) > LIKELIHOOD_RATIO_THRESHOLD  # any band: so also over all of them
    speech = np.zeros_like(unexplained)  # in two frames running (8 ms): one alone is the background's own chance
    speech[1:] = unexplained[1:] & unexplained[:-1]
    level = np.sum(before, axis=1)
    speech |= level >= np.percentile(level, 90) * 10 ** (-LOUD_WITHIN_DB / 10)
    last = np.flatnonzero(speech)
    if last.size == 0:
        return speech_end
    return min(speech_end, int(centres[last[-1]]) + hop // 2)


class _Analysis(NamedTuple):
    """What the analysis at one sample rate reuses from call to call."""

    frame: int  # samples per analysis frame
    hop: int
    window: np.ndarray  # Hann
    floor: float  # NOISE_FLOOR_DBFS as a windowed frame's power per bin
    bands: tuple[slice, ...]  # each of BANDS_HZ as the bins (without DC) it holds


@functools.lru_cache(maxsize=8)
def _analysis(sample_rate_hz: int) -> _Analysis:
    frame = max(8, ms_to_samples(FRAME_MS, sample_rate_hz))
    window = np.hanning(frame)
    band = np.searchsorted(BANDS_HZ, np.fft.rfftfreq(frame, 1 / sample_rate_hz)[1:-1], side="right") - 1
    bands = tuple(slice(int(np.searchsorted(band, index)), int(np.searchsorted(band, index, side="right")))
                  for index in np.unique(band))  # bins rise in frequency: each band is a run of them
    return _Analysis(frame, frame // 4, window, 10 ** (NOISE_FLOOR_DBFS / 10) * float(np.sum(window**2)), bands)


def _first_quartile(values: np.ndarray) -> np.ndarray:
    """``np.quantile(values, 0.25, axis=1)`` (linear), the same numbers from one partition of each row."""
    position = 0.25 * (values.shape[1] - 1)
    low = math.floor(position)
    high = min(low + 1, values.shape[1] - 1)
    ordered = np.partition(values, (low, high), axis=1)
    below, above = ordered[:, low], ordered[:, high]
    fraction = position - low
    if fraction >= 0.5:  # numpy's lerp, from whichever end is nearer
        return above - (above - below) * (1 - fraction)
    return below + (above - below) * fraction


class RecentAudio:
    """The newest samples of a mono stream, addressed by absolute sample index: the newest append whole, and at
    least ``capacity`` samples before it (at most about twice that, and a chunk).

    Held as the appended arrays themselves, the oldest dropped once twice ``capacity`` is held: an append is a
    list append (one per frame on the hot path), and the copying is left to the rare ``read``."""

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._chunks: deque[np.ndarray] = deque()
        self._start = 0  # absolute index of the oldest sample held
        self._end = 0  # absolute index one past the newest sample

    def append(self, samples: np.ndarray) -> None:
        self._chunks.append(samples)
        self._end += samples.shape[0]
        if self._end - self._start >= 2 * self._capacity:
            self._trim()

    def _trim(self) -> None:
        chunks, keep_from = self._chunks, self._end - self._chunks[-1].shape[0] - self._capacity
        while self._start + chunks[0].shape[0] <= keep_from:
            self._start += chunks.popleft().shape[0]

    @property
    def start(self) -> int:
        """The oldest index still held."""
        return self._start

    @property
    def end(self) -> int:
        return self._end

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)``, clipped to what is held (a copy)."""
        first = self._start
        start, end = max(start, first), min(end, self._end)
        if end <= start:
            return np.zeros(0, np.float32)
        joined = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        return np.array(joined[start - first : end - first], np.float32)
