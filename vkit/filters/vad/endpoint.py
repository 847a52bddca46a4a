"""Where speech really ended: a spectral test against the silence that followed it.

When speech stops abruptly (a synthesised voice, a hard cut), Silero's recurrent state keeps its probability
high for 60-110 ms after the sound, so the end of the last window it scores as speech is late. Once the VAD has
seen ``min_silence_ms`` of non-speech, that silence is a sample of the background, and the end can be put where
the signal last differed from it. The test is the likelihood ratio of the statistical VAD (Sohn, Kim and Sung,
IEEE Signal Processing Letters 6(1), 1999): per frequency bin, the a-posteriori SNR ``gamma`` against the
background spectrum gives ``gamma - ln(gamma) - 1`` (0 where ``gamma`` < 1), whose mean over the bins is about
0.15 for background alone and grows with any sound the background does not explain, a weak fricative as well
as a vowel.

Under loud noise the quiet end of a word is masked, and a spectral test would cut it off where a trained model
still hears it; so a frame within ``LOUD_WITHIN_DB`` of the loud frames before the end (the last words, not the
whole utterance) always counts as speech, which leaves the model's end in place when the background is that
close to the speech it would cut. Natural speech fades rather than stops, and there the model's own end is the
better one (``bench/endpoint.py``): the VAD uses this only when asked (``refine_end_ms``).
"""

from __future__ import annotations

import numpy as np

LIKELIHOOD_RATIO_THRESHOLD = 2.0  # mean per-bin log-likelihood ratio above which a frame is not background
LOUD_WITHIN_DB = 10.0  # a frame this close to the loud frames (their 90th percentile) is speech
FRAME_MS = 16.0  # Hann-windowed analysis frames, hopped by a quarter frame (4 ms)
MIN_BACKGROUND_MS = 64.0  # less silence than this after the model's end: too little to compare with
NOISE_FLOOR_DBFS = -100.0  # the background is never taken as quieter (digital silence)


def refine_speech_end(audio: np.ndarray, speech_end: int, sample_rate_hz: int) -> int:
    """The index in ``audio`` where speech ended, at or before the model's ``speech_end``.

    ``audio`` is mono: the look-back before ``speech_end`` (how far back the end may move), then the silence
    the model scored after it, taken as the background. The end is put half a hop after the centre of the last
    frame that is speech. With too little silence to compare with, ``speech_end`` is kept.
    """
    frame = max(8, int(round(sample_rate_hz * FRAME_MS / 1000)))
    hop = frame // 4
    if not 0 < speech_end <= audio.shape[0] - MIN_BACKGROUND_MS * sample_rate_hz / 1000 or audio.shape[0] < frame:
        return speech_end
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), frame)[::hop]
    centres = np.arange(frames.shape[0]) * hop + frame // 2
    window = np.hanning(frame)
    power = np.abs(np.fft.rfft(frames * window, axis=1)[:, 1:]) ** 2  # without DC
    background = power[centres - frame // 2 >= speech_end]
    before = power[centres <= speech_end]
    if background.shape[0] == 0 or before.shape[0] == 0:
        return speech_end
    floor = 10 ** (NOISE_FLOOR_DBFS / 10) * float(np.sum(window**2))
    noise = np.maximum(np.median(background, axis=0) / np.log(2), floor)  # the median, unmoved by a click
    gamma = np.maximum(before / noise, 1.0)  # quieter than the background: no evidence of speech
    ratio = np.mean(gamma - np.log(gamma) - 1, axis=1)
    level = np.sum(before, axis=1)
    loud = level >= np.percentile(level, 90) * 10 ** (-LOUD_WITHIN_DB / 10)
    speech = np.flatnonzero((ratio > LIKELIHOOD_RATIO_THRESHOLD) | loud)
    if speech.size == 0:
        return speech_end
    return min(speech_end, int(centres[speech[-1]]) + hop // 2)


class RecentAudio:
    """The last ``capacity`` samples of a mono stream, addressed by absolute sample index."""

    def __init__(self, capacity: int) -> None:
        self._buffer = np.zeros(max(1, capacity), np.float32)
        self._end = 0  # absolute index one past the newest sample

    def append(self, samples: np.ndarray) -> None:
        size, total = self._buffer.shape[0], samples.shape[0]
        kept = samples[-size:] if total > size else samples
        at = (self._end + total - kept.shape[0]) % size
        first = min(kept.shape[0], size - at)
        self._buffer[at : at + first] = kept[:first]
        self._buffer[: kept.shape[0] - first] = kept[first:]
        self._end += total

    @property
    def start(self) -> int:
        """The oldest index still held."""
        return max(0, self._end - self._buffer.shape[0])

    @property
    def end(self) -> int:
        return self._end

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)``, clipped to what is held."""
        start, end = max(start, self.start), min(end, self._end)
        if end <= start:
            return np.zeros(0, np.float32)
        size = self._buffer.shape[0]
        indices = np.arange(start, end) % size
        return self._buffer[indices]
