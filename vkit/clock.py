"""The one session clock, and a virtual clock that makes timing tests deterministic and instant."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Iterator

from vkit.units import ns_to_s, s_to_ns


class SessionClock:
    """Nanoseconds since the session origin, from ``time.monotonic_ns()``."""

    virtual = False

    def __init__(self) -> None:
        self.origin_ns = time.monotonic_ns()
        self.origin_unix_s = time.time()

    def now_ns(self) -> int:
        return time.monotonic_ns() - self.origin_ns

    async def sleep_until(self, t_ns: int) -> None:
        """Sleep until the session clock reads ``t_ns`` (returns at once if it already has)."""
        delay_ns = t_ns - self.now_ns()
        if delay_ns > 0:
            await asyncio.sleep(ns_to_s(delay_ns))

    async def sleep(self, duration_s: float) -> None:
        await self.sleep_until(self.now_ns() + s_to_ns(duration_s))

    def unix_s(self) -> float:
        """Seconds since the Unix epoch, on this clock (the origin's wall time plus the session time)."""
        return self.origin_unix_s + ns_to_s(self.now_ns())

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Mark work running outside the event loop (a thread, a process) until the block ends.

        The system clock ignores it; the virtual clock does not move while any such work is running, so
        a result computed in a thread arrives at the same virtual time however long it took.
        """
        yield


class VirtualClock(SessionClock):
    """A clock that jumps straight to the next sleeper's deadline once every task is waiting.

    Time only moves when all runnable work is done, so a paced source that "plays in real time"
    finishes instantly and every timestamp is reproducible. "Done" means: the loop has no ready
    callback, no work marked ``busy()`` is running, and no socket the loop watches is ready (a
    zero-timeout poll of the loop's selector). That rule matters for a client and a server on one
    loop over loopback: a message written by one end is not yet a callback of the other, only a
    readable socket, and time must not jump past it. And a real-time timer of the loop due within
    ``POLL_S`` (code that polls with ``asyncio.wait(..., timeout=0.05)``) counts as due that far ahead
    on the virtual timeline: when the next sleeper is further away, the clock waits for the poll
    (for real) before jumping, so the poll sees the state at this time rather than after the jump.
    """

    virtual = True
    POLL_S = 0.1

    def __init__(self) -> None:
        super().__init__()
        self._now_ns = 0
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._num_busy = 0
        self._idle: asyncio.Future[None] | None = None

    def now_ns(self) -> int:
        return self._now_ns

    async def sleep_until(self, t_ns: int) -> None:
        if t_ns <= self._now_ns:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (t_ns, next(self._order), future))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.get_running_loop().create_task(self._drive())
        await future

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self._num_busy += 1
        try:
            yield
        finally:
            self._num_busy -= 1
            if self._num_busy == 0 and self._idle is not None and not self._idle.done():
                self._idle.set_result(None)

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._sleepers:
            await self._settle(loop)
            poll_s = _next_timer_s(loop)
            if poll_s is not None and poll_s <= self.POLL_S and self._sleepers[0][0] - self._now_ns > s_to_ns(poll_s):
                await asyncio.sleep(poll_s)  # a real-time poll falls due first: let it look before time jumps
                await self._settle(loop)
            if not self._sleepers:
                break
            t_ns, _, future = heapq.heappop(self._sleepers)
            if future.cancelled():
                continue
            self._now_ns = max(self._now_ns, t_ns)
            future.set_result(None)

    async def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Return once nothing can run before time moves: no ready callback, busy work or ready socket."""
        while True:
            for _ in range(64):  # let every runnable callback finish
                await asyncio.sleep(0)
                if not getattr(loop, "_ready", None):
                    break
            if self._num_busy:
                self._idle = loop.create_future()
                await self._idle
                continue
            if not _sockets_ready(loop):
                return


def _next_timer_s(loop: asyncio.AbstractEventLoop) -> float | None:
    """Seconds until the loop's next real-time timer (``call_later``, a sleep, a timeout), or None."""
    scheduled = [h for h in getattr(loop, "_scheduled", ()) if not h.cancelled()]
    return max(0.0, min(h.when() for h in scheduled) - loop.time()) if scheduled else None


def _sockets_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether a file the loop watches is ready now: bytes to read, room to write, a thread's wake-up.

    A zero-timeout poll of the loop's own selector (level-triggered, so nothing is consumed). Loops
    without one (uvloop, the Windows proactor) report False: there, time may pass a message in flight.
    """
    selector = getattr(loop, "_selector", None)
    if selector is None:
        return False
    return bool(selector.select(0))
