"""An hour of turns in one session grows the server's RSS by a bounded amount (audio kept only as retained)."""

from __future__ import annotations

import gc
import json

import numpy as np
import psutil

from vkit.realtime.codec import encode_audio
from vkit.realtime.server import Reply, ServerOptions, ServerSession
from vkit.units import s_to_ns


def test_an_hour_of_turns_grows_rss_by_a_bounded_amount():
    session = ServerSession(ServerOptions(output_pace=0, frame_ms=1000, max_retained_audio_s=60.0))
    session.receive_text(json.dumps({"type": "session.update", "session": {
        "type": "realtime", "audio": {"input": {"turn_detection": None}}}}), 0)
    one_s = encode_audio(np.full(24_000, 0.01, np.float32))
    process = psutil.Process()
    growth_mb = []
    for turn in range(360):  # one hour of session time: 1 s of speech, a 10 s answer streamed to the end
        if turn == 30:  # past the retention window: from here the session's memory must stay flat
            gc.collect()
            start_mb = process.memory_info().rss / 2**20
        now_ns = s_to_ns(turn * 10)
        session.receive_text(json.dumps({"type": "input_audio_buffer.append", "audio": one_s}), now_ns)
        session.receive_text(json.dumps({"type": "input_audio_buffer.commit"}), now_ns)
        session.receive_text(json.dumps({"type": "response.create"}), now_ns)
        (work,) = session.take_work()
        session.reply_ready(work.response_id, Reply(np.full(240_000, 0.01, np.float32)), now_ns)
        session.on_deadline(now_ns)
        assert not session.responses and session.close_code is None
        session.events_to_send()
        if turn > 30 and turn % 60 == 0:
            gc.collect()
            growth_mb.append(process.memory_info().rss / 2**20 - start_mb)
    # 330 more turns would keep 330 x 11 s of float32 audio (350 MB) without retention; metadata is small
    assert len(session.items) == 720 and max(growth_mb) < 40, growth_mb
