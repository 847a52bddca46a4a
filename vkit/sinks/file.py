"""Write a stream to a WAV or FLAC file (format from the suffix), gaps filled with silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from vkit.errors import ConfigError, RecordingError, got
from vkit.frames import AudioFrame
from vkit.graph import Pipe

_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}


class Wav(Pipe):
    """Write one stream to ``path`` (``.wav`` or ``.flac``, PCM16).

    ``stream=None`` writes the first stream that arrives and ignores the others (counted in
    ``num_ignored``). Frames are placed by ``start_sample``: gaps become silence, overlaps are dropped.
    """

    def __init__(self, path: str | Path, *, stream: str | None = None) -> None:
        self.path = str(path)
        suffix = Path(path).suffix.lower()
        if suffix not in _FORMATS:
            raise ConfigError(f"Wav writes .wav or .flac files {got(self.path)}")
        self.stream = stream
        self.num_ignored = 0
        self._file: sf.SoundFile | None = None
        self._position = 0
        self._origin: int | None = None

    def process(self, frame: AudioFrame) -> None:
        if self.stream is None:
            self.stream = frame.stream
        if frame.stream != self.stream:
            self.num_ignored += 1
            return
        if self._file is None:
            self._open(frame)
        assert self._file is not None and self._origin is not None
        offset = frame.start_sample - self._origin
        samples = frame.samples
        if offset > self._position:
            self._write(np.zeros((samples.shape[0], offset - self._position), np.float32))
        elif offset < self._position:
            samples = samples[:, self._position - offset :]
        if samples.shape[1]:
            self._write(samples)

    def _open(self, frame: AudioFrame) -> None:
        file_format, subtype = _FORMATS[Path(self.path).suffix.lower()]
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(self.path, "w", samplerate=frame.sample_rate_hz, channels=frame.num_channels,
                                      format=file_format, subtype=subtype)
        except (OSError, sf.LibsndfileError) as exc:
            raise RecordingError(f"cannot open for writing ({exc}) {got(self.path)}") from exc
        self._origin = frame.start_sample

    def _write(self, samples: np.ndarray) -> None:
        assert self._file is not None
        if samples.shape[0] != self._file.channels:
            raise ConfigError(f"Wav {self.path} was opened with {self._file.channels} channels {got(samples.shape[0])}")
        try:
            self._file.write(np.clip(samples.T, -1.0, 1.0))
        except (OSError, sf.LibsndfileError) as exc:
            raise RecordingError(f"writing failed ({exc}) {got(self.path)}") from exc
        self._position += samples.shape[1]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
