"""The runtime: compile a graph into tasks, run them on one asyncio loop, stop cleanly.

Runs of synchronous stages are fused: they are called one after another inside the task of whatever
feeds them (a source, an async stage, or a channel pump), so a 20 ms frame through ten filters costs ten
method calls, not ten queue hops. Channels exist only in front of asynchronous stages and fan-in points.

``run`` blocks (a plain script, or a notebook cell whose loop is already running: then the graph runs on
the engine thread), ``arun`` is the async form, and ``start`` returns a ``Handle`` at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vkit import display
from vkit.channels import END, Channel
from vkit.clock import SessionClock, VirtualClock
from vkit.errors import ConfigError, RecordingError, StageError, got
from vkit.frames import AudioFrame, Event, Item, Marker
from vkit.plan import GraphPlan, Part, PlanJoin, PlanNode, PlanTee
from vkit.progress import Progress, RunProgress, wanted
from vkit.session import Session, StageStats
from vkit.stage import PlayoutTracker, StreamFormat, accepted_types, as_items

__all__ = ["run", "arun", "start", "Handle", "StageContext"]

log = logging.getLogger(__name__)
_perf_ns = time.perf_counter_ns
_PROGRESS_TICK_S = 0.25  # how often a waiting call updates its progress bar


# -- synchronous steps and the fused tails that run them -----------------------------------------


class _Step:
    """One synchronous stage inside a fused tail."""

    __slots__ = ("obj", "name", "process", "accepts", "stats", "times", "max_times", "session", "clock")

    def __init__(self, obj: Any, name: str, stats: StageStats, session: Session) -> None:
        self.obj = obj
        self.name = name
        self.process = obj.process
        self.accepts = accepted_types(obj)
        self.stats = stats
        self.times, self.max_times = stats.processing_log_ns, stats.max_logged  # appended inline, then stats.trim()
        self.session = session
        self.clock = session.clock

    def collect(self, result: Any, out: list[Item]) -> None:
        """Append what a stage returned (not None: ``push`` ends there) to ``out``, its events stamped and published."""
        if type(result) is AudioFrame:
            out.append(result)
        elif isinstance(result, Event):
            out.append(self.new_event(result))
        else:
            for produced in result:
                out.append(self.new_event(produced) if isinstance(produced, Event) else produced)

    def new_event(self, event: Event) -> Event:
        if event.stage:
            return event
        event = _stamp(event, self.name, self.clock)
        self.session.publish(event)
        return event

    def flush(self) -> list[Item]:
        flush = getattr(self.obj, "flush", None)
        if flush is None:
            return []
        try:
            produced = list(as_items(flush()))
        except Exception as exc:
            raise StageError(self.name, exc) from exc
        return [self.new_event(p) if isinstance(p, Event) else p for p in produced]


def _stamp(event: Event, name: str, clock: SessionClock) -> Event:
    """Name the stage that made ``event`` and, if it carries no time, stamp it now.

    An event a stage returns or emits is the runtime's from then on (nothing else holds it yet), so it
    is stamped in place: ``dataclasses.replace`` cost a few microseconds per event on the hot path.
    """
    object.__setattr__(event, "stage", name)
    if event.t_ns < 0:
        object.__setattr__(event, "t_ns", clock.now_ns())
    return event


class _Outlet:
    """Where a tail's items leave it: a channel, optionally tagged with a branch index (for mix)."""

    __slots__ = ("channel", "tag")

    def __init__(self, channel: Channel, tag: int | None = None) -> None:
        self.channel = channel
        self.tag = tag
        channel.add_producer()

    def wrap(self, item: Item) -> Any:
        return item if self.tag is None else (self.tag, item)

    def close(self) -> None:
        if self.tag is not None:
            self.channel._queue.append((_perf_ns(), (self.tag, END)))  # noqa: SLF001 - always fits
        self.channel.close_producer()


