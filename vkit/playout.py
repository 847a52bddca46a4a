"""A model of an output device's playout: what has been played by a given time.

A device with a jitter buffer starts sounding ``prebuffer_ms`` after audio arrives into an empty buffer,
then plays at the sample rate; when the buffer runs dry it stops and re-arms. The model answers
``played_sample(now_ns)`` exactly, so barge-in truncation and ``first_audio_played_ms`` are computed
the same way for a simulated device, a browser player and a sound card.
"""

from __future__ import annotations

from vkit.units import ms_to_ns, ns_to_whole_samples, samples_to_ms, samples_to_whole_ns

__all__ = ["PlayoutModel"]


class PlayoutModel:
    """Playout of one stream at ``sample_rate_hz`` behind a ``prebuffer_ms`` jitter buffer."""

    def __init__(self, sample_rate_hz: int, prebuffer_ms: float = 60.0) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.prebuffer_ns = ms_to_ns(prebuffer_ms)
        self._run_start_ns: int | None = None  # when the current run of sound starts
        self._run_start_sample = 0
        self._queued_until = 0  # one past the last sample queued
        self.num_underruns = 0

    def add(self, start_sample: int, num_samples: int, now_ns: int) -> int | None:
        """Queue samples arriving at ``now_ns``; returns the time sound (re)starts, if this starts a run."""
        started: int | None = None
        if self._run_start_ns is None or self.played_sample(now_ns) >= self._queued_until:
            if self._run_start_ns is not None:
                self.num_underruns += 1
            self._run_start_ns = now_ns + self.prebuffer_ns
            self._run_start_sample = max(start_sample, self._queued_until)
            started = self._run_start_ns
        self._queued_until = max(self._queued_until, start_sample + num_samples)
        return started

    def played_sample(self, now_ns: int) -> int:
        """The stream position played up to ``now_ns`` (one past the last sample heard)."""
        if self._run_start_ns is None or now_ns <= self._run_start_ns:
            return self._run_start_sample
        elapsed = ns_to_whole_samples(now_ns - self._run_start_ns, self.sample_rate_hz)
        return min(self._run_start_sample + elapsed, self._queued_until)

    def end_ns(self) -> int | None:
        """When the queued audio will have finished playing."""
        if self._run_start_ns is None:
            return None
        remaining = self._queued_until - self._run_start_sample
        return self._run_start_ns + samples_to_whole_ns(remaining, self.sample_rate_hz)

    def buffered_ms(self, now_ns: int) -> float:
        return samples_to_ms(self._queued_until - self.played_sample(now_ns), self.sample_rate_hz)

    def flush(self, now_ns: int) -> int:
        """Drop what is queued but unplayed (barge-in); returns the position where sound stopped."""
        position = self.played_sample(now_ns)
        self._queued_until = position
        self._run_start_ns = None
        self._run_start_sample = position
        return position
