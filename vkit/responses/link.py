"""A loopback link with a round-trip time: a TCP proxy delaying every chunk, each way, by half the RTT.

Every round trip of a protocol pays the RTT, handshakes included: bytes a TLS or WebSocket handshake
exchanges are delayed like any others, and a new connection's first bytes wait one extra RTT for the TCP
handshake that loopback completes at once (SYN, SYN-ACK before the client may send). Order is kept.
Delays come from ``vkit.filters.network.NetworkSchedule`` (seeded jitter possible).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from vkit.errors import ConfigError, got
from vkit.filters.network import NetworkSchedule
from vkit.units import ms_to_ns, ns_to_s

__all__ = ["DelayedLink"]

_READ_BYTES = 65_536


class DelayedLink:
    """Listen on ``host:port`` and forward to ``target_host:target_port`` with ``rtt_ms`` round trips."""

    def __init__(self, target_host: str, target_port: int, *, rtt_ms: float, jitter_ms: float = 0.0,
                 host: str = "127.0.0.1", port: int = 0, seed: int = 0) -> None:
        if rtt_ms < 0 or jitter_ms < 0:
            raise ConfigError(f"rtt_ms and jitter_ms must be >= 0 {got((rtt_ms, jitter_ms))}")
        self.target = (target_host, target_port)
        self.rtt_ms = rtt_ms
        self.jitter_ms = jitter_ms
        self.host = host
        self.port = port
        self.seed = seed
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> DelayedLink:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            handshake_ns = ms_to_ns(self.rtt_ms)
            schedules = [NetworkSchedule(self.rtt_ms / 2, self.jitter_ms, 0.0, self.seed + i, True) for i in (0, 1)]
            await asyncio.gather(self._pipe(reader, up_writer, schedules[0], handshake_ns),
                                 self._pipe(up_reader, writer, schedules[1], 0))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, schedule: NetworkSchedule,
                    extra_first_ns: int) -> None:
        queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due_ns, data = await queue.get()
                wait_ns = due_ns - time.monotonic_ns()
                if wait_ns > 0:
                    await asyncio.sleep(ns_to_s(wait_ns))
                if not data:
                    with contextlib.suppress(Exception):
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(_READ_BYTES)
                due = schedule.arrival_ns(time.monotonic_ns() + extra_first_ns)
                extra_first_ns = 0
                queue.put_nowait((due or time.monotonic_ns(), data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