class _Tail:
    """Fused synchronous steps, then fan-out to inline branches and to channels."""

    __slots__ = ("steps", "branches", "outlets")

    def __init__(self) -> None:
        self.steps: list[_Step] = []
        self.branches: list[_Tail] = []
        self.outlets: list[_Outlet] = []

    def push(self, item: Item, first_step: int = 0) -> list[tuple[Channel, Any]] | None:
        """``item`` through the steps from ``first_step`` on, then to the branches and outlets: what it found full.

        One item goes from step to step in this loop, with no call or container per step; when a step makes
        several (a frame and its events), each goes on through the rest of the tail in turn."""
        for step in self.steps[first_step:] if first_step else self.steps:
            if not isinstance(item, step.accepts):
                continue
            t0 = _perf_ns()
            try:
                result = step.process(item)
            except Exception as exc:
                raise StageError(step.name, exc) from exc
            times = step.times
            times.append(_perf_ns() - t0)
            if len(times) >= step.max_times:
                step.stats.trim()
            if result is item or type(result) is AudioFrame:
                item = result
                continue
            if result is None:  # consumed (a sink, a filter still filling its block): nothing goes on
                return None
            produced: list[Item] = []
            step.collect(result, produced)
            return self._push_each(produced, self.steps.index(step) + 1)  # the rare path: a search is cheap
        return self._deliver((item,))

    def _push_each(self, items: Sequence[Item], first_step: int) -> list[tuple[Channel, Any]] | None:
        pending: list[tuple[Channel, Any]] | None = None
        for item in items:
            more = self.push(item, first_step)
            if more:
                pending = (pending or []) + more
        return pending

    def _deliver(self, items: Sequence[Item]) -> list[tuple[Channel, Any]] | None:
        pending: list[tuple[Channel, Any]] | None = None
        for item in items:
            for branch in self.branches:
                more = branch.push(item)
                if more:
                    pending = (pending or []) + more
            for outlet in self.outlets:
                wrapped = outlet.wrap(item)
                if not outlet.channel.offer(wrapped):
                    pending = pending or []
                    pending.append((outlet.channel, wrapped))
        return pending

    async def emit(self, item: Item) -> None:
        pending = self.push(item)
        if pending:
            await _put_all(pending)

    async def finish(self) -> None:
        """End of stream: flush every step in order (what one flushes goes through the steps after it), then
        close branches and outlets."""
        for index, step in enumerate(self.steps):
            pending = self._push_each(step.flush(), index + 1)
            if pending:
                await _put_all(pending)
        for branch in self.branches:
            await branch.finish()
        for outlet in self.outlets:
            outlet.close()


async def _put_all(pending: list[tuple[Channel, Any]]) -> None:
    """Wait for room in the channels a push found full."""
    for channel, queued in pending:
        await channel.put(queued)


# -- what async stages see -------------------------------------------------------------------------


class StageContext:
    """The runtime, as one asynchronous stage (or source) sees it."""

    def __init__(self, name: str, session: Session, tail: _Tail, inbox: Channel | None,
                 stats: StageStats, input_format: StreamFormat | None, is_source: bool,
                 playout: _PlayoutLinks) -> None:
        self.name = name
        self.session = session
        self.clock = session.clock
        self.input_format = input_format
        self._tail = tail
        self._inbox = inbox
        self._stats = stats
        self._is_source = is_source
        self._input_streams: set[str] = set()
        self._started_streams: set[str] = set()
        self._playout = playout

    async def receive(self) -> Item | None:
        """The next item from upstream, or None at the end of the stream."""
        if self._inbox is None:
            return None
        item, wait_ns = await self._inbox.get()
        if item is END:
            return None
        self._stats.add_wait(wait_ns)
        self._stats.num_untimed_items += 1
        if type(item) is AudioFrame:
            self._input_streams.add(item.stream)
        return item

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Item]:
        while (item := await self.receive()) is not None:
            yield item

    async def emit(self, item: Item) -> None:
        """Send an item downstream (waits while a blocking channel is full)."""
        if type(item) is AudioFrame:
            if item.stream not in self._input_streams:
                if item.stream not in self._started_streams:
                    self._started_streams.add(item.stream)
                    self.publish(Marker(name="stream_start", t_ns=item.t_ns, data={
                        "stream": item.stream, "start_sample": item.start_sample,
                        "sample_rate_hz": item.sample_rate_hz, "num_channels": item.num_channels}))
                if self.session.subscribers:  # a frame is only for subscribers (a recorder, a widget)
                    self.session.publish(item)
        elif isinstance(item, Event) and not item.stage:
            item = _stamp(item, self.name, self.clock)
            self.session.publish(item)
        if self._is_source:
            self._stats.num_untimed_items += 1
        pending = self._tail.push(item)  # the fused tail, called here: no coroutine per item unless a channel is full
        if pending:
            await _put_all(pending)

    def publish(self, event: Event) -> Event:
        """Put an event on the session record without sending it downstream."""
        if not event.stage:
            event = _stamp(event, self.name, self.clock)
        self.session.publish(event)
        return event

    def provide_playout(self, tracker: PlayoutTracker) -> None:
        """A playing sink: what it really played, for the stage the plan links to it (barge-in)."""
        self._playout.provide(self.name, tracker)

    def linked_playout(self) -> PlayoutTracker | None:
        """A stage with ``uses_playout``: the linked sink's tracker, once that sink has started playing."""
        return self._playout.linked(self.name)


