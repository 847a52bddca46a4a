"""What flows through a graph: audio frames and a small closed set of events.

Every item carries ``t_ns``: nanoseconds on the session clock (``time.monotonic_ns()`` relative to the
session origin) when it was captured, created, received or played. Media positions are exact integer
sample counts on the item's stream, so timing never drifts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from vkit.errors import AudioInputError, got
from vkit.redact import redact_text
from vkit.units import samples_to_ms

__all__ = [
    "AudioFrame",
    "Event",
    "SpeechStarted",
    "SpeechStopped",
    "VadScore",
    "TurnEnded",
    "Marker",
    "ProtocolIssue",
    "ProtocolEvent",
    "Playout",
    "Transcript",
    "ToolCall",
    "SttTranscript",
    "LlmRequest",
    "LlmText",
    "LlmDone",
    "SpeechSynthesised",
    "Item",
]



_FLOAT32 = np.dtype(np.float32)
_set = object.__setattr__


class FiniteMark:
    """The samples of the newest frame known to hold only finite numbers, so the next stage's NaN/inf check
    passes them without a look: made by arithmetic that stays finite from checked input, or decoded from
    integer PCM. One slot, compared by identity: a frame made elsewhere, or after the next mark, is checked."""

    __slots__ = ("samples",)

    def __init__(self) -> None:
        self.samples: np.ndarray | None = None


FINITE = FiniteMark()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, init=False)
class AudioFrame:
    """One block of audio: float32 samples shaped ``(num_channels, num_samples)``.

    ``start_sample`` is the position of the first sample on ``stream``, counted at ``sample_rate_hz``;
    ``t_ns`` is the session-clock time of that first sample (captured, received or played).
    """

    samples: np.ndarray
    sample_rate_hz: int
    start_sample: int = 0
    stream: str = "input"
    t_ns: int = 0

    def __init__(self, *, samples: np.ndarray, sample_rate_hz: int, start_sample: int = 0, stream: str = "input",
                 t_ns: int = 0) -> None:
        # written out: a frame is made several times per 20 ms block, and the generated frozen __init__ with
        # __post_init__ cost about twice as much
        if not isinstance(samples, np.ndarray) or samples.ndim != 2:
            shape = getattr(samples, "shape", type(samples).__name__)
            raise AudioInputError(f"samples must be a 2-D array (num_channels, num_samples) {got(shape)}")
        if samples.dtype is not _FLOAT32:
            samples = samples.astype(np.float32)
        if sample_rate_hz <= 0:
            raise AudioInputError(f"sample_rate_hz must be positive {got(sample_rate_hz)}")
        _set(self, "samples", samples)
        _set(self, "sample_rate_hz", sample_rate_hz)
        _set(self, "start_sample", start_sample)
        _set(self, "stream", stream)
        _set(self, "t_ns", t_ns)

    @classmethod
    def mono(cls, samples: np.ndarray, sample_rate_hz: int, **kwargs: Any) -> AudioFrame:
        """A one-channel frame from a 1-D array."""
        return cls(samples=np.asarray(samples, np.float32).reshape(1, -1), sample_rate_hz=sample_rate_hz, **kwargs)

    @property
    def num_channels(self) -> int:
        return self.samples.shape[0]

    @property
    def num_samples(self) -> int:
        return self.samples.shape[1]

    @property
    def end_sample(self) -> int:
        """Position just past the last sample."""
        return self.start_sample + self.samples.shape[1]

    @property
    def duration_ms(self) -> float:
        return samples_to_ms(self.samples.shape[1], self.sample_rate_hz)

    @property
    def start_ms(self) -> float:
        return samples_to_ms(self.start_sample, self.sample_rate_hz)

    @property
    def end_ms(self) -> float:
        return samples_to_ms(self.end_sample, self.sample_rate_hz)

    def replace(self, **changes: Any) -> AudioFrame:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        return (
            f"AudioFrame(stream={self.stream!r}, sample_rate_hz={self.sample_rate_hz}, "
            f"num_channels={self.num_channels}, start_sample={self.start_sample}, "
            f"num_samples={self.num_samples}, t_ns={self.t_ns})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of the event items. ``stage`` names the stage that created it and ``t_ns`` is when (both
    set by the runtime when the stage leaves them unset: ``t_ns=-1``, ``stage=""``)."""

    t_ns: int = -1
    stage: str = ""

    @property
    def kind(self) -> str:
        return type(self).__name__

    def payload(self) -> dict[str, Any]:
        """The event's own fields as plain JSON-able data (for recordings)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name in ("t_ns", "stage"):
                continue
            out[name] = getattr(self, name)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(Event):
    """A VAD decided speech starts at ``sample`` (first speech sample, padding included).

    ``sample_t_ns`` is the session-clock time at which ``sample`` was captured; ``t_ns`` is when the
    decision was made.
    """

    sample: int
    sample_rate_hz: int
    sample_t_ns: int = 0
    stream: str = "input"

    @property
    def ms(self) -> float:
        return samples_to_ms(self.sample, self.sample_rate_hz)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStopped(Event):
    """A VAD decided speech ended at ``sample`` (one past the last speech sample, padding included).

    ``speech_end_sample`` is one past the last sample the model scored as speech (no padding) and
    ``speech_end_t_ns`` the session-clock time it was captured; ``t_ns`` is when the decision was made,
    so the end-of-turn detection delay is ``t_ns - speech_end_t_ns``.
    """

    sample: int
    sample_rate_hz: int
    sample_t_ns: int = 0
    speech_end_sample: int = -1
    speech_end_t_ns: int = 0
    stream: str = "input"

    @property
    def ms(self) -> float:
        return samples_to_ms(self.sample, self.sample_rate_hz)


@dataclass(frozen=True, slots=True, kw_only=True)
class VadScore(Event):
    """A VAD's speech probability for the window ``[sample, sample + num_samples)``."""

    sample: int
    num_samples: int
    sample_rate_hz: int
    probability: float
    stream: str = "input"


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnEnded(Event):
    """A turn detector (``vkit.filters.turn``) decided the user's turn is over.

    ``speech_end_sample`` is one past the turn's last speech sample (the VAD's ``SpeechStopped``
    ``speech_end_sample``), ``speech_end_t_ns`` when it was captured; ``decided_sample`` is the input
    position the decision needed (audio up to there), ``at_ns`` when that sample was captured, and ``t_ns``
    when the decision was made. ``probability`` is the model's end-of-turn probability (None for a policy
    without a model), ``inference_ms`` what the decision's model call cost, ``reason`` what ended it:
    "silence", "model", "timeout" or "end_of_stream".
    """

    speech_end_sample: int
    decided_sample: int
    sample_rate_hz: int
    detector: str
    probability: float | None = None
    at_ns: int = 0
    speech_end_t_ns: int = 0
    inference_ms: float = 0.0
    reason: str = "silence"
    stream: str = "input"

    @property
    def speech_end_ms(self) -> float:
        return samples_to_ms(self.speech_end_sample, self.sample_rate_hz)

    @property
    def decided_ms(self) -> float:
        return samples_to_ms(self.decided_sample, self.sample_rate_hz)


