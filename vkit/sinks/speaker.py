"""Sinks that play: ``VirtualSpeaker`` (a modelled device, for scripts and tests) and ``Speaker``.

Both register a playout tracker in ``session.playout[stream]`` (what was really played, for barge-in
truncation) and publish ``Playout`` events when sound starts, stops, or is flushed.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

import numpy as np

from vkit.frames import AudioFrame, Playout
from vkit.playout import PlayoutModel
from vkit.sources.microphone import import_sounddevice
from vkit.stage import Pipe


class _ModelTracker:
    """Adapts a PlayoutModel (and the sink's own hooks) to the session's PlayoutTracker protocol."""

    def __init__(self, model: PlayoutModel, ctx: Any, stream: str, sink: VirtualSpeaker) -> None:
        self.model = model
        self._ctx = ctx
        self._stream = stream
        self._sink = sink

    def played_sample(self, now_ns: int) -> int:
        reported = self._sink.reported_position()
        return reported if reported is not None else self.model.played_sample(now_ns)

    def flush(self) -> None:
        now_ns = self._ctx.clock.now_ns()
        self._sink.on_flush()
        position = self.model.flush(now_ns)
        self._ctx.publish(Playout(stream=self._stream, sample=position, sample_rate_hz=self.model.sample_rate_hz,
                                  state="flushed", t_ns=now_ns))


class VirtualSpeaker(Pipe):
    """Plays ``stream`` on a modelled device with a ``prebuffer_ms`` jitter buffer, in session time.

    Nothing is heard, but every timing is what a real device with that buffer would give, so
    ``first_audio_played_ms`` and truncation positions are meaningful in scripts, CI and fast runs.
    """

    def __init__(self, *, stream: str = "output", prebuffer_ms: float = 60.0) -> None:
        self.stream = stream
        self.prebuffer_ms = prebuffer_ms
        self.model: PlayoutModel | None = None

    @property
    def latency_ms(self) -> float:
        return self.prebuffer_ms

    async def run(self, ctx: Any) -> None:
        watcher: asyncio.Task[None] | None = None
        try:
            async for item in ctx:
                if not isinstance(item, AudioFrame) or item.stream != self.stream:
                    continue
                now_ns = ctx.clock.now_ns()
                if self.model is None:
                    self.model = PlayoutModel(item.sample_rate_hz, self.prebuffer_ms)
                    tracker = _ModelTracker(self.model, ctx, self.stream, self)
                    ctx.session.playout[self.stream] = tracker
                self.on_frame(item)
                started_ns = self.model.add(item.start_sample, item.num_samples, now_ns)
                if started_ns is not None:
                    if watcher is not None:
                        watcher.cancel()
                    watcher = asyncio.ensure_future(self._announce(ctx, started_ns))
            if watcher is not None:  # the input ended: the device plays out what it holds
                await watcher
        finally:
            if watcher is not None:
                watcher.cancel()

    def on_frame(self, frame: AudioFrame) -> None:
        """Hook: a frame reached the device (a real player sends it on)."""

    def on_flush(self) -> None:
        """Hook: queued audio must be dropped (barge-in)."""

    def reported_position(self) -> int | None:
        """Hook: the stream position a real device reports as played, when it reports one."""
        return None

    async def _announce(self, ctx: Any, started_ns: int) -> None:
        """Publish 'started' when sound starts and 'stopped' when the buffer runs dry."""
        model = self.model
        assert model is not None
        await ctx.clock.sleep_until(started_ns)
        ctx.publish(Playout(stream=self.stream, sample=model.played_sample(started_ns),
                            sample_rate_hz=model.sample_rate_hz, state="started", t_ns=started_ns))
        while (end_ns := model.end_ns()) is not None and end_ns > ctx.clock.now_ns():
            await ctx.clock.sleep_until(end_ns)
        end_ns = model.end_ns()
        if end_ns is not None:
            ctx.publish(Playout(stream=self.stream, sample=model.played_sample(end_ns),
                                sample_rate_hz=model.sample_rate_hz, state="stopped", t_ns=end_ns))


class Speaker(Pipe):
    """Play ``stream`` on a system output device (sounddevice; optional extra ``vkit[devices]``)."""

    def __init__(self, *, stream: str = "output", device: int | str | None = None, prebuffer_ms: float = 60.0) -> None:
        self.stream = stream
        self.device = device
        self.prebuffer_ms = prebuffer_ms

    @property
    def latency_ms(self) -> float:
        return self.prebuffer_ms

    async def run(self, ctx: Any) -> None:
        sd = import_sounddevice()
        queue: deque[np.ndarray] = deque()
        lock = threading.Lock()
        played = [0]

        class _Tracker:
            def played_sample(self, now_ns: int) -> int:
                return played[0]

            def flush(self) -> None:
                with lock:
                    queue.clear()

        def callback(out: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            out.fill(0)
            filled = 0
            with lock:
                while queue and filled < frames:
                    block = queue[0]
                    take = min(frames - filled, block.shape[0])
                    out[filled : filled + take] = block[:take]
                    filled += take
                    if take == block.shape[0]:
                        queue.popleft()
                    else:
                        queue[0] = block[take:]
            played[0] += filled

        output = None
        ctx.session.playout[self.stream] = _Tracker()
        try:
            async for item in ctx:
                if not isinstance(item, AudioFrame) or item.stream != self.stream:
                    continue
                if output is None:
                    output = sd.OutputStream(samplerate=item.sample_rate_hz, channels=item.num_channels,
                                             dtype="float32", device=self.device, callback=callback,
                                             latency=self.prebuffer_ms / 1000)
                    output.start()
                with lock:
                    queue.append(item.samples.T.copy())
        finally:
            if output is not None:
                output.stop()
                output.close()