# -- compiling a plan into tasks --------------------------------------------------------------------


class _Tasks:
    """The tasks of one run, built by walking the plan's parts once."""

    def __init__(self, plan: GraphPlan, session: Session) -> None:
        self.plan = plan
        self.session = session
        self.tasks: list[tuple[str, Any]] = []  # (node name, coroutine factory)
        self.stage_objects: list[tuple[str, Any, StageContext]] = []
        self.playout = _PlayoutLinks(plan)
        self._compile(plan.root, None)

    def _stats(self, node: PlanNode, kind: str) -> StageStats:
        return self.session.stats_for(node.name, kind, node.latency_ms)

    def _context(self, node: PlanNode, tail: _Tail, inbox: Channel | None, stats: StageStats,
                 is_source: bool) -> StageContext:
        return StageContext(node.name, self.session, tail, inbox, stats, node.input_format, is_source, self.playout)

    def _compile(self, parts: tuple[Part, ...], tail: _Tail | None) -> _Tail | None:
        for part in parts:
            if isinstance(part, PlanTee):
                assert tail is not None
                for branch in part.branches:
                    branch_tail = _Tail()
                    tail.branches.append(branch_tail)
                    self._compile(branch, branch_tail)
                continuation = _Tail()
                tail.branches.append(continuation)
                tail = continuation
            elif isinstance(part, PlanJoin):
                tail = self._compile_join(part, tail)
            elif part.kind == "sync":
                assert tail is not None
                stats = self._stats(part, "sync")
                tail.steps.append(_Step(part.obj, part.name, stats, self.session))
                self.stage_objects.append((part.name, part.obj, self._context(part, tail, None, stats, False)))
            else:
                stats = self._stats(part, part.kind)
                new_tail = _Tail()
                if part.kind == "source":
                    ctx = self._context(part, new_tail, None, stats, True)
                else:
                    assert tail is not None and part.channel is not None
                    channel = Channel(part.name, part.channel.max_items, part.channel.policy)
                    stats.channel = channel
                    tail.outlets.append(_Outlet(channel))
                    ctx = self._context(part, new_tail, channel, stats, False)
                self.stage_objects.append((part.name, part.obj, ctx))
                self.tasks.append((part.name, _stage_task(part.obj, ctx, new_tail)))
                tail = new_tail
        return tail

    def _compile_join(self, join: PlanJoin, tail: _Tail | None) -> _Tail:
        spec = join.join.channel
        assert spec is not None
        channel = Channel(join.join.name, spec.max_items, spec.policy)
        for index, (branch, sourced) in enumerate(zip(join.branches, join.sourced, strict=True)):
            if sourced:
                end = self._compile(branch, None)
            else:
                assert tail is not None
                start = _Tail()
                tail.branches.append(start)
                end = self._compile(branch, start)
            assert end is not None
            end.outlets.append(_Outlet(channel, index if join.mode == "mix" else None))
        stats = self.session.stats_for(join.join.name, "sync")
        stats.channel = channel
        new_tail = _Tail()
        if join.mode == "mix":
            new_tail.steps.append(_Step(_Mixer(len(join.branches), join.stream), join.join.name, stats, self.session))
        self.tasks.append((join.join.name, _pump_task(channel, new_tail, stats)))
        return new_tail


class _PlayoutLinks:
    """The plan's playout side links for one run: a playing sink provides, a linked stage reads."""

    def __init__(self, plan: GraphPlan) -> None:
        self._providers = {link.source: link.target for link in plan.links if link.kind == "playout"}
        self._trackers: dict[str, PlayoutTracker] = {}

    def provide(self, name: str, tracker: PlayoutTracker) -> None:
        self._trackers[name] = tracker

    def linked(self, name: str) -> PlayoutTracker | None:
        target = self._providers.get(name)
        return self._trackers.get(target) if target is not None else None


