"""Reading a recorded session folder back."""

from __future__ import annotations

import csv
import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vkit.errors import RecordingError, got
from vkit.extras import require
from vkit.latency import compute_turns
from vkit.recording.events import events_from_records
from vkit.session import SessionRecord, speech_segments
from vkit.wav import read_wav

log = logging.getLogger(__name__)


def load_session(path: str | Path) -> LoadedSession:
    """Open a recording made by ``vkit.run(graph, record=path)`` (complete or cut short by a crash)."""
    return LoadedSession(path)


class LoadedSession:
    """A recording: ``manifest``, ``status``, ``events``, ``turns``, ``tracks``, ``speech_segments()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.exists():
            raise RecordingError(f"not a vkit recording: no manifest.json {got(str(self.path))}")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RecordingError(f"manifest.json is garbled ({exc}) {got(str(self.path))}") from exc

    @property
    def status(self) -> str:
        return self.manifest.get("status", "incomplete")

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """Every event; a last line cut by a crash is skipped."""
        out = []
        events_path = self.path / "events.jsonl"
        if not events_path.exists():
            return out
        for line in events_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    @cached_property
    def turns(self) -> list[dict[str, Any]]:
        """The turn table; recomputed from the events when turns.csv is missing (a killed run)."""
        turns_path = self.path / "turns.csv"
        if turns_path.exists():
            with open(turns_path, encoding="utf-8") as handle:
                return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]
        return compute_turns(events_from_records(self.events)).rows()

    @cached_property
    def tracks(self) -> dict[str, tuple[int, np.ndarray]]:
        """stream -> (sample_rate_hz, samples shaped (num_channels, num_samples)), aligned at t = 0.

        A track that cannot be read (a run killed before its header was written) is left out, with a
        warning, and named in ``bad_tracks``; the others load."""
        out = {}
        for wav in sorted((self.path / "tracks").glob("*.wav")):
            try:
                out[wav.stem] = read_wav(wav)
            except RecordingError as exc:
                self.bad_tracks[wav.stem] = str(exc)
                log.warning("skipped an unreadable track: %s", exc)
        return out

    @cached_property
    def bad_tracks(self) -> dict[str, str]:
        """stream -> why its track could not be read (filled when ``tracks`` is read)."""
        return {}

    def track(self, stream: str) -> tuple[int, np.ndarray]:
        if stream not in self.tracks:
            raise RecordingError(f"the recording has no track {stream!r} {got(sorted(self.tracks))}")
        return self.tracks[stream]

    def speech_segments(self, stream: str = "input") -> list[tuple[float, float]]:
        """The VAD's (start_ms, end_ms) pairs in media time of ``stream``."""
        return speech_segments(events_from_records(self.events), stream)

    def record(self) -> SessionRecord:
        """The recording as the value a live session gives (same turns and speech segments)."""
        return SessionRecord(status=self.status, events=events_from_records(self.events), stages={},
                             error=self.manifest.get("error"), recording_path=str(self.path),
                             graph=self.manifest.get("graph"))

    def events_frame(self) -> Any:
        return _frame([{**{k: v for k, v in e.items() if k != "payload"}, "payload": json.dumps(e.get("payload"))}
                       for e in self.events])

    def turns_frame(self) -> Any:
        return _frame(self.turns)

    def to_parquet(self, directory: str | Path) -> list[Path]:
        """Write events.parquet and turns.parquet (needs pyarrow)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in (("events", self.events_frame()), ("turns", self.turns_frame())):
            target = out / f"{name}.parquet"
            frame.to_parquet(target)
            written.append(target)
        return written

    def __repr__(self) -> str:
        return (f"LoadedSession({str(self.path)!r}, status={self.status!r}, num_events={len(self.events)}, "
                f"num_turns={len(self.turns)}, tracks={sorted(self.tracks)})")


def _number(value: str | None) -> Any:
    if value in (None, ""):
        return None
    if value in ("True", "False"):
        return value == "True"
    try:
        return float(value)
    except ValueError:
        return value


def _frame(rows: list[dict[str, Any]]) -> Any:
    return require("pandas", extra="analysis", feature="a recording's DataFrames").DataFrame(rows)
