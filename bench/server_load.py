"""Load on the local Realtime server, and the client stage's cost per frame.

Part 1: N concurrent sessions stream real-time 24 kHz speech (20 ms appends) over loopback to an echo
server in its own process (server VAD on, so every turn is detected and answered). Reported: the server's
event-loop lag (p50/p99 of a 10 ms sleep probe), its CPU use, and its memory per session.
Part 2: CPU time per 20 ms frame of the vkit Realtime stage vs a bare websockets loop making the same
appends (base64 PCM16 in JSON): flat out against a server that only reads (the client's own cost), then
with real-time callers against the local server.

    python bench/server_load.py [--sessions 10 25 50] [--seconds 10] [--client-frames 5000] [--client-rounds 3]
                                [--client-only] [--paced-callers 20] [--paced-seconds 10] [--instructions]

``--instructions`` also counts the client's instructions per frame under valgrind: CPU time on a shared
machine varies by 2x from run to run, an instruction count does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
import soxr
from websockets.asyncio.client import connect

import vkit
from vkit import sinks, sources
from vkit.data import sample_path
from vkit.realtime import Realtime
from vkit.realtime.codec import encode_audio


def serve(port_queue: multiprocessing.Queue, stop: multiprocessing.Event, stats_queue: multiprocessing.Queue) -> None:
    from vkit.realtime.server import LocalServer

    async def serve_until_stopped() -> None:
        server = LocalServer(port=0, output_pace=1.0, measure_lag=True, max_sessions=1000)
        async with server:
            port_queue.put(server.port)
            while not stop.is_set():
                await asyncio.sleep(0.05)
            lags = np.array(server.lag_ms or [0.0])
            stats_queue.put({"lag_p50_ms": float(np.percentile(lags, 50)), "lag_p99_ms": float(np.percentile(lags, 99)),
                             "lag_max_ms": float(lags.max()), "responses": len(server.records)})

    asyncio.run(serve_until_stopped())


def discard(port_queue: multiprocessing.Queue, stop: multiprocessing.Event, stats_queue: multiprocessing.Queue) -> None:
    """A WebSocket server that reads every message and throws it away: it keeps up with any client, so a
    client sending flat out never waits on the server's own work (the local server decodes and stores each
    append, and how a throttled client waits changed its CPU per frame by 2x)."""
    from websockets.asyncio.server import serve as ws_serve

    async def handler(ws) -> None:  # noqa: ANN001
        async for _ in ws:
            pass

    async def serve_until_stopped() -> None:
        async with ws_serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
            port_queue.put(server.sockets[0].getsockname()[1])
            while not stop.is_set():
                await asyncio.sleep(0.05)
        stats_queue.put({})

    asyncio.run(serve_until_stopped())


class ServerProcess:
    """The local server (or ``target``) in a process of its own, so its CPU and lag are measured apart from
    the clients."""

    def __init__(self, target=serve) -> None:  # noqa: ANN001
        self.ports: multiprocessing.Queue = multiprocessing.Queue()
        self.stats: multiprocessing.Queue = multiprocessing.Queue()
        self.stop = multiprocessing.Event()
        self.process = multiprocessing.Process(target=target, args=(self.ports, self.stop, self.stats), daemon=True)
        self.process.start()
        self.port = self.ports.get(timeout=30)
        self.url = f"ws://127.0.0.1:{self.port}/v1/realtime"
        self.psutil = psutil.Process(self.process.pid)

    def finish(self) -> dict:
        self.stop.set()
        stats = self.stats.get(timeout=30)
        self.process.join(10)
        return stats


def speech_24k(seconds: float) -> np.ndarray:
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    audio = soxr.resample(audio, rate, 24_000).astype(np.float32)
    return np.resize(audio, int(24_000 * seconds))


async def one_session(url: str, audio: np.ndarray, started: float) -> int:
    received = 0
    async with connect(url, max_size=None) as ws:
        async def reader() -> None:
            nonlocal received
            async for _ in ws:
                received += 1

        task = asyncio.ensure_future(reader())
        for index, start in enumerate(range(0, audio.size, 480)):
            payload = json.dumps({"type": "input_audio_buffer.append", "audio": encode_audio(audio[start : start + 480])})
            await ws.send(payload)
            await asyncio.sleep(max(0.0, started + (index + 1) * 0.02 - time.monotonic()))
        await asyncio.sleep(1.0)
        task.cancel()
    return received


def load_run(num_sessions: int, seconds: float) -> dict:
    server = ServerProcess()
    audio = speech_24k(seconds)
    rss_before = server.psutil.memory_info().rss
    cpu_before = server.psutil.cpu_times()

    async def all_sessions() -> list[int]:
        started = time.monotonic() + 0.2
        return await asyncio.gather(*(one_session(server.url, audio, started) for _ in range(num_sessions)))

    wall = time.monotonic()
    received = asyncio.run(all_sessions())
    wall = time.monotonic() - wall
    cpu_after = server.psutil.cpu_times()
    rss_peak = server.psutil.memory_info().rss
    stats = server.finish()
    cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return {"sessions": num_sessions, **stats, "server_cpu_pct": 100 * cpu_s / wall,
            "rss_per_session_mb": (rss_peak - rss_before) / num_sessions / 1e6, "events": sum(received)}


def vkit_client(url: str, frames: int) -> None:
    """One vkit graph streaming ``frames`` 20 ms frames through a Realtime stage (manual turns)."""
    audio = speech_24k(frames * 0.02)
    stage = Realtime(url, turn_detection="manual", frame_ms=20, barge_in=False)
    vkit.run(sources.Array(audio, 24_000, frame_ms=20, progress=False) | stage | sinks.Null())


def bare_client(url: str, frames: int) -> None:
    """The same appends from a bare websockets loop."""
    audio = speech_24k(frames * 0.02)

    async def bare() -> None:
        async with connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
            for start in range(0, audio.size, 480):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": encode_audio(audio[start : start + 480])}))

    asyncio.run(bare())


CLIENTS = {"vkit": vkit_client, "bare": bare_client}


def per_frame(cost: dict[tuple[str, int], float], name: str, many: int, few: int) -> float:
    """Cost per frame: the difference between a long and a short run, free of start-up and connection costs."""
    return (cost[name, many] - cost[name, few]) / (many - few)


def client_cost(num_frames: int = 3000, rounds: int = 3) -> tuple[float, float]:
    """CPU microseconds per 20 ms frame: vkit's Realtime stage vs a bare websockets loop.

    Each runs ``num_frames`` and a tenth of that, in ``rounds`` interleaved rounds; the least CPU time of
    each run length is kept (other work on the machine only adds time) before the two are subtracted.
    The server only reads (``discard``), so this is the client's own cost."""
    server = ServerProcess(discard)
    few = num_frames // 10
    cost: dict[tuple[str, int], float] = {}
    try:
        for _ in range(rounds):
            for frames in (num_frames, few):
                for name, client in CLIENTS.items():
                    cpu = time.process_time()
                    client(server.url, frames)
                    cost[name, frames] = min(cost.get((name, frames), float("inf")), time.process_time() - cpu)
    finally:
        server.finish()
    return per_frame(cost, "vkit", num_frames, few) * 1e6, per_frame(cost, "bare", num_frames, few) * 1e6


