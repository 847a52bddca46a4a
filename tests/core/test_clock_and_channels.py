"""The session clock, the virtual clock, and bounded channels."""

from __future__ import annotations

import asyncio

import pytest

from vkit.channels import END, Channel
from vkit.clock import SessionClock, VirtualClock


def test_the_virtual_clock_jumps_to_each_deadline_in_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, t_ns: int) -> None:
        await clock.sleep_until(t_ns)
        woke.append((name, clock.now_ns()))

    async def main() -> None:
        await asyncio.gather(sleeper("late", 3_000_000_000), sleeper("early", 1_000), sleeper("past", 0))

    asyncio.run(main())
    assert woke == [("past", 0), ("early", 1_000), ("late", 3_000_000_000)]


def test_the_system_clock_counts_from_the_session_origin() -> None:
    clock = SessionClock()
    first = clock.now_ns()
    asyncio.run(clock.sleep(0.01))
    assert 0 <= first < clock.now_ns() and clock.virtual is False


def test_a_blocking_channel_waits_and_measures_queue_time() -> None:
    async def main() -> tuple[list[object], dict[str, object]]:
        channel = Channel("c", max_items=2, policy="block")
        channel.add_producer()
        assert channel.offer(1) and channel.offer(2) and not channel.offer(3)
        putter = asyncio.ensure_future(channel.put(3))
        await asyncio.sleep(0)
        assert not putter.done()
        got = [(await channel.get())[0]]
        await putter
        channel.close_producer()
        while (item := (await channel.get())[0]) is not END:
            got.append(item)
        return got, channel.statistics()

    got, stats = asyncio.run(main())
    assert got == [1, 2, 3] and stats["num_dropped"] == 0 and stats["max_depth"] == 2


def test_a_drop_oldest_channel_never_blocks_and_counts_drops() -> None:
    channel = Channel("live", max_items=2, policy="drop_oldest")
    for i in range(5):
        assert channel.offer(i)
    assert len(channel) == 2 and channel.num_dropped == 3
    item, wait_ns = asyncio.run(channel.get())
    assert item == 3 and wait_ns >= 0


@pytest.mark.parametrize("num_producers", [1, 3])
def test_end_comes_once_every_producer_closed(num_producers: int) -> None:
    channel = Channel("c")
    for _ in range(num_producers):
        channel.add_producer()
    for _ in range(num_producers - 1):
        channel.close_producer()
    channel.offer("x")
    channel.close_producer()
    assert asyncio.run(channel.get())[0] == "x" and asyncio.run(channel.get())[0] is END
