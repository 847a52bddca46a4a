"""The local server of the cascade: ``/v1/responses`` (WebSocket mode and HTTP streaming with server-sent
events) and ``/v1/audio/speech`` (streamed PCM or WAV), on loopback, optionally over TLS.

The HTTP layer is h11 (a small, maintained sans-I/O HTTP/1.1 core) on asyncio streams, because a streamed
body (SSE, audio) is what this server is for and websockets' ``process_request`` can only answer with a
whole body; a WebSocket upgrade on ``/v1/responses`` is handed to websockets' own sans-I/O
``ServerProtocol`` on the same connection. The rules are in ``vkit.responses.server`` (no I/O); this module
only reads, sleeps to each event's offset and writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from typing import Any

import h11
import numpy as np
from websockets.frames import Opcode
from websockets.server import ServerProtocol

from vkit.deprecation import renamed_keyword
from vkit.errors import ConfigError, got
from vkit.responses.protocol import encode_sse
from vkit.responses.server import RequestRejected, ResponsesServerSession, RuleModel, Timed
from vkit.responses.tls import SelfSignedCertificate
from vkit.units import float_to_pcm16_bytes, ms_to_whole_samples

log = logging.getLogger(__name__)

__all__ = ["CascadeServer"]

_MAX_BODY_BYTES = 4 * 1024 * 1024
_READ_BYTES = 65_536
SPEECH_RATE_HZ = 24_000


class CascadeServer:
    """``/v1/responses`` and ``/v1/audio/speech`` on ``host:port`` (loopback by default).

    ``first_token_ms``/``tokens_per_s``: the rule-based model's pace. ``tls=True`` serves HTTPS/WSS with a
    self-signed certificate made at start (``client_ssl_context()`` trusts it). ``speech_frame_ms``: audio
    per streamed write of ``/v1/audio/speech`` (``speech_chunk_ms=``, its old name, still works for one
    release). ``rtt_ms`` (> 0): clients reach the server through a ``DelayedLink`` with that round-trip time
    (handshakes included); the URLs point at the link.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, first_token_ms: float = 200.0,
                 tokens_per_s: float = 50.0, tls: bool = False, tts_engine: str | None = None,
                 speech_frame_ms: int = 40, max_connections: int = 100, rtt_ms: float = 0.0,
                 jitter_ms: float = 0.0, speech_chunk_ms: int | None = None) -> None:
        speech_frame_ms = renamed_keyword("CascadeServer", "speech_chunk_ms", "speech_frame_ms", speech_chunk_ms,
                                          speech_frame_ms)
        if not 5 <= speech_frame_ms <= 1000:
            raise ConfigError(f"speech_frame_ms must be in [5, 1000] {got(speech_frame_ms)}")
        self.host = host
        self.port = port
        self.model = RuleModel(first_token_ms, tokens_per_s)
        self.tls = tls
        self.tts_engine = tts_engine
        self.speech_frame_ms = speech_frame_ms
        self.max_connections = max_connections
        self.store = ResponsesServerSession(self.model)  # responses kept across connections, as OpenAI does
        self.num_connections = 0  # accepted so far (a new HTTPS connection per turn shows here)
        self._open: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._certificate: SelfSignedCertificate | None = None
        self._speech: Any = None
        self.rtt_ms = rtt_ms
        self.jitter_ms = jitter_ms
        self._link: Any = None

    @property
    def base_url(self) -> str:
        """``http(s)://host:port/v1``: the SDK's ``base_url``."""
        return f"{'https' if self.tls else 'http'}://{_host(self.host)}:{self.public_port}/v1"

    @property
    def websocket_base_url(self) -> str:
        """``ws(s)://host:port/v1``: the SDK's ``websocket_base_url``."""
        return f"{'wss' if self.tls else 'ws'}://{_host(self.host)}:{self.public_port}/v1"

    @property
    def public_port(self) -> int:
        """The port clients use: the delayed link's when there is one."""
        return self._link.port if self._link is not None else self.port

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """A client context that trusts this server's certificate (None without TLS)."""
        return self._certificate.client_context() if self._certificate is not None else None

    @property
    def ca_path(self) -> str | None:
        return str(self._certificate.cert_path) if self._certificate is not None else None

    async def __aenter__(self) -> CascadeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        context = None
        if self.tls:
            self._certificate = SelfSignedCertificate(self.host)
            context = self._certificate.server_context()
        self._server = await asyncio.start_server(self._accept, self.host, self.port, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.rtt_ms > 0 or self.jitter_ms > 0:
            from vkit.responses.link import DelayedLink

            self._link = await DelayedLink(self.host, self.port, rtt_ms=self.rtt_ms, jitter_ms=self.jitter_ms,
                                           host=self.host).__aenter__()
        log.info("local cascade server on %s", self.base_url)

    async def close(self) -> None:
        if self._link is not None:
            await self._link.__aexit__(None, None, None)
            self._link = None
        if self._server is not None:
            self._server.close()
            for task in list(self._open):
                task.cancel()
            await asyncio.gather(*self._open, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        if self._certificate is not None:
            self._certificate.remove()
            self._certificate = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        self.num_connections += 1
        try:
            if len(self._open) > self.max_connections:
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                return
            await _HttpConnection(self, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the server is closing: this connection ends here
        except Exception:  # one broken connection never takes the server down
            log.exception("cascade server connection failed")
        finally:
            self._open.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    def synthesise(self, text: str) -> np.ndarray:
        if self._speech is None:
            from vkit.speech import Speech

            self._speech = Speech(self.tts_engine)
        return self._speech.synthesise(text) if text.strip() else np.zeros(0, np.float32)


class _HttpConnection:
    def __init__(self, server: CascadeServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self.raw = b""  # bytes of the first request, for a WebSocket upgrade

    async def _next(self) -> Any:
        while True:
            event = self.http.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(_READ_BYTES)
            if len(self.raw) < _READ_BYTES:
                self.raw += data
            self.http.receive_data(data)

    async def run(self) -> None:
        first = True
        while True:
            event = await self._next()
            if not isinstance(event, h11.Request):
                return
            headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            path = event.target.decode().split("?", 1)[0].rstrip("/")
            if headers.get("upgrade", "").lower() == "websocket":
                if first and path in ("/v1/responses", "/responses"):
                    await _WebSocket(self.server, self.reader, self.writer).run(self.raw)
                else:
                    await self._send_json(404, {"error": {"type": "invalid_request_error", "code": "not_found",
                                                          "message": f"no WebSocket endpoint at {path}"}})
                return
            first = False
            body = b""
            while True:
                part = await self._next()
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > _MAX_BODY_BYTES:
                        await self._send_json(413, {"error": {"type": "invalid_request_error", "code": "too_large",
                                                              "message": "request body too large"}})
                        return
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return
            await self._route(event.method.decode(), path, body)
            if self.http.our_state is h11.MUST_CLOSE or self.http.their_state is h11.MUST_CLOSE:
                return
            self.http.start_next_cycle()
            self.raw = b""

    async def _route(self, method: str, path: str, body: bytes) -> None:
        if method != "POST" or path not in ("/v1/responses", "/responses", "/v1/audio/speech", "/audio/speech"):
            await self._send_json(404, {"error": {"type": "invalid_request_error", "code": "not_found",
                                                  "message": f"no endpoint for {method} {path}"}})
            return
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if path.endswith("/speech"):
            await self._speech(request)
        else:
            await self._responses(request)

    async def _responses(self, body: Any) -> None:
        received = time.monotonic()
        try:
            events = self.server.store.respond(body, created_at_s=time.time())
        except RequestRejected as rejected:
            await self._send_json(rejected.status, rejected.http_body())
            return
        if not body.get("stream"):
            await _sleep_until(received, events[-1].offset_s)
            await self._send_json(200, events[-1].event["response"])
            return
        await self._start(200, "text/event-stream", chunked=True)
        for timed in events:
            await _sleep_until(received, timed.offset_s)
            await self._data(encode_sse(timed.event))
        await self._end()

    async def _speech(self, body: Any) -> None:
        text = body.get("input") if isinstance(body, dict) else None
        response_format = body.get("response_format", "mp3") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            await self._send_json(400, {"error": {"type": "invalid_request_error", "code": "missing_required_parameter",
                                                  "message": "Missing required parameter: 'input'.", "param": "input"}})
            return
        if response_format not in ("pcm", "wav"):
            await self._send_json(400, {"error": {"type": "invalid_request_error", "code": "unsupported_format",
                                                  "message": "the local server speaks response_format 'pcm' or 'wav' "
                                                             f"{got(response_format)}", "param": "response_format"}})
            return
        audio = await asyncio.get_running_loop().run_in_executor(None, self.server.synthesise, text)
        pcm = float_to_pcm16_bytes(audio)
        await self._start(200, "audio/pcm" if response_format == "pcm" else "audio/wav", chunked=True)
        if response_format == "wav":
            await self._data(_wav_header(SPEECH_RATE_HZ))
        step = 2 * ms_to_whole_samples(self.server.speech_frame_ms, SPEECH_RATE_HZ)
        for offset in range(0, len(pcm), step):
            await self._data(pcm[offset:offset + step])
        await self._end()

    async def _start(self, status: int, content_type: str, *, chunked: bool, length: int | None = None) -> None:
        headers = [("content-type", content_type), ("cache-control", "no-cache")]
        headers.append(("transfer-encoding", "chunked") if chunked else ("content-length", str(length or 0)))
        self.writer.write(self.http.send(h11.Response(status_code=status, headers=headers)))
        await self.writer.drain()

    async def _data(self, data: bytes) -> None:
        self.writer.write(self.http.send(h11.Data(data=data)))
        await self.writer.drain()

    async def _end(self) -> None:
        self.writer.write(self.http.send(h11.EndOfMessage()))
        await self.writer.drain()

    async def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        await self._start(status, "application/json", chunked=False, length=len(data))
        await self._data(data)
        await self._end()


class _WebSocket:
    """WebSocket mode of ``/v1/responses``: one ``response.create`` at a time, errors as ``error`` events."""

    def __init__(self, server: CascadeServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.protocol = ServerProtocol(max_size=_MAX_BODY_BYTES)
        self.session = server.store
        self._streaming: asyncio.Task[None] | None = None

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)

    async def run(self, raw: bytes) -> None:
        self.protocol.receive_data(raw)
        request = next(e for e in self.protocol.events_received())
        self.protocol.send_response(self.protocol.accept(request))
        self._flush()
        try:
            while True:
                data = await self.reader.read(_READ_BYTES)
                if not data:
                    self.protocol.receive_eof()
                    return
                self.protocol.receive_data(data)
                for frame in self.protocol.events_received():
                    if frame.opcode is Opcode.TEXT:
                        await self._message(frame.data.decode())
                    elif frame.opcode is Opcode.BINARY:
                        self._send({"type": "error", "status": 400, "error": {
                            "type": "invalid_request_error", "code": "invalid_message",
                            "message": "WebSocket mode takes text messages of JSON"}})
                self._flush()
                await self.writer.drain()
                if self.protocol.close_expected():
                    return
        finally:
            if self._streaming is not None:
                self._streaming.cancel()

    def _send(self, event: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(event).encode())
        self._flush()

    async def _message(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind != "response.create":
            self._send(RequestRejected(400, "unknown_event", f"unsupported client event {got(kind)}").websocket_event())
            return
        if self._streaming is not None and not self._streaming.done():
            self._send(RequestRejected(409, "response_already_in_progress",
                                       "A response is already in progress on this connection.").websocket_event())
            return
        body = {k: v for k, v in message.items() if k != "type"}
        received = time.monotonic()
        try:
            events = self.session.respond(body, created_at_s=time.time())
        except RequestRejected as rejected:
            self._send(rejected.websocket_event())
            return
        self._streaming = asyncio.ensure_future(self._stream(events, received))

    async def _stream(self, events: list[Timed], received: float) -> None:
        for timed in events:
            await _sleep_until(received, timed.offset_s)
            self._send(timed.event)
            await self.writer.drain()


async def _sleep_until(start: float, offset_s: float) -> None:
    delay = start + offset_s - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def _wav_header(sample_rate_hz: int) -> bytes:
    """A streamed WAV's header: PCM16 mono, sizes unknown (0xFFFFFFFF), as streaming servers write it."""
    import struct

    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate_hz,
            2 * sample_rate_hz, 2, 16) + b"data" + struct.pack("<I", 0xFFFFFFFF))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
