"""Where each millisecond went: the per-turn latency table, from the session's events on one clock.

A turn is anchored on the end of the user's speech (vkit's VAD ``SpeechStopped``, or a turn detector's
``TurnEnded`` when the graph has one; or the server's ``speech_stopped`` when there is no local VAD),
followed by the response that answers it:

user speech end -> VAD end detected -> server speech_stopped / commit sent -> response.created
-> first audio received -> first audio played (at the sink) -> response.done.

A response belongs to the turn the protocol says it answers, never simply to the latest turn
(``attribution``): the user item its output follows in the conversation (``conversation.item.added`` /
``created``'s ``previous_item_id``, back to the turn's committed item); else the client's ``response.create``
it answers (requests are answered in order; one the server refused with an ``error`` is dropped); else the
one turn committed since the last answered one. When several turns could own it and nothing tells which,
it gets a row of its own marked ``ambiguous`` and none of them gets it.

All times are milliseconds on the session clock.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from vkit.extras import require
from vkit.frames import (
    Event,
    LlmDone,
    LlmRequest,
    LlmText,
    Marker,
    Playout,
    ProtocolEvent,
    SpeechStarted,
    SpeechStopped,
    SpeechSynthesised,
    SttTranscript,
    ToolCall,
    TurnEnded,
)
from vkit.units import NS_PER_US, ms_to_s, ns_to_ms, samples_to_ms

__all__ = ["Turn", "TurnTable", "TurnEvents", "compute_turns", "stage_table", "COLUMNS", "CASCADE_PARTS"]

_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_ITEM_ADDED = ("conversation.item.added", "conversation.item.created")


@dataclass
class Turn:
    """One row of the latency table (ms on the session clock; None where the event did not happen)."""

    turn: int
    user_speech_start_ms: float | None = None
    user_speech_end_ms: float | None = None
    vad_speech_end_ms: float | None = None
    vad_end_detected_ms: float | None = None
    server_speech_stopped_ms: float | None = None
    commit_sent_ms: float | None = None
    response_created_ms: float | None = None
    first_audio_received_ms: float | None = None
    first_audio_played_ms: float | None = None
    response_done_ms: float | None = None
    voice_to_voice_ms: float | None = None
    end_of_turn_delay_ms: float | None = None
    server_first_audio_ms: float | None = None
    response_id: str | None = None
    input_item_id: str | None = None  # the user item the turn committed (the server's id)
    status: str | None = None
    attribution: str | None = None  # how the response was attached: conversation, request, order or ambiguous
    speech_end_source: str | None = None  # where user_speech_end_ms comes from: vad, server or labels
    note: str | None = None  # why a measurement was left out or kept
    interrupted: bool = False
    interruption_reaction_ms: float | None = None
    num_tool_calls: int = 0
    tool_call_arrived_ms: float | None = None  # the first call's arguments complete
    tool_call_ms: float | None = None  # first tool start -> last tool end (the tools' own run time)
    tool_round_trip_ms: float | None = None  # call arrived -> the answer's first audio: what the tools added
    # -- cascade turns (vkit.cascade): when each stage reached its mark (ms on the session clock) ...
    transcript: str | None = None
    transcript_at_ms: float | None = None
    llm_request_at_ms: float | None = None
    llm_first_text_at_ms: float | None = None
    first_sentence_at_ms: float | None = None
    # ... and the path's parts, which add up to voice_to_voice_ms (user speech end -> first audio played)
    vad_endpoint_ms: float | None = None  # user speech end -> VAD declared the end
    stt_final_ms: float | None = None  # VAD end -> final transcript
    connection_setup_ms: float | None = None  # TCP/TLS/WebSocket handshakes this turn's requests paid
    llm_first_token_ms: float | None = None  # transcript -> first text, less the connection setup
    llm_first_sentence_ms: float | None = None  # first text -> first sentence complete
    tts_first_audio_ms: float | None = None  # first sentence complete -> its first audio
    playout_delay_ms: float | None = None  # first audio -> first audio played at the sink
    # -- usage, as the APIs report it (or as the local server computes it)
    input_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    input_audio_tokens: int | None = None
    output_audio_tokens: int | None = None
    stt_audio_s: float | None = None
    tts_characters: int | None = None

    def finish(self) -> Turn:
        """Fill the derived columns."""
        end = self.user_speech_end_ms
        heard = self.first_audio_played_ms if self.first_audio_played_ms is not None else None
        self.voice_to_voice_ms = _minus(heard, end)
        self.end_of_turn_delay_ms = _minus(self.vad_end_detected_ms, self.vad_speech_end_ms or end)
        anchor = self.server_speech_stopped_ms if self.server_speech_stopped_ms is not None else self.commit_sent_ms
        if self.transcript_at_ms is not None:
            anchor = self.transcript_at_ms
            self._cascade_parts()
        self.server_first_audio_ms = _minus(self.first_audio_received_ms, anchor)
        return self

    def _cascade_parts(self) -> None:
        setup = self.connection_setup_ms or 0.0
        self.vad_endpoint_ms = _minus(self.vad_end_detected_ms, self.user_speech_end_ms)
        self.stt_final_ms = _minus(self.transcript_at_ms, self.vad_end_detected_ms)
        first_token = _minus(self.llm_first_text_at_ms, self.transcript_at_ms)
        self.llm_first_token_ms = None if first_token is None else round(first_token - setup, 3)
        self.llm_first_sentence_ms = _minus(self.first_sentence_at_ms, self.llm_first_text_at_ms)
        self.tts_first_audio_ms = _minus(self.first_audio_received_ms, self.first_sentence_at_ms)
        self.playout_delay_ms = _minus(self.first_audio_played_ms, self.first_audio_received_ms)


COLUMNS = [f.name for f in fields(Turn)]
CASCADE_PARTS = ["vad_endpoint_ms", "stt_final_ms", "connection_setup_ms", "llm_first_token_ms",
                 "llm_first_sentence_ms", "tts_first_audio_ms", "playout_delay_ms"]
"""A cascade turn's parts, in path order; they add up to ``voice_to_voice_ms``."""


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _ms(t_ns: int) -> float:
    return ns_to_ms(t_ns)


