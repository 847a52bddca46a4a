"""Load on the local Realtime server, and the client stage's cost per frame.

Part 1: N concurrent sessions stream real-time 24 kHz speech (20 ms appends) over loopback to an echo
server in its own process (server VAD on, so every turn is detected and answered). Reported: the server's
event-loop lag (p50/p99 of a 10 ms sleep probe), its CPU use, and its memory per session.
Part 2: CPU time per 20 ms frame of the vkit Realtime stage vs a bare websockets loop making the same
appends (base64 PCM16 in JSON), against the same server.

    python bench/server_load.py [--sessions 10 25 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import time

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


class ServerProcess:
    """The local server in a process of its own, so its CPU and lag are measured apart from the clients."""

    def __init__(self) -> None:
        self.ports: multiprocessing.Queue = multiprocessing.Queue()
        self.stats: multiprocessing.Queue = multiprocessing.Queue()
        self.stop = multiprocessing.Event()
        self.process = multiprocessing.Process(target=serve, args=(self.ports, self.stop, self.stats), daemon=True)
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


def client_cost(num_frames: int = 3000) -> tuple[float, float]:
    """CPU microseconds per 20 ms frame: vkit's Realtime stage vs a bare websockets loop.

    Each runs with ``num_frames`` and with a tenth of that; the difference divided by the difference in
    frames is the per-frame cost, free of start-up and connection costs."""
    server = ServerProcess()

    def vkit_cpu(frames: int) -> float:
        audio = speech_24k(frames * 0.02)
        stage = Realtime(server.url, turn_detection="manual", frame_ms=20)
        cpu = time.process_time()
        vkit.run(sources.Array(audio, 24_000, frame_ms=20) | stage | sinks.Null())
        return time.process_time() - cpu

    def bare_cpu(frames: int) -> float:
        audio = speech_24k(frames * 0.02)

        async def bare() -> None:
            async with connect(server.url, max_size=None) as ws:
                await ws.send(json.dumps({"type": "session.update", "session": {
                    "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
                for start in range(0, audio.size, 480):
                    await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                              "audio": encode_audio(audio[start : start + 480])}))

        cpu = time.process_time()
        asyncio.run(bare())
        return time.process_time() - cpu

    try:
        few = num_frames // 10
        vkit_us = (vkit_cpu(num_frames) - vkit_cpu(few)) / (num_frames - few) * 1e6
        bare_us = (bare_cpu(num_frames) - bare_cpu(few)) / (num_frames - few) * 1e6
    finally:
        server.finish()
    return vkit_us, bare_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-frames", type=int, default=5000)
    args = parser.parse_args()
    print(f"python {platform.python_version()}  vkit {vkit.__version__}  cores {os.cpu_count()}  "
          f"{args.seconds:g} s of real-time speech per session, echo responder, server VAD on")
    print()
    print(f"{'sessions':>9s}{'lag p50 ms':>12s}{'lag p99 ms':>12s}{'lag max ms':>12s}{'server CPU %':>14s}"
          f"{'MB/session':>12s}{'responses':>11s}")
    for count in args.sessions:
        row = load_run(count, args.seconds)
        print(f"{row['sessions']:9d}{row['lag_p50_ms']:12.2f}{row['lag_p99_ms']:12.2f}{row['lag_max_ms']:12.2f}"
              f"{row['server_cpu_pct']:14.1f}{row['rss_per_session_mb']:12.2f}{row['responses']:11d}")
    vkit_us, bare_us = client_cost(args.client_frames)
    print()
    print(f"client CPU per 20 ms frame: vkit Realtime stage {vkit_us:.1f} us, bare websockets loop {bare_us:.1f} us "
          f"({vkit_us / bare_us:.2f}x)")


if __name__ == "__main__":
    main()
