"""Network conditions for what-if studies: delay, jitter and loss, seeded and reproducible."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

import numpy as np

from vkit.errors import ConfigError, got
from vkit.frames import AudioFrame
from vkit.graph import Pipe
from vkit.units import ms_to_ns


class NetworkSchedule:
    """The pure core: when each frame arrives (or that it is lost), from a seeded generator."""

    def __init__(self, delay_ms: float, jitter_ms: float, loss_rate: float, seed: int, keep_order: bool) -> None:
        self.delay_ns = ms_to_ns(delay_ms)
        self.jitter_ns = ms_to_ns(jitter_ms)
        self.loss_rate = loss_rate
        self.keep_order = keep_order
        self._rng = np.random.default_rng(seed)
        self._last_arrival_ns = 0

    def arrival_ns(self, sent_ns: int) -> int | None:
        """Arrival time on the session clock, or None when the packet is lost."""
        lost = self._rng.random() < self.loss_rate
        jitter = abs(self._rng.normal(0.0, self.jitter_ns)) if self.jitter_ns else 0.0
        if lost:
            return None
        arrival = sent_ns + self.delay_ns + int(jitter)
        if self.keep_order:
            arrival = max(arrival, self._last_arrival_ns)
        self._last_arrival_ns = max(self._last_arrival_ns, arrival)
        return arrival


class NetworkConditions(Pipe):
    """Deliver audio frames ``delay_ms`` later plus half-normal jitter (``jitter_ms`` sigma), losing a
    ``loss_rate`` fraction; events pass at once. ``keep_order=False`` lets jitter reorder frames."""

    def __init__(self, *, delay_ms: float = 0.0, jitter_ms: float = 0.0, loss_rate: float = 0.0, seed: int = 0,
                 keep_order: bool = True) -> None:
        if delay_ms < 0 or jitter_ms < 0:
            raise ConfigError(f"NetworkConditions delay_ms and jitter_ms must be >= 0 {got((delay_ms, jitter_ms))}")
        if not 0 <= loss_rate < 1:
            raise ConfigError(f"NetworkConditions loss_rate must be in [0, 1) {got(loss_rate)}")
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.loss_rate = loss_rate
        self.seed = seed
        self.keep_order = keep_order
        self.num_lost = 0

    @property
    def latency_ms(self) -> float:
        return self.delay_ms

    async def run(self, ctx: Any) -> None:
        schedule = NetworkSchedule(self.delay_ms, self.jitter_ms, self.loss_rate, self.seed, self.keep_order)
        heap: list[tuple[int, int, AudioFrame]] = []
        order = itertools.count()
        wake = asyncio.Event()
        done = False

        async def deliver() -> None:
            while heap or not done:
                if not heap:
                    wake.clear()
                    await wake.wait()
                    continue
                arrival, _, frame = heap[0]
                if arrival > ctx.clock.now_ns():
                    wake.clear()
                    sleeper = asyncio.ensure_future(ctx.clock.sleep_until(arrival))
                    waker = asyncio.ensure_future(wake.wait())
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                    sleeper.cancel()
                    waker.cancel()
                    continue
                heapq.heappop(heap)
                await ctx.emit(frame.replace(t_ns=arrival))

        sender = asyncio.ensure_future(deliver())
        try:
            async for item in ctx:
                if not isinstance(item, AudioFrame):
                    await ctx.emit(item)
                    continue
                arrival = schedule.arrival_ns(ctx.clock.now_ns())
                if arrival is None:
                    self.num_lost += 1
                    continue
                heapq.heappush(heap, (arrival, next(order), item))
                wake.set()
            done = True
            wake.set()
            await sender
        finally:
            sender.cancel()