class TurnTable(list):  # type: ignore[type-arg]
    """A list of Turn rows that renders as a table and converts to pandas."""

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(t) for t in self]

    def to_frame(self) -> Any:
        pd = require("pandas", extra="analysis", feature="turns as a DataFrame")
        return pd.DataFrame(self.rows(), columns=COLUMNS)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows())
        return out.getvalue()

    def summary(self) -> dict[str, float]:
        """Median and p90 of voice-to-voice and of the server's time to first audio."""
        out: dict[str, float] = {}
        for column in ("voice_to_voice_ms", "server_first_audio_ms", "end_of_turn_delay_ms"):
            values = [getattr(t, column) for t in self if getattr(t, column) is not None]
            if values:
                out[f"{column}_p50"] = float(np.percentile(values, 50))
                out[f"{column}_p90"] = float(np.percentile(values, 90))
        return out

    _SHOWN = [("turn", "turn"), ("user_speech_end_ms", "speech end"), ("end_of_turn_delay_ms", "end-of-turn detection"),
              ("server_first_audio_ms", "network + server"), ("first_audio_played_ms", "first audio played"),
              ("voice_to_voice_ms", "voice-to-voice"), ("interrupted", "barge-in")]

    _TOOL_SHOWN = [("tool_call_ms", "tool"), ("tool_round_trip_ms", "tool round trip")]

    def _shown(self) -> list[tuple[str, str]]:
        """The columns shown: the tool columns only when a turn called a tool."""
        if any(t.num_tool_calls for t in self):
            return [*self._SHOWN[:-2], *self._TOOL_SHOWN, *self._SHOWN[-2:]]
        return self._SHOWN

    def to_text(self) -> str:
        shown = self._shown()
        header = [label for _, label in shown]
        lines = [[_cell(getattr(t, name)) for name, _ in shown] for t in self]
        widths = [max(len(h), *(len(r[i]) for r in lines)) if lines else len(h) for i, h in enumerate(header)]
        out = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
        out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
        out.append("(ms on the session clock; end-of-turn detection = VAD end declared - speech end; network + "
                   "server = first audio received - speech_stopped/commit"
                   + ("; tool = the tools' run time, tool round trip = call arrived -> answer's first audio"
                      if shown is not self._SHOWN else "") + ")")
        out += [f"turn {t.turn}: {t.note}" for t in self if t.note]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        shown = self._shown()
        head = "".join(f"<th>{label}</th>" for _, label in shown)
        body = "".join("<tr>" + "".join(f"<td>{_cell(getattr(t, n))}</td>" for n, _ in shown) + "</tr>"
                       for t in self)
        return f"<table class='vkit-turns'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def compute_turns(events: Iterable[Event], *,
                  ground_truth_segments_ms: Sequence[tuple[float, float]] | None = None) -> TurnTable:
    """Build the latency table from a session's events (any order; sorted by time here)."""
    ordered = sorted(events, key=lambda e: e.t_ns)
    turns: list[Turn] = []
    by_response: dict[str, Turn] = {}
    pending_start: float | None = None
    local_vad = any(isinstance(e, SpeechStopped) for e in ordered)
    detected = any(isinstance(e, TurnEnded) for e in ordered)
    playing: Turn | None = None
    input_origin: tuple[float, float] | None = None  # (t_ms of stream start, its start sample in ms)
    silence_ms = 500.0
    tools = _ToolTimes()
    owners = _Owners(ordered)
    for event in ordered:
        if isinstance(event, Marker) and event.name == "stream_start" and event.data.get("stream") == "input":
            if input_origin is None:
                rate = event.data.get("sample_rate_hz") or 1
                input_origin = (_ms(event.t_ns), samples_to_ms(event.data.get("start_sample", 0), rate))
        elif isinstance(event, Marker) and event.name == "response_stalled":
            stalled = by_response.get(event.data.get("response_id") or "")
            if stalled is not None and stalled.status is None:
                stalled.status = "stalled"  # the client gave up waiting: no response.done came
        elif isinstance(event, SpeechStarted):
            if not (detected and pending_start is not None):  # with a turn detector, a turn starts once
                pending_start = _ms(event.sample_t_ns)
            if playing is not None and not playing.interrupted and playing.first_audio_played_ms is not None:
                playing.interrupted = True
                playing.interruption_reaction_ms = -_ms(event.sample_t_ns)  # completed when sound stops
        elif isinstance(event, TurnEnded if detected else SpeechStopped):  # a detector's decisions replace the VAD's
            turn = Turn(len(turns) + 1, pending_start, _ms(event.speech_end_t_ns), _ms(event.speech_end_t_ns),
                        _ms(event.t_ns), speech_end_source="vad")
            turns.append(turn)
            pending_start = None
        elif isinstance(event, Playout) and event.stream == "output":
            if event.state == "started":
                waiting = [t for t in turns if t.first_audio_received_ms is not None and t.first_audio_played_ms is None]
                if waiting:
                    waiting[0].first_audio_played_ms = _ms(event.t_ns)
                    playing = waiting[0]
            elif playing is not None:
                if playing.interrupted and playing.interruption_reaction_ms is not None and playing.interruption_reaction_ms < 0:
                    playing.interruption_reaction_ms = round(_ms(event.t_ns) + playing.interruption_reaction_ms, 3)
                playing = None
        elif isinstance(event, ToolCall):
            tools.add(event, by_response)
        elif isinstance(event, (SttTranscript, LlmRequest, LlmText, LlmDone, SpeechSynthesised)):
            _cascade_event(event, turns)
        elif isinstance(event, ProtocolEvent):
            if tools.follow_up(event, by_response):
                continue
            _protocol_event(event, turns, by_response, local_vad, input_origin, silence_ms, owners)
            if event.type == "session.updated" and event.direction == "received":
                silence_ms = _silence_ms(event.event, silence_ms)
    for turn in turns:
        if turn.interruption_reaction_ms is not None and turn.interruption_reaction_ms < 0:
            turn.interruption_reaction_ms = None
    if ground_truth_segments_ms and input_origin is not None:
        _apply_ground_truth(turns, ground_truth_segments_ms, input_origin)
    return TurnTable(t.finish() for t in turns)


