"""The ``Realtime`` stage: one persistent WebSocket speaking the OpenAI Realtime protocol.

Input audio streams out as ``input_audio_buffer.append``; response audio comes back as ``AudioFrame``s on
the "output" stream; every protocol event, sent or received, becomes a ``ProtocolEvent`` on the session
record. Turns are taken by the server's VAD, its semantic VAD, or vkit's own VAD events (manual turns).
Barge-in stops playout and truncates the answer at the position the sink really played.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from vkit.deprecation import renamed_keyword
from vkit.errors import ConfigError, ConnectionLost, RemoteProtocolError, got
from vkit.frames import AudioFrame, Event, Marker, ProtocolEvent, ProtocolIssue, SpeechStarted, SpeechStopped
from vkit.graph import Pipe
from vkit.realtime import events as ev
from vkit.realtime.codec import MAX_DEPTH, Dialect, decode_audio, encode_audio
from vkit.realtime.protocol import ClientProtocol, InvalidEvent
from vkit.realtime.session_config import TURN_DETECTION_DEFAULTS, to_beta
from vkit.realtime.tools import Tool, ToolDispatcher, as_tool
from vkit.realtime.transcripts import transcript_of
from vkit.redact import install_websockets_filter, redact_text, redact_url, register_secret
from vkit.stage import StreamFormat
from vkit.units import ms_to_whole_samples, ns_to_whole_samples, s_to_ms, s_to_ns, samples_to_whole_ms

log = logging.getLogger(__name__)

__all__ = ["Realtime"]

TurnDetection = Literal["server_vad", "semantic_vad", "manual"]
OPENAI_URL = "wss://api.openai.com/v1/realtime"
WIRE_RATE_HZ = 24_000
INBOX_MESSAGES = 256  # server messages received but not yet acted on; beyond this the socket is not read
_RECEIVE_YIELDS = 3  # loop turns from a message parsed by websockets to the inbox (reader, receiver, put)
MAX_FRAME_BYTES = 16 * 2**20  # the largest server message accepted (a 10 s audio delta is 640 KiB)
BACKOFF_FIRST_S = 0.1  # reconnect delays: 0.1, 0.2, 0.4, ... capped at BACKOFF_CAP_S, each times U(0.5, 1)
BACKOFF_CAP_S = 2.0
NO_RECONNECT_CODES = frozenset({1002, 1003, 1007, 1008, 1009, 1010})  # the peer refuses what we send
NUM_PLAYED_ITEMS = 32  # the answers remembered for barge-in (only the last one is truncated)
HANDSHAKE_WAIT_S = 1.0  # at the end, how long to wait for a new connection's session.updated before closing


@dataclass
class _PlayedItem:
    item_id: str
    response_id: str | None
    start_sample: int  # on the output stream
    num_samples: int = 0
    connection: int = 1  # which connection of the session delivered it (1, then 2 after a reconnect, ...)


class Realtime(Pipe):
    """Speech to speech over one WebSocket (OpenAI Realtime protocol, GA or beta dialect).

    With no ``url`` the embedded local server starts in-process (``server={...}`` are its options, e.g.
    ``{"responder": "cascade", "response_delay_ms": 300}``), so no key and no network are needed.
    ``url="openai"`` (or a wss URL) talks to OpenAI with ``OPENAI_API_KEY``; Azure URLs use ``api-key``.
    ``turn_detection``: "server_vad" (with ``vad={...}`` parameters), "semantic_vad", or "manual":
    vkit's own VAD events upstream drive commit + ``response.create``.

    Faults: ``reconnect=True`` reopens a dropped connection (backoff 0.1 s doubling to 2 s, jittered, for
    ``reconnect_timeout_s``; ``max_retries`` reconnections), re-sending the session config and the newest
    ``outage_buffer_ms`` of input the server never acknowledged (committed), with any unconfirmed commit. ``write_timeout_s`` and keepalive pings (``ping_interval_s``,
    ``ping_timeout_s``) catch a server that stopped reading; ``stall_timeout_s`` gives up on a silent answer.
    Server messages over ``max_frame_bytes`` or nested deeper than ``max_depth`` are refused; up to
    ``max_bad_events`` bad events are skipped and published as ``ProtocolIssue``. A key is sent only over
    wss:// or to loopback unless ``allow_insecure_key=True``.
    ``tools``: Python callables (or ``vkit.realtime.tool(...)``) the model may call; the stage runs them
    and answers (``vkit.realtime.tools``); ``tool_choice``: "auto", "none", "required" or ``{"type": "function",
    "name": ...}``. Transcripts and text output leave the stage as ``Transcript`` items.
    """

    accepts = (AudioFrame, Event)

    def __init__(self, url: str | None = None, *, model: str = "gpt-realtime", api_key: str | None = None,
                 turn_detection: TurnDetection = "server_vad", vad: dict[str, Any] | None = None,
                 voice: str | None = None, instructions: str | None = None, transcription: str | None = None,
                 dialect: Dialect = "ga", frame_ms: int = 40, server: dict[str, Any] | None = None,
                 barge_in: bool = True, reconnect: bool = False, max_retries: int = 5,
                 reconnect_timeout_s: float = 10.0, outage_buffer_ms: int = 2000,
                 open_timeout_s: float = 10.0, drain_timeout_s: float = 30.0, write_timeout_s: float = 10.0,
                 ping_interval_s: float | None = 20.0, ping_timeout_s: float = 20.0, stall_timeout_s: float = 15.0,
                 max_frame_bytes: int = MAX_FRAME_BYTES, max_depth: int = MAX_DEPTH, max_bad_events: int = 100,
                 allow_insecure_key: bool = False,
                 tools: Sequence[Tool | Callable[..., Any]] = (), tool_choice: str | dict[str, Any] = "auto",
                 chunk_ms: int | None = None) -> None:
        frame_ms = renamed_keyword("Realtime", "chunk_ms", "frame_ms", chunk_ms, frame_ms)
        if turn_detection not in ("server_vad", "semantic_vad", "manual"):
            raise ConfigError(f"turn_detection must be 'server_vad', 'semantic_vad' or 'manual' {got(turn_detection)}")
        if dialect not in ("ga", "beta"):
            raise ConfigError(f"dialect must be 'ga' or 'beta' {got(dialect)}")
        if not 10 <= frame_ms <= 200:
            raise ConfigError(f"frame_ms must be in [10, 200] {got(frame_ms)}")
        if url is not None and server is not None:
            raise ConfigError(f"server= options are for the embedded server; they do not apply to url= "
                              f"{got(redact_url(url))}")
        for name, value in (("reconnect_timeout_s", reconnect_timeout_s), ("open_timeout_s", open_timeout_s),
                            ("drain_timeout_s", drain_timeout_s), ("write_timeout_s", write_timeout_s),
                            ("ping_timeout_s", ping_timeout_s), ("stall_timeout_s", stall_timeout_s),
                            ("max_frame_bytes", max_frame_bytes), ("max_depth", max_depth),
                            ("max_bad_events", max_bad_events)):
            if not value > 0:
                raise ConfigError(f"{name} must be positive {got(value)}")
        if ping_interval_s is not None and not ping_interval_s > 0:
            raise ConfigError(f"ping_interval_s must be positive, or None for no keepalive pings {got(ping_interval_s)}")
        if max_retries < 0 or outage_buffer_ms < 0:
            raise ConfigError(f"max_retries and outage_buffer_ms must be >= 0 {got((max_retries, outage_buffer_ms))}")
        register_secret(api_key)
        if url is not None:
            register_secret(urlsplit(url).password)
        self.url = OPENAI_URL if url == "openai" else url
        self.model = model
        self._api_key = api_key
        self.turn_detection = turn_detection
        self.vad = dict(vad or {})
        self.voice = voice
        self.instructions = instructions
        self.transcription = transcription
        self.dialect = dialect
        self.frame_ms = frame_ms
        self.server = dict(server or {})
        self.barge_in = barge_in
        self.reconnect = reconnect
        self.max_retries = max_retries
        self.reconnect_timeout_s = reconnect_timeout_s
        self.outage_buffer_ms = outage_buffer_ms
        self.open_timeout_s = open_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.write_timeout_s = write_timeout_s
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.max_frame_bytes = max_frame_bytes
        self.max_depth = max_depth
        self.max_bad_events = max_bad_events
        self.allow_insecure_key = allow_insecure_key
        self.endpoint = "local" if url is None else redact_url(self.url or "")
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

    @property
    def uses_playout(self) -> str | None:
        """Barge-in truncates at what the sink playing "output" really played (linked by the plan)."""
        return "output" if self.barge_in else None

    @property
    def requires_real_clock(self) -> bool:
        """A remote server keeps real time; the embedded one follows the session clock."""
        return self.url is not None

    def describe(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "model": self.model, "turn_detection": self.turn_detection,
                "dialect": self.dialect, "frame_ms": self.frame_ms, "sample_rate_hz": WIRE_RATE_HZ,
                **{f"server_{k}": v for k, v in self.server.items() if isinstance(v, (int, float, str))}}

    def configure(self, fmt: StreamFormat) -> StreamFormat:
        if fmt.sample_rate_hz not in (None, WIRE_RATE_HZ):
            # the input resampler's rate ratio checked and its scipy import (0.85 s, seconds under load) done
            # here, when the graph is planned, not on the session's event loop at the first frame
            from vkit.filters.resample import PolyphaseResampler

            PolyphaseResampler(fmt.sample_rate_hz, WIRE_RATE_HZ, 1)
        return StreamFormat(WIRE_RATE_HZ, 1)

    @property
    def latency_ms(self) -> float:
        return float(self.frame_ms)

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

                server = await stack.enter_async_context(LocalServer(**{"clock": ctx.clock, **self.server}))
                url = server.url
                ctx.publish(Marker(name="local_server", data={"url": server.url, **{
                    k: str(v) for k, v in self.server.items()}}))
            await _Session(self, ctx, _with_model(url, self.model)).run()


class _Session:
    """The running connection: a reader task for server events, the stage's inbox for input.

    Failure policy: a malformed server event is skipped, published as a ``ProtocolIssue`` and counted, and
    only past ``max_bad_events`` does the session fail (``RemoteProtocolError``). A send that does not
    complete within ``write_timeout_s`` (a server that stopped reading) or an unanswered keepalive ping
    drops the connection. A dropped connection fails the session with ``ConnectionLost``, or, with
    ``reconnect=True``, is reopened with capped exponential backoff and jitter for ``reconnect_timeout_s``.
    Input sent since the server last acknowledged it (``input_audio_buffer.committed``: up to the
    ``speech_stopped`` end, or up to a commit vkit sent) is kept, as is input during the outage; the newest
    ``outage_buffer_ms`` of both is re-sent once reconnected (a commit never confirmed re-sent in its place),
    the rest dropped and counted. Input the server committed is never sent twice.
    """

    def __init__(self, stage: Realtime, ctx: Any, url: str) -> None:
        self.stage = stage
        self.ctx = ctx
        self.url = url
        self.protocol = ClientProtocol(stage.dialect, max_depth=stage.max_depth)
        self.websocket: ClientConnection | None = None
        self.pending: list[np.ndarray] = []
        self.num_pending = 0
        self.frame_samples = ms_to_whole_samples(stage.frame_ms, WIRE_RATE_HZ)  # input is sent in blocks of this
        self.outage_buffer_samples = ms_to_whole_samples(stage.outage_buffer_ms, WIRE_RATE_HZ)
        self.resampler: Any = None
        self.output_position = 0
        self.played_items: deque[_PlayedItem] = deque(maxlen=NUM_PLAYED_ITEMS)
        self.interrupted: set[str] = set()
        self.truncated: set[str] = set()
        self.responding = asyncio.Event()
        self.connected = asyncio.Event()
        self.progress = asyncio.Event()  # set whenever a server event was acted on (what _drain waits for)
        self.inbox: asyncio.Queue[tuple[int, str | bytes | Exception]] | None = None  # see _read_forever
        self.first_delta_ns: dict[str, int] = {}
        self.num_connections = 0
        self.num_reconnects = 0
        self.num_issues = 0
        self.outage: deque[np.ndarray | ev.ClientEvent] = deque()  # to send once reconnected, in order
        self.num_outage_samples = 0
        self.num_dropped_samples = 0
        self.unacked: deque[tuple[int, np.ndarray]] = deque()  # (position, audio) sent, not yet acknowledged
        self.num_sent_samples = 0  # input samples sent on the current connection (its positions)
        self.acked_position = 0  # the server acknowledged the current connection's input up to here
        self.commits: deque[list[Any]] = deque()  # [position, response.create sent after it], unconfirmed
        self.speech_end_position: int | None = None  # the last speech_stopped's audio_end_ms, in samples
        self.handshake_pending = False  # the current connection's session.updated has not arrived
        self.sending_since: float | None = None
        self.abort_reason: str | None = None  # set when vkit itself cut the connection, and why
        self.tools = ToolDispatcher(stage.tools, self.send, ctx.publish, ctx.clock) if stage.tools else None

    # -- connection ---------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        key = self.stage._api_key or os.environ.get("OPENAI_API_KEY")  # noqa: SLF001
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if self.stage.url is not None:
            if not key and (host == "api.openai.com" or host.endswith(".openai.azure.com")):
                raise ConfigError(f"this Realtime endpoint needs an API key: set OPENAI_API_KEY or pass api_key= "
                                  f"{got(self.stage.endpoint)}")
            if (key or parts.password) and parts.scheme != "wss" and not _is_loopback(host) \
                    and not self.stage.allow_insecure_key:
                raise ConfigError("an API key is sent only over wss:// or to loopback; use wss://, or pass "
                                  f"allow_insecure_key=True to send it in clear text {got(self.stage.endpoint)}")
            register_secret(key)
            if key and host.endswith(".openai.azure.com"):
                headers["api-key"] = key
            elif key:
                headers["Authorization"] = f"Bearer {key}"
        if self.stage.dialect == "beta":
            headers["OpenAI-Beta"] = "realtime=v1"
        return headers

    async def _open(self) -> ClientConnection:
        headers = self._headers()
        install_websockets_filter()
        try:
            return await connect(self.url, additional_headers=headers, max_size=self.stage.max_frame_bytes,
                                 compression=None, open_timeout=self.stage.open_timeout_s,
                                 ping_interval=self.stage.ping_interval_s, ping_timeout=self.stage.ping_timeout_s,
                                 close_timeout=1.0)
        except (OSError, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as exc:
            raise ConnectionLost(redact_text(f"cannot connect to the Realtime endpoint ({type(exc).__name__}: {exc}) "
                                             f"{got(self.stage.endpoint)}")) from exc

    async def _connect(self) -> None:
        """Open a connection, send the session config and any audio kept through an outage, then go."""
        self.websocket = await self._open()
        self.abort_reason = None
        self.num_connections += 1
        self.protocol = ClientProtocol(self.stage.dialect, max_depth=self.stage.max_depth)
        self.unacked.clear()
        self.commits.clear()
        self.num_sent_samples = self.acked_position = 0
        self.speech_end_position = None
        self.handshake_pending = True
        await self._send_now(ev.CLIENT_EVENTS["session.update"](session=self.stage.session_update()))
        while self.outage:
            item = self.outage[0]
            sent = await self._send_audio_now(item) if isinstance(item, np.ndarray) else await self._send_now(item)
            if not sent:  # dropped again: the rest waits for the next connection
                break
            self.outage.popleft()
            if isinstance(item, np.ndarray):
                self.num_outage_samples -= item.size
        self.connected.set()
        self.progress.set()

    async def run(self) -> None:
        await self._connect()
        writer = asyncio.current_task()
        assert writer is not None
        reader = asyncio.ensure_future(self._read_forever())
        watchdog = asyncio.ensure_future(self._watch_writes())

        finishing = False

        def stop_writer(task: asyncio.Task[None]) -> None:
            if _failed(task) and not finishing:
                writer.cancel()

        reader.add_done_callback(stop_writer)
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
            finishing = True  # the writer's own failure, if any, is what the session reports
            reader.cancel()
            watchdog.cancel()
            await asyncio.gather(reader, watchdog, return_exceptions=True)
            if self.tools is not None:
                await self.tools.close()
            if self.websocket is not None:
                if self.connected.is_set():
                    await self.websocket.close()
                else:  # a frozen or dropped peer: do not wait for a closing handshake
                    self.websocket.transport.abort()
            self.protocol.close()

    async def _drain(self, reader: asyncio.Task[None]) -> None:
        """The input ended: let the answer in progress finish arriving (for ``drain_timeout_s`` on the session
        clock), and the events already received be acted on, then close. It wakes on what can end the wait: an
        event handled, a tool call finished, the reader's end, the deadline; nothing polls, so a virtual clock
        jumps straight to the next of them."""
        clock = self.ctx.clock
        deadline = asyncio.ensure_future(clock.sleep_until(clock.now_ns() + s_to_ns(self.stage.drain_timeout_s)))
        handshake: asyncio.Future[None] | None = None  # a reconnection's session.updated: HANDSHAKE_WAIT_S at most
        try:
            for _ in range(_RECEIVE_YIELDS):  # let messages already read off the socket reach the inbox
                await asyncio.sleep(0)
            while not reader.done():
                self.progress.clear()
                # events that arrived before the input ended are acted on (and recorded) before closing
                if not self._awaiting() and (self.inbox is None or self.inbox.empty()):
                    if not (self.handshake_pending and self.num_connections > 1):
                        return
                    if handshake is None:
                        handshake = asyncio.ensure_future(asyncio.sleep(HANDSHAKE_WAIT_S))
                    elif handshake.done():
                        return
                if deadline.done():
                    self._abandon_response(f"still arriving {self.stage.drain_timeout_s:g} s after the input ended "
                                           "(drain_timeout_s)")
                    return
                progressed = asyncio.ensure_future(self.progress.wait())
                tools = [c.task for c in self.tools.calls.values() if c.task is not None and not c.task.done()] \
                    if self.tools is not None else []
                waits = {reader, deadline, progressed, *tools, *([handshake] if handshake is not None else [])}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                progressed.cancel()
            reader.result()
        finally:
            deadline.cancel()
            if handshake is not None:
                handshake.cancel()

    def _awaiting(self) -> bool:
        """Whether the session must stay open: an answer or a tool call under way, or a reconnection that has
        input kept through the outage still to send."""
        return (self.protocol.active_response is not None or self.responding.is_set()
                or (self.tools is not None and self.tools.busy) or (self.stage.reconnect and not self.connected.is_set()))

    def _abandon_response(self, why: str) -> None:
        """Give up on the answer in progress: a warning, a ``response_stalled`` marker for the turn table."""
        active = self.protocol.active_response
        response_id = active.response_id if active is not None else None
        log.warning("Realtime response %s abandoned: %s %s", response_id, why, got(self.stage.endpoint))
        self.ctx.publish(Marker(name="response_stalled", data={"response_id": response_id, "reason": why}))
        if response_id is not None:
            self.interrupted.add(response_id)
        self.protocol.active_response = None
        self.responding.clear()
        self.progress.set()

    async def _read_forever(self) -> None:
        """Act on the server's events in order. A receiver task stamps each message as it comes off the socket,
        so the time spent here on a burst of events is not added to the arrival times of the ones behind it."""
        self.inbox = inbox = asyncio.Queue(maxsize=INBOX_MESSAGES)
        receiver = asyncio.ensure_future(self._receive_forever(inbox))
        stall_s = self.stage.stall_timeout_s
        try:
            while True:
                if self._awaiting():
                    try:
                        received_ns, message = await asyncio.wait_for(inbox.get(), stall_s)
                    except asyncio.TimeoutError:
                        self._abandon_response(f"no server event for {stall_s:g} s (stall_timeout_s)")
                        continue
                else:
                    received_ns, message = await inbox.get()
                if isinstance(message, Exception):
                    raise message
                await self._on_message(message, received_ns)
                self.progress.set()
                inbox.task_done()
                await asyncio.sleep(0)  # let the socket be read, and stamped, between two events
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)

    async def _receive_forever(self, inbox: asyncio.Queue[tuple[int, str | bytes | Exception]]) -> None:
        """Receive, reconnecting when allowed; a failure goes through the inbox, after what arrived before it."""
        try:
            while True:
                websocket = self.websocket
                assert websocket is not None
                closed: ConnectionClosed | None = None
                try:
                    async for message in websocket:
                        await inbox.put((self.ctx.clock.now_ns(), message))
                except ConnectionClosed as exc:
                    closed = exc
                code, why = self._close_of(websocket, closed)
                refused = self._refusal(closed)
                if refused is not None:
                    raise refused
                if websocket is self.websocket:
                    self.connected.clear()
                if not self.stage.reconnect or code in NO_RECONNECT_CODES:
                    raise ConnectionLost(redact_text(f"the Realtime connection closed mid-session ({why}) "
                                                     f"{got(self.stage.endpoint)}"))
                await inbox.join()  # the old connection's events first, then the new one's state
                await self._reconnect(code, why)
        except Exception as exc:  # noqa: BLE001 - handed to _read_forever, which raises it
            await inbox.put((0, exc))

    async def _reconnect(self, code: int | None, why: str) -> None:
        """Reopen the connection: capped exponential backoff with jitter, for at most reconnect_timeout_s."""
        loop = asyncio.get_running_loop()
        self.num_reconnects += 1
        if self.num_reconnects > self.stage.max_retries:
            raise ConnectionLost(redact_text(f"the Realtime connection closed ({why}) after {self.stage.max_retries} "
                                             f"reconnections (max_retries) {got(self.stage.endpoint)}"))
        self.responding.clear()
        self.ctx.publish(Marker(name="reconnect", data={"attempt": self.num_reconnects, "code": code, "reason": why}))
        log.info("Realtime connection closed (%s); reconnecting", why)
        self._keep_unacknowledged()
        started = loop.time()
        num_attempts, last = 0, why
        while True:
            delay_s = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2**num_attempts) * random.uniform(0.5, 1.0)
            if loop.time() + delay_s - started > self.stage.reconnect_timeout_s:
                raise ConnectionLost(redact_text(
                    f"could not reconnect within reconnect_timeout_s={self.stage.reconnect_timeout_s:g} "
                    f"({num_attempts} attempts; last: {last}) {got(self.stage.endpoint)}"))
            await asyncio.sleep(delay_s)
            num_attempts += 1
            try:
                await self._connect()
            except ConnectionLost as exc:
                last = str(exc)
                continue
            break
        self.ctx.publish(Marker(name="reconnected", data={
            "attempt": self.num_reconnects, "num_attempts": num_attempts,
            "outage_ms": round(s_to_ms(loop.time() - started), 1), "num_dropped_samples": self.num_dropped_samples}))

    # -- sending --------------------------------------------------------------------------------------

    async def send(self, event: ev.ClientEvent) -> None:
        """Send ``event`` once connected; across a reconnection it is sent on the new connection."""
        for _ in range(self.stage.max_retries + 1):
            await self.connected.wait()
            if await self._send_now(event):
                return

    async def _send_now(self, event: ev.ClientEvent) -> bool:
        """Send on the current connection; False if it dropped (and the reader reconnects)."""
        if event.event_id is None:
            event = replace(event, event_id=self.protocol.next_event_id())
        if not await self._transmit(self.protocol.send(event), _without_audio(event)):
            return False
        if event.type == "input_audio_buffer.commit":
            self.commits.append([self.num_sent_samples, False])
        elif event.type == "response.create" and self.commits:
            self.commits[-1][1] = True
        return True

    async def _send_audio_now(self, audio: np.ndarray) -> bool:
        """``_send_now`` for one chunk of input audio: the text written directly, one event for the record.
        The chunk is kept until the server acknowledges it (the newest ``outage_buffer_ms``)."""
        event_id, text = self.protocol.append_text(encode_audio(audio), audio.size)
        if not await self._transmit(text, _APPEND(audio=None, event_id=event_id, extra={"num_samples": audio.size})):
            return False
        self.unacked.append((self.num_sent_samples, audio))
        self.num_sent_samples += audio.size
        limit = self.outage_buffer_samples
        while self.unacked and self.num_sent_samples - _end(self.unacked[0]) >= limit:
            self.unacked.popleft()  # older than the limit: if this connection drops, counted as dropped then
        return True

    def _acknowledge(self, position: int) -> None:
        """The server committed the current connection's input up to ``position``: it is never re-sent."""
        self.acked_position = max(self.acked_position, position)
        while self.unacked and _end(self.unacked[0]) <= self.acked_position:
            self.unacked.popleft()

    def _keep_unacknowledged(self) -> None:
        """A connection dropped: what it never acknowledged goes before the outage's input (with the commits it
        never confirmed), the newest ``outage_buffer_ms`` of it all kept, the rest counted as dropped."""
        kept: list[np.ndarray | ev.ClientEvent] = []
        first_kept = self.unacked[0][0] if self.unacked else self.num_sent_samples
        self.num_dropped_samples += max(0, first_kept - self.acked_position)  # trimmed while connected
        commits = deque(self.commits)
        for start, audio in self.unacked:
            skip = max(0, self.acked_position - start)
            start, audio = start + skip, audio[skip:]
            while commits and commits[0][0] <= start + audio.size:
                cut = max(0, commits[0][0] - start)
                if cut:
                    kept.append(audio[:cut])
                start, audio = start + cut, audio[cut:]
                kept.extend(_commit_events(commits.popleft()[1]))
            if audio.size:
                kept.append(audio)
        for _, with_response in commits:
            kept.extend(_commit_events(with_response))
        self.unacked.clear()
        self.commits.clear()
        self.outage.extendleft(reversed(kept))
        self.num_outage_samples += sum(a.size for a in kept if isinstance(a, np.ndarray))
        self._trim_outage()

    async def _transmit(self, text: str, recorded: ev.ClientEvent) -> bool:
        """Send ``text``, then put ``recorded`` (the event, its audio left out) on the session record."""
        websocket = self.websocket
        assert websocket is not None
        self.sending_since = asyncio.get_running_loop().time()  # watched by _watch_writes
        try:
            await websocket.send(text)
        except ConnectionClosed as exc:
            refused = self._refusal(exc)
            if refused is not None:
                raise refused from exc
            why = self._close_of(websocket, exc)[1]
            if websocket is self.websocket:
                self.connected.clear()
            if not self.stage.reconnect:
                raise ConnectionLost(redact_text(f"the Realtime connection closed mid-session ({why}) "
                                                 f"{got(self.stage.endpoint)}")) from exc
            return False
        finally:
            self.sending_since = None
        self.ctx.publish(ProtocolEvent(direction="sent", type=recorded.type, event=recorded,
                                       t_ns=self.ctx.clock.now_ns(), stage=self.ctx.name))
        return True

    def _close_of(self, websocket: ClientConnection, closed: ConnectionClosed | None) -> tuple[int | None, str]:
        """The close code and the phrase naming why: vkit's own abort, an unanswered keepalive ping, the close."""
        code, why = _close_of(websocket, closed)
        if self.abort_reason is not None:
            return code, self.abort_reason
        if closed is not None and closed.rcvd is None and closed.sent is not None \
                and closed.sent.reason == "keepalive ping timeout":
            why = f"the server did not answer a keepalive ping within ping_timeout_s={self.stage.ping_timeout_s:g}: {why}"
        return code, why

    def _refusal(self, closed: ConnectionClosed | None) -> RemoteProtocolError | None:
        """The error when vkit's websockets failed the connection over what the server sent: a message over
        max_frame_bytes (1009), a text frame that is not UTF-8 (1007), a broken frame (1002). None otherwise."""
        if closed is None or closed.rcvd is not None or closed.sent is None:
            return None
        code, reason, endpoint = closed.sent.code, closed.sent.reason, got(self.stage.endpoint)
        if code == 1009:
            return RemoteProtocolError(f"the Realtime server sent a message over max_frame_bytes="
                                       f"{self.stage.max_frame_bytes} ({reason}) {endpoint}")
        if code == 1007:
            return RemoteProtocolError(f"the Realtime server sent a text frame that is not valid UTF-8 ({reason}) "
                                       f"{endpoint}")
        if code == 1002:
            return RemoteProtocolError(f"the Realtime server broke the WebSocket protocol ({reason}) {endpoint}")
        return None

    async def _watch_writes(self) -> None:
        """Abort a connection whose send has not completed within write_timeout_s (the peer stopped reading).

        One watchdog for the session instead of a timer per send: a send into a free buffer costs nothing extra."""
        limit_s = self.stage.write_timeout_s
        while True:
            await asyncio.sleep(min(limit_s / 4, 1.0))
            since = self.sending_since
            if since is not None and asyncio.get_running_loop().time() - since > limit_s and self.websocket is not None:
                self.abort_reason = f"the server stopped reading: a send did not complete within write_timeout_s={limit_s:g}"
                self.websocket.transport.abort()  # the pending send and the reader see the drop

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
        if self.num_pending >= self.frame_samples:
            await self._flush_audio()

    async def _flush_audio(self) -> None:
        if not self.num_pending:
            return
        audio = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending, self.num_pending = [], 0
        if not self.connected.is_set() or not await self._send_audio_now(audio):
            self._keep_through_outage(audio)

    def _keep_through_outage(self, audio: np.ndarray) -> None:
        """Input during an outage: keep the newest ``outage_buffer_ms``, count what is dropped."""
        self.outage.append(audio)
        self.num_outage_samples += audio.size
        self._trim_outage()

    def _trim_outage(self) -> None:
        """Drop the oldest audio kept for the next connection beyond ``outage_buffer_ms``, counted; events stay."""
        limit = self.outage_buffer_samples
        while self.num_outage_samples > limit:
            index = next(i for i, item in enumerate(self.outage) if isinstance(item, np.ndarray))
            dropped = self.outage[index]
            del self.outage[index]
            assert isinstance(dropped, np.ndarray)
            self.num_outage_samples -= dropped.size
            self.num_dropped_samples += dropped.size

    # -- receiving ------------------------------------------------------------------------------------

    async def _on_message(self, message: str | bytes, now_ns: int) -> None:
        """One server message, received at ``now_ns`` on the session clock."""
        event = self.protocol.receive(message)
        wire_type = event.wire_type if isinstance(event, ev.UnknownEvent) else event.type
        if isinstance(event, InvalidEvent):
            self._issue(event.reason, wire_type, now_ns)
            return
        self.ctx.publish(ProtocolEvent(direction="received", type=wire_type, event=_without_audio(event), t_ns=now_ns,
                                       stage=self.ctx.name))
        if event.type == "response.created":
            self.responding.set()
        elif event.type == "response.done":
            self.responding.clear()
        elif event.type == "response.output_audio.delta":
            await self._on_audio(event, now_ns)
        elif event.type == "input_audio_buffer.speech_started" and self.stage.barge_in:
            await self._barge_in(now_ns, "server_vad")
        elif event.type == "input_audio_buffer.speech_stopped":
            self.speech_end_position = ms_to_whole_samples(event.audio_end_ms, WIRE_RATE_HZ)  # type: ignore[attr-defined]
        elif event.type == "input_audio_buffer.committed":
            if self.commits:  # the commit vkit sent
                self._acknowledge(self.commits.popleft()[0])
            else:  # the server's VAD committed up to the end of speech
                self._acknowledge(self.speech_end_position if self.speech_end_position is not None
                                  else self.num_sent_samples)
        elif event.type == "session.updated":
            self.handshake_pending = False
        elif event.type == "error":
            log.info("server error event: %s", redact_text(repr(event.error)))  # type: ignore[attr-defined]
        transcript = transcript_of(event, now_ns)
        if transcript is not None:
            await self.ctx.emit(transcript)
        if self.tools is not None:
            await self.tools.on_event(event, now_ns)

    def _issue(self, reason: str, wire_type: str, now_ns: int) -> None:
        """A bad server event: skipped, published and counted; past ``max_bad_events`` the session fails."""
        self.num_issues += 1
        reason = redact_text(reason)
        self.ctx.publish(ProtocolIssue(reason=reason, wire_type=wire_type, num_issues=self.num_issues, t_ns=now_ns,
                                       stage=self.ctx.name))
        if self.num_issues <= 10 or self.num_issues % 100 == 0:
            log.warning("skipped a bad server event (%d so far): %s", self.num_issues, reason)
        if self.num_issues > self.stage.max_bad_events:
            raise RemoteProtocolError(f"the Realtime server sent {self.num_issues} bad events, more than "
                                      f"max_bad_events={self.stage.max_bad_events}; the last: {reason}")

    async def _on_audio(self, event: Any, now_ns: int) -> None:
        if event.response_id in self.interrupted:
            return
        try:
            samples = decode_audio(event.delta, "pcm16")
        except RemoteProtocolError as exc:
            self._issue(str(exc), event.type, now_ns)
            return
        if not samples.size:
            return
        if not self.played_items or self.played_items[-1].item_id != event.item_id:
            self.played_items.append(_PlayedItem(event.item_id, event.response_id, self.output_position,
                                                 connection=self.num_connections))
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
        tracker = self.ctx.linked_playout()
        if tracker is not None:
            played = tracker.played_sample(now_ns)
        else:  # no playing sink: assume real-time playout from the first delta
            first = self.first_delta_ns.setdefault(item.item_id, now_ns)
            played = item.start_sample + ns_to_whole_samples(now_ns - first, WIRE_RATE_HZ)
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
        audio_end_ms = samples_to_whole_ms(heard, WIRE_RATE_HZ)
        self.truncated.add(item.item_id)
        data = {"cause": cause, "item_id": item.item_id, "audio_end_ms": audio_end_ms, "played_sample": played}
        if item.item_id not in self.protocol.items:  # it played on a connection that has since been replaced
            reason = (f"item {item.item_id} was received on connection {item.connection}; connection "
                      f"{self.num_connections} never saw it, so the server cannot truncate it")
            log.info("barge-in without truncation: %s", reason)
            self.ctx.publish(Marker(name="barge_in", data={**data, "truncate_skipped": reason}))
            return
        self.ctx.publish(Marker(name="barge_in", data=data))
        await self.send(ev.CLIENT_EVENTS["conversation.item.truncate"](item_id=item.item_id, content_index=0,
                                                                        audio_end_ms=int(audio_end_ms)))


def _end(chunk: tuple[int, np.ndarray]) -> int:
    """The position just after a kept chunk of input."""
    return chunk[0] + chunk[1].size


def _commit_events(with_response: bool) -> list[ev.ClientEvent]:
    """A commit the server never confirmed, re-sent on the new connection (with its ``response.create``)."""
    events = [ev.CLIENT_EVENTS["input_audio_buffer.commit"]()]
    return [*events, ev.CLIENT_EVENTS["response.create"]()] if with_response else events


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


def _close_of(websocket: ClientConnection, closed: ConnectionClosed | None) -> tuple[int | None, str]:
    """The close code that ended ``websocket`` and a phrase saying who closed it and why."""
    frame = closed.rcvd if closed is not None and closed.rcvd is not None else None
    if frame is not None or closed is None:
        code = frame.code if frame is not None else websocket.close_code
        reason = frame.reason if frame is not None else websocket.close_reason
        by = "by the server"
    elif closed.sent is not None:
        code, reason, by = closed.sent.code, closed.sent.reason, "by vkit"
    else:
        code, reason, by = None, "", "without a closing handshake"
    text = f"code {code}" if code is not None else "no close code"
    return code, f"{text} {by}" + (f": {reason}" if reason else "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
