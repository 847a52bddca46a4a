"""A 13 MiB append under server VAD is processed off the loop: other sessions take turns and connect meanwhile."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import soundfile as sf
import soxr
from realtime_helpers import RawClient

from vkit.data import sample_path
from vkit.realtime.codec import encode_audio
from vkit.realtime.server import LocalServer

pytestmark = pytest.mark.timeout(90)
USER_TEXT = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}


def test_a_13_mib_append_does_not_hold_another_sessions_turn_nor_a_new_handshake():
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    speech = np.resize(soxr.resample(audio, rate, 24_000).astype(np.float32), 24_000 * 215)  # 215 s of turns
    huge = json.dumps({"type": "input_audio_buffer.append", "audio": encode_audio(speech), "event_id": "huge"})
    assert len(huge) > 13 * 2**20

    async def main():
        order = []
        async with LocalServer(output_pace=0) as server:
            async with RawClient(server.url) as big, RawClient(server.url) as healthy:
                await healthy.send(type="session.update", session={"type": "realtime", "output_modalities": ["text"]})
                await healthy.wait_for("session.updated")
                await big.send_raw(huge)
                await big.send(type="conversation.item.retrieve", item_id="none", event_id="after_huge")
                while not any(c.session.buffer.num_samples for c in server.connections):
                    await asyncio.sleep(0.005)  # ... until the server is into the big frame (decoded, under VAD)
                    if any(e["type"] == "error" for e in big.events):
                        break
                big_done_early = any(e["type"] == "error" for e in big.events)
                await healthy.send(type="conversation.item.create", item=USER_TEXT)
                await healthy.send(type="response.create")
                await healthy.wait_for("response.done")
                order.append("healthy turn")
                async with RawClient(server.url):  # a new handshake, answered with session.created
                    order.append("new session")
                await big.wait_for("error", timeout_s=60)  # the sentinel after the huge frame
                order.append("huge append done")
                return order, big_done_early, [e["type"] for e in big.events]

    order, big_done_early, big_types = asyncio.run(main())
    assert not big_done_early
    assert order == ["healthy turn", "new session", "huge append done"]
    assert "input_audio_buffer.speech_started" in big_types  # VAD really ran over the big frame