class TurnEvents:
    """The few events ``compute_turns`` reads, kept as a live session publishes them.

    A session publishes tens of events a second (VAD scores, every audio chunk sent and received);
    the turn table needs a handful per turn. Keeping only those lets a live table be recomputed a few
    times a second however long the session runs, with the same result as from every event.
    """

    _PROTOCOL_TYPES = frozenset({"input_audio_buffer.commit", "input_audio_buffer.speech_stopped",
                                 "input_audio_buffer.committed", *_ITEM_ADDED, "response.output_item.added",
                                 "response.create", "response.created", "response.done", "session.updated", "error"})
    _TOOL_PHASES = frozenset({"arrived", "started", "finished", "response_requested"})

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._responses_with_audio: set[str] = set()

    def add(self, event: Event) -> None:
        if isinstance(event, ProtocolEvent):
            if event.type in _AUDIO_DELTAS:  # only a response's first audio counts
                response_id = getattr(event.event, "response_id", None) or ""
                if response_id in self._responses_with_audio:
                    return
                self._responses_with_audio.add(response_id)
            elif event.type not in self._PROTOCOL_TYPES:
                return
        elif isinstance(event, ToolCall):
            if event.phase not in self._TOOL_PHASES:
                return
        elif isinstance(event, LlmText) and not event.first:
            return
        elif not (isinstance(event, (SpeechStarted, SpeechStopped, TurnEnded, SttTranscript, LlmRequest, LlmText,
                                     LlmDone, SpeechSynthesised))
                  or (isinstance(event, Playout) and event.stream == "output")
                  or (isinstance(event, Marker) and event.name in ("stream_start", "response_stalled"))):
            return
        self.events.append(event)


