"""Runtime cost per frame per stage: vkit vs Pipecat 1.x vs a bare loop, side by side in one run.

A chain of N pass-through stages (N = 1, 5, 20) carries 20 ms frames of 16 kHz mono audio as fast as
possible. Per-stage cost is the slope between N = 1 and N = 20 (so the fixed cost of the source and the
sink drops out). vkit runs synchronous stages fused in one task ("sync"); the "async" variant gives every
stage its own task and channel, which is what Pipecat does for every processor.

    python bench/overhead.py [--frames 3000] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time

import numpy as np

import vkit
from vkit import sinks, sources

SAMPLE_RATE_HZ = 16_000
FRAME_SAMPLES = 320
COUNTS = (1, 5, 20)


class PassThrough:
    def process(self, frame):
        return frame


class AsyncPassThrough:
    async def run(self, ctx):
        async for item in ctx:
            await ctx.emit(item)


def vkit_seconds(num_stages: int, num_frames: int, stage_class: type) -> float:
    audio = np.zeros(FRAME_SAMPLES * num_frames, np.float32)
    graph = vkit.chain(sources.Array(audio, SAMPLE_RATE_HZ), *[stage_class() for _ in range(num_stages)],
                       sinks.Null())
    started = time.perf_counter()
    vkit.run(graph)
    return time.perf_counter() - started


def bare_seconds(num_stages: int, num_frames: int) -> float:
    stages = [PassThrough() for _ in range(num_stages)]
    frames = [np.zeros(FRAME_SAMPLES, np.float32) for _ in range(num_frames)]
    started = time.perf_counter()
    for frame in frames:
        for stage in stages:
            frame = stage.process(frame)
    return time.perf_counter() - started


def pipecat_seconds(num_stages: int, num_frames: int) -> float:
    from loguru import logger

    logger.remove()  # pipecat logs every start and stop at DEBUG
    from pipecat.frames.frames import EndFrame, InputAudioRawFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.workers.runner import WorkerRunner

    class Forward(FrameProcessor):
        async def process_frame(self, frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            await self.push_frame(frame, direction)

    class Count(FrameProcessor):
        def __init__(self) -> None:
            super().__init__()
            self.seen = 0
            self.done = asyncio.Event()

        async def process_frame(self, frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                self.seen += 1
                if self.seen == num_frames:
                    self.done.set()
            await self.push_frame(frame, direction)

    async def main() -> float:
        counter = Count()
        worker = PipelineWorker(Pipeline([*[Forward() for _ in range(num_stages)], counter]),
                                idle_timeout_secs=None, enable_rtvi=False, enable_turn_tracking=False,
                                check_dangling_tasks=False)
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(worker)
        running = asyncio.ensure_future(runner.run())
        await asyncio.sleep(0.2)  # let the pipeline start
        audio = bytes(FRAME_SAMPLES * 2)
        frames = [InputAudioRawFrame(audio=audio, sample_rate=SAMPLE_RATE_HZ, num_channels=1) for _ in range(num_frames)]
        started = time.perf_counter()
        await worker.queue_frames(frames)
        await counter.done.wait()
        elapsed = time.perf_counter() - started
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(running, 30)
        return elapsed

    return asyncio.run(main())


def best(fn, repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1000 frames, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.repeats = 1000, 2
    import pipecat

    print(f"python {platform.python_version()}  numpy {np.__version__}  vkit {vkit.__version__}  "
          f"pipecat {getattr(pipecat, '__version__', '?')}  cores {os.cpu_count()}  frames {args.frames}  "
          f"best of {args.repeats}")
    runners = {
        "bare loop": lambda n: best(lambda: bare_seconds(n, args.frames), args.repeats),
        "vkit (sync, fused)": lambda n: best(lambda: vkit_seconds(n, args.frames, PassThrough), args.repeats),
        "vkit (async stages)": lambda n: best(lambda: vkit_seconds(n, args.frames, AsyncPassThrough), args.repeats),
        "pipecat 1.x": lambda n: best(lambda: pipecat_seconds(n, args.frames), args.repeats),
    }
    per_frame_us: dict[str, dict[int, float]] = {}
    for name, run in runners.items():
        per_frame_us[name] = {n: run(n) / args.frames * 1e6 for n in COUNTS}
    print()
    print(f"{'runtime':22s}" + "".join(f"{f'N={n} us/frame':>16s}" for n in COUNTS) + f"{'us/frame/stage':>17s}")
    slopes = {}
    for name, values in per_frame_us.items():
        slopes[name] = (values[COUNTS[-1]] - values[COUNTS[0]]) / (COUNTS[-1] - COUNTS[0])
        print(f"{name:22s}" + "".join(f"{values[n]:16.2f}" for n in COUNTS) + f"{slopes[name]:17.3f}")
    print()
    pipecat = slopes["pipecat 1.x"]
    for name in ("vkit (sync, fused)", "vkit (async stages)"):
        print(f"pipecat / {name}: {pipecat / slopes[name]:.1f}x per stage (target >= 10x)")


if __name__ == "__main__":
    main()
