"""Voice activity detection: Silero, WebRTC or energy models, one shared post-processing.

The post-processing follows Silero's streaming iterator: speech starts once the probability has stayed at
or above ``threshold`` for ``min_speech_ms``; it stops once it has stayed under ``negative_threshold`` (and
not come back to ``threshold``) for ``min_silence_ms``; both boundaries are widened by ``speech_pad_ms``. The
end is first moved back, by at most ``refine_end_ms``, to where the signal last differed from the silence
that followed it (``endpoint``). Positions are exact samples on the input stream, also when the model runs
at another rate.

Durations are measured on sample positions, not in whole windows: each window's probability is taken at its
centre and joined to the next by a straight line, and a run of speech or silence lies between the points
where that line crosses the thresholds, so a silence that ends between two windows is still measured whole.
Counting windows made ``min_silence_ms=100`` any run of 4 quiet Silero windows (96-128 ms of silence), and a
pause of that length inside an utterance ended the turn or not depending on the audio's phase against the
windows. The default, 150 ms, is about what Silero's own streaming iterator waits at its 100 ms (it counts
from the end of the first quiet window: 5 windows); what still depends on the phase is the model's output
itself (Silero scores the same samples differently at another phase or after another history, by some
20 ms here), so a pause within about a window of ``min_silence_ms`` can still go either way.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vkit.deprecation import renamed_keyword
from vkit.errors import ConfigError, GraphError, got
from vkit.filters.base import Filter, check_finite
from vkit.filters.resample import PolyphaseResampler
from vkit.filters.vad.endpoint import RecentAudio, refine_speech_end
from vkit.filters.vad.models import EnergyModel, SileroModel, SpeechModel, WebRtcModel
from vkit.frames import AudioFrame, Event, SpeechStarted, SpeechStopped, VadScore
from vkit.stage import StreamFormat
from vkit.units import ms_to_samples, ms_to_whole_samples, samples_to_ms, samples_to_whole_ns

__all__ = ["VAD", "SileroModel", "WebRtcModel", "EnergyModel"]

ModelName = Literal["silero", "webrtc", "energy"]
_EMPTY = np.zeros(0, np.float32)


class VAD(Filter):
    """Detect speech and emit ``SpeechStarted``/``SpeechStopped`` (and ``VadScore`` per model window).

    Audio passes through unchanged. ``model`` is ``"silero"`` (16/8 kHz), ``"webrtc"`` (8/16/32/48 kHz,
    ``mode`` 0-3, ``window_ms`` 10/20/30: the model's window, not a frame of the stream) or ``"energy"`` (any rate, ``threshold_dbfs``). Other input
    rates are resampled internally (low-latency polyphase) unless ``resample=False``.

    ``speech_end_sample`` on ``SpeechStopped`` is where the sound of the last word stopped: the model's last
    speech window, moved back by at most ``refine_end_ms`` (0: the model's end as it is) to the last frame that
    differs from the silence after it. Silero's probability stays high for 50-110 ms after a word. On the
    generated corpus (labels by construction; ``bench/turn_detectors.py``) the refined end is within 32 ms of
    the label for 42 % of turn ends at 20 dB SNR and 19-25 % at 10-5 dB, within 100 ms for 61-86 %; an
    independent check on real speech found 44 % and 64 % (README, "Turn taking").
    """

    def __init__(self, model: ModelName = "silero", *, threshold: float = 0.5, negative_threshold: float | None = None,
                 min_speech_ms: float = 250.0, min_silence_ms: float = 150.0, speech_pad_ms: float = 30.0,
                 mode: int = 2, window_ms: int = 30, threshold_dbfs: float = -40.0, resample: bool = True,
                 refine_end_ms: float = 300.0, emit_scores: bool = True, stream: str | None = None,
                 frame_ms: int | None = None) -> None:
        window_ms = renamed_keyword("VAD", "frame_ms", "window_ms", frame_ms, window_ms)
        if model not in ("silero", "webrtc", "energy"):
            raise ConfigError(f"VAD model must be 'silero', 'webrtc' or 'energy' {got(model)}")
        if not 0 < threshold < 1:
            raise ConfigError(f"VAD threshold must be in (0, 1) {got(threshold)}")
        for name, value in (("min_speech_ms", min_speech_ms), ("min_silence_ms", min_silence_ms),
                            ("speech_pad_ms", speech_pad_ms), ("refine_end_ms", refine_end_ms)):
            if value < 0:
                raise ConfigError(f"VAD {name} must be >= 0 {got(value)}")
        self.model = model
        self.threshold = threshold
        self.negative_threshold = max(0.01, threshold - 0.15) if negative_threshold is None else negative_threshold
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.speech_pad_ms = speech_pad_ms
        self.refine_end_ms = refine_end_ms
        self.mode = mode
        self.window_ms = window_ms
        self.threshold_dbfs = threshold_dbfs
        self.resample = resample
        self.emit_scores = emit_scores
        self.stream = stream
        self._model: SpeechModel = (SileroModel() if model == "silero" else WebRtcModel(mode, window_ms)
                                    if model == "webrtc" else EnergyModel(threshold_dbfs))
        self._input_rate: int | None = None
        self.reset()

    # -- setup ------------------------------------------------------------------------------------

    def model_rate(self, input_rate_hz: int) -> int:
        """The rate the model runs at for a given input rate (or a GraphError saying what to do)."""
        rates = self._model.sample_rates_hz
        if not rates or input_rate_hz in rates:
            return input_rate_hz
        if not self.resample:
            raise GraphError(f"VAD(model={self.model!r}) takes {', '.join(map(str, rates))} Hz and resample=False; "
                             f"put filters.Resample(sample_rate_hz={rates[0]}) before it {got(input_rate_hz)}")
        return rates[0]

    def configure(self, fmt: StreamFormat) -> StreamFormat:
        if fmt.sample_rate_hz is not None:
            self.model_rate(fmt.sample_rate_hz)
            self._input_rate = fmt.sample_rate_hz
        return fmt

    @property
    def latency_ms(self) -> float:
        """One model window, plus the internal resampler's delay when there is one."""
        rate = self._input_rate or 16_000
        model_rate = self.model_rate(rate)
        window_ms = samples_to_ms(self._model.window_samples(model_rate), model_rate)
        if model_rate != rate:
            window_ms += samples_to_ms(PolyphaseResampler(rate, model_rate, 1).delay_input_samples, rate)
        return window_ms

    def reset(self) -> None:
        self._model.reset()
        self._rate: int | None = None
        self._model_rate = 0
        self._window = 0  # model-rate samples per scored window
        self._resampler: PolyphaseResampler | None = None
        self._pending = _EMPTY
        self._model_position = 0  # model-rate index of _pending[0]
        self._last_frame: AudioFrame | None = None
        self._triggered = False
        self._candidate_start: float | None = None  # where the probability rose to the threshold (input sample)
        self._silence_start: float | None = None  # where it fell under the negative threshold
        self._previous: tuple[float, float] | None = None  # the last window's centre (input sample) and probability
        self._last_speech_end = 0  # end of the last window scored at or above the threshold
        self._last_speech_end_model = 0  # the same, as a model-rate index
        self._recent: RecentAudio | None = None  # model-rate audio the end is refined on
        self._last_stop = 0

    # -- streaming ----------------------------------------------------------------------------------

    def process(self, frame: AudioFrame) -> list[AudioFrame | Event] | AudioFrame:
        if self.stream is not None and frame.stream != self.stream:
            return frame
        check_finite(frame, "VAD")
        if self._rate != frame.sample_rate_hz:
            if self._rate is not None:
                raise ConfigError(f"VAD sample rate changed mid-stream from {self._rate} {got(frame.sample_rate_hz)}")
            self._rate = frame.sample_rate_hz
            self._model_rate = self.model_rate(frame.sample_rate_hz)
            self._window = self._model.window_samples(self._model_rate)
            if self._model_rate != self._rate:
                self._resampler = PolyphaseResampler(self._rate, self._model_rate, 1)
            if self.refine_end_ms > 0:
                # the look-back and the silence after the end; windows between the two thresholds lengthen that
                # silence without bound, so a second more is kept, and a longer one is cut to what is held
                held_ms = self.refine_end_ms + self.min_silence_ms + 1000
                self._recent = RecentAudio(ms_to_whole_samples(held_ms, self._model_rate))
        self._last_frame = frame
        mono = frame.samples if frame.samples.shape[0] == 1 else frame.samples.mean(axis=0, keepdims=True)
        if self._resampler is not None:
            mono = self._resampler.process(mono)
        events = self._score_pending(mono[0])
        return [frame, *events] if events else frame

    def flush(self) -> list[Event]:
        if self._last_frame is None or not self._triggered:
            return []
        end = self._last_frame.end_sample
        speech_end = end
        if self._silence_start is not None:
            speech_end = self._speech_end(self._model_position)
        self._triggered = False
        return [self._stopped(min(end, speech_end + self._pad()), speech_end)]

    def _score_pending(self, samples: np.ndarray) -> list[Event]:
        if self._recent is not None:  # by absolute index: one append per frame, ahead of the windows it holds
            self._recent.append(samples)
        pending = np.concatenate([self._pending, samples]) if self._pending.shape[0] else samples
        window = self._window
        score, rate, position = self._model.score, self._model_rate, self._model_position
        to_input = self._to_input if self._resampler is not None else None  # else positions are the input's
        events: list[Event] = []
        offset = 0
        while pending.shape[0] - offset >= window:
            probability = score(pending[offset : offset + window], rate)
            start = position + offset if to_input is None else to_input(position + offset)
            offset += window
            end = position + offset if to_input is None else to_input(position + offset)
            if self.emit_scores:
                events.append(VadScore(sample=start, num_samples=end - start, sample_rate_hz=self._rate or 0,
                                       probability=probability))
            if (self._triggered or self._candidate_start is not None or probability >= self.negative_threshold
                    or probability >= self.threshold):
                events.extend(self._decide(start, end, probability, position + offset))
            else:  # quiet and nothing started: all _decide would do is remember this window
                self._previous = ((start + end) / 2, probability)
        self._pending = pending[offset:].copy() if offset < pending.shape[0] else _EMPTY
        self._model_position = position + offset
        return events

    def _decide(self, start: int, end: int, probability: float, model_end: int) -> list[Event]:
        rate = self._rate or 1
        centre = (start + end) / 2
        previous, self._previous = self._previous, (centre, probability)
        if probability >= self.threshold:
            events: list[Event] = []
            if self._silence_start is not None:  # the silence ended here: between two windows, it may have been long enough
                resumed = _crossing(previous, centre, probability, self.threshold, start)
                if samples_to_ms(resumed - self._silence_start, rate) >= self.min_silence_ms:
                    events.append(self._end_turn(model_end))
                    self._candidate_start = resumed
                self._silence_start = None
            self._last_speech_end = end
            self._last_speech_end_model = model_end
            if not self._triggered:
                if self._candidate_start is None:
                    self._candidate_start = _crossing(previous, centre, probability, self.threshold, start)
                if samples_to_ms(centre - self._candidate_start, rate) >= self.min_speech_ms:
                    self._triggered = True
                    begin = max(int(round(self._candidate_start)) - self._pad(), self._last_stop, 0)
                    events.append(SpeechStarted(sample=begin, sample_rate_hz=rate, sample_t_ns=self._t_ns(begin),
                                                stream=self._stream_name()))
            return events
        if not self._triggered:
            if probability < self.negative_threshold:
                self._candidate_start = None
            return []
        if self._silence_start is None:
            if probability >= self.negative_threshold:
                return []  # between the thresholds: no silence has begun
            self._silence_start = _crossing(previous, centre, probability, self.negative_threshold, start)
        if samples_to_ms(centre - self._silence_start, rate) < self.min_silence_ms:
            return []
        stopped = self._end_turn(model_end)
        self._candidate_start = None
        self._silence_start = None
        return [stopped]

    def _end_turn(self, model_end: int) -> SpeechStopped:
        """The speech that the current silence follows is over: its ``SpeechStopped``."""
        speech_end = self._speech_end(model_end)
        self._triggered = False
        stop = speech_end + self._pad()
        self._last_stop = stop
        return self._stopped(stop, speech_end)

    def _speech_end(self, model_decided: int) -> int:
        """The input sample where the speech just declared over ended, with the silence up to
        ``model_decided`` (a model-rate index) as the background it is told apart from."""
        assert self._silence_start is not None
        speech_end = min(self._last_speech_end, int(round(self._silence_start)))
        if self._recent is None:
            return speech_end
        model_end = self._last_speech_end_model
        lookback = ms_to_whole_samples(self.refine_end_ms, self._model_rate)
        first = max(self._recent.start, model_end - lookback)
        audio = self._recent.read(first, model_decided)
        refined = first + refine_speech_end(audio, model_end - first, self._model_rate)
        return max(int(round(self._candidate_start or 0)), min(speech_end, self._to_input(refined)))

    def _stopped(self, sample: int, speech_end: int) -> SpeechStopped:
        return SpeechStopped(sample=sample, sample_rate_hz=self._rate or 0, sample_t_ns=self._t_ns(sample),
                             speech_end_sample=speech_end, speech_end_t_ns=self._t_ns(speech_end),
                             stream=self._stream_name())

    def _pad(self) -> int:
        return ms_to_samples(self.speech_pad_ms, self._rate or 0)

    def _to_input(self, model_index: int) -> int:
        """A model-rate position as an input-rate sample, compensating the resampler's delay."""
        if self._resampler is None:
            return model_index
        assert self._rate is not None
        return max(0, int(round(model_index * self._rate / self._model_rate - self._resampler.delay_input_samples)))

    def _t_ns(self, sample: int) -> int:
        frame = self._last_frame
        assert frame is not None
        return frame.t_ns + samples_to_whole_ns(sample - frame.start_sample, frame.sample_rate_hz)

    def _stream_name(self) -> str:
        return self._last_frame.stream if self._last_frame is not None else "input"

    def __call__(self, samples: np.ndarray | AudioFrame, sample_rate_hz: int | None = None) -> list[tuple[float, float]]:  # type: ignore[override]
        """Speech segments ``(start_ms, end_ms)`` of a whole signal, outside a graph."""
        out = self.process(self._whole_signal(samples, sample_rate_hz))
        events = [e for e in (out if isinstance(out, list) else []) if isinstance(e, (SpeechStarted, SpeechStopped))]
        events += [e for e in self.flush() if isinstance(e, SpeechStopped)]
        segments, start = [], None
        for event in events:
            if isinstance(event, SpeechStarted):
                start = event.ms
            elif start is not None:
                segments.append((start, event.ms))
                start = None
        return segments


def _crossing(previous: tuple[float, float] | None, centre: float, probability: float, level: float,
              start: int) -> float:
    """Where the line from the previous window's (centre, probability) to this one's crosses ``level``; the
    window's start for the first window."""
    if previous is None or previous[1] == probability:
        return float(start)
    before, p_before = previous
    fraction = min(1.0, max(0.0, (p_before - level) / (p_before - probability)))
    return before + fraction * (centre - before)