def _protocol_event(event: ProtocolEvent, turns: list[Turn], by_response: dict[str, Turn], local_vad: bool,
                    input_origin: tuple[float, float] | None, silence_ms: float, owners: _Owners) -> None:
    body = event.event
    t_ms = _ms(event.t_ns)
    kind = event.type
    if event.direction == "sent":
        if kind == "input_audio_buffer.commit" and turns and turns[-1].commit_sent_ms is None:
            turns[-1].commit_sent_ms = t_ms
            owners.commits.append((body.event_id, turns[-1]))
        elif kind == "response.create":
            owners.requested(body.event_id, turns)
        return
    if kind == "input_audio_buffer.speech_stopped":
        item_id = getattr(body, "item_id", None)
        if local_vad:
            if turns and turns[-1].server_speech_stopped_ms is None and turns[-1].response_created_ms is None:
                turns[-1].server_speech_stopped_ms = t_ms
                turns[-1].input_item_id = turns[-1].input_item_id or item_id
            return
        end_ms = getattr(body, "audio_end_ms", None)
        user_end = None
        if end_ms is not None and input_origin is not None:
            user_end = input_origin[0] + end_ms - silence_ms - input_origin[1]
        turns.append(Turn(len(turns) + 1, None, user_end, None, None, t_ms, input_item_id=item_id,
                          speech_end_source="server" if user_end is not None else None))
    elif kind == "input_audio_buffer.committed":
        owners.committed(getattr(body, "item_id", None), turns)
    elif kind == "error":
        owners.refused(getattr(body, "error", None) or {})
    elif kind == "response.created":
        response = getattr(body, "response", None) or {}
        turn = owners.owner(response.get("id"), turns)
        turn.response_id = response.get("id")
        turn.response_created_ms = t_ms
        if turn.response_id:
            by_response[turn.response_id] = turn
    elif kind in _AUDIO_DELTAS:
        turn = by_response.get(getattr(body, "response_id", None) or "")
        if turn is not None and turn.first_audio_received_ms is None:
            turn.first_audio_received_ms = t_ms
    elif kind == "response.done":
        response = getattr(body, "response", None) or {}
        turn = by_response.get(response.get("id", ""))
        if turn is not None:
            turn.response_done_ms = t_ms
            turn.status = response.get("status")
            _usage(turn, response.get("usage"))
            if turn.status == "cancelled":
                turn.interrupted = True


