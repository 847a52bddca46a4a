"""Writing a session folder while the run goes on, so that a crash leaves a readable recording.

::

    manifest.json     schema version, vkit version, graph, tracks, start time (UTC), status
    events.jsonl      one event a line: t_ms, stage, kind, stream, sample, payload (no inlined audio)
    tracks/*.wav      one PCM16 WAV per stream, placed on the session clock, gaps filled with silence
    turns.csv         the per-turn latency table

WAV headers are rewritten every ``header_interval_s``; ``load_session`` reads a file whose header is
stale (a killed run) from its size. An existing recording is refused unless ``overwrite=True``. The
first OSError (a full disk) is raised at once as ``RecordingError``; what was written is closed as a
readable recording marked "incomplete" with the error in the manifest. A frame holding NaN or inf is
refused before anything of it is written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import time
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from vkit.errors import AudioInputError, RecordingError, got
from vkit.frames import AudioFrame, Event, Item
from vkit.graph import Pipe
from vkit.redact import redact_data
from vkit.session import Session
from vkit.units import float_to_pcm16, ns_to_ms, ns_to_whole_samples

SCHEMA_VERSION = 1
STATUSES = ("complete", "stopped", "timeout", "error", "incomplete")
MAX_DEPTH = 64  # event payloads nested deeper are cut there, with a marker
MAX_STRING_CHARS = 65_536  # a longer string in a payload is truncated, with a marker
_RECORDING_FILES = ("manifest.json", "manifest.json.tmp", "events.jsonl", "turns.csv")
log = logging.getLogger(__name__)


def scrub(value: Any) -> Any:
    """A copy of JSON data with anything that looks like a secret removed."""
    return redact_data(value)


def _jsonable(value: Any, max_depth: int = MAX_DEPTH, max_string_chars: int = MAX_STRING_CHARS) -> Any:
    """Plain JSON data from an event payload: iterative (no recursion limit), cut at ``max_depth``,
    strings over ``max_string_chars`` truncated with a marker saying how much was left out."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, key, depth = stack.pop()
        if is_dataclass(item) and hasattr(item, "to_dict"):
            item = item.to_dict()
        if isinstance(item, (dict, list, tuple)) and depth >= max_depth:
            out: Any = f"[nested deeper than {max_depth} levels: cut]"
        elif isinstance(item, dict):
            out = {}
            for k, v in item.items():
                out[str(k)] = None
                stack.append((v, out, str(k), depth + 1))
        elif isinstance(item, (list, tuple)):
            out = [None] * len(item)
            stack.extend((v, out, i, depth + 1) for i, v in enumerate(item))
        elif isinstance(item, str):
            out = item if len(item) <= max_string_chars else (
                f"{item[:max_string_chars]}...[truncated: {len(item) - max_string_chars} more chars]")
        elif isinstance(item, (np.integer, np.floating)):
            out = item.item()
        elif isinstance(item, np.ndarray):
            out = f"[array shape {item.shape} dtype {item.dtype}: not recorded]" if item.size > 64 else item.tolist()
        elif isinstance(item, (int, float, bool)) or item is None:
            out = item
        else:
            out = repr(item)[:max_string_chars]
        parent[key] = out
    return root[0]


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
        target = ns_to_whole_samples(frame.t_ns, self.sample_rate_hz)  # where the clock puts this frame
        samples = frame.samples
        if not np.isfinite(samples).all():
            raise AudioInputError(f"a frame of stream {frame.stream!r} holds NaN or infinite samples; it was not "
                                  f"recorded {got(frame.start_sample)}")
        if samples.shape[0] != self.num_channels:
            samples = np.broadcast_to(samples.mean(0, keepdims=True), (self.num_channels, samples.shape[1]))
        if target > self.num_samples:
            self._append(np.zeros((self.num_channels, target - self.num_samples), np.float32))
        self._append(samples)

    def _append(self, samples: np.ndarray) -> None:
        pcm = float_to_pcm16(samples.T)
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

    def __init__(self, path: str | Path, *, manifest: dict[str, Any] | None = None, header_interval_s: float = 0.5,
                 overwrite: bool = False) -> None:
        self.path = Path(path)
        _claim(self.path, overwrite)
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

    @classmethod
    def attach(cls, session: Session, path: str | Path, *, overwrite: bool = False) -> Recorder:
        """Record ``session`` into ``path`` as it runs: every published item, then turns.csv and the final
        status when the session finishes."""
        recorder = cls(path, manifest={"graph": session.graph}, overwrite=overwrite)
        session.recording_path = str(path)
        session.subscribe(recorder.write)
        session.on_finish(recorder.finish)
        return recorder

    def finish(self, session: Session) -> None:
        """Write the session's turn table and close with its final status (raises RecordingError)."""
        try:
            self.write_turns(session.turns)
        except Exception:  # the turn table is derived data; the recording itself must still close
            log.exception("writing turns.csv failed")
        finally:
            error = session.error
            self.close(session.status, None if error is None else f"{type(error).__name__}: {error}")

    # -- writing ----------------------------------------------------------------------------------------

    def process(self, item: Item) -> Item:
        self.write(item)
        return item

    def write(self, item: Item) -> None:
        """Record one frame or event. The first write error closes the recording as readable, marked
        "incomplete" with the error, and raises RecordingError."""
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
            self._finish("incomplete", None)
            raise self.error from exc

    def _write_frame(self, frame: AudioFrame) -> None:
        track = self.tracks.get(frame.stream)
        if track is None:
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", frame.stream)
            track = _Track(self.path / "tracks" / f"{name}.wav", frame.sample_rate_hz, frame.num_channels)
            self.tracks[frame.stream] = track
        track.write(frame)

    def _write_event(self, event: Event) -> None:
        payload = scrub(_jsonable(event.payload()))
        line = {"t_ms": ns_to_ms(event.t_ns), "stage": event.stage, "kind": event.kind,
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
        try:
            temporary.write_text(json.dumps(self._manifest, indent=2), encoding="utf-8")
            os.replace(temporary, self.path / "manifest.json")
        except OSError:
            temporary.unlink(missing_ok=True)  # the last complete manifest stays; no stray half-written copy
            raise

    def close(self, status: str = "complete", reason: str | None = None) -> None:
        """Finish the files with ``status`` ("complete", "stopped", "timeout", "error" or "incomplete") and
        ``reason`` (why it stopped, or the error) in the manifest. Raises RecordingError if writing failed."""
        if status not in STATUSES:
            raise RecordingError(f"status must be one of {', '.join(STATUSES)} {got(status)}")
        if self._closed:
            return
        self._finish(status, reason)
        if self.error is not None:
            raise self.error

    def _finish(self, status: str, reason: str | None) -> None:
        self._closed = True
        for track in self.tracks.values():
            try:
                track.close()
            except OSError as exc:
                self.error = self.error or RecordingError(f"cannot finish {track.path.name} ({exc}) {got(str(self.path))}")
        try:
            self._events.close()
        except OSError as exc:
            self.error = self.error or RecordingError(f"cannot finish events.jsonl ({exc}) {got(str(self.path))}")
        self._manifest["status"] = status if self.error is None else "incomplete"
        self._manifest["ended_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if reason is not None:
            self._manifest["reason"] = redact_data(str(reason))
        if self.error is not None:
            self._manifest["error"] = str(self.error)
        try:
            self._write_manifest()
        except OSError as exc:
            self.error = self.error or RecordingError(f"cannot finish the manifest ({exc}) {got(str(self.path))}")


def _claim(path: Path, overwrite: bool) -> None:
    """Refuse a folder that holds a recording unless ``overwrite``; with it, remove that recording's files."""
    tracks = sorted((path / "tracks").glob("*.wav")) if (path / "tracks").is_dir() else []
    found = [path / name for name in _RECORDING_FILES if (path / name).exists()] + tracks
    if not found:
        return
    if not overwrite:
        raise RecordingError(f"{path} already holds a recording; pass overwrite=True to replace it, or choose "
                             f"another folder {got(str(path))}")
    try:
        for old in found:
            old.unlink()
    except OSError as exc:
        raise RecordingError(f"cannot remove the old recording ({exc.strerror or exc}) {got(str(path))}") from exc


def _vkit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vkit")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0+unknown"
