"""``vkit inspect PATH``: what a recording holds, and its turn table."""

from __future__ import annotations

from pathlib import Path

from vkit.latency import COLUMNS, Turn, TurnTable
from vkit.recording.load import LoadedSession


def summarize(path: str | Path) -> str:
    session = LoadedSession(path)
    manifest = session.manifest
    lines = [f"recording  {session.path}", f"status     {session.status}",
             f"vkit       {manifest.get('vkit_version')}  (schema {manifest.get('schema_version')})",
             f"started    {manifest.get('created_utc')}  ended {manifest.get('ended_utc', '-')}",
             f"graph      {(manifest.get('graph') or {}).get('text', '-')}",
             f"events     {len(session.events)}"]
    for stream, (rate, samples) in session.tracks.items():
        lines.append(f"track      {stream}: {samples.shape[1] / rate:.2f} s at {rate} Hz, {samples.shape[0]} ch")
    turns = TurnTable(Turn(**{k: row.get(k) for k in COLUMNS if k in row}) for row in session.turns)
    for turn in turns:
        turn.turn = int(turn.turn)
        turn.interrupted = bool(turn.interrupted)
    lines += ["", turns.to_text()]
    return "\n".join(lines)
