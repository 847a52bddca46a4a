"""websockets' own closes on the server (1007 invalid UTF-8, 1009 too big, an unanswered keepalive ping):
the client is sent an ``error`` event before the close frame, and the server logs a line naming the cause."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest
from realtime_helpers import RawClient

from vkit.realtime.server import LocalServer

pytestmark = pytest.mark.timeout(60)


def _closed_by_websockets(caplog: pytest.LogCaptureFixture, code: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "vkit.realtime.server.connection"
            and r.levelno == logging.WARNING and f"session closed by websockets ({code}:" in r.getMessage()]


async def _closed(client: RawClient) -> tuple[int | None, str | None]:
    await asyncio.wait_for(client.ws.wait_closed(), 10)
    await asyncio.sleep(0.05)  # the reader has taken the last event
    return client.ws.close_code, client.ws.close_reason


@pytest.mark.parametrize("case", ["invalid UTF-8", "too big"])
def test_a_frame_websockets_refuses_gets_an_error_event_a_close_and_a_log_line(case, caplog):
    caplog.set_level(logging.INFO, logger="vkit.realtime.server")

    async def main():
        async with LocalServer(output_pace=0, max_message_bytes=10_000) as server, RawClient(server.url) as client:
            await client.send(type="session.update", session={"type": "realtime"})
            await client.wait_for("session.updated")
            if case == "invalid UTF-8":
                await client.ws.send(b'{"type": "session.update", "x": "\xff\xfe"}', text=True)
            else:  # over twice max_message_bytes: websockets' own max_size, checked on the frame header
                await client.send(type="response.create", response={"instructions": "a" * 30_000})
            return client.events, *await _closed(client)

    events, code, reason = asyncio.run(main())
    expected_code, error_code, words = {"invalid UTF-8": (1007, "invalid_utf8", "invalid start byte"),
                                        "too big": (1009, "message_too_large", "exceeds limit of 20000 bytes")}[case]
    assert (code, events[-1]["type"]) == (expected_code, "error")
    assert events[-1]["error"]["code"] == error_code and words in events[-1]["error"]["message"] and words in reason
    (line,) = _closed_by_websockets(caplog, expected_code)
    assert words in line


def test_a_peer_that_never_answers_a_ping_is_sent_an_error_and_the_close_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="vkit.realtime.server")

    async def main():
        async with LocalServer(ping_interval_s=0.2, ping_timeout_s=0.3, close_timeout_s=0.3) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            key = base64.b64encode(b"0123456789abcdef").decode()
            writer.write(f"GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            await writer.drain()
            received = b""
            try:  # what the server sent a peer that reads but never answers: pings, then the error, the close
                while True:
                    chunk = await asyncio.wait_for(reader.read(65536), 5)
                    if not chunk:
                        break
                    received += chunk
            finally:
                writer.close()
            return received

    received = asyncio.run(main())
    assert b'"code":"connection_failed"' in received and b"keepalive ping timeout" in received
    assert received.index(b'"type":"error"') < received.rindex(b"\x88")  # the error event, then the close frame
    (line,) = _closed_by_websockets(caplog, 1011)
    assert "keepalive ping timeout" in line
