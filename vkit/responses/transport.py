"""The client I/O of the cascade: HTTP/1.1 requests with streamed bodies (h11 on asyncio streams) and
the Responses API over WebSocket mode or HTTP streaming, each timing its own connection setup.

``HttpClient`` keeps one connection alive between requests for ``keepalive_s`` idle seconds (httpx's
default is 5 s, so a conversation's turns, seconds apart, often pay a new TCP + TLS handshake) and
reports, per request, the time it spent opening a connection (0 when one was reused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import h11
from websockets.asyncio.client import ClientConnection, connect

from vkit.errors import ConfigError, ConnectionLost, RemoteProtocolError, got
from vkit.responses.protocol import ServerSentEvents

__all__ = ["HttpClient", "ResponsesTransport", "Transport"]

Transport = Literal["websocket", "http"]
_READ_BYTES = 65_536


@dataclass
class _Open:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    http: h11.Connection
    idle_since: float


class HttpClient:
    """Requests to one origin (``http(s)://host:port``), one at a time, over a kept-alive connection."""

    def __init__(self, origin: str, *, headers: dict[str, str] | None = None, ssl_context: ssl.SSLContext | None = None,
                 keepalive_s: float = 5.0, timeout_s: float = 30.0) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"an HTTP origin is http(s)://host[:port] {got(origin)}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        self.ssl_context = ssl_context if ssl_context is not None else (ssl.create_default_context() if self.tls else None)
        self._headers = dict(headers or {})
        self.keepalive_s = keepalive_s
        self.timeout_s = timeout_s
        self.num_connections = 0
        self.last_setup_ns = 0  # time the last request spent opening its connection
        self._open: _Open | None = None

    def __repr__(self) -> str:  # never the headers: they carry the key
        return f"HttpClient({'https' if self.tls else 'http'}://{self.host}:{self.port}, keepalive_s={self.keepalive_s})"

    async def _connection(self) -> _Open:
        held = self._open
        if held is not None and (time.monotonic() - held.idle_since > self.keepalive_s
                                 or held.http.our_state is not h11.IDLE or held.reader.at_eof()):
            held.writer.close()  # not awaited: a TLS close waits a round trip for the peer's close_notify
            self._open = held = None
        if held is not None:
            self.last_setup_ns = 0
            return held
        started = time.monotonic_ns()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=self.ssl_context,
                                    server_hostname=self.host if self.tls else None), self.timeout_s)
        self.last_setup_ns = time.monotonic_ns() - started
        self.num_connections += 1
        self._open = _Open(reader, writer, h11.Connection(h11.CLIENT), time.monotonic())
        return self._open

    async def stream(self, method: str, path: str, body: Any = None) -> tuple[int, AsyncIterator[bytes]]:
        """Send a request (a JSON ``body``) and return its status and an iterator over the body's chunks."""
        held = await self._connection()
        data = json.dumps(body).encode() if body is not None else b""
        headers = [("host", f"{self.host}:{self.port}"), ("content-type", "application/json"),
                   ("content-length", str(len(data))), *self._headers.items()]
        held.writer.write(held.http.send(h11.Request(method=method, target=path, headers=headers)))
        held.writer.write(held.http.send(h11.Data(data=data)) + held.http.send(h11.EndOfMessage()))
        await held.writer.drain()
        response = await self._next(held)
        if not isinstance(response, h11.Response):
            raise RemoteProtocolError(f"the server answered without an HTTP response {got(type(response).__name__)}")
        return response.status_code, self._body(held)

    async def _next(self, held: _Open) -> Any:
        while True:
            event = held.http.next_event()
            if event is not h11.NEED_DATA:
                return event
            chunk = await asyncio.wait_for(held.reader.read(_READ_BYTES), self.timeout_s)
            held.http.receive_data(chunk)

    async def _body(self, held: _Open) -> AsyncIterator[bytes]:
        while True:
            event = await self._next(held)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                if held.http.our_state is h11.DONE and held.http.their_state is h11.DONE:
                    held.http.start_next_cycle()
                    held.idle_since = time.monotonic()
                else:
                    await self.aclose()
                return
            else:
                await self.aclose()
                raise ConnectionLost(f"the server closed the connection mid-response {got(type(event).__name__)}")

    async def aclose(self) -> None:
        held, self._open = self._open, None
        if held is not None:
            held.writer.close()
            with contextlib.suppress(Exception):
                await held.writer.wait_closed()


class ResponsesTransport:
    """Responses requests and their events, by WebSocket mode (one socket) or HTTP streaming (SSE)."""

    def __init__(self, base_url: str, websocket_base_url: str, transport: Transport, *, api_key: str | None,
                 ssl_context: ssl.SSLContext | None = None, keepalive_s: float = 5.0, timeout_s: float = 30.0) -> None:
        if transport not in ("websocket", "http"):
            raise ConfigError(f"transport must be 'websocket' or 'http' {got(transport)}")
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.websocket_url = websocket_base_url.rstrip("/") + "/responses"
        self._auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.ssl_context = ssl_context
        self.timeout_s = timeout_s
        self._http = HttpClient(_origin(self.base_url), headers=self._auth, ssl_context=ssl_context,
                                keepalive_s=keepalive_s, timeout_s=timeout_s) if transport == "http" else None
        self._socket: ClientConnection | None = None
        self.last_setup_ns = 0
        self.num_connections = 0

    def __repr__(self) -> str:
        return f"ResponsesTransport({self.transport!r}, {self.base_url!r})"

    async def connect(self) -> None:
        """Open the WebSocket now (for HTTP, nothing: each request opens what it needs)."""
        if self.transport == "websocket" and self._socket is None:
            started = time.monotonic_ns()
            try:
                self._socket = await connect(self.websocket_url, additional_headers=self._auth, ssl=self.ssl_context,
                                             open_timeout=self.timeout_s, max_size=16 * 1024 * 1024,
                                             compression=None, ping_interval=None)
            except OSError as exc:
                raise ConnectionLost(f"could not open the Responses WebSocket {got(self.websocket_url)}") from exc
            self.last_setup_ns = time.monotonic_ns() - started
            self.num_connections += 1

    async def send(self, body: dict[str, Any], message: str) -> AsyncIterator[dict[str, Any]]:
        """Send one turn's request and yield its server events until the response ends.
        ``last_setup_ns`` is then the connection setup this request paid (0 on a reused connection)."""
        if self.transport == "websocket":
            self.last_setup_ns = 0
            await self.connect()
            assert self._socket is not None
            await self._socket.send(message)
            async for text in self._socket:
                event = json.loads(text)
                yield event
                if event.get("type") in ("response.completed", "response.incomplete", "response.failed", "error"):
                    return
            raise ConnectionLost("the Responses WebSocket closed mid-response")
        assert self._http is not None
        status, chunks = await self._http.stream("POST", urlsplit(self.base_url).path + "/responses", body)
        self.last_setup_ns = self._http.last_setup_ns
        self.num_connections = self._http.num_connections
        if status != 200:
            raw = b"".join([c async for c in chunks])
            error = (json.loads(raw or b"{}").get("error") if raw.startswith(b"{") else None) or {}
            yield {"type": "error", "status": status, "error": {"type": error.get("type", "http_error"),
                                                                 "code": error.get("code"),
                                                                 "message": error.get("message", raw[:200].decode())}}
            return
        parser = ServerSentEvents()
        async for chunk in chunks:
            for data in parser.feed(chunk):
                yield json.loads(data)

    async def aclose(self) -> None:
        if self._socket is not None:
            await self._socket.close()
            self._socket = None
        if self._http is not None:
            await self._http.aclose()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
