"""Bounded channels between asynchronous stages, with an explicit backpressure policy and counters."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Literal

__all__ = ["Channel", "END"]

END: Any = object()  # sentinel delivered once every producer has closed


class Channel:
    """A bounded FIFO for one consumer task and any number of producers.

    ``policy="block"`` makes a producer wait while the channel is full; ``policy="drop_oldest"``
    discards the oldest queued item instead (live sources must not stall) and counts it.
    Each queued item carries its enqueue time, so the consumer's queue wait is measured.
    """

    __slots__ = (
        "name", "max_items", "policy", "_queue", "_getter", "_putters", "_num_producers", "_closed",
        "num_put", "num_dropped", "max_depth",
    )

    def __init__(self, name: str, max_items: int = 256, policy: Literal["block", "drop_oldest"] = "block") -> None:
        self.name = name
        self.max_items = max_items
        self.policy = policy
        self._queue: deque[tuple[int, Any]] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._num_producers = 0
        self._closed = 0
        self.num_put = 0
        self.num_dropped = 0
        self.max_depth = 0

    def add_producer(self) -> None:
        self._num_producers += 1

    def offer(self, item: Any) -> bool:
        """Enqueue without waiting; False when a blocking channel is full."""
        queue = self._queue
        if len(queue) >= self.max_items:
            if self.policy == "block":
                return False
            queue.popleft()
            self.num_dropped += 1
        queue.append((time.perf_counter_ns(), item))
        self.num_put += 1
        if len(queue) > self.max_depth:
            self.max_depth = len(queue)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)
        return True

    async def put(self, item: Any) -> None:
        while not self.offer(item):
            waiter = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._putters:
                    self._putters.remove(waiter)

    def close_producer(self) -> None:
        """One producer is done; the consumer sees END after the last one closes."""
        self._closed += 1
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def get(self) -> tuple[Any, int]:
        """The next item and how long it waited in the queue (ns); ``(END, 0)`` at the end."""
        queue = self._queue
        while not queue:
            if self._closed >= self._num_producers:
                return END, 0
            self._getter = asyncio.get_running_loop().create_future()
            await self._getter
            self._getter = None
        t_put_ns, item = queue.popleft()
        putters = self._putters
        while putters:
            waiter = putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        return item, time.perf_counter_ns() - t_put_ns

    def __len__(self) -> int:
        return len(self._queue)

    def statistics(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "depth": len(self._queue),
            "max_items": self.max_items,
            "policy": self.policy,
            "num_put": self.num_put,
            "num_dropped": self.num_dropped,
            "max_depth": self.max_depth,
        }
