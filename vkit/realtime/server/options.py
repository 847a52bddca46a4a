"""What every session of one server shares (``ServerOptions``) and the server's account of each response
(``ResponseRecord``)."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

from vkit.deprecation import renamed_keyword
from vkit.realtime.server.latency import DelayModel

__all__ = ["ServerOptions", "ResponseRecord"]


@dataclass(frozen=True)
class ServerOptions:
    """What every session of one server shares: latency injection, pacing and limits.

    ``output_pace``: output streaming speed as a multiple of real time (0: as fast as possible);
    ``frame_ms``: audio per output delta (``chunk_ms=``, its old name, still works for one release);
    ``max_session_s``: the session's length before ``session_expired``; ``max_input_buffer_s``: uncommitted
    input audio kept (beyond it, an append is refused with an error); ``max_retained_audio_s``: conversation
    audio kept for retrieve, truncate and the responder, as int16 PCM (the oldest items' audio is dropped
    beyond it, their metadata stays; 300 s is 14 MB; None keeps all); the input buffer is int16 too.
    ``idle_reap_s``: a session with no client event and no response under way for this long is ended
    (``session_idle`` error, close 1000), so frozen or forgotten peers give back their slot (None: never);
    ``turn_detector``: what decides a ``semantic_vad`` turn after Silero ("smart_turn" or "silence", see
    ``semantic_detector``); ``created_delay_ms``: how long after its trigger a response is announced
    (``response.created``), input and commits still taken meanwhile: a slow or queued server, whose answer
    arrives after the user's next turn has begun; ``max_bad_events``: malformed client events (unparsable,
    binary, oversized, failing their schema) each get an error event and are skipped, and past this many
    the session is ended (``too_many_bad_events`` error, close 1008; None: never). Events refused only for
    the session's state (an empty commit, a second response) are not counted.
    """

    delay: DelayModel = field(default_factory=DelayModel)
    output_pace: float = 2.0
    frame_ms: int = 40
    max_session_s: float = 3600.0
    max_input_buffer_s: float = 600.0
    max_retained_audio_s: float | None = 300.0
    idle_reap_s: float | None = 600.0
    turn_detector: str = "smart_turn"
    created_delay_ms: float = 0.0
    max_bad_events: int | None = 100
    chunk_ms: InitVar[int | None] = None

    def __post_init__(self, chunk_ms: int | None) -> None:
        object.__setattr__(self, "frame_ms",
                           renamed_keyword("ServerOptions", "chunk_ms", "frame_ms", chunk_ms, self.frame_ms, stacklevel=4))


@dataclass
class ResponseRecord:
    """The server's own account of one response: the truth a client's measurements are checked against."""

    response_id: str
    trigger: str  # "speech_stopped", "response.create" or "idle_timeout"
    injected_delay_ms: float = 0.0
    processing_ms: float = 0.0
    first_audio_after_trigger_ms: float | None = None
    status: str = "in_progress"
    audio_ms: float = 0.0
