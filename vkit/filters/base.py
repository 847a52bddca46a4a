"""What the synchronous filters share: array calls, input checks, output positions."""

from __future__ import annotations

import math

import numpy as np

from vkit.errors import AudioInputError, got
from vkit.frames import FINITE, AudioFrame, Item
from vkit.graph import Pipe
from vkit.stage import as_items
from vkit.units import samples_to_ns


class Filter(Pipe):
    """Base of vkit's DSP stages: ``process(frame)``, ``flush()``, ``reset()``, and a call on arrays."""

    def __call__(self, samples: np.ndarray | AudioFrame, sample_rate_hz: int | None = None) -> np.ndarray:
        """Process a whole signal outside a graph (1-D or ``(num_channels, num_samples)``) and flush."""
        frame = self._whole_signal(samples, sample_rate_hz)
        out = [f for f in [*as_items(self.process(frame)), *as_items(self.flush())] if isinstance(f, AudioFrame)]
        joined = np.concatenate([f.samples for f in out], 1) if out else np.zeros((frame.num_channels, 0), np.float32)
        return joined[0] if not isinstance(samples, AudioFrame) and np.ndim(samples) == 1 else joined

    def _whole_signal(self, samples: np.ndarray | AudioFrame, sample_rate_hz: int | None) -> AudioFrame:
        """Reset, and wrap an array call's input as one frame."""
        self.reset()
        if isinstance(samples, AudioFrame):
            return samples
        if sample_rate_hz is None:
            raise AudioInputError(f"{type(self).__name__}(array) needs sample_rate_hz= {got(None)}")
        array = np.asarray(samples, np.float32)
        return AudioFrame(samples=array.reshape(1, -1) if array.ndim == 1 else array, sample_rate_hz=sample_rate_hz)

    def flush(self) -> list[Item]:
        return []

    def reset(self) -> None:
        pass

    def __repr__(self) -> str:
        from vkit.stage import describe_stage

        params = ", ".join(f"{k}={v!r}" for k, v in describe_stage(self).items())
        return f"{type(self).__name__}({params})"


def check_finite(frame: AudioFrame, stage: str) -> None:
    """Refuse NaN or infinite samples, naming the stage and where they start (a frame that a filter just
    made from checked samples, ``output_frame(..., finite=True)``, or a source decoded from integers, passes
    without a second look: ``frames.FINITE``)."""
    samples = frame.samples
    if samples is FINITE.samples:
        return
    flat = samples.reshape(-1)
    if math.isfinite(float(np.dot(flat, flat))):  # one BLAS call: NaN and inf make the sum non-finite
        return
    bad = ~np.isfinite(samples)
    if bad.any():
        first = frame.start_sample + int(np.argwhere(bad)[0][1])
        raise AudioInputError(f"{stage} got NaN or infinite samples, first at sample {first} of stream "
                              f"{frame.stream!r} {got(int(bad.sum()))}")


def output_frame(template: AudioFrame, samples: np.ndarray, start_sample: int, sample_rate_hz: int | None = None,
                 input_position: float | None = None, *, finite: bool = False) -> AudioFrame:
    """A new frame on the template's stream. Its ``t_ns`` is the clock time of ``input_position`` (the
    input-stream sample its first sample comes from), so buffering filters keep times exact. ``finite``:
    the samples come from checked input by arithmetic that stays finite, so the next stage's check is skipped
    (identity of the array, held by one reference: a frame made elsewhere is always checked)."""
    if finite:
        FINITE.samples = samples
    t_ns = template.t_ns
    if input_position is not None:
        t_ns += samples_to_ns(input_position - template.start_sample, template.sample_rate_hz)
    return AudioFrame(samples=samples, sample_rate_hz=sample_rate_hz or template.sample_rate_hz,
                      start_sample=start_sample, stream=template.stream, t_ns=t_ns)