class _Owners:
    """Which turn a response answers, by the protocol (see the module's docstring).

    Built with every event first, for each response's place in the conversation (its output item is added
    after ``response.created``); then fed the commits, requests, refusals and commit acknowledgements in order.
    """

    def __init__(self, ordered: Sequence[Event]) -> None:
        self.commits: list[tuple[str | None, Turn]] = []  # commits sent, not yet acknowledged
        self.requests: list[tuple[str | None, Turn]] = []  # response.create sent for a turn, not yet answered
        self.follows: dict[str, str] = {}  # response id -> the user item its output follows
        previous: dict[str, str | None] = {}
        user_items: set[str] = set()
        first_output: dict[str, str] = {}  # response id -> its first output item
        output_of: dict[str, str] = {}  # output item -> its response
        for event in ordered:
            if not isinstance(event, ProtocolEvent) or event.direction != "received":
                continue
            body = event.event
            if event.type == "input_audio_buffer.committed" and getattr(body, "item_id", None):
                user_items.add(body.item_id)
                previous.setdefault(body.item_id, getattr(body, "previous_item_id", None))
            elif event.type in _ITEM_ADDED:
                item = getattr(body, "item", None) or {}
                if item.get("id"):
                    previous[item["id"]] = getattr(body, "previous_item_id", None)
                    if item.get("role") == "user":
                        user_items.add(item["id"])
            elif event.type == "response.output_item.added":
                item_id = (getattr(body, "item", None) or {}).get("id")
                response_id = getattr(body, "response_id", None)
                if item_id and response_id:
                    first_output.setdefault(response_id, item_id)
                    output_of[item_id] = response_id
        for response_id, item_id in first_output.items():
            before = previous.get(item_id)
            for _ in range(len(previous)):  # back over the items that are not a user's (a tool output, ...)
                if before is None or before in user_items or output_of.get(before, response_id) != response_id:
                    break
                before = previous.get(before)
            if before in user_items:
                self.follows[response_id] = before  # type: ignore[assignment]

    def requested(self, event_id: str | None, turns: list[Turn]) -> None:
        """A ``response.create`` sent: it asks for the latest turn if that turn committed and has none yet."""
        turn = turns[-1] if turns else None
        if (turn is not None and turn.commit_sent_ms is not None and turn.response_id is None
                and all(t is not turn for _, t in self.requests)):
            self.requests.append((event_id, turn))

    def committed(self, item_id: str | None, turns: list[Turn]) -> None:
        """The server's acknowledgement of a commit: the item id of the oldest commit not yet acknowledged."""
        if not item_id or any(t.input_item_id == item_id for t in turns):
            return
        if self.commits:
            _, turn = self.commits.pop(0)
            turn.input_item_id = item_id

    def refused(self, error: dict[str, Any]) -> None:
        """An ``error`` naming a commit or request of ours: that one will not be answered."""
        event_id = error.get("event_id")
        if not event_id:
            return
        for queue, what in ((self.requests, "response.create"), (self.commits, "commit")):
            for index, (sent_id, turn) in enumerate(queue):
                if sent_id == event_id:
                    del queue[index]
                    _add_note(turn, f"the server refused its {what} ({error.get('code') or error.get('type')})")
                    return

    def owner(self, response_id: str | None, turns: list[Turn]) -> Turn:
        """The turn ``response_id`` answers (marked with how that is known), or a row of its own."""
        follows = self.follows.get(response_id or "")
        if follows is not None:
            turn = next((t for t in turns if t.input_item_id == follows and t.response_id is None), None)
            if turn is not None:
                self.requests = [(i, t) for i, t in self.requests if t is not turn]
                turn.attribution = "conversation"
                return turn
        while self.requests:
            _, turn = self.requests.pop(0)
            if turn.response_id is None:
                turn.attribution = "request"
                return turn
        answered = max((i for i, t in enumerate(turns) if t.response_id is not None), default=-1)
        waiting = [t for t in turns[answered + 1 :] if t.response_id is None]
        committed = [t for t in waiting if t.input_item_id or t.commit_sent_ms is not None
                     or t.server_speech_stopped_ms is not None]
        candidates = committed or waiting
        if len(candidates) == 1:
            candidates[0].attribution = "order"
            return candidates[0]
        row = Turn(len(turns) + 1)
        turns.append(row)
        if candidates:
            row.attribution = "ambiguous"
            row.note = (f"created while turns {', '.join(str(t.turn) for t in candidates)} waited for an answer; "
                        "neither the conversation nor a request says which it answers")
        return row


