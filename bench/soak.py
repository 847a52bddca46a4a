"""Soak: many Realtime sessions in a row, with injected faults, and what a one-hour session keeps in memory.

Part 1: sessions cycle through faults on loopback: a clean session with the local server (echo
responder), and against the misbehaving server (tests/faults) a 1011 crash and a 1001 "going away"
mid-session (reconnect on), a burst of malformed events, a stalled answer, a server that stops reading
and answering pings (found by the keepalive, then reconnected). Reported: sessions completed, faults
seen by the client (reconnects, skipped events, stalls), server events lost (sent by the misbehaving
server, neither recorded nor counted as skipped by the client: goal 0), input samples lost (sent by the
source but never received by the session's last connection, less those the client counted as dropped:
goal 0; no fault server here commits input, so a replacement connection must get all of it again,
including what a frozen server swallowed before the keepalive noticed), and the process RSS over time.
Part 2: the event store of a one-hour session, client side: the events the Realtime stage and a VAD
publish in an hour (40 ms appends, answers 30 % of the time in 100 ms deltas, 32 ms VAD scores) kept
in a plain list (today's Session.events) and in vkit.eventlog.EventLog; traced memory of each.

    python bench/soak.py --quick        # about 30 s
    python bench/soak.py --minutes 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "faults"))

from misbehaving_server import FaultConnection, MisbehavingServer  # noqa: E402

import vkit  # noqa: E402
from vkit import sources  # noqa: E402
from vkit.eventlog import EventLog  # noqa: E402
from vkit.frames import Marker, ProtocolEvent, ProtocolIssue, VadScore  # noqa: E402
from vkit.realtime import Realtime  # noqa: E402
from vkit.realtime import events as ev  # noqa: E402
from vkit.realtime.server import LocalServer  # noqa: E402

SESSION_MS = 1500


async def _crash(conn: FaultConnection, code: int) -> None:
    await conn.handshake()
    await conn.answer("resp_1", "item_1", num_deltas=4, pause_s=0.05)
    await conn.close(code, "soak fault")


async def _bad_events(conn: FaultConnection) -> None:
    await conn.handshake()
    for text in ("{oops", "[" * 10_000, '{"type": "response.output_audio.delta", "delta": 1}'):
        await conn.send_raw(text)
    await conn.answer("resp_1", "item_1", num_deltas=4)


async def _stall(conn: FaultConnection) -> None:
    await conn.handshake()
    await conn.answer("resp_1", "item_1", num_deltas=10, stop_after=2)
    await conn.hold()


async def _handshake(conn: FaultConnection) -> None:
    await conn.handshake()


async def _freeze(conn: FaultConnection) -> None:
    await conn.handshake()
    await conn.answer("resp_1", "item_1", num_deltas=2)
    conn.freeze()


FAULTS = {
    "clean (local server)": None,
    "crash 1011": (lambda c: _crash(c, 1011), _handshake),
    "going away 1001": (lambda c: _crash(c, 1001), _handshake),
    "malformed events": (_bad_events,),
    "stalled answer": (_stall,),
    "frozen, no pong": (_freeze, _handshake),
}


async def one_session(fault: str) -> dict[str, int]:
    options = {"reconnect": True, "reconnect_timeout_s": 5.0, "stall_timeout_s": 0.5, "ping_interval_s": 0.3,
               "ping_timeout_s": 0.3}
    graph_source = sources.Silence(duration_ms=SESSION_MS, pace="realtime")
    scripts = FAULTS[fault]
    if scripts is None:
        async with LocalServer(output_pace=0) as server:
            session = await vkit.arun(graph_source | Realtime(server.url, **options))
        received = None
    else:
        async with MisbehavingServer(*scripts) as server:
            session = await vkit.arun(graph_source | Realtime(server.url, **options))
            received = server.connections[-1].num_appended_samples  # the earlier ones committed nothing
            num_sent = sum(conn.num_sent for conn in server.connections)
    markers = session.events_of(Marker)
    dropped = sum(m.data.get("num_dropped_samples", 0) for m in markers if m.name == "reconnected")
    sent = 24 * SESSION_MS
    seen = sum(e.direction == "received" for e in session.events_of(ProtocolEvent)) + len(session.events_of(ProtocolIssue))
    return {"events lost": 0 if received is None else num_sent - seen,"completed": int(session.status == "complete"),
            "reconnects": sum(m.name == "reconnect" for m in markers),
            "skipped": len(session.events_of(ProtocolIssue)),
            "stalls": sum(m.name == "response_stalled" for m in markers),
            "lost": 0 if received is None else sent - received - dropped,
            "dropped": dropped}


async def soak(seconds: float) -> None:
    process = psutil.Process()
    started = time.monotonic()
    totals = {fault: {"sessions": 0, "completed": 0, "reconnects": 0, "skipped": 0, "stalls": 0, "events lost": 0,
                      "lost": 0, "dropped": 0} for fault in FAULTS}
    rss = [(0.0, process.memory_info().rss)]
    number = 0
    while time.monotonic() - started < seconds:
        fault = list(FAULTS)[number % len(FAULTS)]
        result = await one_session(fault)
        totals[fault]["sessions"] += 1
        for key, value in result.items():
            totals[fault][key] += value
        number += 1
        rss.append((time.monotonic() - started, process.memory_info().rss))
    print(f"{'fault':<22}{'sessions':>9}{'completed':>10}{'reconnects':>11}{'skipped':>8}{'stalls':>7}"
          f"{'events lost':>12}{'samples dropped':>16}{'samples lost':>13}")
    for fault, row in totals.items():
        print(f"{fault:<22}{row['sessions']:>9}{row['completed']:>10}{row['reconnects']:>11}{row['skipped']:>8}"
              f"{row['stalls']:>7}{row['events lost']:>12}{row['dropped']:>16}{row['lost']:>13}")
    print("\nRSS over time (MiB): " + ", ".join(f"{t:.0f}s {r / 2**20:.0f}" for t, r in rss[:: max(1, len(rss) // 8)]))
    print(f"RSS growth first -> last session: {(rss[-1][1] - rss[1][1]) / 2**20:+.1f} MiB over {number} sessions")


def hour_of_events() -> None:
    """Part 2: one hour of a client's events in a list vs an EventLog (traced Python memory)."""
    append = ev.CLIENT_EVENTS["input_audio_buffer.append"]
    delta = ev.SERVER_EVENTS["response.output_audio.delta"]
    done = ev.SERVER_EVENTS["response.done"]

    def events():
        for n in range(3600 * 25):  # 40 ms appends
            t_ns = n * 40_000_000
            yield ProtocolEvent(direction="sent", type="input_audio_buffer.append", t_ns=t_ns, stage="Realtime",
                                event=append(audio=None, event_id=f"event_vkit_{n}", extra={"num_samples": 960}))
            if n % 4 == 0:  # one VAD score per ~32 ms, batched here at 160 ms for 5
                for k in range(5):
                    yield VadScore(sample=n * 960 + k * 512, num_samples=512, sample_rate_hz=16_000,
                                   probability=0.1, t_ns=t_ns, stage="VAD")
            if n % 10 < 3 and n % 2 == 0:  # answering 30 % of the time: a 100 ms delta every 80 ms
                yield ProtocolEvent(direction="received", type="response.output_audio.delta", t_ns=t_ns, stage="Realtime",
                                    event=delta(response_id=f"resp_{n // 250}", item_id=f"item_{n // 250}", output_index=0,
                                                content_index=0, delta=None, event_id=f"event_{n}",
                                                extra={"num_samples": 2400}))
            if n % 250 == 249:
                yield ProtocolEvent(direction="received", type="response.done", t_ns=t_ns, stage="Realtime",
                                    event=done(response={"id": f"resp_{n // 250}", "status": "completed"},
                                               event_id=f"event_done_{n}"))

    print("\none hour of client events (synthetic, the stage's own event shapes):")
    print(f"{'store':<28}{'events kept':>12}{'traced MiB':>12}")
    for name, store in (("plain list (every event)", []), ("EventLog()", EventLog()),
                        ("EventLog(keep_all=True)", EventLog(keep_all=True))):
        tracemalloc.start()
        for event in events():
            store.append(event)
        size, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{name:<28}{len(store):>12}{size / 2**20:>12.1f}")
        del store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 30 s in all")
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(soak(20.0 if args.quick else args.minutes * 60))
    hour_of_events()


if __name__ == "__main__":
    main()
