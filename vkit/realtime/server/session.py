"""The server side of one Realtime session, sans I/O: the protocol's state machine.

``ServerSession`` owns the session config, the input buffer, the conversation and the responses under way,
validation and error shaping; it delegates turn detection to ``turns``, what it keeps to ``storage``, and each
response's paced output to ``responses``. It is fed client text with the time it arrived
(``receive_text(text, now_ns)``) and drained of server text (``events_to_send()``). It never waits: what
it needs done outside (a responder's answer, a transcription, a turn judgement) it hands out as ``take_work()``
(``work``), whose results come back through ``reply_ready`` / ``transcription_ready`` / ``turn_judged``; what
must happen later (a response's start after the injected delay, each paced audio delta, ``idle_timeout_ms``,
the session's end) it exposes as ``next_deadline_ns()``, and the I/O layer calls ``on_deadline(now_ns)`` when
that time comes. No sockets, no asyncio, no clock: times are given, so a session is exactly reproducible.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from vkit.filters.turn import Verdict
from vkit.realtime.codec import AUDIO_FORMATS, Dialect, decode_audio, encode_audio
from vkit.realtime.protocol import ClientEventError, ServerProtocol
from vkit.realtime.server import validation as schema
from vkit.realtime.server.options import ResponseRecord, ServerOptions
from vkit.realtime.server.responders import Reply, Turn
from vkit.realtime.server.responses import Outlet, Response
from vkit.realtime.server.storage import Conversation, InputBuffer, StoredItem
from vkit.realtime.server.turns import Boundary, TurnTaking
from vkit.realtime.server.work import ReplyWork, TranscriptionWork, TurnWork, Work
from vkit.realtime.session_config import (
    default_session,
    from_beta,
    input_format_name,
    merge_session,
    output_format_name,
    realtime_session,
    to_beta,
    to_beta_transcription,
    transcription_session,
    turn_detection,
)
from vkit.units import (
    float_to_pcm16,
    ms_to_ns,
    ms_to_samples,
    ns_to_ms,
    pcm16_to_float,
    s_to_ns,
    samples_to_ms,
    samples_to_whole_ms,
)

__all__ = ["ServerSession"]

log = logging.getLogger(__name__)
_MIN_COMMIT_MS = 100


class ServerSession:
    """One client's session: text in with a time, text out, deadlines for the I/O layer."""

    def __init__(self, options: ServerOptions, *, dialect: Dialect = "ga", model: str = "gpt-realtime",
                 now_ns: int = 0, unix_s: float = 0.0, transcription: bool = False) -> None:
        self.options = options
        self.dialect = dialect
        self.protocol = ServerProtocol(dialect)
        self.session = default_session(model, self.protocol.new_id("sess"))
        self.session["expires_at"] = int(unix_s + options.max_session_s)
        if transcription:
            self.session = transcription_session(self.session)
        self.conversation_id = self.protocol.new_id("conv")
        self.buffer = InputBuffer()
        self.conversation = Conversation(options.max_retained_audio_s)
        self.responses: dict[str, Response] = {}
        self.records: list[ResponseRecord] = []
        self.num_errors = 0
        self.num_bad_events = 0  # malformed client events, counted against options.max_bad_events
        self.close_code: int | None = None  # set when the session must end: close the socket with it
        self.close_reason = ""
        self._last_client_ns = now_ns
        self._out: list[str] = []
        self._work: list[Work] = []
        self._expires_ns = now_ns + s_to_ns(options.max_session_s)
        self._turn_taking: TurnTaking | None = None  # built from the turn detection config on the next append
        self._speech_item: str | None = None
        self._speech_start_ms = 0
        self._idle_since: tuple[int, int] | None = (now_ns, 0)  # (time, input position) the idle clock runs from
        self.model = model
        self._outlet = Outlet(self._emit, self.protocol.new_id, dialect, self.conversation_id, self.conversation,
                              lambda: self.session)
        self._emit("session.created", session=self._session_view())
        if dialect == "beta":
            self._emit("conversation.created", conversation={"id": self.conversation_id,
                                                             "object": "realtime.conversation"})

    # -- the I/O layer's interface ----------------------------------------------------------------------

    def receive_text(self, text: str | bytes, now_ns: int) -> None:
        """One client frame, received at ``now_ns``. Every problem is answered with an error event."""
        if self.close_code is not None:
            return
        self._last_client_ns = max(self._last_client_ns, now_ns)
        if isinstance(text, bytes):  # the Realtime API speaks JSON in text frames only
            self._error("invalid_event", "Binary frames are not supported: send each event as a JSON text frame "
                        f"(got a binary frame of {len(text)} bytes).")
            self._count_bad()
            return
        try:
            event = self.protocol.receive(text)
        except ClientEventError as error:
            self.num_errors += 1
            log.info("client event refused: %s", error)
            self._out.append(self.protocol.encode(error.event))
            self._count_bad()
            return
        except RecursionError:  # JSON nested deeper than the parser goes
            self._error("invalid_json", "Invalid event: the JSON is nested too deeply.")
            self._count_bad()
            return
        try:
            getattr(self, "_on_" + event.type.replace(".", "_"))(event, now_ns)
        except schema.Invalid as invalid:
            self._error(invalid.code, str(invalid), param=invalid.param, event_id=event.event_id)
            if invalid.malformed:
                self._count_bad()
        except Exception as exc:  # noqa: BLE001 - a bug here is ours: report it, log it, keep the session
            log.exception("the server failed on a %s event", event.type)
            self._error("server_error", f"The server had an error while processing your request: "
                        f"{type(exc).__name__}.", event_id=event.event_id, error_type="server_error")

    def refuse_frame(self, num_bytes: int, limit_bytes: int) -> None:
        """A frame the I/O layer would not parse (over its size limit): an error event, the session lives."""
        self._error("message_too_large", f"The message is too large: the limit is {limit_bytes} bytes "
                    f"(got {num_bytes}).")
        self._count_bad()

    def end(self, code: str, message: str, close_code: int, close_reason: str) -> None:
        """End the session from outside (the I/O layer saw the connection fail): an error event if the
        socket can still carry one, a log line, and ``close_code`` for the I/O layer to close with."""
        if self.close_code is not None:
            return
        self._error(code, message)
        log.warning("ending the session: %s", message)
        self._close(close_code, close_reason)

    def _count_bad(self) -> None:
        """One more malformed client event; past ``max_bad_events`` the session ends."""
        self.num_bad_events += 1
        limit = self.options.max_bad_events
        if limit is not None and self.num_bad_events > limit and self.close_code is None:
            self.end("too_many_bad_events", f"The session was closed after {self.num_bad_events} malformed "
                     f"client events, more than the server's limit of {limit}.", 1008, "too many bad events")

    def events_to_send(self) -> list[str]:
        """The server text produced since the last call, in order."""
        out, self._out = self._out, []
        return out

    def take_work(self) -> list[Work]:
        """Answers, transcriptions and turn judgements to compute outside the session (each result comes back
        by its id)."""
        work, self._work = self._work, []
        return work

    def next_deadline_ns(self) -> int | None:
        """When ``on_deadline`` must next be called (None: nothing is scheduled)."""
        if self.close_code is not None:
            return None
        times = [self._expires_ns]
        reap = self._reap_deadline_ns()
        if reap is not None:
            times.append(reap)
        idle = self._idle_deadline_ns()
        if idle is not None:
            times.append(idle)
        times += [r.steps[0][0] for r in self.responses.values() if r.steps]
        return min(times)

    def on_deadline(self, now_ns: int) -> None:
        """Do what is due at ``now_ns``: paced output, an idle timeout, the session's end."""
        if self.close_code is not None:
            return
        if now_ns >= self._expires_ns:
            minutes = self.options.max_session_s / 60
            self._error("session_expired", f"Your session hit the maximum duration of {minutes:g} minutes.")
            self._close(1000, "session expired")
            return
        reap = self._reap_deadline_ns()
        if reap is not None and now_ns >= reap:
            idle_s = self.options.idle_reap_s
            self._error("session_idle", f"The session was closed after {idle_s:g} s with no client event and no "
                        "response in progress.")
            self._close(1000, "session idle")
            return
        idle = self._idle_deadline_ns()
        if idle is not None and now_ns >= idle:
            self._idle_timeout(now_ns)
        for response in list(self.responses.values()):
            while response.steps and response.steps[0][0] <= now_ns and response.record.response_id in self.responses:
                _, step = response.steps.popleft()
                step(now_ns)

    def reply_ready(self, response_id: str, reply: Reply, now_ns: int) -> None:
        """The responder's answer for ``response_id`` (ignored if that response has ended meanwhile)."""
        response = self.responses.get(response_id)
        if response is None:
            return
        record = response.record
        record.processing_ms = ns_to_ms(now_ns - response.requested_ns)
        record.injected_delay_ms = self.options.delay.draw_ms()
        start_ns = now_ns + ms_to_ns(record.injected_delay_ms)
        response.plan(reply, start_ns, self.options.frame_ms, self.options.output_pace,
                      lambda now: self._finish(response, "completed", None, now))

    def reply_failed(self, response_id: str, message: str, now_ns: int) -> None:
        """The responder raised: the response ends ``failed``."""
        response = self.responses.get(response_id)
        if response is not None:
            self._finish(response, "failed", None, now_ns, error={"type": "server_error", "code": "responder_failed",
                                                                    "message": message})

    def transcription_ready(self, item_id: str, text: str, now_ns: int) -> None:
        """What the user said in ``item_id``: transcription deltas (one per word), then completed."""
        stored = self.items.get(item_id)
        seconds = 0.0
        if stored is not None:
            stored.transcript = text
            rate = AUDIO_FORMATS[stored.audio_format][0]
            seconds = round(stored.audio.size / rate, 3) if stored.audio is not None else 0.0
            for part in stored.data.get("content", []):
                if part.get("type") == "input_audio":
                    part["transcript"] = text
        words = text.split(" ") if text else [""]
        for index, word in enumerate(words):
            self._emit("conversation.item.input_audio_transcription.delta", item_id=item_id, content_index=0,
                       delta=word if index == 0 else " " + word)
        self._emit("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                   transcript=text, usage={"type": "duration", "seconds": seconds})

    # -- helpers ---------------------------------------------------------------------------------------

    @property
    def is_transcription(self) -> bool:
        return self.session.get("type") == "transcription"

    @property
    def active(self) -> Response | None:
        """The response writing to the default conversation, if any."""
        return next((r for r in self.responses.values() if r.in_conversation), None)

    @property
    def items(self) -> dict[str, StoredItem]:
        """The conversation's items by id (in ``order``)."""
        return self.conversation.items

    @property
    def order(self) -> list[str]:
        return self.conversation.order

    def _emit(self, wire_type: str, **fields: Any) -> None:
        self._out.append(self.protocol.encode(self.protocol.event(wire_type, **fields)))

    def _error(self, code: str, message: str, *, param: str | None = None, event_id: str | None = None,
               error_type: str = "invalid_request_error") -> None:
        self.num_errors += 1
        log.info("error event %s (param %s): %s", code, param, message)
        self._out.append(self.protocol.encode(self.protocol.error(code, message, param=param, event_id=event_id,
                                                                  error_type=error_type)))

    def _session_view(self) -> dict[str, Any]:
        if self.dialect == "beta":
            return to_beta_transcription(self.session) if self.is_transcription else to_beta(self.session)
        return self.session

    def _input_rate(self) -> int:
        return AUDIO_FORMATS[input_format_name(self.session)][0]

    def _item_added(self, item: dict[str, Any], previous: str | None) -> None:
        if self.dialect == "beta":
            self._emit("conversation.item.created", item=item, previous_item_id=previous)
        else:
            self._emit("conversation.item.added", item=item, previous_item_id=previous)
            self._emit("conversation.item.done", item=item, previous_item_id=previous)

    # -- session ----------------------------------------------------------------------------------------

    def _on_session_update(self, event: Any, now_ns: int) -> None:
        update = event.session
        if self.dialect == "beta":
            schema.check(schema.BETA_SESSION, update, "session")
            update = from_beta(update)
        else:
            if not isinstance(update, dict):
                raise schema.Invalid("invalid_type", "session", "Invalid type for 'session': expected an object, but "
                                     f"got {'null' if update is None else type(update).__name__} instead.")
            kind = update.get("type")
            if kind is None:
                raise schema.Invalid("missing_required_parameter", "session.type",
                                     "Missing required parameter: 'session.type'.")
            schema.check(schema.TRANSCRIPTION_SESSION if kind == "transcription" else schema.SESSION, update, "session")
            if self.is_transcription != (kind == "transcription") and self._has_history():
                raise schema.Invalid("invalid_value", "session.type", f"Invalid value: '{kind}'. A session's type "
                                     "cannot change once it has audio or items.")
        update = {k: v for k, v in update.items() if k not in ("id", "object", "expires_at")}
        if "model" in update and update["model"] != self.session.get("model"):
            update.pop("model")  # the model cannot change after connect
        voice = ((update.get("audio") or {}).get("output") or {}).get("voice")
        if voice is not None and self._outlet.audio_started and voice != self.session["audio"]["output"]["voice"]:
            raise schema.Invalid("cannot_update_voice", "session.audio.output.voice", "Cannot update a "
                                 "conversation's voice if assistant audio is present.")
        self._update(update)
        self._emit("session.updated", session=self._session_view())

    def _has_history(self) -> bool:
        return bool(self.order) or self.buffer.end_sample > 0

    def _update(self, update: dict[str, Any]) -> None:
        base = realtime_session(self.session, self.model) if update.get("type") == "realtime" and self.is_transcription else self.session
        merged = merge_session(base, update)
        self.session = transcription_session(merged) if merged.get("type") == "transcription" else merged
        self._turn_taking = None  # rebuilt for the new turn detection on the next append

    def _on_transcription_session_update(self, event: Any, now_ns: int) -> None:
        schema.check(schema.BETA_TRANSCRIPTION_SESSION, event.session, "session")
        update = from_beta({k: v for k, v in event.session.items() if k not in ("modalities", "include")})
        self._update({**update, "type": "transcription"})
        self._emit("transcription_session.updated", session=to_beta_transcription(self.session))

    # -- input audio -----------------------------------------------------------------------------------

    def _on_input_audio_buffer_append(self, event: Any, now_ns: int) -> None:
        audio = _client_audio(event.audio, input_format_name(self.session), "audio")
        rate = self._input_rate()
        if self.buffer.num_samples + audio.size > rate * self.options.max_input_buffer_s:
            raise schema.Invalid("invalid_value", "audio", "Invalid 'audio': the input audio buffer would exceed "
                                 f"its limit of {self.options.max_input_buffer_s:g} s; commit or clear it first.")
        position = self.buffer.end_sample
        self.buffer.append(float_to_pcm16(audio))
        detection = turn_detection(self.session)
        if detection is not None and audio.size:
            self._detect(detection, audio, position, now_ns)

    def _detect(self, detection: dict[str, Any], audio: np.ndarray, position: int, now_ns: int) -> None:
        """Turn detection on the appended audio; a ``semantic_vad`` pause is judged off the event loop
        (``TurnWork``)."""
        if self._turn_taking is None:
            self._turn_taking = TurnTaking(detection, self.options.turn_detector)
        boundaries, work = self._turn_taking.process(audio, self._input_rate(), position)
        if work is not None:
            self._work.append(work)
        self._detected(detection, boundaries, now_ns)

    def turn_judged(self, work: TurnWork, verdict: Verdict, now_ns: int) -> None:
        """The verdict on a ``semantic_vad`` pause (ignored when the session's turn detection changed since)."""
        detection = turn_detection(self.session)
        if self._turn_taking is None or detection is None or self.close_code is not None:
            return
        self._detected(detection, self._turn_taking.judged(work, verdict), now_ns)

    def _detected(self, detection: dict[str, Any], boundaries: list[Boundary], now_ns: int) -> None:
        rate = self._input_rate()
        for started, sample in boundaries:
            if started:
                self._speech_started(detection, samples_to_whole_ms(sample, rate), now_ns)
            else:
                self._speech_stopped(detection, samples_to_whole_ms(sample, rate), now_ns)

    def _speech_started(self, detection: dict[str, Any], start_ms: int, now_ns: int) -> None:
        prefix_ms = detection.get("prefix_padding_ms") or 0
        self._speech_item = self.protocol.new_id("item")
        self._speech_start_ms = max(0, start_ms - prefix_ms)
        self._idle_since = None
        self._emit("input_audio_buffer.speech_started", audio_start_ms=self._speech_start_ms, item_id=self._speech_item)
        active = self.active
        if active is not None and detection.get("interrupt_response", True) and not self.is_transcription:
            self._finish(active, "cancelled", "turn_detected", now_ns)

    def _speech_stopped(self, detection: dict[str, Any], end_ms: int, now_ns: int) -> None:
        item_id = self._speech_item or self.protocol.new_id("item")
        self._speech_item = None
        self._emit("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id)
        buffer_start = self.buffer.start_sample
        audio = self._commit(item_id)
        speech = audio[max(0, ms_to_samples(self._speech_start_ms, self._input_rate()) - buffer_start):]
        self._idle_since = (now_ns, self.buffer.end_sample)
        if detection.get("create_response", True) and self.active is None and not self.is_transcription:
            self._create_response("speech_stopped", now_ns, {}, speech)

    def _commit(self, item_id: str) -> np.ndarray:
        """Commit the input buffer as a user item; return its audio as float32 (for a response or a transcription)."""
        pcm = self.buffer.take()
        audio = pcm16_to_float(pcm)
        previous = self.order[-1] if self.order else None
        self._emit("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}
        self.conversation.add(StoredItem(item, pcm, input_format_name(self.session)))
        if not self.is_transcription:
            self._item_added(item, previous)
        if self.session["audio"]["input"].get("transcription") is not None or self.is_transcription:
            self._work.append(TranscriptionWork(item_id, audio, self._input_rate()))
        return audio

    def _on_input_audio_buffer_commit(self, event: Any, now_ns: int) -> None:
        buffered_ms = samples_to_ms(self.buffer.num_samples, self._input_rate())
        if buffered_ms < _MIN_COMMIT_MS:
            raise schema.Invalid("input_audio_buffer_commit_empty", None, "Error committing input audio buffer: "  # type: ignore[arg-type]
                                 f"buffer too small. Expected at least {_MIN_COMMIT_MS}ms of audio, but buffer only "
                                 f"has {buffered_ms:.2f}ms of audio.")
        self._commit(self._speech_item or self.protocol.new_id("item"))
        self._speech_item = None

    def _on_input_audio_buffer_clear(self, event: Any, now_ns: int) -> None:
        self.buffer.take()
        self._emit("input_audio_buffer.cleared")

    def _on_output_audio_buffer_clear(self, event: Any, now_ns: int) -> None:
        raise schema.Invalid("invalid_value", "type", "output_audio_buffer.clear is only supported for WebRTC and "
                             "SIP connections.")

    def _reap_deadline_ns(self) -> int | None:
        """When the session is reaped for want of client traffic (never while a response is under way)."""
        if self.options.idle_reap_s is None or self.responses:
            return None
        return self._last_client_ns + s_to_ns(self.options.idle_reap_s)

    def _close(self, code: int, reason: str) -> None:
        """End the session: the I/O layer sends what is queued (the error first), then closes with ``code``."""
        log.info("closing the session (%d, %s)", code, reason)
        self.close_code, self.close_reason = code, reason

    def _idle_deadline_ns(self) -> int | None:
        detection = turn_detection(self.session)
        timeout_ms = (detection or {}).get("idle_timeout_ms")
        if not timeout_ms or self._idle_since is None or self.active is not None or self.is_transcription:
            return None
        return self._idle_since[0] + ms_to_ns(timeout_ms)

    def _idle_timeout(self, now_ns: int) -> None:
        """No speech for ``idle_timeout_ms``: say so, commit what was heard (silence) and answer it."""
        assert self._idle_since is not None
        rate = self._input_rate()
        start_ms = int(samples_to_ms(max(self._idle_since[1], self.buffer.start_sample), rate))
        end_ms = int(samples_to_ms(self.buffer.end_sample, rate))
        item_id = self.protocol.new_id("item")
        self._emit("input_audio_buffer.timeout_triggered", audio_start_ms=start_ms, audio_end_ms=end_ms, item_id=item_id)
        audio = self._commit(item_id)
        self._idle_since = None  # restarts when this response has played
        self._create_response("idle_timeout", now_ns, {}, audio)

    # -- conversation ------------------------------------------------------------------------------------

    def _on_conversation_item_create(self, event: Any, now_ns: int) -> None:
        item = event.item
        schema.check(schema.ITEM, item, "item")
        item = json.loads(json.dumps(item))
        if item["type"] == "function_call_output":
            self._check_call_id(item["call_id"])
        if "id" in item and item["id"] in self.items:
            raise schema.Invalid("invalid_value", "item.id", f"Invalid value: '{item['id']}'. An item with this id "
                                 "already exists.")
        previous = event.previous_item_id
        if previous is not None and previous != "root" and previous not in self.items:
            raise schema.Invalid("invalid_value", "previous_item_id", f"Invalid value: '{previous}'. No item with "
                                 "this id is in the conversation.")
        item.setdefault("id", self.protocol.new_id("item"))
        item["object"], item["status"] = "realtime.item", item.get("status", "completed")
        audio, transcript = None, ""
        audio_format = output_format_name(self.session) if item.get("role") == "assistant" else input_format_name(
            self.session)  # a client's assistant audio is in the format it would have arrived in
        for part in item.get("content", []):
            if part.get("type") in ("input_audio", "output_audio", "audio") and part.get("audio"):
                audio = _client_audio(part.pop("audio"), audio_format, "item.content.audio")
                transcript = part.get("transcript") or ""
            if part.get("type") == "input_audio":
                part.setdefault("transcript", None)
        pcm = float_to_pcm16(audio) if audio is not None else None
        before = self.conversation.add(StoredItem(item, pcm, audio_format, transcript),
                                       None if previous == "root" else previous)
        self._item_added(item, before if previous != "root" else None)

    def _check_call_id(self, call_id: str) -> None:
        calls = {i.data.get("call_id") for i in self.items.values() if i.data.get("type") == "function_call"}
        if call_id not in calls:
            raise schema.Invalid("invalid_value", "item.call_id", f"Invalid value: '{call_id}'. No tool call found "
                                 "for function call output with this call_id.")

    def _on_conversation_item_retrieve(self, event: Any, now_ns: int) -> None:
        stored = self.items.get(event.item_id)
        if stored is None:
            raise schema.Invalid("item_retrieve_invalid_item_id", "item_id", f"Item with item_id not found: "
                                 f"{event.item_id}")
        item = json.loads(json.dumps(stored.data))
        if stored.audio is not None:
            for part in item.get("content", []):
                if part.get("type") in ("input_audio", "output_audio", "audio"):
                    part["audio"] = encode_audio(pcm16_to_float(stored.audio), stored.audio_format)
        self._emit("conversation.item.retrieved", item=item)

    def _on_conversation_item_truncate(self, event: Any, now_ns: int) -> None:
        stored = self.items.get(event.item_id)
        if stored is None or stored.data.get("role") != "assistant":
            raise schema.Invalid("item_truncate_invalid_item_id", "item_id", f"Assistant item with item_id not found: "
                                 f"{event.item_id}")
        rate = AUDIO_FORMATS[stored.audio_format][0]
        audio = stored.audio if stored.audio is not None else np.zeros(0, np.int16)
        audio_ms = samples_to_ms(audio.size, rate)
        if event.audio_end_ms < 0 or event.audio_end_ms > audio_ms + 1e-6:
            raise schema.Invalid("invalid_value", "audio_end_ms", f"Audio content of {audio_ms:.0f}ms is already "
                                 f"shorter than {event.audio_end_ms}ms")
        stored.audio = audio[: ms_to_samples(event.audio_end_ms, rate)].copy()  # not a view holding the rest
        stored.transcript = ""
        for part in stored.data.get("content", []):
            if "transcript" in part:
                part["transcript"] = ""
        self._emit("conversation.item.truncated", item_id=event.item_id, content_index=event.content_index,
                   audio_end_ms=event.audio_end_ms)

    def _on_conversation_item_delete(self, event: Any, now_ns: int) -> None:
        if self.items.pop(event.item_id, None) is None:
            raise schema.Invalid("item_delete_invalid_item_id", "item_id", f"Item with item_id not found: "
                                 f"{event.item_id}")
        self.order.remove(event.item_id)
        self._emit("conversation.item.deleted", item_id=event.item_id)

    # -- responses ---------------------------------------------------------------------------------------

    def _on_response_create(self, event: Any, now_ns: int) -> None:
        if self.is_transcription:
            raise schema.Invalid("invalid_value", "type", "Invalid value: 'response.create'. Transcription sessions "
                                 "do not create responses.")
        overrides = event.response or {}
        schema.check(schema.BETA_RESPONSE if self.dialect == "beta" else schema.RESPONSE, overrides, "response")
        overrides = {k: v for k, v in overrides.items() if v is not None}  # null: the session's setting
        in_conversation = overrides.get("conversation", "auto") != "none"
        active = self.active
        if in_conversation and active is not None:
            raise schema.Invalid("conversation_already_has_active_response", None, "Conversation already has an "  # type: ignore[arg-type]
                                 f"active response in progress: {active.record.response_id}. Wait until the response "
                                 "is finished before creating a new one.")
        context = self._context(overrides)
        self._create_response("response.create", now_ns, overrides, None, context=context)

    def _context(self, overrides: dict[str, Any]) -> list[str]:
        """The item ids a response answers: its ``input`` (stored as out-of-band items) or the conversation."""
        if "input" not in overrides:
            return list(self.order)
        ids = []
        for index, item in enumerate(overrides["input"]):
            if item["type"] == "item_reference":
                if item["id"] not in self.items:
                    raise schema.Invalid("invalid_value", f"response.input[{index}].id", f"Invalid value: "
                                         f"'{item['id']}'. No item with this id is in the conversation.")
                ids.append(item["id"])
                continue
            item = json.loads(json.dumps(item))
            item.setdefault("id", self.protocol.new_id("item"))
            audio = None
            for part in item.get("content", []):
                if part.get("type") == "input_audio" and part.get("audio"):
                    audio = _client_audio(part.pop("audio"), input_format_name(self.session),
                                          f"response.input[{index}].content.audio")
            pcm = float_to_pcm16(audio) if audio is not None else None
            self.conversation.out_of_band[item["id"]] = StoredItem(item, pcm, input_format_name(self.session))
            ids.append(item["id"])
        return ids

    def _on_response_cancel(self, event: Any, now_ns: int) -> None:
        response = self.responses.get(event.response_id) if event.response_id else self.active
        if response is None:
            raise schema.Invalid("response_cancel_not_active", None, "Cancellation failed: no active response found")  # type: ignore[arg-type]
        self._finish(response, "cancelled", "client_cancelled", now_ns)

    def _create_response(self, trigger: str, now_ns: int, overrides: dict[str, Any], audio: np.ndarray | None,
                         context: list[str] | None = None) -> None:
        record = ResponseRecord(self.protocol.new_id("resp"), trigger)
        if self.dialect == "beta" and "modalities" in overrides:
            modalities = ["audio"] if "audio" in overrides["modalities"] else ["text"]
        else:
            modalities = list(overrides.get("output_modalities") or self.session.get("output_modalities") or ["audio"])
        metadata = {**(overrides.get("metadata") or {}), "vkit_trigger": trigger}
        response = Response(self._outlet, record, now_ns, overrides.get("conversation", "auto") != "none", modalities,
                            metadata, overrides, context if context is not None else list(self.order),
                            requested_ns=now_ns, after_item=self.order[-1] if self.order else None)
        self.responses[record.response_id] = response
        self.records.append(record)
        turn = response.turn(audio)
        delay_ns = ms_to_ns(self.options.created_delay_ms)
        if delay_ns > 0:
            response.steps.append((now_ns + delay_ns, lambda now: self._announce(response, turn, now)))
        else:
            self._announce(response, turn, now_ns)

    def _announce(self, response: Response, turn: Turn | None, now_ns: int) -> None:
        """``response.created``, then the answer is asked for (None: the response ended before its answer)."""
        response.announced = True
        self._emit("response.created", response=response.wire("in_progress"))
        self._emit("rate_limits.updated", rate_limits=[
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5}])
        if turn is not None:
            response.requested_ns = now_ns  # the responder's processing counts from here
            self._work.append(ReplyWork(response.record.response_id, turn))

    def _finish(self, response: Response, status: str, reason: str | None, now_ns: int,
                error: dict[str, Any] | None = None) -> None:
        """End a response: close its open item (incomplete unless completed) and send ``response.done``."""
        rid = response.record.response_id
        if rid not in self.responses:
            return
        response.steps.clear()
        if not response.announced:  # ended before it was announced: announced now, so that it can end
            self._announce(response, None, now_ns)
        response.close_message("completed" if status == "completed" else "incomplete")
        del self.responses[rid]
        response.record.status = status
        response.record.audio_ms = response.output_audio_ms
        self._emit("response.done", response=response.wire(status, reason, response.usage(), error))
        if response.in_conversation:
            playback_ns = response.trigger_ns + ms_to_ns((response.record.first_audio_after_trigger_ms or 0)
                                                         + response.output_audio_ms)
            self._idle_since = (max(now_ns, playback_ns), self.buffer.end_sample)
        for item_id in response.context:
            self.conversation.out_of_band.pop(item_id, None)


def _client_audio(text: Any, audio_format: str, param: str) -> np.ndarray:
    """A client's base64 audio decoded; anything else is a malformed event (``schema.Invalid``)."""
    try:
        return decode_audio(text, audio_format)
    except Exception as exc:  # noqa: BLE001 - the peer's garbage: report it, keep the session
        raise schema.Invalid("invalid_value", param, f"Invalid '{param}': {exc}", malformed=True) from None