def _add_note(turn: Turn, note: str) -> None:
    turn.note = note if not turn.note else f"{turn.note}; {note}"


class _ToolTimes:
    """Tool-call columns: a call belongs to the turn of the response that made it, and the response the
    stage requests after the calls (their answer) is counted in the same turn, not as a new one."""

    def __init__(self) -> None:
        self.awaiting: list[Turn] = []  # turns whose follow-up response.create was sent, not yet created
        self.starts: dict[int, float] = {}  # turn number -> first tool start
        self.answers: dict[str, Turn] = {}  # follow-up response id -> its tool turn

    def add(self, event: ToolCall, by_response: dict[str, Turn]) -> None:
        turn = by_response.get(event.response_id or "")
        if turn is None:
            return
        t_ms = _ms(event.t_ns)
        if event.phase == "arrived":
            turn.num_tool_calls += 1
            if turn.tool_call_arrived_ms is None:
                turn.tool_call_arrived_ms = t_ms
        elif event.phase == "started":
            self.starts.setdefault(turn.turn, t_ms)
        elif event.phase == "finished":
            start = self.starts.get(turn.turn)
            if start is not None:
                turn.tool_call_ms = round(t_ms - start, 3)
        elif event.phase == "response_requested":
            self.awaiting.append(turn)

    def follow_up(self, event: ProtocolEvent, by_response: dict[str, Turn]) -> bool:
        """Attach a follow-up ``response.created`` to its tool turn (True: the event is consumed) and time
        the answer's first audio."""
        if event.direction != "received":
            return False
        if event.type in _AUDIO_DELTAS:
            turn = self.answers.get(getattr(event.event, "response_id", None) or "")
            if turn is not None and turn.tool_round_trip_ms is None:
                turn.tool_round_trip_ms = _minus(_ms(event.t_ns), turn.tool_call_arrived_ms)
            return False
        if not self.awaiting or event.type != "response.created":
            return False
        turn = self.awaiting.pop(0)
        response_id = (getattr(event.event, "response", None) or {}).get("id")
        if response_id:
            turn.response_id = response_id
            by_response[response_id] = turn
            self.answers[response_id] = turn
        return True


def _cascade_event(event: Event, turns: list[Turn]) -> None:
    """A cascade stage's mark, on the turn whose speech end it answers (``speech_end_t_ns``)."""
    anchor = _ms(getattr(event, "speech_end_t_ns", 0))
    turn = next((t for t in reversed(turns) if t.vad_speech_end_ms == anchor), None)
    if turn is None:
        return
    t_ms = _ms(event.t_ns)
    if isinstance(event, SttTranscript):
        if event.final and turn.transcript_at_ms is None:
            turn.transcript, turn.transcript_at_ms = event.text, t_ms
            turn.stt_audio_s = round(ms_to_s(event.audio_ms), 3)
    elif isinstance(event, LlmRequest):
        if turn.llm_request_at_ms is None:
            turn.llm_request_at_ms = t_ms
    elif isinstance(event, LlmText):
        if turn.llm_first_text_at_ms is None:
            turn.llm_first_text_at_ms = t_ms
            turn.response_id = turn.response_id or event.response_id
    elif isinstance(event, LlmDone):
        turn.response_done_ms, turn.status = t_ms, event.status
        turn.connection_setup_ms = round(event.connection_setup_ms, 3)
        _usage(turn, event.usage)
    elif isinstance(event, SpeechSynthesised):
        turn.tts_characters = (turn.tts_characters or 0) + event.num_characters
        if event.first and turn.first_audio_received_ms is None:
            turn.first_sentence_at_ms = _ms(event.text_ready_t_ns)
            turn.first_audio_received_ms = t_ms