def _stage_task(obj: Any, ctx: StageContext, tail: _Tail) -> Any:
    async def body() -> None:
        await obj.run(ctx)
        if ctx._inbox is not None:  # noqa: SLF001 - drain so upstream never blocks on a stage that stopped reading
            while (await ctx._inbox.get())[0] is not END:  # noqa: SLF001
                pass
        await tail.finish()

    return body


def _pump_task(channel: Channel, tail: _Tail, stats: StageStats) -> Any:
    async def body() -> None:
        while True:
            item, wait_ns = await channel.get()
            if item is END:
                break
            stats.add_wait(wait_ns)
            await tail.emit(item)
        await tail.finish()

    return body


class _Mixer:
    """Sums tagged audio from several branches, sample-aligned by ``start_sample``; events pass."""

    accepts = (tuple,)

    def __init__(self, num_branches: int, stream: str) -> None:
        self.stream = stream
        self._buffers: list[np.ndarray | None] = [None] * num_branches
        self._starts = [0] * num_branches
        self._alive = [True] * num_branches
        self._emitted: int | None = None
        self._rate: int | None = None
        self._t_ns = 0

    def process(self, tagged: tuple[int, Any]) -> list[Item]:
        index, item = tagged
        if item is END:
            self._alive[index] = False
            return self._drain(final=not any(self._alive))
        if not isinstance(item, AudioFrame):
            return [item]
        if self._rate is None:
            self._rate = item.sample_rate_hz
        elif item.sample_rate_hz != self._rate:
            raise ConfigError(f"mix() got frames at two sample rates {got((self._rate, item.sample_rate_hz))}")
        self._t_ns = item.t_ns
        buffered = self._buffers[index]
        if self._emitted is None:
            self._emitted = item.start_sample
        if buffered is None:
            self._starts[index] = max(item.start_sample, self._emitted)
            buffered = np.zeros((item.num_channels, 0), np.float32)
        end = self._starts[index] + buffered.shape[1]
        samples = item.samples
        if item.start_sample > end:  # a gap: silence
            samples = np.concatenate([np.zeros((samples.shape[0], item.start_sample - end), np.float32), samples], 1)
        elif item.start_sample < end:  # overlap with what we have: keep the first copy
            samples = samples[:, end - item.start_sample :]
        self._buffers[index] = _join(buffered, samples)
        return self._drain(final=False)

    def flush(self) -> list[Item]:
        return self._drain(final=True)

    def _drain(self, final: bool) -> list[Item]:
        if self._emitted is None or self._rate is None:
            return []
        ends = [self._starts[i] + (b.shape[1] if b is not None else 0) for i, b in enumerate(self._buffers)]
        live_ends = [e for i, e in enumerate(ends) if self._alive[i]]
        until = max(ends) if final or not live_ends else min(live_ends)
        if until <= self._emitted:
            return []
        channels = max(b.shape[0] for b in self._buffers if b is not None)
        total = np.zeros((channels, until - self._emitted), np.float32)
        for i, buffered in enumerate(self._buffers):
            if buffered is None:
                continue
            lo = self._emitted - self._starts[i]
            part = buffered[:, max(lo, 0) : until - self._starts[i]]
            offset = max(-lo, 0)
            total[:, offset : offset + part.shape[1]] += part  # broadcasts mono onto all channels
            keep_from = until - self._starts[i]
            if keep_from > 0:
                self._buffers[i] = buffered[:, keep_from:]
                self._starts[i] = until
        frame = AudioFrame(samples=total, sample_rate_hz=self._rate, start_sample=self._emitted,
                           stream=self.stream, t_ns=self._t_ns)
        self._emitted = until
        return [frame]


def _join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[1] == 0:
        return b
    if a.shape[0] != b.shape[0]:
        channels = max(a.shape[0], b.shape[0])
        a, b = np.broadcast_to(a, (channels, a.shape[1])), np.broadcast_to(b, (channels, b.shape[1]))
    return np.concatenate([a, b], 1)


# -- running ------------------------------------------------------------------------------------------

Attach = Callable[[Session], object]  # called with the new session before any stage runs


def _make_clock(clock: SessionClock | str | None) -> SessionClock:
    if clock is None or clock == "system":
        return SessionClock()
    if clock == "virtual":
        return VirtualClock()
    if isinstance(clock, SessionClock):
        return clock
    raise ConfigError(f"clock must be 'system', 'virtual' or a SessionClock {got(clock)}")


