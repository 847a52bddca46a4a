"""One client connection: pumps the socket into a ``ServerSession`` and runs its responder and timers."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidState, ProtocolError
from websockets.frames import CloseCode
from websockets.protocol import State

from vkit.clock import SessionClock
from vkit.filters.turn import Verdict
from vkit.realtime.codec import encode_event
from vkit.realtime.protocol import error_event
from vkit.realtime.server.responders import Responder
from vkit.realtime.server.session import ServerSession
from vkit.realtime.server.work import ReplyWork, TranscriptionWork, TurnWork

log = logging.getLogger(__name__)

#: a client frame this large (about 10 s of 24 kHz PCM16 in base64) is processed in a thread: decoding and
#: server VAD over minutes of audio would otherwise hold the event loop, and every other session with it
OFF_LOOP_BYTES = 640_000
#: websockets' own reasons to fail a connection -> the error code the client is told first
_FAILURE_CODES = {CloseCode.INVALID_DATA: "invalid_utf8", CloseCode.MESSAGE_TOO_BIG: "message_too_large",
                  CloseCode.PROTOCOL_ERROR: "websocket_protocol_error", CloseCode.INTERNAL_ERROR: "connection_failed"}


class GuardedConnection(ServerConnection):
    """websockets' server connection, telling the client why before websockets fails it by itself.

    websockets closes a connection on its own for a text frame that is not UTF-8 (1007), a frame over
    ``max_size`` (1009), a broken frame (1002) or an unanswered keepalive ping (1011, "keepalive ping
    timeout"). Each goes through the sans-I/O protocol's ``fail``; this connection sends an ``error`` event
    just before the close frame, while a data frame is still allowed, and keeps ``(code, reason)`` in
    ``failure`` for the log line.
    """

    def __init__(self, protocol: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(protocol, *args, **kwargs)
        self.failure: tuple[int, str] | None = None
        fail = protocol.fail

        def fail_telling_the_client(code: int, reason: str = "") -> None:
            if self.failure is None:
                self.failure = (code, reason)
            if protocol.state is State.OPEN and code in _FAILURE_CODES:
                error = error_event(_FAILURE_CODES[code], f"The server closed the connection ({code}): {reason}.",
                                    server_event_id="event_connection_failed")
                try:
                    protocol.send_text(encode_event(error).encode())
                except (InvalidState, ProtocolError):  # mid-fragment: the close frame alone
                    pass
            fail(code, reason)

        protocol.fail = fail_telling_the_client


class Connection:
    """Socket in -> ``session.receive_text``; ``session.events_to_send`` -> socket; work and deadlines run here.

    Every wait goes through ``clock``: on a ``VirtualClock`` a whole session runs with no real waiting, and
    blocking work (a recogniser, a TTS, a turn detector's model, a frame over ``OFF_LOOP_BYTES``) is marked ``clock.busy()`` so time
    does not pass while it runs. ``_core`` serialises every call into the session, whichever task makes it.
    A frame over ``max_message_bytes`` is refused with an error event (the session lives); websockets itself
    closes with 1009 beyond twice that, so an endless frame cannot take the server's memory.
    """

    def __init__(self, websocket: Any, session: ServerSession, responder: Responder, clock: SessionClock,
                 max_message_bytes: int | None = None, turn_executor: Executor | None = None) -> None:
        self.websocket = websocket
        self.session = session
        self.responder = responder
        self.clock = clock
        self.max_message_bytes = max_message_bytes
        self.turn_executor = turn_executor
        self._send_lock = asyncio.Lock()
        self._core = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._timer_deadline_ns: int | None = None

    async def run(self) -> None:
        try:
            await self._pump()
            async for message in self.websocket:
                async with self._core:
                    if self.max_message_bytes is not None and len(message) > self.max_message_bytes:
                        self.session.refuse_frame(len(message), self.max_message_bytes)
                    elif len(message) >= OFF_LOOP_BYTES:
                        await self.run_blocking(self.session.receive_text, message, self.clock.now_ns())
                    else:
                        self.session.receive_text(message, self.clock.now_ns())
                await self._pump()
        finally:
            if self._timer is not None:
                self._timer.cancel()
            for task in list(self._tasks):
                task.cancel()
            self._log_end()

    async def _pump(self) -> None:
        """Send what the session produced, start its work, re-arm its timer; close when it asks."""
        async with self._send_lock:  # texts leave in the session's order, whichever task pumps
            async with self._core:
                work, texts = self.session.take_work(), self.session.events_to_send()
            for item in work:
                self._spawn(self._reply(item) if isinstance(item, ReplyWork) else self._judge(item)
                            if isinstance(item, TurnWork) else self._transcribe(item))
            for text in texts:
                await self.websocket.send(text)
        async with self._core:
            close_code, deadline = self.session.close_code, self.session.next_deadline_ns()
        if close_code is not None:
            await self.websocket.close(close_code, self.session.close_reason)
            return
        self._arm(deadline)

    def _log_end(self) -> None:
        """One line saying how the connection ended and who ended it."""
        protocol = getattr(self.websocket, "protocol", None)
        failure = getattr(self.websocket, "failure", None)
        if protocol is None:
            return
        if failure is not None and failure[0] != CloseCode.ABNORMAL_CLOSURE:
            log.warning("session closed by websockets (%d: %s); the client was sent an error event first", *failure)
        elif self.session.close_code is not None:
            log.info("session closed by the server (%d: %s)", self.session.close_code, self.session.close_reason)
        elif protocol.close_rcvd is not None:
            log.info("session closed by the client (%d: %s)", protocol.close_rcvd.code, protocol.close_rcvd.reason)
        else:
            log.info("session ended: the client went away without a closing handshake")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm(self, deadline: int | None) -> None:
        if deadline == self._timer_deadline_ns and self._timer is not None and not self._timer.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_deadline_ns = deadline
        self._timer = None if deadline is None else asyncio.ensure_future(self._fire_at(deadline))

    async def _fire_at(self, deadline_ns: int) -> None:
        await self.clock.sleep_until(deadline_ns)
        self._timer, self._timer_deadline_ns = None, None
        async with self._core:
            self.session.on_deadline(self.clock.now_ns())
        await self._quietly(self._pump())

    async def run_blocking(self, fn: Any, *args: Any, executor: Executor | None = None) -> Any:
        """Run a blocking call in a thread (of ``executor``, else the loop's default); the clock does not move
        meanwhile."""
        with self.clock.busy():
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def _reply(self, work: ReplyWork) -> None:
        work.turn.run_blocking = self.run_blocking
        try:
            reply = await self.responder.reply(work.turn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a responder's bug fails its response, not the session
            log.exception("responder %s failed", getattr(self.responder, "name", self.responder))
            async with self._core:
                self.session.reply_failed(work.response_id, f"{type(exc).__name__}: {exc}", self.clock.now_ns())
        else:
            async with self._core:
                self.session.reply_ready(work.response_id, reply, self.clock.now_ns())
        await self._quietly(self._pump())

    async def _transcribe(self, work: TranscriptionWork) -> None:
        transcribe = getattr(self.responder, "transcribe", None)
        text = ""
        if transcribe is not None:
            try:
                text = await self.run_blocking(transcribe, work.audio, work.sample_rate_hz)
            except Exception:  # noqa: BLE001 - reported as an empty transcript, logged
                log.exception("transcription failed")
        async with self._core:
            self.session.transcription_ready(work.item_id, text, self.clock.now_ns())
        await self._quietly(self._pump())

    async def _judge(self, work: TurnWork) -> None:
        """A semantic_vad pause judged in a thread of the server's ``turn_executor`` (on the loop, Smart Turn's
        inference would hold every session; the executor's few threads leave a core to the loop)."""
        def judge() -> Verdict | None:  # a pause that speech resumed over while it queued is not judged
            return work.detector.judge(work.pause) if work.detector.is_open(work.pause) else None

        try:
            verdict = await self.run_blocking(judge, executor=self.turn_executor)
        except Exception:  # noqa: BLE001 - a model's failure ends the turn here rather than holding it
            log.exception("the turn detector failed")
            verdict = Verdict(work.pause.now_sample, "error")
        if verdict is None:
            return
        async with self._core:
            self.session.turn_judged(work, verdict, self.clock.now_ns())
        await self._quietly(self._pump())

    @staticmethod
    async def _quietly(pump: Any) -> None:
        try:
            await pump
        except ConnectionClosed:
            pass  # the client left; the reader ends the connection