def _usage(turn: Turn, usage: dict[str, Any] | None) -> None:
    """Token counts of a Responses or Realtime ``usage`` object onto the turn."""
    if not usage:
        return
    details_in = usage.get("input_tokens_details") or usage.get("input_token_details") or {}
    details_out = usage.get("output_tokens_details") or usage.get("output_token_details") or {}
    turn.input_tokens = usage.get("input_tokens")
    turn.output_tokens = usage.get("output_tokens")
    turn.cached_tokens = details_in.get("cached_tokens")
    turn.input_audio_tokens = details_in.get("audio_tokens")
    turn.output_audio_tokens = details_out.get("audio_tokens")


def _silence_ms(body: Any, default: float) -> float:
    session = getattr(body, "session", None) or {}
    detection = ((session.get("audio") or {}).get("input") or {}).get("turn_detection") or session.get("turn_detection")
    if isinstance(detection, dict) and detection.get("silence_duration_ms") is not None:
        return float(detection["silence_duration_ms"])
    return default


def _apply_ground_truth(turns: list[Turn], segments: Sequence[tuple[float, float]],
                        origin: tuple[float, float]) -> None:
    """Replace the VAD's speech end by the labelled one nearest to it (labels are media ms on "input").

    A labelled end within 1 s of the estimate replaces it only if it lies before the answer's first audio
    (an end after the answer started is not this turn's: the VAD cut the utterance short and the answer
    came in the middle of it) and no other turn's estimate is nearer to it; otherwise the estimate is kept
    and ``note`` says why."""
    ends = [origin[0] + end - origin[1] for _, end in segments]
    starts = [origin[0] + start - origin[1] for start, _ in segments]
    nearest: dict[int, tuple[int, float]] = {}  # turn index -> (label, distance)
    for index, turn in enumerate(turns):
        estimate = turn.vad_speech_end_ms if turn.vad_speech_end_ms is not None else turn.user_speech_end_ms
        if estimate is not None and ends:
            label = int(np.argmin([abs(e - estimate) for e in ends]))
            if abs(ends[label] - estimate) <= 1000:
                nearest[index] = (label, abs(ends[label] - estimate))
    for index, (label, _) in nearest.items():
        turn = turns[index]
        kept = f"the {turn.speech_end_source or 'estimated'} end is kept"
        rival = min((i for i, (other, _) in nearest.items() if other == label), key=lambda i: nearest[i][1])
        answer = turn.first_audio_played_ms if turn.first_audio_played_ms is not None else turn.first_audio_received_ms
        if answer is not None and ends[label] >= answer:
            _add_note(turn, f"the labelled end {ends[label]:.1f} ms is after the answer's first audio "
                            f"({answer:.1f} ms): {kept}")
        elif rival != index:
            _add_note(turn, f"the labelled end {ends[label]:.1f} ms is nearer turn {turns[rival].turn}'s: {kept}")
        else:
            turn.user_speech_end_ms = round(ends[label], 3)
            turn.user_speech_start_ms = round(starts[label], 3)
            turn.speech_end_source = "labels"


def stage_table(stages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-stage timing: items, processing time and queue wait percentiles (us), algorithmic latency (ms).

    Processing time is measured for sync stages only (``measured``); elsewhere it is None, not 0."""
    rows = []
    for name, stats in stages.items():
        measured = stats.get("kind") == "sync"  # an async stage's run awaits its input: no time per item
        processing = np.asarray(stats.get("processing_ns", []) if measured else [], np.float64) / NS_PER_US
        waits = np.asarray(stats.get("queue_wait_ns", []), np.float64) / NS_PER_US
        rows.append({
            "stage": name, "kind": stats.get("kind"), "num_items": stats.get("num_items", 0),
            "latency_ms": stats.get("latency_ms"), "measured": measured,
            "processing_p50_us": float(np.percentile(processing, 50)) if processing.size else None,
            "processing_p95_us": float(np.percentile(processing, 95)) if processing.size else None,
            "processing_max_us": float(processing.max()) if processing.size else None,
            "queue_wait_p50_us": float(np.percentile(waits, 50)) if waits.size else None,
            "queue_wait_p95_us": float(np.percentile(waits, 95)) if waits.size else None,
        })
    return rows
