"""What was said, as text with its timing: ``Transcript`` items from Realtime server events.

``transcript_of`` maps one server event (input transcription delta/completed, output audio transcript and
output text delta/done) to a ``Transcript``; ``conversation`` joins a session's transcripts into one line
per item, with the time its first piece and its final text arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vkit.frames import Transcript
from vkit.realtime import events as ev
from vkit.units import ns_to_ms

__all__ = ["transcript_of", "conversation", "Utterance"]

# GA server type -> (role, source, field with the text, final)
_TEXT_EVENTS = {
    "conversation.item.input_audio_transcription.delta": ("user", "audio", "delta", False),
    "conversation.item.input_audio_transcription.completed": ("user", "audio", "transcript", True),
    "response.output_audio_transcript.delta": ("assistant", "audio", "delta", False),
    "response.output_audio_transcript.done": ("assistant", "audio", "transcript", True),
    "response.output_text.delta": ("assistant", "text", "delta", False),
    "response.output_text.done": ("assistant", "text", "text", True),
}


def transcript_of(event: ev.RealtimeEvent, t_ns: int) -> Transcript | None:
    """The ``Transcript`` a server event carries (received at ``t_ns``), or None."""
    spec = _TEXT_EVENTS.get(event.type)
    if spec is None:
        return None
    role, source, name, final = spec
    text = getattr(event, name, None)
    item_id = getattr(event, "item_id", None)
    if not isinstance(text, str) or not isinstance(item_id, str):
        return None
    return Transcript(role=role, text=text, item_id=item_id, final=final, source=source,  # type: ignore[arg-type]
                      response_id=getattr(event, "response_id", None), t_ns=t_ns)


@dataclass(frozen=True)
class Utterance:
    """One conversation item's text: ``first_ms`` when its first piece arrived, ``final_ms`` its final text
    (None while it is still arriving)."""

    role: str
    item_id: str
    text: str
    first_ms: float
    final_ms: float | None

    def __str__(self) -> str:
        end = f"{self.final_ms:9.1f}" if self.final_ms is not None else "        …"
        return f"{self.first_ms:9.1f} {end}  {self.role:>9}: {self.text}"


def conversation(events: Iterable[Any]) -> list[Utterance]:
    """One ``Utterance`` per item, in the order their text started arriving (a session's ``events`` or any
    iterable of items; non-``Transcript`` items are skipped)."""
    first: dict[str, Transcript] = {}
    pieces: dict[str, list[str]] = {}
    final: dict[str, Transcript] = {}
    for item in events:
        if not isinstance(item, Transcript):
            continue
        first.setdefault(item.item_id, item)
        if item.final:
            final[item.item_id] = item
        else:
            pieces.setdefault(item.item_id, []).append(item.text)
    out = []
    for item_id, start in first.items():
        done = final.get(item_id)
        text = done.text if done is not None else "".join(pieces.get(item_id, []))
        out.append(Utterance(start.role, item_id, text, ns_to_ms(start.t_ns),
                             ns_to_ms(done.t_ns) if done is not None else None))
    return sorted(out, key=lambda u: u.first_ms)
