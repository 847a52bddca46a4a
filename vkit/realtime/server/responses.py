"""One response's output: planned when the responder's answer arrives, as timed steps the session runs at their
deadlines (paced audio deltas with their share of the transcript, text deltas, function calls), each writing
events and, in the conversation, the response's items."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from vkit.realtime.codec import AUDIO_FORMATS, Dialect, encode_audio
from vkit.realtime.server.options import ResponseRecord
from vkit.realtime.server.responders import OUTPUT_RATE_HZ, FunctionCall, Reply, Turn
from vkit.realtime.server.storage import Conversation, StoredItem
from vkit.realtime.server.usage import usage
from vkit.realtime.session_config import input_format_name, output_format_name
from vkit.units import float_to_pcm16, ms_to_whole_samples, ns_to_ms, pcm16_to_float, samples_to_ms, samples_to_ns

__all__ = ["Outlet", "Response"]


@dataclass
class Outlet:
    """What a session's responses write to and read: its event queue (``emit``), ids and conversation, and its
    config as it is at each step (``config()``: a ``session.update`` applies from the next step on)."""

    emit: Callable[..., None]
    new_id: Callable[[str], str]
    dialect: Dialect
    conversation_id: str
    conversation: Conversation
    config: Callable[[], dict[str, Any]]
    audio_started: bool = False  # assistant audio was sent: the session's voice can no longer change


@dataclass
class Response:
    """One response under way: what it answers, its record, and its output as sent so far."""

    outlet: Outlet = field(repr=False)
    record: ResponseRecord
    trigger_ns: int
    in_conversation: bool
    modalities: list[str]
    metadata: dict[str, str]
    overrides: dict[str, Any]
    context: list[str]  # item ids (conversation) the answer is based on
    requested_ns: int = 0
    after_item: str | None = None  # the conversation's last item when it was triggered: its output goes after it
    announced: bool = False  # response.created sent
    steps: deque[tuple[int, Callable[[int], None]]] = field(default_factory=deque)
    outputs: list[dict[str, Any]] = field(default_factory=list)  # output items, as last sent
    open_item: dict[str, Any] | None = None  # the message item being streamed
    ids: dict[str, Any] = field(default_factory=dict)
    sent_text: str = ""
    sent_samples: int = 0
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # the answer, at the output rate
    pcm: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # the same as int16, for its item
    output_audio_ms: float = 0.0

    def turn(self, audio: np.ndarray | None) -> Turn:
        """What the responder is asked: the context's items, and ``audio`` (else the latest user audio in it)."""
        config = self.outlet.config()
        transcript = None
        latest_audio = None
        items = []
        for item_id in self.context:
            stored = self.outlet.conversation.lookup(item_id)
            if stored is None:
                continue
            items.append(stored.data)
            if stored.data.get("role") == "user":
                texts = [p.get("text", "") for p in stored.data.get("content", []) if p.get("type") == "input_text"]
                transcript = " ".join(texts) if texts else (stored.transcript or None)
                usable = stored.audio is not None and stored.audio_format == input_format_name(config)
                latest_audio = pcm16_to_float(stored.audio) if usable else None
        overrides = self.overrides
        audio = audio if audio is not None else latest_audio
        return Turn(audio=audio if audio is not None else np.zeros(0, np.float32),
                    sample_rate_hz=AUDIO_FORMATS[input_format_name(config)][0],
                    transcript=transcript, items=items, tools=overrides.get("tools", config.get("tools") or []),
                    tool_choice=overrides.get("tool_choice", config.get("tool_choice", "auto")),
                    output_modalities=self.modalities,
                    instructions=overrides.get("instructions", config.get("instructions") or ""))

    def plan(self, reply: Reply, start_ns: int, frame_ms: int, pace: float, completed: Callable[[int], None]) -> None:
        """Schedule ``reply``'s output from ``start_ns``: audio in ``frame_ms`` deltas at ``pace`` times real time
        (0: all at once), then ``completed(now_ns)``."""
        steps = self.steps
        audio_wanted = "audio" in self.modalities
        text = reply.transcript
        has_message = bool(text) or (audio_wanted and reply.audio.size > 0) or not reply.calls
        output_index = 0
        if has_message:
            steps.append((start_ns, self._open_message))
            if audio_wanted:
                rate = self._output_rate()
                audio = reply.audio if rate == OUTPUT_RATE_HZ or not reply.audio.size else soxr.resample(
                    reply.audio, OUTPUT_RATE_HZ, rate).astype(np.float32)
                self.audio, self.pcm = audio, float_to_pcm16(audio)
                frame = max(1, ms_to_whole_samples(frame_ms, rate))
                num_frames = -(-audio.size // frame)
                words = text.split()
                for index in range(max(num_frames, 1 if words else 0)):
                    piece = audio[index * frame : (index + 1) * frame]
                    share = words[index * len(words) // max(num_frames, 1) : (index + 1) * len(words) // max(num_frames, 1)]
                    due = start_ns + (samples_to_ns(index * frame / pace, rate) if pace > 0 else 0)
                    steps.append((due, lambda now, p=piece, s=share: self._audio_step(p, s, now)))
                end_ns = start_ns + (samples_to_ns(audio.size / pace, rate) if pace > 0 else 0)
                steps.append((end_ns, lambda now: self.close_message("completed")))
            else:
                steps.append((start_ns, lambda now: self._text_step(text)))
                steps.append((start_ns, lambda now: self.close_message("completed")))
            output_index = 1
        last_ns = steps[-1][0] if steps else start_ns
        for offset, call in enumerate(reply.calls):
            steps.append((last_ns, lambda now, c=call, i=output_index + offset: self._function_call(c, i)))
        steps.append((last_ns, completed))

    def close_message(self, status: str) -> None:
        """Close the message being streamed, if any, as ``status`` ("completed" or "incomplete")."""
        item = self.open_item
        if item is None:
            return
        self.open_item = None
        self._close_item(item, status)

    def usage(self) -> dict[str, Any]:
        """Token usage of what went in (its context, instructions) and out."""
        conversation = self.outlet.conversation
        context = [i for i in (conversation.lookup(x) for x in self.context) if i is not None]
        counted = usage(context, self.outputs, self.output_audio_ms,
                        self.overrides.get("instructions", self.outlet.config().get("instructions") or ""))
        if self.outlet.dialect == "beta":  # beta's usage has no image or cached-detail counts
            details = counted["input_token_details"]
            del details["image_tokens"], details["cached_tokens_details"]
        return counted

    def wire(self, status: str, reason: str | None = None, usage_: dict[str, Any] | None = None,
             error: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``realtime.response`` object, as ``response.created`` and ``response.done`` carry it."""
        config, dialect = self.outlet.config(), self.outlet.dialect
        record = self.record
        audio_out = config["audio"]["output"]
        override_audio = (self.overrides.get("audio") or {}).get("output") or {}
        details = None
        if status not in ("in_progress", "completed"):
            details = {"type": status, **({"reason": reason} if reason else {}), **({"error": error} if error else {})}
        metadata = dict(self.metadata)
        if status != "in_progress":
            metadata.update({
                "vkit_injected_delay_ms": f"{record.injected_delay_ms:.3f}",
                "vkit_processing_ms": f"{record.processing_ms:.3f}",
                "vkit_first_audio_after_trigger_ms": "" if record.first_audio_after_trigger_ms is None
                else f"{record.first_audio_after_trigger_ms:.3f}"})
        out: dict[str, Any] = {
            "id": record.response_id, "object": "realtime.response", "status": status, "status_details": details,
            "output": self.outputs if status != "in_progress" else [],
            "conversation_id": self.outlet.conversation_id if self.in_conversation else None,
            "output_modalities": self.modalities,
            "audio": {"output": {"format": override_audio.get("format", audio_out["format"]),
                                 "voice": override_audio.get("voice", audio_out["voice"])}},
            "max_output_tokens": self.overrides.get("max_output_tokens", config.get("max_output_tokens", "inf")),
            "metadata": metadata, "usage": usage_,
        }
        if dialect == "beta":
            del out["output_modalities"], out["audio"]
            out.update({"modalities": ["text", "audio"] if "audio" in self.modalities else ["text"],
                        "voice": audio_out["voice"], "output_audio_format": output_format_name(config),
                        "temperature": 0.8})
        return out

    # -- the steps ------------------------------------------------------------------------------------------

    def _output_rate(self) -> int:
        return AUDIO_FORMATS[output_format_name(self.outlet.config())][0]

    def _open_message(self, now_ns: int) -> None:
        outlet = self.outlet
        item_id = outlet.new_id("item")
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        self.open_item = item
        self.ids = {"response_id": self.record.response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        outlet.emit("response.output_item.added", response_id=self.record.response_id, output_index=0, item=item)
        if self.in_conversation:
            before = outlet.conversation.add(StoredItem(item, np.zeros(0, np.int16), output_format_name(outlet.config())),
                                             self._answered_item())
            self._item_added_start(item, before)
        audio = "audio" in self.modalities
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        outlet.emit("response.content_part.added", **self.ids, part=part)

    def _audio_step(self, piece: np.ndarray, words: list[str], now_ns: int) -> None:
        outlet = self.outlet
        if words:
            delta = (" " if self.sent_text else "") + " ".join(words)
            self.sent_text += delta
            outlet.emit("response.output_audio_transcript.delta", **self.ids, delta=delta)
        if piece.size:
            if not self.sent_samples:
                self.record.first_audio_after_trigger_ms = ns_to_ms(now_ns - self.trigger_ns)
            outlet.audio_started = True
            outlet.emit("response.output_audio.delta", **self.ids,
                        delta=encode_audio(piece, output_format_name(outlet.config())))
            self.sent_samples += piece.size
            stored = outlet.conversation.items.get(self.ids["item_id"])
            if stored is not None:
                stored.audio = self.pcm[: self.sent_samples]  # what was sent so far (a view)

    def _text_step(self, text: str) -> None:
        words = text.split(" ")
        for index, word in enumerate(words if text else []):
            delta = word if index == 0 else " " + word
            self.sent_text += delta
            self.outlet.emit("response.output_text.delta", **self.ids, delta=delta)

    def _close_item(self, item: dict[str, Any], status: str) -> None:
        outlet = self.outlet
        emit, ids, text = outlet.emit, self.ids, self.sent_text
        beta = outlet.dialect == "beta"
        if "audio" in self.modalities:
            kind = "audio" if beta else "output_audio"
            content = [{"type": kind, "transcript": text}]
            emit("response.output_audio.done", **ids)
            emit("response.output_audio_transcript.done", **ids, transcript=text)
            emit("response.content_part.done", **ids, part={"type": "audio", "transcript": text})
        else:
            kind = "text" if beta else "output_text"
            content = [{"type": kind, "text": text}]
            emit("response.output_text.done", **ids, text=text)
            emit("response.content_part.done", **ids, part={"type": "text", "text": text})
        done = {**item, "status": status, "content": content}
        self.output_audio_ms = samples_to_ms(self.sent_samples, self._output_rate())
        stored = outlet.conversation.items.get(item["id"])
        if stored is not None:
            stored.data, stored.transcript = done, text
            if stored.audio is not None and stored.audio.base is not None:
                stored.audio = stored.audio.copy()  # what was sent, not a view holding the whole answer
            outlet.conversation.forget_old_audio()  # its audio grew as it streamed
        self.outputs.append(done)
        emit("response.output_item.done", response_id=self.record.response_id, output_index=0, item=done)
        if self.in_conversation and not beta and stored is not None:
            emit("conversation.item.done", item=done)

    def _function_call(self, call: FunctionCall, output_index: int) -> None:
        outlet = self.outlet
        item_id, call_id = outlet.new_id("item"), outlet.new_id("call")
        item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                "name": call.name, "call_id": call_id, "arguments": ""}
        rid = self.record.response_id
        outlet.emit("response.output_item.added", response_id=rid, output_index=output_index, item=item)
        if self.in_conversation:
            before = outlet.conversation.add(StoredItem(item), self._answered_item())
            self._item_added_start(item, before)
        ids = {"response_id": rid, "item_id": item_id, "output_index": output_index, "call_id": call_id}
        outlet.emit("response.function_call_arguments.delta", **ids, delta=call.arguments)
        named = {"name": call.name} if outlet.dialect == "ga" else {}  # beta's event has no name
        outlet.emit("response.function_call_arguments.done", **ids, arguments=call.arguments, **named)
        done = {**item, "status": "completed", "arguments": call.arguments}
        if self.in_conversation:
            outlet.conversation.items[item_id].data = done
        self.outputs.append(done)
        outlet.emit("response.output_item.done", response_id=rid, output_index=output_index, item=done)
        if self.in_conversation and outlet.dialect == "ga":
            outlet.emit("conversation.item.done", item=done)

    def _answered_item(self) -> str | None:
        """Where the next output item goes: after this response's own last output, else after the item that was
        last when it was triggered (so an answer follows what it answers, though the user spoke meanwhile);
        None: at the end."""
        conversation = self.outlet.conversation
        own = [o["id"] for o in self.outputs if o.get("id") in conversation.items]
        if self.open_item is not None and self.open_item["id"] in conversation.items:
            own.append(self.open_item["id"])
        if own:
            return max(own, key=conversation.order.index)
        return self.after_item if self.after_item in conversation.items else None

    def _item_added_start(self, item: dict[str, Any], before: str | None) -> None:
        if self.outlet.dialect == "beta":
            self.outlet.emit("conversation.item.created", item=item, previous_item_id=before)
        else:
            self.outlet.emit("conversation.item.added", item=item, previous_item_id=before)
