"""The server under hostile or careless peers: huge appends, unbounded buffers, frozen sockets, long sessions."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from realtime_helpers import RawClient

from vkit.realtime.codec import encode_audio
from vkit.realtime.server import LocalServer, ServerOptions, ServerSession

pytestmark = pytest.mark.timeout(60)
MANUAL = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


def test_a_huge_append_is_processed_off_the_loop_while_another_session_takes_its_turn():
    huge = json.dumps({"type": "input_audio_buffer.append", "audio": encode_audio(np.zeros(24_000 * 60, np.float32))})
    assert len(huge) > 3.6 * 2**20  # 60 s of PCM16: 3.7 MiB of JSON (the 13 MiB costs 3.5 times more)

    async def main():
        async with LocalServer(output_pace=0) as server:
            async with RawClient(server.url) as big, RawClient(server.url) as healthy:
                await healthy.send(type="session.update", session=MANUAL)
                await healthy.wait_for("session.updated")
                await big.send_raw(huge)  # server VAD is on: decoding and VAD over 60 s
                await big.send(type="input_audio_buffer.commit")
                await asyncio.sleep(0.5)  # the huge frame has arrived and is being processed
                await healthy.send(type="conversation.item.create", item={"type": "message", "role": "user",
                                                                          "content": [{"type": "input_text",
                                                                                       "text": "hi"}]})
                await healthy.send(type="response.create")
                await healthy.wait_for("response.done")
                healthy_done = asyncio.get_running_loop().time()
                await big.wait_for("input_audio_buffer.committed", timeout_s=40)
                big_committed = big.arrivals[[e["type"] for e in big.events].index("input_audio_buffer.committed")]
                return healthy_done, big_committed

    healthy_done, big_committed = asyncio.run(main())
    assert healthy_done < big_committed  # the healthy turn did not queue behind the huge append


def test_the_input_buffer_has_a_limit_and_old_conversation_audio_is_let_go():
    session = ServerSession(ServerOptions(max_input_buffer_s=2.0, max_retained_audio_s=3.0))
    session.receive_text(json.dumps({"type": "session.update", "session": MANUAL}), 0)
    second = encode_audio(np.zeros(24_000, np.float32))
    for _ in range(3):
        session.receive_text(json.dumps({"type": "input_audio_buffer.append", "audio": second, "event_id": "a"}), 0)
    errors = [e["error"] for e in map(json.loads, session.events_to_send()) if e["type"] == "error"]
    assert len(errors) == 1 and errors[0]["event_id"] == "a" and "limit of 2 s" in errors[0]["message"]
    assert session.buffer.num_samples == 48_000
    for _ in range(4):  # committed turns of 2 s, 1 s, 1 s, 1 s: only the latest 3 s of audio are kept
        session.receive_text(json.dumps({"type": "input_audio_buffer.commit"}), 0)
        session.receive_text(json.dumps({"type": "input_audio_buffer.append", "audio": second}), 0)
    kept = [session.items[i].audio for i in session.order]
    assert [a.size if a is not None else None for a in kept] == [None, 24_000, 24_000, 24_000]
    retrieved = []
    for item_id in session.order[:1]:
        session.receive_text(json.dumps({"type": "conversation.item.retrieve", "item_id": item_id}), 0)
        retrieved += [e for e in map(json.loads, session.events_to_send()) if e["type"] == "conversation.item.retrieved"]
    assert len(retrieved) == 1 and "audio" not in retrieved[0]["item"]["content"][0]  # the item stays, its audio is gone


def test_a_frozen_peer_is_pinged_and_reaped():
    async def main():
        async with LocalServer(ping_interval_s=0.2, ping_timeout_s=0.3, close_timeout_s=0.3) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            key = base64.b64encode(b"0123456789abcdef").decode()
            writer.write(f"GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 101")
            for _ in range(30):  # the peer never reads nor answers a ping again
                await asyncio.sleep(0.1)
                if not server.connections:
                    break
            writer.close()
            return len(server.connections)

    assert asyncio.run(main()) == 0


def test_an_hour_of_turns_keeps_a_bounded_amount_of_audio():
    session = ServerSession(ServerOptions(output_pace=0, frame_ms=1000, max_retained_audio_s=120.0))
    session.receive_text(json.dumps({"type": "session.update", "session": MANUAL}), 0)
    one_s = encode_audio(np.full(24_000, 0.01, np.float32))
    from vkit.realtime.server import Reply

    for turn in range(360):  # one hour of turns: 1 s of speech, an answer of 10 s
        now_ns = turn * 10 * 10**9
        session.receive_text(json.dumps({"type": "input_audio_buffer.append", "audio": one_s}), now_ns)
        session.receive_text(json.dumps({"type": "input_audio_buffer.commit"}), now_ns)
        session.receive_text(json.dumps({"type": "response.create"}), now_ns)
        (work,) = session.take_work()
        session.reply_ready(work.response_id, Reply(np.full(240_000, 0.01, np.float32)), now_ns)
        session.on_deadline(now_ns)
        session.events_to_send()
    kept_s = sum(i.audio.size / 24_000 for i in session.items.values() if i.audio is not None)
    assert len(session.items) == 720 and kept_s <= 120.0 and not session.responses
