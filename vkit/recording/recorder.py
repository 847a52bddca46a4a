"""Writing a session folder while the run goes on, so that a crash leaves a readable recording.

::

    manifest.json     schema version, vkit version, graph, tracks, start time (UTC), status
    events.jsonl      one event a line: t_ms, stage, kind, stream, sample, payload (no inlined audio)
    tracks/*.wav      one PCM16 WAV per stream, placed on the session clock, gaps filled with silence
    turns.csv         the per-turn latency table

WAV headers are rewritten every ``header_interval_s``; ``load_session`` reads a file whose header is
stale (a killed run) from its size. Any OSError (a full disk) stops the recording, keeps what was
written readable, and is raised as ``RecordingError`` when the recording is closed.
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from vkit.errors import RecordingError, got
from vkit.frames import AudioFrame, Event, Item
from vkit.graph import Pipe

SCHEMA_VERSION = 1
_SECRET_KEYS = re.compile(r"(api[_-]?key|token|secret|password|authorization)", re.I)
_SECRET_VALUES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|ek_[A-Za-z0-9_\-]{8,}|Bearer\s+\S+)")


def _is_count(value: Any) -> bool:
    """A number, or a mapping of numbers (a usage object's details)."""
    if isinstance(value, dict):
        return all(_is_count(v) for v in value.values())
    return isinstance(value, (int, float)) and not isinstance(value, bool) or value is None


def scrub(value: Any) -> Any:
    """A copy of JSON data with anything that looks like a secret removed."""
    if isinstance(value, dict):
        # a count is never a secret: usage's "input_tokens" and its details survive, a "token" string does not
        return {k: ("[redacted]" if _SECRET_KEYS.search(str(k)) and not _is_count(v) else scrub(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUES.sub("[redacted]", value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if is_dataclass(value) and hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


class _Track:
    """One stream's PCM16 WAV, written incrementally with a header kept valid."""

    def __init__(self, path: Path, sample_rate_hz: int, num_channels: int) -> None:
        self.path = path
        self.sample_rate_hz = sample_rate_hz
        self.num_channels = num_channels
        self.num_samples = 0
        self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.file.write(_wav_header(sample_rate_hz, num_channels, 0))

    def write(self, frame: AudioFrame) -> None:
        target = frame.t_ns * self.sample_rate_hz // 1_000_000_000  # where the clock puts this frame
        samples = frame.samples
        if samples.shape[0] != self.num_channels:
            samples = np.broadcast_to(samples.mean(0, keepdims=True), (self.num_channels, samples.shape[1]))
        if target > self.num_samples:
            self._append(np.zeros((self.num_channels, target - self.num_samples), np.float32))
        self._append(samples)

    def _append(self, samples: np.ndarray) -> None:
        pcm = np.rint(np.clip(samples.T, -1.0, 32767 / 32768) * 32768).astype("<i2")
        self.file.write(pcm.tobytes())
        self.num_samples += samples.shape[1]

    def sync_header(self) -> None:
        data_bytes = self.num_samples * self.num_channels * 2
        position = self.file.tell()
        self.file.seek(0)
        self.file.write(_wav_header(self.sample_rate_hz, self.num_channels, data_bytes))
        self.file.seek(position)
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.sync_header()
            self.file.close()


def _wav_header(sample_rate_hz: int, num_channels: int, data_bytes: int) -> bytes:
    block = num_channels * 2
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, num_channels,
                       sample_rate_hz, sample_rate_hz * block, block, 16, b"data", data_bytes)


class Recorder(Pipe):
    """Record frames and events into a session folder; usable as a tap stage (``vkit.tee(Recorder(p))``)."""

    accepts = (AudioFrame, Event)

    def __init__(self, path: str | Path, *, manifest: dict[str, Any] | None = None, header_interval_s: float = 0.5) -> None:
        self.path = Path(path)
        self.header_interval_s = header_interval_s
        self.tracks: dict[str, _Track] = {}
        self.error: RecordingError | None = None
        self._closed = False
        self._last_sync = time.monotonic()
        self._manifest: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "vkit_version": _vkit_version(),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "status": "incomplete",
            **scrub(_jsonable(manifest or {})),
        }
        try:
            (self.path / "tracks").mkdir(parents=True, exist_ok=True)
            self._events: TextIO = open(self.path / "events.jsonl", "w", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._write_manifest()
        except OSError as exc:
            raise RecordingError(f"cannot create the recording ({exc.strerror or exc}) {got(str(self.path))}") from exc

    # -- writing ----------------------------------------------------------------------------------------

    def process(self, item: Item) -> Item:
        self.write(item)
        return item

    def write(self, item: Item) -> None:
        """Record one frame or event; after a write error the recording stops and keeps what it has."""
        if self.error is not None or self._closed:
            return
        try:
            if isinstance(item, AudioFrame):
                self._write_frame(item)
            else:
                self._write_event(item)
            if time.monotonic() - self._last_sync >= self.header_interval_s:
                self._sync()
        except OSError as exc:
            self.error = RecordingError(f"recording stopped: {exc.strerror or exc} {got(str(self.path))}")
            self.error.__cause__ = exc

    def _write_frame(self, frame: AudioFrame) -> None:
        track = self.tracks.get(frame.stream)
        if track is None:
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", frame.stream)
            track = _Track(self.path / "tracks" / f"{name}.wav", frame.sample_rate_hz, frame.num_channels)
            self.tracks[frame.stream] = track
        track.write(frame)

    def _write_event(self, event: Event) -> None:
        payload = scrub(_jsonable(event.payload()))
        line = {"t_ms": round(event.t_ns / 1e6, 3), "stage": event.stage, "kind": event.kind,
                "stream": getattr(event, "stream", None), "sample": getattr(event, "sample", None),
                "payload": payload}
        self._events.write(json.dumps(line, separators=(",", ":")) + "\n")

    def _sync(self) -> None:
        for track in self.tracks.values():
            track.sync_header()
        self._events.flush()
        self._last_sync = time.monotonic()

    def write_turns(self, turns: Any) -> None:
        if self.error is not None:
            return
        text = turns.to_csv() if hasattr(turns, "to_csv") else str(turns)
        try:
            (self.path / "turns.csv").write_text(text, encoding="utf-8")
        except OSError as exc:
            self.error = RecordingError(f"cannot write turns.csv ({exc.strerror or exc}) {got(str(self.path))}")

    def _write_manifest(self) -> None:
        self._manifest["tracks"] = [
            {"stream": stream, "path": f"tracks/{track.path.name}", "sample_rate_hz": track.sample_rate_hz,
             "num_channels": track.num_channels, "num_samples": track.num_samples}
            for stream, track in self.tracks.items()]
        temporary = self.path / "manifest.json.tmp"
        temporary.write_text(json.dumps(self._manifest, indent=2), encoding="utf-8")
        os.replace(temporary, self.path / "manifest.json")

    def close(self, status: str = "complete") -> None:
        """Finish the files; status "complete" or "incomplete". Raises RecordingError if writing failed."""
        if self._closed:
            return
        self._closed = True
        for track in self.tracks.values():
            try:
                track.close()
            except OSError as exc:
                self.error = self.error or RecordingError(f"cannot finish {track.path.name} ({exc}) {got(str(self.path))}")
        try:
            self._events.close()
            self._manifest["status"] = status if self.error is None else "incomplete"
            self._manifest["ended_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if self.error is not None:
                self._manifest["error"] = str(self.error)
            self._write_manifest()
        except OSError as exc:
            self.error = self.error or RecordingError(f"cannot finish the manifest ({exc}) {got(str(self.path))}")
        if self.error is not None:
            raise self.error


def _vkit_version() -> str:
    import vkit

    return vkit.__version__