@dataclass(frozen=True, slots=True, kw_only=True)
class Marker(Event):
    """A named point in time, e.g. a turn boundary from labels or a user annotation."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolEvent(Event):
    """A Realtime protocol event sent or received; ``event`` is the typed protocol object."""

    direction: Literal["sent", "received"]
    type: str
    event: Any = None

    def payload(self) -> dict[str, Any]:
        to_dict = getattr(self.event, "to_dict", None)
        body = to_dict() if callable(to_dict) else {}
        return {"direction": self.direction, "type": self.type, "event": body}

    def __repr__(self) -> str:
        return redact_text(f"ProtocolEvent(t_ns={self.t_ns}, stage={self.stage!r}, direction={self.direction!r}, "
                           f"type={self.type!r}, event={self.event!r})")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolIssue(Event):
    """A peer's message that was skipped (malformed, too deep, bad audio): ``reason`` says why,
    ``num_issues`` counts them so far on the session, ``wire_type`` is the event's type when known."""

    reason: str
    wire_type: str = ""
    num_issues: int = 1

    def __repr__(self) -> str:
        return redact_text(f"ProtocolIssue(t_ns={self.t_ns}, stage={self.stage!r}, wire_type={self.wire_type!r}, "
                           f"reason={self.reason!r}, num_issues={self.num_issues})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Playout(Event):
    """A sink started (``state="started"``) or stopped playing samples of ``stream`` at ``sample``."""

    stream: str
    sample: int
    sample_rate_hz: int
    state: Literal["started", "stopped", "flushed"] = "started"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript(Event):
    """Text of a Realtime conversation item: a delta (``final=False``, ``text`` is the new piece) or the whole
    text (``final=True``). ``role`` is "user" (input audio transcription) or "assistant"; ``source`` says
    whether the assistant's text is the transcript of its audio ("audio") or text output ("text")."""

    role: Literal["user", "assistant"]
    text: str
    item_id: str
    final: bool
    source: Literal["audio", "text"] = "audio"
    response_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall(Event):
    """One step of a client-side function call, on the session clock.

    ``phase``: "arrived" (the call's arguments are complete), "started" / "finished" (the tool ran; ``error``
    is set when it raised), "output_sent" (``function_call_output`` sent), or "response_requested" (the one
    ``response.create`` after all of a response's calls). ``response_id`` is the response that made the call.
    """

    phase: Literal["arrived", "started", "finished", "output_sent", "response_requested"]
    name: str
    call_id: str
    response_id: str | None = None
    item_id: str | None = None
    arguments: str = ""
    output: str | None = None
    error: str | None = None


# -- the cascade's timing events (vkit.cascade). ``speech_end_t_ns`` is the end of the user's speech (the
# VAD's ``SpeechStopped.speech_end_t_ns``) that the event answers: it ties every part to its turn.


@dataclass(frozen=True, slots=True, kw_only=True)
class SttTranscript(Event):
    """What the STT heard: interim (``final=False``) or final text of one utterance of ``audio_ms``."""

    text: str
    final: bool = True
    speech_end_t_ns: int = 0
    audio_ms: float = 0.0
    engine: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmRequest(Event):
    """The LLM stage starts a request (``t_ns``: before any connection setup) over ``transport``."""

    transport: str
    speech_end_t_ns: int = 0
    num_tool_rounds: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmText(Event):
    """A piece of the LLM's streamed answer; ``first`` marks the response's first text."""

    text: str
    response_id: str = ""
    first: bool = False
    speech_end_t_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmDone(Event):
    """The LLM's answer to one turn ended (tool rounds included): its text, usage summed over its requests,
    and the connection setup the turn paid (``connection_setup_ms``: TCP, TLS, WebSocket handshakes)."""

    text: str
    response_id: str = ""
    status: str = "completed"
    usage: dict[str, Any] = field(default_factory=dict)
    connection_setup_ms: float = 0.0
    speech_end_t_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechSynthesised(Event):
    """The TTS emitted the first audio of a sentence (``t_ns``); ``first`` marks a turn's first sentence,
    ``text_ready_t_ns`` when that sentence's text was complete."""

    text: str
    num_characters: int
    first: bool = False
    text_ready_t_ns: int = 0
    response_id: str = ""
    speech_end_t_ns: int = 0


Item = AudioFrame | Event
