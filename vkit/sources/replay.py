"""``sources.Replay``: a recorded track fed back through a (changed) graph."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vkit.errors import RecordingError, got
from vkit.sources.base import Pace, PacedSource
from vkit.stage import StreamFormat
from vkit.wav import read_wav


class Replay(PacedSource):
    """Stream a recorded track (default: the "input" as captured) from a session folder."""

    def __init__(self, path: str | Path, *, stream: str = "input", frame_ms: float = 20.0, pace: Pace = "fast",
                 trim_leading_silence: bool = True) -> None:
        super().__init__(frame_ms=frame_ms, pace=pace, stream=stream)
        self.path = str(path)
        rate, samples = read_wav(_track_path(Path(path), stream))
        if trim_leading_silence:
            nonzero = np.flatnonzero(np.any(samples != 0, axis=0))
            samples = samples[:, nonzero[0]:] if nonzero.size else samples
        if samples.shape[1] == 0:
            raise RecordingError(f"track {stream!r} of the recording is empty {got(self.path)}")
        self.samples = samples
        self.format = StreamFormat(rate, samples.shape[0])

    def _blocks(self, num_samples: int) -> Iterator[np.ndarray]:
        for start in range(0, self.samples.shape[1], num_samples):
            yield self.samples[:, start : start + num_samples]


def _track_path(folder: Path, stream: str) -> Path:
    """The WAV of ``stream`` in a recording folder, as its manifest names it."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise RecordingError(f"not a vkit recording: no manifest.json {got(str(folder))}")
    try:
        tracks = json.loads(manifest_path.read_text(encoding="utf-8")).get("tracks") or []
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise RecordingError(f"manifest.json is garbled ({exc}) {got(str(folder))}") from exc
    named = {t.get("stream"): t.get("path") for t in tracks if isinstance(t, dict)}
    candidate = folder / named[stream] if named.get(stream) else folder / "tracks" / f"{stream}.wav"
    if not candidate.exists():
        available = sorted(set(named) | {p.stem for p in (folder / "tracks").glob("*.wav")})
        raise RecordingError(f"the recording has no track {stream!r} {got(available)}")
    return candidate
