"""Audio files (WAV, FLAC, OGG, MP3 through soundfile), streamed in blocks."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from vkit.errors import AudioInputError, got
from vkit.sources.base import Pace, PacedSource
from vkit.stage import StreamFormat
from vkit.units import samples_to_ms


class File(PacedSource):
    """Stream an audio file of any sample rate and channel count as float32 frames."""

    def __init__(self, path: str | Path, *, frame_ms: float = 20.0, pace: Pace = "fast", stream: str = "input",
                 progress: bool | None = None) -> None:
        super().__init__(frame_ms=frame_ms, pace=pace, stream=stream, progress=progress)
        self.path = str(path)
        file_path = Path(path)
        if not file_path.exists():
            raise AudioInputError(f"audio file not found {got(self.path)}")
        if file_path.is_dir():
            raise AudioInputError(f"expected an audio file, found a directory {got(self.path)}")
        try:
            info = sf.info(self.path)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioInputError(f"cannot read audio file ({_reason(exc)}) {got(self.path)}") from exc
        if info.frames == 0:
            raise AudioInputError(f"audio file holds no samples {got(self.path)}")
        self.format = StreamFormat(info.samplerate, info.channels)
        self.num_samples = info.frames
        self.finite_blocks = info.subtype.startswith(("PCM_", "ULAW", "ALAW"))  # integers: no NaN or inf
        _check_length(self.path, info.frames)

    def total_samples(self) -> int:
        return self.num_samples

    @property
    def duration_ms(self) -> float:
        assert self.format.sample_rate_hz is not None
        return samples_to_ms(self.num_samples, self.format.sample_rate_hz)

    def _blocks(self, num_samples: int) -> Iterator[np.ndarray]:
        """Frames of ``num_samples``, read about a second at a time: one libsndfile call per second instead
        of one per frame (soundfile's per-call Python cost was a sixth of a 20 ms offline graph's time)."""
        mono = self.format.num_channels == 1
        assert self.format.sample_rate_hz is not None
        chunk_samples = num_samples * max(1, self.format.sample_rate_hz // num_samples)
        try:
            with sf.SoundFile(self.path) as audio_file:
                while (chunk := audio_file.read(chunk_samples, dtype="float32", always_2d=not mono)).shape[0]:
                    if mono:  # one row, sliced into frames that are views of it
                        row = chunk.reshape(1, -1)
                        for start in range(0, row.shape[1], num_samples):
                            yield row[:, start:start + num_samples]
                    else:
                        for start in range(0, chunk.shape[0], num_samples):
                            yield np.ascontiguousarray(chunk[start:start + num_samples].T)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioInputError(f"audio file is corrupt past its header ({_reason(exc)}) {got(self.path)}") from exc

    def __repr__(self) -> str:
        return f"sources.File({self.path!r}, {self.format}, pace={self.pace!r})"


def _check_length(path: str, num_frames: int) -> None:
    """Refuse a WAV whose header claims more frames than the file holds (a cut download, a killed writer):
    libsndfile plays what is there without a word, so the audio would end early and every later turn
    time would be wrong."""
    claimed = _wav_claimed_frames(path)
    if claimed is not None and claimed > num_frames:
        raise AudioInputError(f"{path}: the header claims {claimed} frames but the file holds {num_frames}; "
                              f"it was cut short {got(num_frames)}")


def _wav_claimed_frames(path: str) -> int | None:
    """The frame count a RIFF/WAVE header declares (data chunk size / block size), or None if not a WAV."""
    with open(path, "rb") as handle:
        head = handle.read(65_536)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, block = 12, 0
    while position + 8 <= len(head):
        chunk, size = head[position:position + 4], struct.unpack("<I", head[position + 4:position + 8])[0]
        if chunk == b"fmt ":
            block = struct.unpack("<H", head[position + 20:position + 22])[0]
        elif chunk == b"data":
            return size // block if block and size != 0xFFFFFFFF else None  # 0xFFFFFFFF: a streamed, unsized WAV
        position += 8 + size + (size & 1)
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.split(":")[-1].strip() or type(exc).__name__
