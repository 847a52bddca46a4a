"""What a turn decision costs: Smart Turn v3.2 per call, and the local server's event loop under semantic_vad.

Part 1: Smart Turn's cost per decision (features + inference, one onnxruntime thread), over ``--calls`` calls
on 8 s of speech (the model always sees 8 s, so shorter turns cost the same).
Part 2: N concurrent sessions stream real-time 24 kHz speech with thinking pauses (20 ms appends) over
loopback to the local server in its own process; reported: its event-loop lag (p50/p99/max of a 10 ms
sleep probe) for server_vad, semantic_vad with the silence detector, and semantic_vad with Smart Turn
(judged in a thread, so the loop does not wait for the model), and the number of turns it ended.

    python bench/turn_cost.py [--calls 30] [--sessions 1 4] [--seconds 12]
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
import soxr
from websockets.asyncio.client import connect

from vkit.filters.turn import SmartTurnModel
from vkit.filters.turn.features import log_mel
from vkit.realtime.codec import encode_audio
from vkit.speech import Speech


def paused_speech_24k(seconds: float) -> np.ndarray:
    """Utterances with a 1 s thinking pause inside and 1.5 s between them, repeated to ``seconds``."""
    speech = Speech("espeak-ng")
    parts = [speech.synthesise(t) for t in ("I was thinking that maybe we could go to the", "cinema tomorrow.")]
    one = np.concatenate([parts[0], np.zeros(24_000, np.float32), parts[1], np.zeros(36_000, np.float32)])
    return np.resize(one, int(24_000 * seconds)).astype(np.float32)


def model_cost(calls: int) -> dict[str, float]:
    SmartTurnModel.load()
    model = SmartTurnModel()
    audio = soxr.resample(paused_speech_24k(8.0), 24_000, 16_000).astype(np.float32)
    model.probability(audio)  # warm
    total, features = [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        log_mel(audio)
        features.append((time.perf_counter() - t0) * 1000)
        total.append(model.probability(audio)[1])
    return {"features_p50_ms": float(np.median(features)), "total_p50_ms": float(np.median(total)),
            "total_p95_ms": float(np.percentile(total, 95)), "total_max_ms": float(np.max(total))}


def serve(turn_detector: str, ports: multiprocessing.Queue, stop: multiprocessing.Event,
          stats: multiprocessing.Queue) -> None:
    import scipy.signal  # noqa: F401 - the VAD's resampler imports it in a first session: not what is measured here

    from vkit.realtime.server import LocalServer

    if turn_detector == "smart_turn":
        SmartTurnModel.load()  # as ``vkit serve`` does

    async def until_stopped() -> None:
        server = LocalServer(port=0, output_pace=1.0, measure_lag=True, max_sessions=100, turn_detector=turn_detector)
        async with server:
            ports.put(server.port)
            while not stop.is_set():
                await asyncio.sleep(0.05)
            lags = np.array(server.lag_ms or [0.0])
            stats.put({"lag_p50_ms": float(np.percentile(lags, 50)), "lag_p99_ms": float(np.percentile(lags, 99)),
                       "lag_max_ms": float(lags.max()), "responses": len(server.records)})

    asyncio.run(until_stopped())


async def one_session(url: str, detection: dict, audio: np.ndarray) -> int:
    stopped = 0
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"turn_detection": detection}}}}))

        async def reader() -> None:
            nonlocal stopped
            async for message in ws:
                stopped += '"input_audio_buffer.speech_stopped"' in message

        task = asyncio.ensure_future(reader())
        step, start = 480, time.perf_counter()
        for k, at in enumerate(range(0, audio.size, step)):
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": encode_audio(audio[at:at + step])}))
            await asyncio.sleep(max(0.0, start + (k + 1) * 0.02 - time.perf_counter()))
        await asyncio.sleep(1.0)
        task.cancel()
    return stopped


def load(detection: dict, turn_detector: str, sessions: int, audio: np.ndarray) -> dict:
    spawn = multiprocessing.get_context("spawn")  # a forked onnxruntime session (part 1's) is not safe to use
    ports, stats = spawn.Queue(), spawn.Queue()
    stop = spawn.Event()
    process = spawn.Process(target=serve, args=(turn_detector, ports, stop, stats), daemon=True)
    process.start()
    url = f"ws://127.0.0.1:{ports.get(timeout=60)}/v1/realtime"

    async def clients() -> list[int]:
        return await asyncio.gather(*(one_session(url, detection, audio) for _ in range(sessions)))

    turns = asyncio.run(clients())
    stop.set()
    result = stats.get(timeout=60)
    process.join(10)
    return {**result, "turns_per_session": float(np.mean(turns))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    cost = model_cost(args.calls)
    print(f"\nSmart Turn v3.2 per decision ({args.calls} calls, 8 s input): features {cost['features_p50_ms']:.1f} ms, "
          f"total p50 {cost['total_p50_ms']:.1f} ms, p95 {cost['total_p95_ms']:.1f} ms, max {cost['total_max_ms']:.1f} ms")
    audio = paused_speech_24k(args.seconds)
    modes = [("server_vad", {"type": "server_vad"}, "smart_turn"),
             ("semantic_vad, silence", {"type": "semantic_vad"}, "silence"),
             ("semantic_vad, smart_turn", {"type": "semantic_vad"}, "smart_turn")]
    print(f"\n{'mode':<26}{'sessions':>9}{'lag p50':>10}{'lag p99':>10}{'lag max':>10}{'turns/session':>15}")
    for sessions in args.sessions:
        for name, detection, detector in modes:
            r = load(detection, detector, sessions, audio)
            print(f"{name:<26}{sessions:>9}{r['lag_p50_ms']:>8.1f}ms{r['lag_p99_ms']:>8.1f}ms{r['lag_max_ms']:>8.1f}ms"
                  f"{r['turns_per_session']:>15.1f}")


if __name__ == "__main__":
    main()
