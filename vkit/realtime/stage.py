"""The ``Realtime`` stage: one persistent WebSocket speaking the OpenAI Realtime protocol.

Input audio streams out as ``input_audio_buffer.append``; response audio comes back as ``AudioFrame``s on
the "output" stream; every protocol event, sent or received, becomes a ``ProtocolEvent`` on the session
record. Turns are taken by the server's VAD, its semantic VAD, or vkit's own VAD events (manual turns).
Barge-in stops playout and truncates the answer at the position the sink really played.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from vkit.errors import ConfigError, ConnectionLost, got
from vkit.frames import AudioFrame, Event, Marker, ProtocolEvent, SpeechStarted, SpeechStopped
from vkit.graph import Pipe
from vkit.realtime import events as ev
from vkit.realtime.codec import Dialect, decode_audio, encode_audio
from vkit.realtime.protocol import ClientProtocol, InvalidEvent
from vkit.realtime.session_config import TURN_DETECTION_DEFAULTS, to_beta
from vkit.realtime.tools import Tool, ToolDispatcher, as_tool
from vkit.realtime.transcripts import transcript_of
from vkit.stage import StreamFormat

log = logging.getLogger(__name__)

__all__ = ["Realtime"]

TurnDetection = Literal["server_vad", "semantic_vad", "manual"]
OPENAI_URL = "wss://api.openai.com/v1/realtime"
WIRE_RATE_HZ = 24_000
INBOX_MESSAGES = 256  # server messages received but not yet acted on; beyond this the socket is not read


@dataclass
class _PlayedItem:
    item_id: str
    response_id: str | None
    start_sample: int  # on the output stream
    num_samples: int = 0


class Realtime(Pipe):
    """Speech to speech over one WebSocket (OpenAI Realtime protocol, GA or beta dialect).

    With no ``url`` the embedded local server starts in-process (``server={...}`` are its options, e.g.
    ``{"responder": "cascade", "response_delay_ms": 300}``), so no key and no network are needed.
    ``url="openai"`` (or a wss URL) talks to OpenAI with ``OPENAI_API_KEY``; Azure URLs use ``api-key``.
    ``turn_detection``: "server_vad" (with ``vad={...}`` parameters), "semantic_vad", or "manual":
    vkit's own VAD events upstream drive commit + ``response.create``.
    ``tools``: Python callables (or ``vkit.realtime.tool(...)``) the model may call; the stage runs them
    and answers (``vkit.realtime.tools``); ``tool_choice``: "auto", "none", "required" or ``{"type": "function",
    "name": ...}``. Transcripts and text output leave the stage as ``Transcript`` items.
    """

    accepts = (AudioFrame, Event)

    def __init__(self, url: str | None = None, *, model: str = "gpt-realtime", api_key: str | None = None,
                 turn_detection: TurnDetection = "server_vad", vad: dict[str, Any] | None = None,
                 voice: str | None = None, instructions: str | None = None, transcription: str | None = None,
                 dialect: Dialect = "ga", chunk_ms: int = 40, server: dict[str, Any] | None = None,
                 barge_in: bool = True, reconnect: bool = False, max_retries: int = 3,
                 open_timeout_s: float = 10.0, drain_timeout_s: float = 30.0,
                 tools: Sequence[Tool | Callable[..., Any]] = (), tool_choice: str | dict[str, Any] = "auto") -> None:
        if turn_detection not in ("server_vad", "semantic_vad", "manual"):
            raise ConfigError(f"turn_detection must be 'server_vad', 'semantic_vad' or 'manual' {got(turn_detection)}")
        if dialect not in ("ga", "beta"):
            raise ConfigError(f"dialect must be 'ga' or 'beta' {got(dialect)}")
        if not 10 <= chunk_ms <= 200:
            raise ConfigError(f"chunk_ms must be in [10, 200] {got(chunk_ms)}")
        if url is not None and server is not None:
            raise ConfigError(f"server= options are for the embedded server; they do not apply to url= {got(url)}")
        self.url = OPENAI_URL if url == "openai" else url
        self.model = model
        self._api_key = api_key
        self.turn_detection = turn_detection
        self.vad = dict(vad or {})
        self.voice = voice
        self.instructions = instructions
        self.transcription = transcription
        self.dialect = dialect
        self.chunk_ms = chunk_ms
        self.server = dict(server or {})
        self.barge_in = barge_in
        self.reconnect = reconnect
        self.max_retries = max_retries
        self.open_timeout_s = open_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.endpoint = "local" if url is None else _redact(self.url or "")
        self.tools = [as_tool(t) for t in tools]
        if len({t.name for t in self.tools}) != len(self.tools):
            raise ConfigError(f"tool names must be unique {got([t.name for t in self.tools])}")
        self.tool_choice = tool_choice

    def __repr__(self) -> str:
        return f"Realtime(endpoint={self.endpoint!r}, model={self.model!r}, turn_detection={self.turn_detection!r})"

    def __getstate__(self) -> dict[str, Any]:
        """A pickled stage (a graph sent to a worker) never carries the API key: the worker reads
        ``OPENAI_API_KEY`` from its own environment."""
        return {**self.__dict__, "_api_key": None}

    def describe(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "model": self.model, "turn_detection": self.turn_detection,
                "dialect": self.dialect, "chunk_ms": self.chunk_ms, "sample_rate_hz": WIRE_RATE_HZ,
                **{f"server_{k}": v for k, v in self.server.items() if isinstance(v, (int, float, str))}}

    def configure(self, fmt: StreamFormat) -> StreamFormat:
        return StreamFormat(WIRE_RATE_HZ, 1)

    @property
    def latency_ms(self) -> float:
        return float(self.chunk_ms)

    def session_update(self) -> dict[str, Any]:
        """The ``session`` object vkit sends first (GA shape; converted for beta)."""
        if self.turn_detection == "manual":
            detection: dict[str, Any] | None = None
        else:
            detection = {**TURN_DETECTION_DEFAULTS[self.turn_detection], **self.vad}
            detection = {k: v for k, v in detection.items() if v is not None}
        audio_in: dict[str, Any] = {"format": {"type": "audio/pcm", "rate": WIRE_RATE_HZ}, "turn_detection": detection}
        if self.transcription:
            audio_in["transcription"] = {"model": self.transcription}
        audio_out: dict[str, Any] = {"format": {"type": "audio/pcm", "rate": WIRE_RATE_HZ}}
        if self.voice:
            audio_out["voice"] = self.voice
        session: dict[str, Any] = {"type": "realtime", "output_modalities": ["audio"],
                                   "audio": {"input": audio_in, "output": audio_out}}
        if self.instructions is not None:
            session["instructions"] = self.instructions
        tools = {"tools": [t.declaration() for t in self.tools], "tool_choice": self.tool_choice} if self.tools else {}
        if self.dialect == "beta":
            beta = to_beta({**session, "model": self.model})
            return {**{k: v for k, v in beta.items() if k not in ("id", "object", "model", "temperature",
                                                                   "tools", "tool_choice",
                                                                   "max_response_output_tokens")}, **tools}
        return {**session, **tools}

    async def run(self, ctx: Any) -> None:
        async with AsyncExitStack() as stack:
            url = self.url
            if url is None:
                from vkit.realtime.server import LocalServer

                server = await stack.enter_async_context(LocalServer(**self.server))
                url = server.url
                ctx.publish(Marker(name="local_server", data={"url": server.url, **{
                    k: str(v) for k, v in self.server.items()}}))
            await _Session(self, ctx, _with_model(url, self.model)).run()


class _Session:
    """The running connection: a reader task for server events, the stage's inbox for input."""

    def __init__(self, stage: Realtime, ctx: Any, url: str) -> None:
        self.stage = stage
        self.ctx = ctx
        self.url = url
        self.protocol = ClientProtocol(stage.dialect)
        self.websocket: ClientConnection | None = None
        self.pending: list[np.ndarray] = []
        self.num_pending = 0
        self.resampler: Any = None
        self.output_position = 0
        self.played_items: list[_PlayedItem] = []
        self.interrupted: set[str] = set()
        self.truncated: set[str] = set()
        self.responding = asyncio.Event()
        self.session_ready = asyncio.Event()
        self.connected = asyncio.Event()
        self.first_delta_ns: dict[str, int] = {}
        self.retries = 0
        self.tools = ToolDispatcher(stage.tools, self.send, ctx.publish, ctx.clock.now_ns) if stage.tools else None

    # -- connection ---------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        key = self.stage._api_key or os.environ.get("OPENAI_API_KEY")  # noqa: SLF001
        host = urlsplit(self.url).hostname or ""
        if self.stage.url is not None:
            if not key and (host == "api.openai.com" or host.endswith(".openai.azure.com")):
                raise ConfigError(f"this Realtime endpoint needs an API key: set OPENAI_API_KEY or pass api_key= "
                                  f"{got(self.stage.endpoint)}")
            if key and host.endswith(".openai.azure.com"):
                headers["api-key"] = key
            elif key:
                headers["Authorization"] = f"Bearer {key}"
        if self.stage.dialect == "beta":
            headers["OpenAI-Beta"] = "realtime=v1"
        return headers

    async def _connect(self) -> None:
        try:
            self.websocket = await connect(self.url, additional_headers=self._headers(), max_size=None,
                                           compression=None, open_timeout=self.stage.open_timeout_s,
                                           ping_interval=None)
        except (OSError, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to the Realtime endpoint ({type(exc).__name__}: {exc}) "
                                 f"{got(self.stage.endpoint)}") from exc
        self.protocol = ClientProtocol(self.stage.dialect)
        self.session_ready.clear()
        self.connected.set()
        await self.send(ev.CLIENT_EVENTS["session.update"](session=self.stage.session_update()))

    async def run(self) -> None:
        await self._connect()
        writer = asyncio.current_task()
        assert writer is not None
        reader = asyncio.ensure_future(self._read_forever())
        reader.add_done_callback(lambda task: writer.cancel() if _failed(task) else None)
        try:
            async for item in self.ctx:
                await self._on_input(item)
            await self._flush_audio()
            await self._drain(reader)
        except asyncio.CancelledError:
            if _failed(reader):  # the connection failed: report that, not the cancellation it caused
                raise reader.exception() from None  # type: ignore[misc]
            raise
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if self.tools is not None:
                await self.tools.close()
            if self.websocket is not None:
                await self.websocket.close()
            self.protocol.close()

    async def _drain(self, reader: asyncio.Task[None]) -> None:
        """The input ended: let the answer in progress finish arriving, then close."""
        deadline = asyncio.get_running_loop().time() + self.stage.drain_timeout_s
        while not reader.done():
            awaiting = (self.protocol.active_response is not None or self.responding.is_set()
                        or (self.tools is not None and self.tools.busy))
            if not awaiting or asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.wait({reader}, timeout=0.05)
        reader.result()

    async def _read_forever(self) -> None:
        """Act on the server's events in order. A receiver task stamps each message as it comes off the socket,
        so the time spent here on a burst of events is not added to the arrival times of the ones behind it."""
        inbox: asyncio.Queue[tuple[int, str | bytes | Exception]] = asyncio.Queue(maxsize=INBOX_MESSAGES)
        receiver = asyncio.ensure_future(self._receive_forever(inbox))
        try:
            while True:
                received_ns, message = await inbox.get()
                if isinstance(message, Exception):
                    raise message
                await self._on_message(message, received_ns)
                inbox.task_done()
                await asyncio.sleep(0)  # let the socket be read, and stamped, between two events
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)

    async def _receive_forever(self, inbox: asyncio.Queue[tuple[int, str | bytes | Exception]]) -> None:
        """Receive, reconnecting when allowed; a failure goes through the inbox, after what arrived before it."""
        try:
            while True:
                try:
                    assert self.websocket is not None
                    async for message in self.websocket:
                        await inbox.put((self.ctx.clock.now_ns(), message))
                    code = self.websocket.close_code
                    if code in (1000, None) and not self.stage.reconnect:
                        raise ConnectionLost(f"the Realtime server ended the session {got(self.stage.endpoint)}")
                    raise ConnectionClosed(self.websocket.close_rcvd, self.websocket.close_sent)
                except ConnectionClosed as exc:
                    if not self.stage.reconnect or self.retries >= self.stage.max_retries:
                        raise ConnectionLost(f"the Realtime connection dropped mid-session (code {_close_code(exc)}) "
                                             f"{got(self.stage.endpoint)}") from exc
                    await inbox.join()  # the old connection's events first, then the new one's state
                    self.retries += 1
                    self.connected.clear()
                    self.ctx.publish(Marker(name="reconnect", data={"attempt": self.retries, "code": _close_code(exc)}))
                    await asyncio.sleep(min(2.0, 0.1 * 2 ** (self.retries - 1)))
                    self.responding.clear()
                    await self._connect()
        except Exception as exc:  # noqa: BLE001 - handed to _read_forever, which raises it
            await inbox.put((0, exc))

    # -- sending --------------------------------------------------------------------------------------

    async def send(self, event: ev.ClientEvent) -> None:
        if event.event_id is None:
            event = replace(event, event_id=self.protocol.next_event_id())
        for _ in range(self.stage.max_retries + 1):
            await self.connected.wait()
            text = self.protocol.send(event)
            assert self.websocket is not None
            try:
                await self.websocket.send(text)
            except ConnectionClosed as exc:
                if not self.stage.reconnect:
                    raise ConnectionLost(f"the Realtime connection dropped mid-session (code {_close_code(exc)}) "
                                         f"{got(self.stage.endpoint)}") from exc
                self.connected.clear()  # the reader reconnects; input audio sent meanwhile is dropped
                if event.type == "input_audio_buffer.append":
                    return
                continue
            self.ctx.publish(ProtocolEvent(direction="sent", type=event.type, event=_without_audio(event),
                                           t_ns=self.ctx.clock.now_ns(), stage=self.ctx.name))
            return

    async def _on_input(self, item: Any) -> None:
        if isinstance(item, AudioFrame):
            if item.stream != "output":
                await self._append(item)
            return
        if isinstance(item, SpeechStarted) and self.stage.barge_in:
            await self._barge_in(item.t_ns if item.t_ns >= 0 else self.ctx.clock.now_ns(), "local_vad")
        elif isinstance(item, SpeechStopped) and self.stage.turn_detection == "manual":
            await self._flush_audio()
            await self.send(ev.CLIENT_EVENTS["input_audio_buffer.commit"]())
            await self.send(ev.CLIENT_EVENTS["response.create"]())
            self.responding.set()
        await self.ctx.emit(item)

    async def _append(self, frame: AudioFrame) -> None:
        samples = frame.samples
        if frame.sample_rate_hz != WIRE_RATE_HZ:
            if self.resampler is None:
                from vkit.filters import Resample

                self.resampler = Resample(WIRE_RATE_HZ, quality="low_latency")
            converted = self.resampler.process(frame)
            if converted is None:
                return
            samples = converted.samples
        mono = samples.mean(axis=0) if samples.shape[0] > 1 else samples[0]
        self.pending.append(mono)
        self.num_pending += mono.size
        if self.num_pending >= WIRE_RATE_HZ * self.stage.chunk_ms // 1000:
            await self._flush_audio()

    async def _flush_audio(self) -> None:
        if not self.num_pending:
            return
        audio = np.concatenate(self.pending)
        self.pending, self.num_pending = [], 0
        await self.send(_APPEND(audio=encode_audio(audio), event_id=self.protocol.next_event_id()))

    # -- receiving ------------------------------------------------------------------------------------

    async def _on_message(self, message: str | bytes, now_ns: int) -> None:
        """One server message, received at ``now_ns`` on the session clock."""
        event = self.protocol.receive(message)
        wire_type = event.wire_type if isinstance(event, ev.UnknownEvent) else event.type
        self.ctx.publish(ProtocolEvent(direction="received", type=wire_type, event=_without_audio(event), t_ns=now_ns,
                                       stage=self.ctx.name))
        if isinstance(event, InvalidEvent):
            log.warning("ignored a malformed server event: %s", event.reason)
            return
        if event.type == "session.created":
            self.session_ready.set()
        elif event.type == "response.created":
            self.responding.set()
        elif event.type == "response.done":
            self.responding.clear()
        elif event.type == "response.output_audio.delta":
            await self._on_audio(event, now_ns)
        elif event.type == "input_audio_buffer.speech_started" and self.stage.barge_in:
            await self._barge_in(now_ns, "server_vad")
        elif event.type == "error":
            log.info("server error event: %s", event.error)  # type: ignore[attr-defined]
        transcript = transcript_of(event, now_ns)
        if transcript is not None:
            await self.ctx.emit(transcript)
        if self.tools is not None:
            await self.tools.on_event(event, now_ns)

    async def _on_audio(self, event: Any, now_ns: int) -> None:
        if event.response_id in self.interrupted:
            return
        samples = decode_audio(event.delta, "pcm16")
        if not samples.size:
            return
        if not self.played_items or self.played_items[-1].item_id != event.item_id:
            self.played_items.append(_PlayedItem(event.item_id, event.response_id, self.output_position))
        self.played_items[-1].num_samples += samples.size
        frame = AudioFrame(samples=samples.reshape(1, -1), sample_rate_hz=WIRE_RATE_HZ,
                           start_sample=self.output_position, stream="output", t_ns=now_ns)
        self.output_position += samples.size
        await self.ctx.emit(frame)

    async def _barge_in(self, now_ns: int, cause: str) -> None:
        """User speech while the answer plays: stop playout, cancel, truncate at what was heard."""
        if not self.played_items:
            return
        item = self.played_items[-1]
        if item.item_id in self.truncated:
            return
        tracker = self.ctx.session.playout.get("output")
        if tracker is not None:
            played = tracker.played_sample(now_ns)
        else:  # no playing sink: assume real-time playout from the first delta
            first = self.first_delta_ns.setdefault(item.item_id, now_ns)
            played = item.start_sample + (now_ns - first) * WIRE_RATE_HZ // 1_000_000_000
        end = item.start_sample + item.num_samples
        still_playing = played < end or self.protocol.active_response is not None
        if not still_playing or played < item.start_sample:
            return
        heard = min(played, end) - item.start_sample
        if tracker is not None:
            tracker.flush()
        active = self.protocol.active_response
        server_cancels = cause == "server_vad" and self.stage.vad.get("interrupt_response", True)
        if active is not None:
            self.interrupted.add(active.response_id)
            if not server_cancels:
                await self.send(ev.CLIENT_EVENTS["response.cancel"]())
        audio_end_ms = heard * 1000 // WIRE_RATE_HZ
        self.truncated.add(item.item_id)
        self.ctx.publish(Marker(name="barge_in", data={"cause": cause, "item_id": item.item_id,
                                                       "audio_end_ms": audio_end_ms, "played_sample": played}))
        await self.send(ev.CLIENT_EVENTS["conversation.item.truncate"](item_id=item.item_id, content_index=0,
                                                                        audio_end_ms=int(audio_end_ms)))


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


def _close_code(exc: ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd is not None else None


def _without_audio(event: ev.RealtimeEvent) -> ev.RealtimeEvent:
    """The event with its base64 audio replaced by a sample count, for the session record."""
    name = _AUDIO_FIELDS.get(event.type)
    value = getattr(event, name, None) if name else None
    if not isinstance(value, str):
        return event
    num_bytes = len(value) * 3 // 4 - value[-2:].count("=")
    return replace(event, **{name: None}, extra={**event.extra, "num_samples": num_bytes // 2})


_AUDIO_FIELDS = {"input_audio_buffer.append": "audio", "response.output_audio.delta": "delta"}
_APPEND = ev.CLIENT_EVENTS["input_audio_buffer.append"]


def _with_model(url: str, model: str) -> str:
    parts = urlsplit(url)
    if "model=" in parts.query or "deployment=" in parts.query:
        return url
    query = f"{parts.query}&{urlencode({'model': model})}" if parts.query else urlencode({"model": model})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _redact(url: str) -> str:
    """The URL without query parameters that could carry secrets."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