def _prepare(graph: object, clock: SessionClock | str | None, ground_truth: Any,
             attach: Sequence[Attach], keep_all_events: bool = False) -> tuple[GraphPlan, Session]:
    plan = GraphPlan(graph)
    session_clock = _make_clock(clock)
    if session_clock.virtual:
        real = [(n.name, why) for n in plan.stages() if (why := getattr(n.obj, "requires_real_clock", False))]
        explained = [f"{name} {why}" for name, why in real if isinstance(why, str)]
        if explained:
            raise ConfigError(f"{'; '.join(explained)} {got(clock)}")
        if real:
            raise ConfigError(f"{', '.join(name for name, _ in real)} cannot be measured on the virtual clock (they "
                              f"wait on a real device, browser or remote server): run with the system clock {got(clock)}")
    session = Session(session_clock, graph=plan.describe(), keep_all_events=keep_all_events)
    if ground_truth is not None:
        session.ground_truth_segments_ms = _load_ground_truth(ground_truth)
    for hook in attach:
        hook(session)
    return plan, session


def _load_ground_truth(ground_truth: Any) -> list[tuple[float, float]]:
    if isinstance(ground_truth, (str, Path)):
        rows = []
        for line in Path(ground_truth).read_text().splitlines():
            parts = line.strip().split(",")
            try:
                rows.append((float(parts[0]), float(parts[1])))
            except (ValueError, IndexError):
                continue  # header or blank line
        return rows
    return [(float(a), float(b)) for a, b in ground_truth]


async def _execute(plan: GraphPlan, session: Session, timeout_s: float | None = None) -> Session:
    tasks = _Tasks(plan, session)
    opened: list[tuple[str, Any]] = []
    status, error = "error", None
    try:
        for name, obj, ctx in tasks.stage_objects:
            reset = getattr(obj, "reset", None)
            if callable(reset):  # every run starts from a clean state, so a graph can run again
                reset()
            open_ = getattr(obj, "open", None)
            if callable(open_):
                try:
                    open_(ctx)
                except Exception as exc:
                    raise StageError(name, exc) from exc
            opened.append((name, obj))
        runner = asyncio.ensure_future(_run_tasks(tasks))
        loop = asyncio.get_running_loop()
        session.on_failure(lambda _: loop.call_soon_threadsafe(runner.cancel))
        try:
            async with asyncio.timeout(timeout_s):
                await runner
        except TimeoutError:
            status = "timeout"
            raise TimeoutError(f"the graph did not finish within timeout_s {got(timeout_s)}") from None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if session.failure is None or (current is not None and current.cancelling()):
                raise
            raise session.failure from None  # a subscriber (the recorder) failed: stop at once, say why
        status = "complete"
    except asyncio.CancelledError as exc:
        status = "timeout" if exc.args == ("timeout",) else "stopped"
        raise
    except BaseException as exc:
        error = exc
        if isinstance(exc, RecordingError):
            exc.session = session
        raise
    finally:
        close_error = _close_all(opened)
        if close_error is not None and status == "complete":
            status, error = "error", close_error
        finish_error = session.finish(status, error)
        if status == "complete" and (close_error or finish_error):
            raise (close_error or finish_error)  # type: ignore[misc]
    return session


async def _run_tasks(tasks: _Tasks) -> None:
    running = {asyncio.ensure_future(factory()): name for name, factory in tasks.tasks}
    try:
        done, pending = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _cancel(running)
        raise
    failed = [t for t in done if not t.cancelled() and t.exception() is not None]
    if failed:
        await _cancel(pending)
        first = min(failed, key=lambda t: list(running).index(t))
        error = first.exception()
        assert error is not None
        if isinstance(error, StageError):
            raise error
        raise StageError(running[first], error) from error


async def _cancel(tasks: Any) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _close_all(opened: list[tuple[str, Any]]) -> BaseException | None:
    first: BaseException | None = None
    for name, obj in opened:
        close = getattr(obj, "close", None)
        if not callable(close):
            continue
        try:
            close()
        except Exception as exc:  # every stage gets closed; the first failure is reported
            log.exception("closing stage %s failed", name)
            first = first or StageError(name, exc)
    return first


async def arun(graph: object, *, clock: SessionClock | str | None = None, ground_truth: Any = None,
               timeout_s: float | None = None, attach: Sequence[Attach] = (), keep_all_events: bool = False) -> Session:
    """Run ``graph`` on the caller's event loop; returns the Session when every stage has finished."""
    plan, session = _prepare(graph, clock, ground_truth, attach, keep_all_events)
    return await _execute(plan, session, timeout_s)


