"""Sinks that play: ``VirtualSpeaker`` (a modelled device, for scripts and tests) and ``Speaker``.

Both provide a playout tracker (``provides_playout``: what was really played, read by the stage the plan
links to them for barge-in truncation) and publish ``Playout`` events when sound starts, stops, or is flushed.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from vkit.devices import buffer_offset_ns, import_sounddevice
from vkit.frames import AudioFrame, Playout
from vkit.graph import Pipe
from vkit.playout import PlayoutModel
from vkit.units import ms_to_ns, ns_to_s, ns_to_whole_samples, samples_to_whole_ns


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
        self.provides_playout = stream
        self.prebuffer_ms = prebuffer_ms
        self.model: PlayoutModel | None = None

    @property
    def latency_ms(self) -> float:
        return self.prebuffer_ms

    def reset(self) -> None:
        """Forget the last run's playout: the next run starts from an empty device (the runtime resets
        every stage before a run)."""
        self.model = None

    async def run(self, ctx: Any) -> None:
        # the playout belongs to this run (``self.model`` shows the latest): a run started while the last
        # one still plays out, with the same sink, does not disturb it
        model: PlayoutModel | None = None
        watcher: asyncio.Task[None] | None = None
        try:
            async for item in ctx:
                if not isinstance(item, AudioFrame) or item.stream != self.stream:
                    continue
                now_ns = ctx.clock.now_ns()
                if model is None:
                    model = self.model = PlayoutModel(item.sample_rate_hz, self.prebuffer_ms)
                    self.tracker = _ModelTracker(model, ctx, self.stream, self)
                    ctx.provide_playout(self.tracker)
                self.on_frame(item)
                started_ns = model.add(item.start_sample, item.num_samples, now_ns)
                if started_ns is not None:
                    if watcher is not None:
                        watcher.cancel()
                    watcher = asyncio.ensure_future(self._announce(ctx, model, started_ns))
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

    async def _announce(self, ctx: Any, model: PlayoutModel, started_ns: int) -> None:
        """Publish 'started' when sound starts and 'stopped' when the buffer runs dry."""
        await ctx.clock.sleep_until(started_ns)
        ctx.publish(Playout(stream=self.stream, sample=model.played_sample(started_ns),
                            sample_rate_hz=model.sample_rate_hz, state="started", t_ns=started_ns))
        while (end_ns := model.end_ns()) is not None and end_ns > ctx.clock.now_ns():
            await ctx.clock.sleep_until(end_ns)
        end_ns = model.end_ns()
        if end_ns is not None:
            ctx.publish(Playout(stream=self.stream, sample=model.played_sample(end_ns),
                                sample_rate_hz=model.sample_rate_hz, state="stopped", t_ns=end_ns))


class DevicePlayback:
    """What a sound card's callback plays, and when it is heard, on the session clock.

    ``write`` queues frames (any thread); ``render`` fills one device buffer (the audio thread), given
    how far ahead of now its first sample reaches the DAC. Sound starts once the oldest queued audio
    has waited ``prebuffer_ms`` (the jitter buffer, as in ``PlayoutModel``) and stops when the queue
    runs dry inside a buffer; each start, stop and flush becomes a ``Playout`` event at its DAC time,
    handed to ``publish``. Positions are stream sample positions, so truncation uses what was really heard.
    """

    def __init__(self, sample_rate_hz: int, *, prebuffer_ms: float, now_ns: Callable[[], int],
                 publish: Callable[[Playout], None], stream: str = "output") -> None:
        self.sample_rate_hz = sample_rate_hz
        self.stream = stream
        self._prebuffer_ns = ms_to_ns(prebuffer_ms)
        self._now_ns = now_ns
        self._publish = publish
        self._lock = threading.Lock()
        self._queue: deque[tuple[int, np.ndarray, int]] = deque()  # (start sample, samples (n, ch), arrival ns)
        self._playing = False
        self._anchors: deque[tuple[int, int, int]] = deque(maxlen=64)  # (DAC ns, first sample, count) per buffer
        self._end_sample = 0  # one past the last sample sent to the device

    def write(self, frame: AudioFrame) -> None:
        with self._lock:
            self._queue.append((frame.start_sample, frame.samples.T, self._now_ns()))

    def render(self, out: np.ndarray, dac_offset_ns: int) -> None:
        """Fill ``out`` (num_frames, num_channels) with queued audio, silence where there is none."""
        now_ns = self._now_ns()
        dac_ns = now_ns + dac_offset_ns
        frames = out.shape[0]
        out.fill(0)
        events: list[Playout] = []
        with self._lock:
            if not self._playing and self._queue and now_ns - self._queue[0][2] >= self._prebuffer_ns:
                self._playing = True
                events.append(self._event("started", self._queue[0][0], dac_ns))
            filled, first = 0, None
            while self._playing and self._queue and filled < frames:
                start, block, arrived = self._queue[0]
                take = min(frames - filled, block.shape[0])
                out[filled : filled + take] = block[:take]
                first = start if first is None else first
                filled += take
                self._end_sample = start + take
                if take == block.shape[0]:
                    self._queue.popleft()
                else:
                    self._queue[0] = (start + take, block[take:], arrived)
            if first is not None:
                self._anchors.append((dac_ns, first, filled))
            if self._playing and filled < frames:  # ran dry: sound stops inside this buffer
                self._playing = False
                events.append(self._event("stopped", self._end_sample,
                                          dac_ns + samples_to_whole_ns(filled, self.sample_rate_hz)))
        for event in events:
            self._publish(event)

    def played_sample(self, now_ns: int) -> int:
        """One past the last sample heard by ``now_ns``: the device holds several buffers, so find the
        one at the DAC now."""
        with self._lock:
            anchors = list(self._anchors)
        for dac_ns, first, count in reversed(anchors):
            if dac_ns <= now_ns:
                return first + min(count, ns_to_whole_samples(now_ns - dac_ns, self.sample_rate_hz))
        return anchors[0][1] if anchors else 0

    def flush(self) -> None:
        """Barge-in: drop everything queued; what the device already holds still plays."""
        now_ns = self._now_ns()
        with self._lock:
            self._queue.clear()
            self._playing = False
        self._publish(self._event("flushed", self.played_sample(now_ns), now_ns))

    def pending_ns(self) -> int:
        """How long the queued audio will take to play (for draining at the end of the input)."""
        with self._lock:
            samples = sum(block.shape[0] for _, block, _ in self._queue)
        return samples_to_whole_ns(samples, self.sample_rate_hz) + (0 if self._playing else self._prebuffer_ns)

    def _event(self, state: str, sample: int, t_ns: int) -> Playout:
        return Playout(stream=self.stream, sample=sample, sample_rate_hz=self.sample_rate_hz, state=state,  # type: ignore[arg-type]
                       t_ns=t_ns)


class Speaker(Pipe):
    """Play ``stream`` on a system output device (sounddevice; optional extra ``vkit[devices]``).

    Sound is timed by PortAudio's DAC clock, so ``first_audio_played_ms`` is when the answer was heard
    and barge-in truncates at the sample really played. ``prebuffer_ms`` is the jitter buffer in
    front of the device; ``device_latency`` is PortAudio's own (``"low"``, ``"high"`` or seconds).
    """

    requires_real_clock = True  # PortAudio's DAC clock

    def __init__(self, *, stream: str = "output", device: int | str | None = None, prebuffer_ms: float = 60.0,
                 device_latency: float | str = "low") -> None:
        self.stream = stream
        self.provides_playout = stream
        self.device = device
        self.prebuffer_ms = prebuffer_ms
        self.device_latency = device_latency

    @property
    def latency_ms(self) -> float:
        return self.prebuffer_ms

    async def run(self, ctx: Any) -> None:
        sd = import_sounddevice()
        loop = asyncio.get_running_loop()
        playback: DevicePlayback | None = None
        output = None

        def publish(event: Playout) -> None:
            loop.call_soon_threadsafe(ctx.publish, event)

        try:
            async for item in ctx:
                if not isinstance(item, AudioFrame) or item.stream != self.stream:
                    continue
                if playback is None:
                    playback = DevicePlayback(item.sample_rate_hz, prebuffer_ms=self.prebuffer_ms,
                                              now_ns=ctx.clock.now_ns, publish=publish, stream=self.stream)
                    rate = item.sample_rate_hz

                    def callback(out: np.ndarray, frames: int, time_info: Any, status: Any,
                                 playback: DevicePlayback = playback, rate: int = rate) -> None:
                        playback.render(out, buffer_offset_ns(time_info, "output", frames / rate))

                    output = sd.OutputStream(samplerate=rate, channels=item.num_channels, dtype="float32",
                                             device=self.device, callback=callback, latency=self.device_latency)
                    ctx.provide_playout(playback)
                    output.start()
                playback.write(item)
            if playback is not None:  # the input ended: let the device play out what it holds
                await asyncio.sleep(ns_to_s(playback.pending_ns()) + 0.2)
        finally:
            if output is not None:
                output.stop()
                output.close()
