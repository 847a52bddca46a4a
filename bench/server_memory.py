"""The server's memory over a long session: one session's hour of turns, on session time, RSS printed as it goes.

Each turn: 1 s of user audio appended and committed, ``response.create``, a 10 s answer streamed to the end.
The session keeps every item's metadata but only the latest ``--retained-s`` of audio.

    python bench/server_memory.py [--hours 1] [--retained-s 300]
"""

from __future__ import annotations

import argparse
import gc
import json

import numpy as np
import psutil

from vkit.realtime.codec import encode_audio
from vkit.realtime.server import Reply, ServerOptions, ServerSession
from vkit.units import s_to_ns


def turns(session: ServerSession, num_turns: int, first_turn: int) -> None:
    """Run ``num_turns`` turns of 10 s of session time each (answer streamed until done)."""
    one_s = encode_audio(np.full(24_000, 0.01, np.float32))
    for turn in range(first_turn, first_turn + num_turns):
        answer = np.full(240_000, 0.01, np.float32)  # a new array per answer, as a responder makes
        now_ns = s_to_ns(turn * 10)
        session.receive_text(json.dumps({"type": "input_audio_buffer.append", "audio": one_s}), now_ns)
        session.receive_text(json.dumps({"type": "input_audio_buffer.commit"}), now_ns)
        session.receive_text(json.dumps({"type": "response.create"}), now_ns)
        for work in session.take_work():
            session.reply_ready(work.response_id, Reply(answer), now_ns)
        session.on_deadline(now_ns)
        session.events_to_send()


def new_session(retained_s: float) -> ServerSession:
    session = ServerSession(ServerOptions(output_pace=0, frame_ms=1000, max_retained_audio_s=retained_s,
                                          max_session_s=10 * 24 * 3600, idle_reap_s=None))
    session.receive_text(json.dumps({"type": "session.update", "session": {
        "type": "realtime", "audio": {"input": {"turn_detection": None}}}}), 0)
    session.events_to_send()
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--retained-s", type=float, default=300.0)
    args = parser.parse_args()
    process = psutil.Process()
    session = new_session(args.retained_s)
    gc.collect()
    start_mb = process.memory_info().rss / 2**20
    print(f"retained audio {args.retained_s:g} s; RSS at start {start_mb:.1f} MB")
    print(f"{'session min':>12}{'items':>8}{'audio kept s':>14}{'RSS MB':>9}{'growth MB':>11}")
    per_step = 60  # 10 minutes of turns
    for step in range(int(args.hours * 360 / per_step)):
        turns(session, per_step, step * per_step)
        gc.collect()
        rss_mb = process.memory_info().rss / 2**20
        kept_s = sum(i.audio.size for i in session.items.values() if i.audio is not None) / 24_000
        print(f"{(step + 1) * 10:>12}{len(session.items):>8}{kept_s:>14.0f}{rss_mb:>9.1f}{rss_mb - start_mb:>11.1f}")


if __name__ == "__main__":
    main()
