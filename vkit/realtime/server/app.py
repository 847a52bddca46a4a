"""The embedded local Realtime server: ``ws://127.0.0.1:PORT/v1/realtime``, GA by default, beta on request.

Routing: ``LocalServer.routes`` maps a path to a handler ``async (websocket) -> None``; a request for any
other path is answered 404. Adding an endpoint (e.g. ``/v1/responses``) is one entry in ``_routes()`` and
its handler.
"""

from __future__ import annotations

import asyncio
import http
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from vkit.clock import SessionClock
from vkit.deprecation import renamed_keyword
from vkit.errors import ConfigError, got
from vkit.realtime.server.connection import Connection, GuardedConnection
from vkit.realtime.server.latency import DelayModel
from vkit.realtime.server.options import ResponseRecord, ServerOptions
from vkit.realtime.server.responders import Responder, ToolRule, make_responder
from vkit.realtime.server.session import ServerSession
from vkit.realtime.server.turns import semantic_detector
from vkit.redact import install_websockets_filter
from vkit.units import s_to_ms

log = logging.getLogger(__name__)

__all__ = ["LocalServer"]


class LocalServer:
    """A Realtime-protocol server on loopback, for offline, reproducible sessions.

    ``responder``: "echo", "scripted" (``replies=[...]``), "cascade" or "tools" (``tool_rules=[...]``), or
    any object with ``async reply(turn: Turn) -> Reply``; ``transcribe=True`` gives echo and tools a
    pocketsphinx recogniser. ``response_delay_ms``: injected delay before the first audio delta (ms, a
    distribution such as "normal:300,50", or a profile: "speech-to-speech", "cascade"). ``output_pace``:
    output streaming speed as a multiple of real time (0 = as fast as possible). ``created_delay_ms``: how
    long after its trigger each response is announced (``response.created``), input still taken meanwhile: a
    slow or queued server. ``clock``: every wait and timestamp of the server (a ``VirtualClock`` runs whole
    sessions with no real waiting); by default a ``SessionClock`` started with the server. Pings every ``ping_interval_s`` close a peer that does not
    answer within ``ping_timeout_s``, and a closing handshake the peer leaves unanswered ends after
    ``close_timeout_s`` (real time: they watch the network, not the session). A session with no client
    event and no response under way for ``idle_reap_s`` (on ``clock``) gets a ``session_idle`` error and
    is closed, freeing its slot. Malformed client events are each answered with an error event; past
    ``max_bad_events`` of them the session ends (``too_many_bad_events``, close 1008; None: never).
    ``cascade``: also serve ``/v1/responses`` and ``/v1/audio/speech`` (``vkit.responses.local_server.CascadeServer``
    options, e.g. ``{"port": 8766, "tls": True}``), reachable as ``.cascade``.
    ``turn_detector``: what ends a ``semantic_vad`` turn after Silero: "smart_turn" (Smart Turn v3.2, its
    threshold and longest wait set by the session's ``eagerness``, run in a thread) or "silence" (a silence
    per eagerness); ``server_vad`` always ends a turn after ``silence_duration_ms``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, responder: str | Responder = "echo",
                 replies: Sequence[str | Path | np.ndarray] | None = None, response_delay_ms: str | float = 0,
                 output_pace: float = 2.0, frame_ms: int = 40, seed: int = 0, max_sessions: int = 100,
                 max_session_s: float = 3600.0, max_message_bytes: int = 16 * 1024 * 1024,
                 max_input_buffer_s: float = 600.0, max_retained_audio_s: float | None = 300.0,
                 idle_reap_s: float | None = 600.0, max_bad_events: int | None = 100, tool_rules: Sequence[ToolRule | str] = (), transcribe: bool = False,
                 clock: SessionClock | None = None, ping_interval_s: float | None = 20.0,
                 ping_timeout_s: float | None = 20.0, close_timeout_s: float = 5.0, measure_lag: bool = False,
                 cascade: dict[str, Any] | None = None, turn_detector: str = "smart_turn",
                 created_delay_ms: float = 0.0, chunk_ms: int | None = None) -> None:
        frame_ms = renamed_keyword("LocalServer", "chunk_ms", "frame_ms", chunk_ms, frame_ms)
        if output_pace < 0:
            raise ConfigError(f"output_pace must be >= 0 (0 streams as fast as possible) {got(output_pace)}")
        if not 5 <= frame_ms <= 1000:
            raise ConfigError(f"frame_ms must be in [5, 1000] {got(frame_ms)}")
        if created_delay_ms < 0:
            raise ConfigError(f"created_delay_ms must be >= 0 {got(created_delay_ms)}")
        self.host = host
        self.port = port
        self.responder: Responder = (make_responder(responder, replies, tool_rules=tool_rules, transcribe=transcribe)
                                     if isinstance(responder, str) else responder)
        self._owns_responder = isinstance(responder, str)
        semantic_detector(turn_detector, "auto")  # refuses an unknown name now
        self.options = ServerOptions(DelayModel(response_delay_ms, seed), output_pace, frame_ms, max_session_s,
                                     max_input_buffer_s, max_retained_audio_s, idle_reap_s, turn_detector,
                                     created_delay_ms, max_bad_events)
        self.clock = clock
        self.max_sessions = max_sessions
        self.max_message_bytes = max_message_bytes
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.close_timeout_s = close_timeout_s
        self.measure_lag = measure_lag
        self.routes: dict[str, Callable[[ServerConnection], Awaitable[None]]] = self._routes()
        self.connections: set[Connection] = set()
        self._finished: list[ResponseRecord] = []
        self.lag_ms: list[float] = []
        self.num_rejected = 0
        self._server: Server | None = None
        self._lag_task: asyncio.Task[None] | None = None
        # -- cascade endpoints (vkit.responses.local_server): a server of their own beside this one
        self.cascade: Any = None
        self._cascade_options = cascade
        self._turn_executor: ThreadPoolExecutor | None = None

    @property
    def records(self) -> list[ResponseRecord]:
        """The server's account of each response (the latest 100,000 of ended sessions, then live ones)."""
        return self._finished + [r for c in self.connections for r in c.session.records]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/v1/realtime"

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _routes(self) -> dict[str, Callable[[ServerConnection], Awaitable[None]]]:
        """Path -> handler. The Realtime endpoint answers at both spellings clients use."""
        return {"/v1/realtime": self._realtime, "/realtime": self._realtime}

    async def start(self) -> None:
        from vkit.filters.resample import PolyphaseResampler
        from vkit.filters.vad.models import SileroModel

        SileroModel.load()  # the server VAD's model now, not inside the first session
        PolyphaseResampler(24_000, 16_000, 1)  # and its resampler's scipy import (1-8 s of a blocked loop under load)
        # semantic_vad's turn models: one thread fewer than the machine's cores, so the loop keeps a core
        self._turn_executor = ThreadPoolExecutor(max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="vkit-turn")
        if self.clock is None:
            self.clock = SessionClock()
        install_websockets_filter()  # websockets logs the clients' handshake headers (their keys) at DEBUG
        self._server = await serve(self._handle, self.host, self.port, process_request=self._check_request,
                                   select_subprotocol=_select_subprotocol, max_size=2 * self.max_message_bytes,
                                   compression=None, ping_interval=self.ping_interval_s,
                                   ping_timeout=self.ping_timeout_s, close_timeout=self.close_timeout_s,
                                   create_connection=GuardedConnection)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.measure_lag:
            self._lag_task = asyncio.ensure_future(self._probe_lag())
        if self._cascade_options is not None:  # cascade endpoints
            from vkit.responses.local_server import CascadeServer

            self.cascade = CascadeServer(self.host, **self._cascade_options)
            await self.cascade.start()
        log.info("local Realtime server on %s", self.url)

    async def close(self) -> None:
        if self.cascade is not None:  # cascade endpoints
            await self.cascade.close()
        if self._lag_task is not None:
            self._lag_task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._turn_executor is not None:
            self._turn_executor.shutdown(wait=False, cancel_futures=True)
            self._turn_executor = None
        close_responder = getattr(self.responder, "close", None)
        if self._owns_responder and close_responder is not None:
            await asyncio.get_running_loop().run_in_executor(None, close_responder)

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = _path(request.path)
        if path not in self.routes:
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no endpoint at {path}\n")
        if len(self.connections) >= self.max_sessions:
            self.num_rejected += 1
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE,
                                      f"the server is at its limit of {self.max_sessions} sessions\n")
        return None

    async def _handle(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        await self.routes[_path(websocket.request.path)](websocket)

    async def _realtime(self, websocket: ServerConnection) -> None:
        request = websocket.request
        assert request is not None and self.clock is not None
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        beta = request.headers.get("OpenAI-Beta", "").replace(" ", "") == "realtime=v1" or "openai-beta.realtime-v1" in offered
        query = _query(request.path)
        session = ServerSession(self.options, dialect="beta" if beta else "ga", model=query.get("model", "gpt-realtime"),
                                now_ns=self.clock.now_ns(), unix_s=self.clock.unix_s(),
                                transcription=query.get("intent") == "transcription")
        connection = Connection(websocket, session, self.responder, self.clock, self.max_message_bytes,
                                self._turn_executor)
        self.connections.add(connection)
        try:
            await connection.run()
        except ConnectionClosed:
            pass  # the client went away; its session ends here
        except Exception:  # one broken session must never take the server down
            log.exception("session failed")
        finally:
            self.connections.discard(connection)
            self._finished.extend(session.records)
            del self._finished[:-_RECORDS_KEPT]

    async def _probe_lag(self) -> None:
        """The event loop's lag in real time (``loop.time``): how late a 10 ms sleep wakes up."""
        interval_s = 0.01
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval_s)
            self.lag_ms.append(max(0.0, s_to_ms(loop.time() - started - interval_s)))
            if len(self.lag_ms) > 100_000:
                del self.lag_ms[:50_000]

    def lag_summary_ms(self) -> dict[str, float]:
        """p50/p90/p99/max of the event-loop lag probe (``measure_lag=True``), in ms; empty before a sample."""
        if not self.lag_ms:
            return {}
        lags = np.asarray(self.lag_ms)
        return {**{f"p{p}": float(np.percentile(lags, p)) for p in (50, 90, 99)}, "max": float(lags.max())}

    def run_in_thread(self) -> _ThreadedServer:
        """Start the server on its own thread and loop (for synchronous code); ``.stop()`` ends it."""
        return _ThreadedServer(self)


class _ThreadedServer:
    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="vkit-local-server", daemon=True)
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the local Realtime server did not start within 10 s")
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:  # handed to the caller's thread (e.g. the port is taken)
            self._error = exc
            self._ready.set()
            self.loop.close()
            return
        self._ready.set()
        self.loop.run_forever()

    @property
    def records(self) -> list[ResponseRecord]:
        """The server's account of each response (see ``LocalServer.records``)."""
        return self.server.records

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _select_subprotocol(connection: ServerConnection, subprotocols: Sequence[str]) -> str | None:
    return "realtime" if "realtime" in subprotocols else None


_RECORDS_KEPT = 100_000  # the server's account of its latest responses


def _path(target: str) -> str:
    return target.split("?", 1)[0].rstrip("/")


def _query(path: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(path).query))
