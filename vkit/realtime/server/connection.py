"""One client connection to the local server: the session, the input buffer, server VAD, responses."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from websockets.exceptions import ConnectionClosed

from vkit.frames import AudioFrame, SpeechStarted, SpeechStopped
from vkit.realtime import events as ev
from vkit.realtime.codec import AUDIO_FORMATS, decode_audio, encode_audio
from vkit.realtime.protocol import ClientEventError, ServerProtocol
from vkit.realtime.session_config import (
    default_session,
    from_beta,
    input_format_name,
    merge_session,
    output_format_name,
    to_beta,
    turn_detection,
)

if TYPE_CHECKING:
    from vkit.realtime.server.app import LocalServer

_EAGERNESS_SILENCE_MS = {"low": 1200, "medium": 600, "auto": 600, "high": 250}
_MIN_COMMIT_MS = 100


@dataclass
class ResponseRecord:
    """The server's own account of one response: the truth a client's measurements are checked against."""

    response_id: str
    trigger: str  # "speech_stopped" or "response.create"
    injected_delay_ms: float = 0.0
    processing_ms: float = 0.0
    first_audio_after_trigger_ms: float | None = None
    status: str = "in_progress"
    audio_ms: float = 0.0


@dataclass
class _ActiveResponse:
    record: ResponseRecord
    task: asyncio.Task[None]
    item_id: str
    sent_samples: int = 0
    cancelled_reason: str | None = None


@dataclass
class _Item:
    data: dict[str, Any]
    audio: np.ndarray | None = None  # at the session's format rate
    transcript: str = ""


@dataclass
class _Buffer:
    chunks: list[np.ndarray] = field(default_factory=list)
    num_samples: int = 0
    start_sample: int = 0  # position of the buffer's first sample on the appended-audio timeline

    def take(self) -> np.ndarray:
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        self.start_sample += self.num_samples
        self.chunks, self.num_samples = [], 0
        return audio


class Connection:
    """Speaks the server side of the protocol to one client."""

    def __init__(self, server: LocalServer, websocket: Any, dialect: str, model: str) -> None:
        self.server = server
        self.websocket = websocket
        self.dialect = dialect
        self.protocol = ServerProtocol(dialect)  # type: ignore[arg-type]
        self.session = default_session(model, self.protocol.new_id("sess"))
        self.session["expires_at"] = int(time.time() + server.max_session_s)
        self.buffer = _Buffer()
        self.items: dict[str, _Item] = {}
        self.order: list[str] = []
        self.response: _ActiveResponse | None = None
        self.records: list[ResponseRecord] = []
        self.num_errors = 0
        self._vad: Any = None
        self._speech_item: str | None = None
        self._speech_start_ms = 0
        self._audio_started = False
        self._send_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    # -- the connection's life ------------------------------------------------------------------------

    async def run(self) -> None:
        await self.send("session.created", session=self._session_view())
        if self.dialect == "beta":
            await self.send("conversation.created", conversation={"id": self.protocol.new_id("conv"),
                                                                  "object": "realtime.conversation"})
        expiry = asyncio.ensure_future(self._expire())
        try:
            async for message in self.websocket:
                await self.handle(message)
        finally:
            expiry.cancel()
            for task in self._background:
                task.cancel()
            if self.response is not None:
                self.response.task.cancel()

    async def _expire(self) -> None:
        await asyncio.sleep(self.server.max_session_s)
        minutes = self.server.max_session_s / 60
        await self.send_error("session_expired", f"Your session hit the maximum duration of {minutes:g} minutes.")
        await self.websocket.close(1000, "session expired")

    async def send(self, wire_type: str, **fields: Any) -> ev.ServerEvent:
        event = self.protocol.event(wire_type, **fields)
        await self.send_event(event)
        return event

    async def send_event(self, event: ev.ServerEvent) -> None:
        async with self._send_lock:
            await self.websocket.send(self.protocol.encode(event))

    async def send_error(self, code: str, message: str, *, param: str | None = None, event_id: str | None = None,
                         error_type: str = "invalid_request_error") -> None:
        self.num_errors += 1
        await self.send_event(self.protocol.error(code, message, param=param, event_id=event_id, error_type=error_type))

    # -- client events --------------------------------------------------------------------------------

    async def handle(self, message: str | bytes) -> None:
        try:
            event = self.protocol.receive(message)
        except ClientEventError as error:
            self.num_errors += 1
            await self.send_event(error.event)
            return
        handler = getattr(self, "_on_" + event.type.replace(".", "_"))
        await handler(event)

    async def _on_session_update(self, event: Any) -> None:
        update = event.session
        if self.dialect == "beta":
            update = from_beta(update)
        elif update.get("type") not in ("realtime", "transcription"):
            await self.send_error("missing_required_parameter", "Missing required parameter: 'session.type'.",
                                  param="session.type", event_id=event.event_id)
            return
        update = {k: v for k, v in update.items() if k not in ("id", "object", "expires_at")}
        if "model" in update and update["model"] != self.session["model"]:
            update.pop("model")
        audio_out = (update.get("audio") or {}).get("output") or {}
        if "voice" in audio_out and self._audio_started and audio_out["voice"] != self.session["audio"]["output"]["voice"]:
            await self.send_error("cannot_update_voice", "Cannot update a conversation's voice if assistant audio "
                                  "is present.", param="session.audio.output.voice", event_id=event.event_id)
            return
        candidate = merge_session(self.session, update)
        problem = _check_session(candidate)
        if problem is not None:
            param, message = problem
            await self.send_error("invalid_value", message, param=param, event_id=event.event_id)
            return
        self.session = candidate
        self._vad = None  # rebuilt for the new turn detection on the next append
        await self.send("session.updated", session=self._session_view())

    async def _on_transcription_session_update(self, event: Any) -> None:
        self.session = merge_session(self.session, from_beta(event.session))
        await self.send("transcription_session.updated", session=to_beta(self.session))

    def _session_view(self) -> dict[str, Any]:
        return to_beta(self.session) if self.dialect == "beta" else self.session

    async def _on_input_audio_buffer_append(self, event: Any) -> None:
        try:
            audio = decode_audio(event.audio, input_format_name(self.session))
        except Exception as exc:  # the peer's garbage: report it, keep the session
            await self.send_error("invalid_value", f"Invalid 'audio': {exc}", param="audio", event_id=event.event_id)
            return
        position = self.buffer.start_sample + self.buffer.num_samples
        self.buffer.chunks.append(audio)
        self.buffer.num_samples += audio.size
        detection = turn_detection(self.session)
        if detection is not None:
            await self._detect(detection, audio, position)

    async def _detect(self, detection: dict[str, Any], audio: np.ndarray, position: int) -> None:
        rate = AUDIO_FORMATS[input_format_name(self.session)][0]
        if self._vad is None:
            from vkit.filters import VAD

            silence_ms = detection.get("silence_duration_ms") or _EAGERNESS_SILENCE_MS.get(detection.get("eagerness", "auto"), 600)
            self._vad = VAD("silero", threshold=float(detection.get("threshold") or 0.5), min_speech_ms=100,
                            min_silence_ms=silence_ms, speech_pad_ms=0, emit_scores=False)
        result = self._vad.process(AudioFrame.mono(audio, rate, start_sample=position))
        for item in result if isinstance(result, list) else ():
            if isinstance(item, SpeechStarted):
                await self._speech_started(detection, item.sample * 1000 // rate)
            elif isinstance(item, SpeechStopped):
                await self._speech_stopped(detection, (position + audio.size) * 1000 // rate)

    async def _speech_started(self, detection: dict[str, Any], start_ms: int) -> None:
        prefix_ms = detection.get("prefix_padding_ms") or 0
        self._speech_item = self.protocol.new_id("item")
        self._speech_start_ms = max(0, start_ms - prefix_ms)
        await self.send("input_audio_buffer.speech_started", audio_start_ms=self._speech_start_ms,
                        item_id=self._speech_item)
        if self.response is not None and detection.get("interrupt_response", True):
            await self._cancel("turn_detected")

    async def _speech_stopped(self, detection: dict[str, Any], end_ms: int) -> None:
        item_id = self._speech_item or self.protocol.new_id("item")
        self._speech_item = None
        stopped_at = time.monotonic()
        await self.send("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id)
        audio = await self._commit(item_id)
        if detection.get("create_response", True) and self.response is None:
            rate = AUDIO_FORMATS[input_format_name(self.session)][0]
            speech = audio[max(0, self._speech_start_ms * rate // 1000 - (self.buffer.start_sample - audio.size)):]
            self._start_response(speech, "speech_stopped", stopped_at, {})

    async def _commit(self, item_id: str) -> np.ndarray:
        audio = self.buffer.take()
        previous = self.order[-1] if self.order else None
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}
        self.items[item_id] = _Item(item, audio)
        self.order.append(item_id)
        await self.send("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)
        await self._item_added(item, previous)
        if (self.session["audio"]["input"].get("transcription")) is not None:
            task = asyncio.ensure_future(self._transcribe(item_id, audio))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return audio

    async def _item_added(self, item: dict[str, Any], previous: str | None) -> None:
        if self.dialect == "beta":
            await self.send("conversation.item.created", item=item, previous_item_id=previous)
        else:
            await self.send("conversation.item.added", item=item, previous_item_id=previous)
            await self.send("conversation.item.done", item=item, previous_item_id=previous)

    async def _transcribe(self, item_id: str, audio: np.ndarray) -> None:
        transcribe = getattr(self.server.responder, "transcribe", None)
        rate = AUDIO_FORMATS[input_format_name(self.session)][0]
        text = (await asyncio.get_running_loop().run_in_executor(None, transcribe, audio, rate)) if transcribe else ""
        if item_id in self.items:
            self.items[item_id].transcript = text
        try:
            await self.send("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                            transcript=text, usage={"type": "duration", "seconds": round(audio.size / rate, 3)})
        except ConnectionClosed:
            pass  # the client left before its transcript was ready

    async def _on_input_audio_buffer_commit(self, event: Any) -> None:
        rate = AUDIO_FORMATS[input_format_name(self.session)][0]
        buffered_ms = self.buffer.num_samples * 1000 / rate
        if buffered_ms < _MIN_COMMIT_MS:
            await self.send_error("input_audio_buffer_commit_empty", "Error committing input audio buffer: buffer too "
                                  f"small. Expected at least {_MIN_COMMIT_MS}ms of audio, but buffer only has "
                                  f"{buffered_ms:.2f}ms of audio.", event_id=event.event_id)
            return
        await self._commit(self.protocol.new_id("item"))

    async def _on_input_audio_buffer_clear(self, event: Any) -> None:
        self.buffer.take()
        await self.send("input_audio_buffer.cleared")

    async def _on_output_audio_buffer_clear(self, event: Any) -> None:
        await self.send_error("invalid_value", "output_audio_buffer.clear is only supported for WebRTC and SIP "
                              "connections.", param="type", event_id=event.event_id)

    async def _on_conversation_item_create(self, event: Any) -> None:
        item = dict(event.item)
        if item.get("type") not in ("message", "function_call", "function_call_output"):
            await self.send_error("invalid_value", f"Invalid value: '{item.get('type')}'. Supported values are: "
                                  "'message', 'function_call' and 'function_call_output'.", param="item.type",
                                  event_id=event.event_id)
            return
        item.setdefault("id", self.protocol.new_id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        previous = event.previous_item_id or (self.order[-1] if self.order else None)
        self.items[item["id"]] = _Item(item)
        self.order.append(item["id"])
        await self._item_added(item, previous)

    async def _on_conversation_item_retrieve(self, event: Any) -> None:
        stored = self.items.get(event.item_id)
        if stored is None:
            await self.send_error("item_retrieve_invalid_item_id", f"Item with item_id not found: {event.item_id}",
                                  param="item_id", event_id=event.event_id)
            return
        item = dict(stored.data)
        if stored.audio is not None:
            kind = "input_audio" if item.get("role") == "user" else "audio" if self.dialect == "beta" else "output_audio"
            item["content"] = [{"type": kind, "audio": encode_audio(stored.audio, input_format_name(self.session)),
                                "transcript": stored.transcript or None}]
        await self.send("conversation.item.retrieved", item=item)

    async def _on_conversation_item_truncate(self, event: Any) -> None:
        stored = self.items.get(event.item_id)
        if stored is None or stored.data.get("role") != "assistant":
            await self.send_error("item_truncate_invalid_item_id", f"Assistant item with item_id not found: "
                                  f"{event.item_id}", param="item_id", event_id=event.event_id)
            return
        rate = AUDIO_FORMATS[output_format_name(self.session)][0]
        audio = stored.audio if stored.audio is not None else np.zeros(0, np.float32)
        audio_ms = audio.size * 1000 / rate
        if event.audio_end_ms < 0 or event.audio_end_ms > audio_ms:
            await self.send_error("invalid_value", f"Audio content of {audio_ms:.0f}ms is already shorter than "
                                  f"{event.audio_end_ms}ms", param="audio_end_ms", event_id=event.event_id)
            return
        stored.audio = audio[: event.audio_end_ms * rate // 1000]
        stored.transcript = ""
        await self.send("conversation.item.truncated", item_id=event.item_id, content_index=event.content_index,
                        audio_end_ms=event.audio_end_ms)

    async def _on_conversation_item_delete(self, event: Any) -> None:
        if self.items.pop(event.item_id, None) is None:
            await self.send_error("item_delete_invalid_item_id", f"Item with item_id not found: {event.item_id}",
                                  param="item_id", event_id=event.event_id)
            return
        self.order.remove(event.item_id)
        await self.send("conversation.item.deleted", item_id=event.item_id)

    async def _on_response_create(self, event: Any) -> None:
        if self.response is not None:
            await self.send_error("conversation_already_has_active_response", "Conversation already has an active "
                                  f"response in progress: {self.response.record.response_id}. Wait until the "
                                  "response is finished before creating a new one.", event_id=event.event_id)
            return
        user = next((self.items[i] for i in reversed(self.order) if self.items[i].data.get("role") == "user"), None)
        audio = user.audio if user is not None and user.audio is not None else np.zeros(0, np.float32)
        self._start_response(audio, "response.create", time.monotonic(), event.response or {})

    async def _on_response_cancel(self, event: Any) -> None:
        if self.response is None or (event.response_id and event.response_id != self.response.record.response_id):
            await self.send_error("response_cancel_not_active", "Cancellation failed: no active response found",
                                  event_id=event.event_id)
            return
        await self._cancel("client_cancelled")

    # -- responses ------------------------------------------------------------------------------------

    def _start_response(self, user_audio: np.ndarray, trigger: str, trigger_at: float, overrides: dict[str, Any]) -> None:
        record = ResponseRecord(self.protocol.new_id("resp"), trigger)
        item_id = self.protocol.new_id("item")
        task = asyncio.ensure_future(self._respond(record, item_id, user_audio, trigger_at, overrides))
        self.response = _ActiveResponse(record, task, item_id)
        self.records.append(record)
        self.server.records.append(record)

    def _response_object(self, record: ResponseRecord, status: str, output: list[dict[str, Any]],
                         reason: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        audio_out = self.session["audio"]["output"]
        response: dict[str, Any] = {
            "id": record.response_id, "object": "realtime.response", "status": status,
            "status_details": None if reason is None else {"type": status, "reason": reason},
            "output": output, "conversation_id": "conv_local", "output_modalities": ["audio"],
            "audio": {"output": {"format": audio_out["format"], "voice": audio_out["voice"]}},
            "max_output_tokens": "inf",
            "metadata": {"vkit_trigger": record.trigger, "vkit_injected_delay_ms": f"{record.injected_delay_ms:.3f}",
                         "vkit_processing_ms": f"{record.processing_ms:.3f}",
                         "vkit_first_audio_after_trigger_ms": "" if record.first_audio_after_trigger_ms is None
                         else f"{record.first_audio_after_trigger_ms:.3f}"},
            "usage": usage,
        }
        if self.dialect == "beta":
            response.pop("output_modalities")
            response.pop("audio")
            response.update({"modalities": ["text", "audio"], "voice": audio_out["voice"],
                             "output_audio_format": output_format_name(self.session), "temperature": 0.8})
        return response

    async def _respond(self, record: ResponseRecord, item_id: str, user_audio: np.ndarray, trigger_at: float,
                       overrides: dict[str, Any]) -> None:
        server = self.server
        output_rate = AUDIO_FORMATS[output_format_name(self.session)][0]
        input_rate = AUDIO_FORMATS[input_format_name(self.session)][0]
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        ids = {"response_id": record.response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        transcript_sent = ""
        try:
            await self.send("response.created", response=self._response_object(record, "in_progress", []))
            await self.send("rate_limits.updated", rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5}])
            computed = time.monotonic()
            reply = await server.responder.reply(user_audio, input_rate)
            record.processing_ms = (time.monotonic() - computed) * 1000
            audio = reply.audio if output_rate == 24_000 else _to_rate(reply.audio, 24_000, output_rate)
            record.injected_delay_ms = server.delay.draw_ms()
            await asyncio.sleep(record.injected_delay_ms / 1000)
            await self.send("response.output_item.added", response_id=record.response_id, output_index=0, item=item)
            if self.dialect == "beta":
                await self.send("conversation.item.created", item=item, previous_item_id=self.order[-1] if self.order else None)
            else:
                await self.send("conversation.item.added", item=item, previous_item_id=self.order[-1] if self.order else None)
            await self.send("response.content_part.added", **ids, part={"type": "audio", "transcript": ""})
            self.items[item_id] = _Item(item, np.zeros(0, np.float32))
            self.order.append(item_id)
            chunk = max(1, output_rate * server.chunk_ms // 1000)
            words = reply.transcript.split()
            num_chunks = max(1, -(-audio.size // chunk))
            started = time.monotonic()
            for index in range(num_chunks):
                piece = audio[index * chunk : (index + 1) * chunk]
                share = words[index * len(words) // num_chunks : (index + 1) * len(words) // num_chunks]
                if share:
                    text = (" " if transcript_sent else "") + " ".join(share)
                    transcript_sent += text
                    await self.send("response.output_audio_transcript.delta", **ids, delta=text)
                if index == 0:
                    record.first_audio_after_trigger_ms = (time.monotonic() - trigger_at) * 1000
                    self._audio_started = True
                await self.send("response.output_audio.delta", **ids, delta=encode_audio(piece, output_format_name(self.session)))
                assert self.response is not None
                self.response.sent_samples += piece.size
                self.items[item_id].audio = audio[: self.response.sent_samples]
                if server.output_pace > 0:
                    due = started + (index + 1) * chunk / output_rate / server.output_pace
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
            record.audio_ms = audio.size * 1000 / output_rate
            self.items[item_id].transcript = reply.transcript
            await self._finish(record, item, ids, "completed", None, reply.transcript)
        except asyncio.CancelledError:
            active = self.response
            reason = active.cancelled_reason if active is not None else None
            if reason is None:
                raise
            await self._finish(record, item, ids, "cancelled", reason, transcript_sent)
        except ConnectionClosed:
            record.status = "client_gone"  # the client left mid-answer; nothing is left to tell it
        finally:
            if self.response is not None and self.response.record is record:
                self.response = None

    async def _finish(self, record: ResponseRecord, item: dict[str, Any], ids: dict[str, Any], status: str,
                      reason: str | None, transcript: str) -> None:
        record.status = status
        done_item = {**item, "status": "completed" if status == "completed" else "incomplete",
                     "content": [{"type": "audio" if self.dialect == "beta" else "output_audio",
                                  "transcript": transcript}]}
        if item["id"] in self.items:
            self.items[item["id"]].data = done_item
            await self.send("response.output_audio.done", **ids)
            await self.send("response.output_audio_transcript.done", **ids, transcript=transcript)
            await self.send("response.content_part.done", **ids, part={"type": "audio", "transcript": transcript})
            await self.send("response.output_item.done", response_id=record.response_id, output_index=0, item=done_item)
            if self.dialect == "ga":
                await self.send("conversation.item.done", item=done_item)
        output = [done_item] if item["id"] in self.items else []
        audio_tokens = int(record.audio_ms / 50)
        usage = {"total_tokens": audio_tokens + 40, "input_tokens": 40, "output_tokens": audio_tokens,
                 "input_token_details": {"text_tokens": 10, "audio_tokens": 30, "image_tokens": 0, "cached_tokens": 0},
                 "output_token_details": {"text_tokens": len(transcript.split()), "audio_tokens": audio_tokens}}
        await self.send("response.done", response=self._response_object(record, status, output, reason, usage))

    async def _cancel(self, reason: str) -> None:
        active = self.response
        if active is None:
            return
        active.cancelled_reason = reason
        active.task.cancel()
        try:
            await active.task
        except asyncio.CancelledError:
            pass


def _to_rate(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr

    return soxr.resample(audio, rate_in, rate_out).astype(np.float32)


def _check_session(session: dict[str, Any]) -> tuple[str, str] | None:
    """A (param, message) for the first invalid value of a merged session, or None."""
    audio = session.get("audio") or {}
    for side in ("input", "output"):
        fmt = (audio.get(side) or {}).get("format") or {}
        kind = fmt.get("type")
        if kind not in ("audio/pcm", "audio/pcmu", "audio/pcma"):
            return (f"session.audio.{side}.format.type", f"Invalid value: '{kind}'. Supported values are: 'audio/pcm', "
                    "'audio/pcmu', and 'audio/pcma'.")
        if kind == "audio/pcm" and fmt.get("rate", 24_000) != 24_000:
            return (f"session.audio.{side}.format.rate", f"Invalid value: {fmt.get('rate')}. Supported values are: "
                    "24000.")
    detection = (audio.get("input") or {}).get("turn_detection")
    if detection is not None:
        if detection.get("type") not in ("server_vad", "semantic_vad"):
            return ("session.audio.input.turn_detection.type", f"Invalid value: '{detection.get('type')}'. Supported "
                    "values are: 'server_vad' and 'semantic_vad'.")
        threshold = detection.get("threshold")
        if threshold is not None and not 0 <= threshold <= 1:
            return ("session.audio.input.turn_detection.threshold", f"Invalid value: {threshold}. Expected a value "
                    "between 0 and 1.")
    return None