def client_instructions(num_frames: int = 1500) -> tuple[float, float]:
    """Instructions per 20 ms frame, counted by valgrind's callgrind on the client process alone (the server
    runs natively in its own process): the same on a busy machine as on a quiet one."""
    server = ServerProcess(discard)
    few = num_frames // 5
    cost: dict[tuple[str, int], float] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in CLIENTS:
                for frames in (num_frames, few):
                    out = Path(tmp) / f"{name}.{frames}"
                    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                                    __file__, "--client-worker", name, str(frames), server.url],
                                   check=True, capture_output=True)
                    cost[name, frames] = _callgrind_total(out)
    finally:
        server.finish()
    return per_frame(cost, "vkit", num_frames, few), per_frame(cost, "bare", num_frames, few)


def _callgrind_total(path: Path) -> float:
    for line in path.read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return float(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def paced_vkit(url: str, num_callers: int, duration_s: float) -> None:
    """``num_callers`` vkit graphs (``pace="realtime"``) in this process, each ``duration_s`` of speech."""
    audio = speech_24k(duration_s)
    handles = []
    for _ in range(num_callers):
        handles.append(vkit.start(sources.Array(audio, 24_000, frame_ms=20, pace="realtime")
                                  | Realtime(url, turn_detection="manual", frame_ms=20, barge_in=False)
                                  | sinks.Null()))
        time.sleep(0.02 / num_callers)  # callers arrive apart: their frames fall at different phases
    for handle in handles:
        handle.wait(duration_s + 30)


def paced_bare(url: str, num_callers: int, duration_s: float) -> None:
    """The same from bare websockets loops sleeping to the same schedule, their phases as far apart."""
    audio = speech_24k(duration_s)

    async def caller(began: float) -> None:
        async with connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
            for index, start in enumerate(range(0, audio.size, 480)):
                await asyncio.sleep(max(0.0, began + (index + 1) * 0.02 - time.monotonic()))
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": encode_audio(audio[start : start + 480])}))

    async def callers() -> None:
        began = time.monotonic()
        await asyncio.gather(*(caller(began + index * 0.02 / num_callers) for index in range(num_callers)))

    asyncio.run(callers())


PACED = {"vkit": paced_vkit, "bare": paced_bare}


def paced_client_cost(num_callers: int = 20, seconds: float = 10.0, rounds: int = 2) -> tuple[float, float]:
    """CPU microseconds per 20 ms frame with ``num_callers`` real-time callers in this one process: vkit
    graphs vs bare websockets loops. Every frame is then its own socket write, as on a call (a loop sending
    flat out lets the kernel buffer fill and coalesce writes). The callers' frames fall at ``num_callers``
    different phases of the 20 ms period, as callers arriving apart do: on this VM, twenty bare loops that
    all wake at once cost half as much CPU per frame as the same loops woken apart (each wake-up from idle
    pays for cold caches), so both clients get the same phases. Runs of ``seconds`` and of a fifth of that
    in ``rounds`` interleaved rounds, the least CPU time of each kept; the difference per frame."""
    server = ServerProcess()
    many, few = _paced_frames(num_callers, seconds), _paced_frames(num_callers, seconds / 5)
    cost: dict[tuple[str, int], float] = {}
    try:
        for _ in range(rounds):
            for duration_s, frames in ((seconds, many), (seconds / 5, few)):
                for name, callers in PACED.items():
                    cpu = time.process_time()
                    callers(server.url, num_callers, duration_s)
                    cost[name, frames] = min(cost.get((name, frames), float("inf")), time.process_time() - cpu)
    finally:
        server.finish()
    return per_frame(cost, "vkit", many, few) * 1e6, per_frame(cost, "bare", many, few) * 1e6


def _paced_frames(num_callers: int, duration_s: float) -> int:
    return round(num_callers * duration_s / 0.02)


def paced_instructions(num_callers: int = 2, seconds: float = 10.0) -> tuple[float, float]:
    """Instructions per 20 ms frame of ``num_callers`` real-time callers under callgrind (slowed about 30x,
    a caller still keeps real time): each frame a wake-up of its own, counted the same on a busy machine."""
    server = ServerProcess()
    many, few = _paced_frames(num_callers, seconds), _paced_frames(num_callers, seconds / 5)
    cost: dict[tuple[str, int], float] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in PACED:
                for duration_s, frames in ((seconds, many), (seconds / 5, few)):
                    out = Path(tmp) / f"{name}.{frames}"
                    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                                    __file__, "--paced-worker", name, str(num_callers), str(duration_s), server.url],
                                   check=True, capture_output=True)
                    cost[name, frames] = _callgrind_total(out)
    finally:
        server.finish()
    return per_frame(cost, "vkit", many, few), per_frame(cost, "bare", many, few)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-frames", type=int, default=5000)
    parser.add_argument("--client-rounds", type=int, default=3, help="interleaved rounds of part 2 (the least kept)")
    parser.add_argument("--client-only", action="store_true", help="only part 2, the client's cost per frame")
    parser.add_argument("--paced-callers", type=int, default=20, help="part 2 again with real-time callers (0: skip)")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--instructions", action="store_true",
                        help="also count the client's instructions per frame under valgrind (deterministic)")
    parser.add_argument("--client-worker", nargs=3, metavar=("CLIENT", "FRAMES", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--paced-worker", nargs=4, metavar=("CLIENT", "CALLERS", "SECONDS", "URL"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_worker:  # one client run, under valgrind (see client_instructions)
        name, frames, url = args.client_worker
        CLIENTS[name](url, int(frames))
        return
    if args.paced_worker:  # one paced run, under valgrind (see paced_instructions)
        name, num_callers, seconds, url = args.paced_worker
        PACED[name](url, int(num_callers), float(seconds))
        return
    print(f"python {platform.python_version()}  vkit {vkit.__version__}  cores {os.cpu_count()}  "
          f"{args.seconds:g} s of real-time speech per session, echo responder, server VAD on")
    if not args.client_only:
        print()
        print(f"{'sessions':>9s}{'lag p50 ms':>12s}{'lag p99 ms':>12s}{'lag max ms':>12s}{'server CPU %':>14s}"
              f"{'MB/session':>12s}{'responses':>11s}")
        for count in args.sessions:
            row = load_run(count, args.seconds)
            print(f"{row['sessions']:9d}{row['lag_p50_ms']:12.2f}{row['lag_p99_ms']:12.2f}{row['lag_max_ms']:12.2f}"
                  f"{row['server_cpu_pct']:14.1f}{row['rss_per_session_mb']:12.2f}{row['responses']:11d}")
    vkit_us, bare_us = client_cost(args.client_frames, args.client_rounds)
    print()
    print(f"client CPU per 20 ms frame: vkit Realtime stage {vkit_us:.1f} us, bare websockets loop {bare_us:.1f} us "
          f"({vkit_us / bare_us:.2f}x; least CPU time of {args.client_rounds} interleaved rounds)")
    if args.instructions:
        if shutil.which("valgrind") is None:
            print("instructions: valgrind not found (Debian: apt-get install valgrind)")
        else:
            vkit_ir, bare_ir = client_instructions()
            print(f"client instructions per 20 ms frame (callgrind): vkit {vkit_ir:,.0f}, bare {bare_ir:,.0f} "
                  f"({vkit_ir / bare_ir:.2f}x)")
    if args.paced_callers:
        vkit_us, bare_us = paced_client_cost(args.paced_callers, args.paced_seconds)
        print(f"the same with {args.paced_callers} real-time callers in one process: vkit {vkit_us:.1f} us, "
              f"bare {bare_us:.1f} us ({vkit_us / bare_us:.2f}x; least CPU time of 2 interleaved rounds)")
        if args.instructions and shutil.which("valgrind") is not None:
            vkit_ir, bare_ir = paced_instructions()
            print(f"instructions per 20 ms frame of 2 real-time callers (callgrind): vkit {vkit_ir:,.0f}, "
                  f"bare {bare_ir:,.0f} ({vkit_ir / bare_ir:.2f}x)")


if __name__ == "__main__":
    main()