def run(graph: object, *, clock: SessionClock | str | None = None, ground_truth: Any = None,
        timeout_s: float | None = None, attach: Sequence[Attach] = (), keep_all_events: bool = False,
        progress: Progress = None) -> Session:
    """Run ``graph`` to the end and return its Session.

    Works in a plain script and inside a notebook cell whose event loop is already running (the graph
    then runs on the engine thread and only this cell waits). Ctrl-C stops the graph cleanly.
    ``progress``: a bar over the input and the turns so far (``vkit.progress``): None shows it in a
    notebook once the run takes more than a moment, True or a label shows it anywhere, False never.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if not wanted(progress):
            plan, session = _prepare(graph, clock, ground_truth, attach, keep_all_events)
            return asyncio.run(_execute(plan, session, timeout_s))
    return start(graph, clock=clock, ground_truth=ground_truth, attach=attach,
                 keep_all_events=keep_all_events).wait(timeout_s, progress=progress)


class _Engine:
    """One daemon thread with its own event loop; the notebook's loop is never touched."""

    _instance: _Engine | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vkit-engine", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _Engine:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = _Engine()
            return cls._instance


class Handle:
    """A graph running on the engine thread: ``stop()``, ``wait()``, ``done()``, ``session``."""

    def __init__(self, plan: GraphPlan, session: Session) -> None:
        self.session = session
        self.plan = plan
        self._engine = _Engine.get()
        self._task: asyncio.Task[Session] | None = None
        self._started = threading.Event()
        self._future: concurrent.futures.Future[Session] = asyncio.run_coroutine_threadsafe(
            self._main(plan, session), self._engine.loop)

    async def _main(self, plan: GraphPlan, session: Session) -> Session:
        self._task = asyncio.current_task()  # type: ignore[assignment]
        self._started.set()
        return await _execute(plan, session)

    def done(self) -> bool:
        return self._future.done()

    def stop(self, timeout_s: float = 10.0) -> Session:
        """Stop every stage, finalise what is attached (the recording), and return the session."""
        return self._stop("stopped", timeout_s)

    def _stop(self, reason: str, timeout_s: float = 10.0) -> Session:
        self._started.wait(timeout_s)
        if not self._future.done() and self._task is not None:
            self._engine.loop.call_soon_threadsafe(self._task.cancel, reason)
        try:
            self._future.result(timeout_s)
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            pass
        return self.session

    def wait(self, timeout_s: float | None = None, *, progress: Progress = None) -> Session:
        """Block until the graph ends; re-raises the first stage failure.

        Ctrl-C (a notebook's Interrupt) stops the graph and returns the session after one line on
        stderr saying what stopped; ``timeout_s`` stops it too and raises TimeoutError. ``progress``
        as in ``vkit.run``: by default a bar in a notebook while a run takes more than a moment.
        """
        bar = RunProgress.for_plan(self.session, self.plan, progress) if wanted(progress) and not self.done() else None
        try:
            return self._wait(timeout_s, bar)
        finally:
            if bar is not None:
                bar.close()

    def _wait(self, timeout_s: float | None, bar: RunProgress | None) -> Session:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while True:
                step = None if bar is None else _PROGRESS_TICK_S
                if deadline is not None:
                    step = max(0.0, min(step or timeout_s or 0.0, deadline - time.monotonic()))
                try:
                    return self._future.result(step)
                except concurrent.futures.TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
                    if bar is not None:
                        bar.tick()
        except concurrent.futures.CancelledError:
            return self.session
        except KeyboardInterrupt:
            self.stop()
            print(f"vkit: interrupted; {self.session.summary_line()}", file=sys.stderr)
            return self.session
        except concurrent.futures.TimeoutError:
            self._stop("timeout")
            raise TimeoutError(f"the graph did not finish within timeout_s {got(timeout_s)}") from None

    result = wait

    def __await__(self) -> Any:
        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"Handle({state}, {self.session!r})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return display.mimebundle(self, include=include, exclude=exclude)


def start(graph: object, *, clock: SessionClock | str | None = None, ground_truth: Any = None,
          attach: Sequence[Attach] = (), keep_all_events: bool = False) -> Handle:
    """Start ``graph`` on the engine thread and return a Handle at once."""
    plan, session = _prepare(graph, clock, ground_truth, attach, keep_all_events)
    return Handle(plan, session)
