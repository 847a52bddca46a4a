"""Healthy sessions on the local server with and without hostile peers, side by side.

The server runs in a process of its own (echo responder, server VAD on, output pace 0). Healthy sessions take
text-triggered audio turns (0.5 s of speech appended, committed, ``response.create``) and time each turn from
``response.create`` to its first audio delta and to ``response.done``, plus a fresh handshake per round.
Hostile peers, in a second phase: fuzzers (a stream of malformed events), frozen peers (handshake, then never
read nor send) and huge appenders (13 MiB ``input_audio_buffer.append`` frames, 215 s of audio each,
under server VAD). Reported per phase: the server's event-loop lag p50/p99/max (10 ms sleep probe) and the
healthy turns' latency p50/p99.

    python bench/server_faults.py [--healthy 4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import platform
import random
import time

import numpy as np
import psutil
from websockets.asyncio.client import connect

from vkit.realtime.codec import encode_audio

HUGE_SAMPLES = 24_000 * 215  # 215 s of 24 kHz PCM16: 13.1 MiB of JSON (base64)


def serve(ports: multiprocessing.Queue, stop: multiprocessing.Event, stats: multiprocessing.Queue) -> None:
    from vkit.realtime.server import LocalServer

    async def main() -> None:
        async with LocalServer(output_pace=0, measure_lag=True, max_sessions=1000) as server:
            ports.put(server.port)
            while not stop.is_set():
                await asyncio.sleep(0.05)
                if stats.empty() and stop.is_set():
                    break
            lags = np.array(server.lag_ms or [0.0])
            stats.put({"lag_p50_ms": float(np.percentile(lags, 50)), "lag_p99_ms": float(np.percentile(lags, 99)),
                       "lag_max_ms": float(lags.max())})

    asyncio.run(main())


class ServerProcess:
    def __init__(self) -> None:
        self.ports, self.stats, self.stop = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Event()
        self.process = multiprocessing.Process(target=serve, args=(self.ports, self.stop, self.stats), daemon=True)
        self.process.start()
        self.port = self.ports.get(timeout=30)
        self.url = f"ws://127.0.0.1:{self.port}/v1/realtime"

    def finish(self) -> dict:
        self.stop.set()
        stats = self.stats.get(timeout=60)
        self.process.join(10)
        return stats


async def healthy(url: str, until: float, turns_ms: list[float], handshakes_ms: list[float]) -> None:
    speech = encode_audio((0.1 * np.sin(np.arange(12_000) / 8)).astype(np.float32))
    async with connect(url, max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
        while time.perf_counter() < until:
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": speech}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "response.create"}))
            while json.loads(await ws.recv())["type"] != "response.done":
                pass
            turns_ms.append((time.perf_counter() - sent) * 1000)
            start = time.perf_counter()
            async with connect(url) as fresh:
                await fresh.recv()
            handshakes_ms.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.1)


async def fuzzer(url: str, until: float, seed: int) -> None:
    rng = random.Random(seed)
    shapes = ['{"type": "session.update", "session": "x"}', "[" * 50_000 + "]" * 50_000, "42", '{"type": 1}',
              '{"type": "conversation.item.create", "item": {"id": ["x"]}}', '{"type": "response.create", '
              '"response": {"instructions": ' + '"a' + "a" * 1_000_000 + '"}}']
    async with connect(url, max_size=None) as ws:
        async def drain() -> None:
            async for _ in ws:
                pass
        reader = asyncio.ensure_future(drain())
        while time.perf_counter() < until:
            await ws.send(rng.choice(shapes))
            await asyncio.sleep(0.01)
        reader.cancel()


async def frozen(port: int, until: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    writer.write(f"GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(max(0.0, until - time.perf_counter()))
    writer.close()


async def huge(url: str, until: float, frame: str) -> None:
    async with connect(url, max_size=None) as ws:
        async def drain() -> None:
            async for _ in ws:
                pass
        reader = asyncio.ensure_future(drain())
        while time.perf_counter() < until:
            await ws.send(frame)
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            await asyncio.sleep(1.0)
        reader.cancel()


async def phase(server: ServerProcess, args: argparse.Namespace, hostile: bool, frame: str) -> dict:
    until = time.perf_counter() + args.seconds
    turns_ms: list[float] = []
    handshakes_ms: list[float] = []
    tasks = [healthy(server.url, until, turns_ms, handshakes_ms) for _ in range(args.healthy)]
    if hostile:
        tasks += [fuzzer(server.url, until, i) for i in range(args.fuzzers)]
        tasks += [frozen(server.port, until) for _ in range(args.frozen)]
        tasks += [huge(server.url, until, frame) for _ in range(args.huge)]
    await asyncio.gather(*tasks)
    return {"turns_ms": turns_ms, "handshakes_ms": handshakes_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy", type=int, default=4)
    parser.add_argument("--fuzzers", type=int, default=2)
    parser.add_argument("--frozen", type=int, default=20)
    parser.add_argument("--huge", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    frame = json.dumps({"type": "input_audio_buffer.append",
                        "audio": encode_audio((0.1 * np.sin(np.arange(HUGE_SAMPLES) / 8)).astype(np.float32))})
    print(f"{platform.python_version()}, {psutil.cpu_count()} cores, load {psutil.getloadavg()[0]:.1f}; "
          f"{args.healthy} healthy sessions, {args.seconds:g} s per phase; hostile: {args.fuzzers} fuzzers, "
          f"{args.frozen} frozen peers, {args.huge} huge appender ({len(frame) / 2**20:.1f} MiB frames, 1/s)")
    rows = []
    for hostile in (False, True):
        server = ServerProcess()
        result = asyncio.run(phase(server, args, hostile, frame))
        rows.append((hostile, result, server.finish()))
    print(f"{'phase':<16}{'lag p50':>9}{'lag p99':>9}{'lag max':>9}{'turns':>7}{'turn p50':>10}{'turn p99':>10}"
          f"{'handshake p50':>15}{'handshake max':>15}")
    for hostile, result, stats in rows:
        turns, shakes = np.array(result["turns_ms"] or [np.nan]), np.array(result["handshakes_ms"] or [np.nan])
        print(f"{'with hostile' if hostile else 'healthy only':<16}{stats['lag_p50_ms']:>7.1f}ms"
              f"{stats['lag_p99_ms']:>7.1f}ms{stats['lag_max_ms']:>7.0f}ms{len(result['turns_ms']):>7}"
              f"{np.percentile(turns, 50):>8.0f}ms{np.percentile(turns, 99):>8.0f}ms"
              f"{np.percentile(shakes, 50):>13.0f}ms{shakes.max():>13.0f}ms")


if __name__ == "__main__":
    main()
