"""Frozen peers (connected, never sending; or never reading) give back their session slot."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from realtime_helpers import RawClient
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from vkit.realtime.codec import encode_audio
from vkit.realtime.server import LocalServer, ServerOptions, ServerSession

pytestmark = pytest.mark.timeout(60)


async def _silent_tcp_peer(port: int) -> asyncio.StreamWriter:
    """A websocket handshake, then nothing: never reads a byte, never answers a ping."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    writer.write(f"GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 101")
    return writer


def test_silent_and_unreading_peers_holding_every_slot_are_reaped_and_a_new_session_gets_in():
    async def main():
        async with LocalServer(max_sessions=4, idle_reap_s=0.6, ping_interval_s=0.2, ping_timeout_s=0.3,
                               close_timeout_s=0.3) as server:
            silent = [RawClient(server.url) for _ in range(2)]  # answer pings, never send an event
            for client in silent:
                await client.__aenter__()
            unreading = [await _silent_tcp_peer(server.port) for _ in range(2)]
            with pytest.raises(InvalidStatus):  # every slot is held
                async with connect(server.url):
                    pass
            for _ in range(50):
                await asyncio.sleep(0.1)
                if not server.connections:
                    break
            async with RawClient(server.url) as newcomer:
                await newcomer.send(type="session.update", session={"type": "realtime"})
                await newcomer.wait_for("session.updated")
            for client in silent:
                await client.__aexit__(None, None, None)
            for writer in unreading:
                writer.close()
            return [c.events for c in silent], [(c.ws.close_code, c.ws.close_reason) for c in silent]

    events, closes = asyncio.run(main())
    for session_events, close in zip(events, closes, strict=True):
        assert [e["type"] for e in session_events] == ["session.created", "error"]
        assert session_events[-1]["error"]["code"] == "session_idle"
        assert close == (1000, "session idle")


def test_the_reaper_waits_for_a_response_under_way_and_counts_from_the_last_client_event():
    session = ServerSession(ServerOptions(output_pace=1.0, idle_reap_s=10.0))
    session.receive_text(json.dumps({"type": "session.update", "session": {
        "type": "realtime", "audio": {"input": {"turn_detection": None}}}}), 0)
    assert session.next_deadline_ns() == 10 * 10**9
    session.receive_text(json.dumps({"type": "input_audio_buffer.append",
                                     "audio": encode_audio(np.full(24_000, 0.01, np.float32))}), 5 * 10**9)
    session.receive_text(json.dumps({"type": "input_audio_buffer.commit"}), 5 * 10**9)
    session.receive_text(json.dumps({"type": "response.create"}), 5 * 10**9)
    from vkit.realtime.server import Reply

    (work,) = session.take_work()
    session.reply_ready(work.response_id, Reply(np.full(24_000 * 30, 0.01, np.float32)), 5 * 10**9)
    now_ns = 5 * 10**9
    while session.responses:  # a 30 s answer streamed at real time: longer than idle_reap_s, never reaped
        now_ns = session.next_deadline_ns()
        session.on_deadline(now_ns)
        assert session.close_code is None
    assert now_ns > 30 * 10**9
    session.events_to_send()
    deadline = session.next_deadline_ns()
    assert deadline == 15 * 10**9  # counted from the last client event: due as soon as the answer ended
    session.on_deadline(max(deadline, now_ns))
    (error,) = [e for e in map(json.loads, session.events_to_send()) if e["type"] == "error"]
    assert error["error"]["code"] == "session_idle" and session.close_code == 1000
