"""The runtime: fused execution, events, errors, backpressure, pacing, lifecycle, notebooks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import soundfile as sf

import vkit
from vkit import sinks, sources
from vkit.errors import StageError
from vkit.frames import AudioFrame, Marker, SpeechStarted


class Holds:
    """Keeps every frame until flush: tests end-of-stream ordering."""

    def __init__(self) -> None:
        self.held: list[AudioFrame] = []
        self.closed = False

    def process(self, frame):
        self.held.append(frame)

    def flush(self):
        held, self.held = self.held, []
        return held

    def close(self):
        self.closed = True


class Announces:
    """Adds an event every 10 frames (a VAD-like stage)."""

    def __init__(self) -> None:
        self.count = 0

    def process(self, frame):
        self.count += 1
        if self.count % 10 == 0:
            return [frame, SpeechStarted(sample=frame.start_sample, sample_rate_hz=frame.sample_rate_hz)]
        return frame


class AsyncPass:
    async def run(self, ctx):
        async for item in ctx:
            await ctx.emit(item)


class Slow:
    """An async stage that reads slowly."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.num_seen = 0

    async def run(self, ctx):
        async for _ in ctx:
            self.num_seen += 1
            await asyncio.sleep(self.delay_s)


class Forever:
    """A source that never ends until cancelled."""

    format = vkit.StreamFormat(16_000, 1)

    def __init__(self) -> None:
        self.cancelled = False
        self.ended = False

    async def run(self, ctx):
        position = 0
        try:
            while True:
                await ctx.emit(AudioFrame(samples=np.zeros((1, 320), np.float32), sample_rate_hz=16_000,
                                          start_sample=position, t_ns=ctx.clock.now_ns()))
                position += 320
                await ctx.clock.sleep(0.02)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.ended = True


def test_frames_flow_through_sync_and_async_stages_unchanged(sine_16k):
    mem = sinks.Memory()
    vkit.run(sources.Array(sine_16k, 16_000) | AsyncPass() | vkit.stage(lambda f: f) | AsyncPass() | mem)
    np.testing.assert_array_equal(mem.audio()[0], sine_16k)
    positions = [f.start_sample for f in mem.frames["input"]]
    assert positions == list(range(0, 16_000, 320))


def test_flush_releases_held_frames_through_later_stages_then_close_runs(sine_16k):
    holder, mem = Holds(), sinks.Memory()
    vkit.run(sources.Array(sine_16k, 16_000) | holder | vkit.stage(lambda f: f.replace(samples=f.samples * 2)) | mem)
    np.testing.assert_allclose(mem.audio()[0], sine_16k * 2)
    assert holder.closed


def test_new_events_are_stamped_published_and_bypass_stages_that_do_not_take_them(sine_16k):
    mem = sinks.Memory()
    only_audio = []
    session = vkit.run(sources.Array(sine_16k, 16_000) | Announces()
                       | vkit.stage(lambda f: only_audio.append(type(f)) or f) | mem)
    started = session.events_of(SpeechStarted)
    assert len(started) == 5 and all(e.stage == "Announces" for e in started)
    assert [e.sample for e in mem.events if isinstance(e, SpeechStarted)] == [e.sample for e in started]
    assert set(only_audio) == {AudioFrame}
    starts = [e for e in session.events if isinstance(e, Marker) and e.name == "stream_start"]
    assert starts[0].data == {"stream": "input", "start_sample": 0, "sample_rate_hz": 16_000, "num_channels": 1}


def test_a_failing_sync_stage_is_named_and_stops_an_endless_source():
    source = Forever()

    def broken(frame):
        if frame.start_sample >= 3200:
            raise ValueError("model exploded")
        return frame

    with pytest.raises(StageError, match="stage 'broken' failed: ValueError: model exploded") as info:
        vkit.run(source | vkit.stage(broken) | sinks.Null(), clock="virtual")
    assert info.value.stage == "broken" and isinstance(info.value.__cause__, ValueError)
    assert source.ended


def test_a_failing_async_stage_is_named_and_cancels_the_others():
    class Explodes:
        async def run(self, ctx):
            for _ in range(5):
                await ctx.receive()
            raise ConnectionError("peer vanished")

    source = Forever()
    with pytest.raises(StageError, match="stage 'Explodes' failed: ConnectionError: peer vanished"):
        vkit.run(vkit.chain(source, Explodes(), sinks.Null()), clock="virtual")
    assert source.cancelled


def test_drop_oldest_keeps_memory_bounded_and_counts_drops():
    slow = Slow(0.05)
    graph = sources.Silence(duration_ms=20_000, sample_rate_hz=16_000) | vkit.buffer(8, "drop_oldest") | slow
    session = vkit.run(graph)
    channel = session.stages["Slow"]["channel"]
    assert channel["max_depth"] <= 8
    assert channel["num_dropped"] > 900
    assert channel["num_put"] == 1000 and slow.num_seen == channel["num_put"] - channel["num_dropped"]


def test_block_policy_never_drops_and_stays_bounded():
    slow = Slow(0.0005)
    session = vkit.run(sources.Silence(duration_ms=4_000, sample_rate_hz=16_000) | vkit.buffer(4) | slow)
    channel = session.stages["Slow"]["channel"]
    assert channel["num_dropped"] == 0 and channel["max_depth"] <= 4 and slow.num_seen == 200


def test_realtime_pacing_on_the_virtual_clock_is_exact_and_instant(sine_16k):
    mem = sinks.Memory()
    session = vkit.run(sources.Array(sine_16k, 16_000, pace="realtime") | mem, clock="virtual")
    assert [f.t_ns for f in mem.frames["input"]] == [i * 20_000_000 for i in range(50)]
    assert session.clock.now_ns() == 1_000_000_000


def test_realtime_pacing_on_the_system_clock_takes_real_time(sine_16k):
    started = time.monotonic()
    vkit.run(sources.Array(sine_16k[:4000], 16_000, pace="realtime") | sinks.Null())
    assert time.monotonic() - started >= 0.24


def test_merge_interleaves_two_sources_and_mix_sums_them(sine_16k):
    merged, mixed = sinks.Memory(), sinks.Memory()
    a = sources.Array(sine_16k, 16_000, stream="a")
    b = sources.Array(sine_16k * 0.5, 16_000, stream="b")
    vkit.run(vkit.merge(a, b) | merged)
    assert sorted(merged.streams) == ["a", "b"]
    vkit.run(vkit.mix(a, b, stream="ab") | mixed)
    np.testing.assert_allclose(mixed.audio("ab")[0], sine_16k * 1.5, atol=1e-6)


def test_run_inside_a_running_event_loop_uses_the_engine_thread(sine_16k):
    async def cell():
        mem = sinks.Memory()
        session = vkit.run(sources.Array(sine_16k, 16_000) | mem)
        awaited = await vkit.arun(sources.Array(sine_16k, 16_000) | sinks.Null())
        return session, mem, awaited

    session, mem, awaited = asyncio.run(cell())
    assert session.status == "complete" and awaited.status == "complete"
    np.testing.assert_array_equal(mem.audio()[0], sine_16k)


def test_start_returns_at_once_and_stop_cancels_cleanly():
    source = Forever()
    holder = Holds()
    handle = vkit.chain(source, holder).start()
    assert not handle.done()
    time.sleep(0.2)
    session = handle.stop()
    assert handle.done() and source.cancelled and holder.closed
    assert session.status == "stopped"
    assert session.stages["Holds"]["num_items"] > 0


def test_wait_reraises_the_stage_error():
    handle = (Forever() | vkit.stage(lambda f: 1 / 0) | sinks.Null()).start()
    with pytest.raises(StageError, match="ZeroDivisionError"):
        handle.wait(10)


def test_ctrl_c_in_a_script_stops_the_graph_and_finalises_files(tmp_path):
    out = tmp_path / "out.wav"
    script = textwrap.dedent(f"""
        import vkit
        from vkit import sinks, sources
        graph = sources.Noise(duration_ms=60_000, sample_rate_hz=16_000, pace="realtime") | sinks.Wav({str(out)!r})
        print("running", flush=True)
        try:
            vkit.run(graph)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=30)
    assert "interrupted" in output
    info = sf.info(str(out))
    assert info.samplerate == 16_000 and 0 < info.frames < 60 * 16_000


def test_no_engine_output_reaches_stdout(sine_16k, capfd):
    vkit.run(sources.Array(sine_16k, 16_000) | Announces() | sinks.Null())
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a POSIX process")
def test_stage_stats_count_items_and_time(sine_16k):
    session = vkit.run(sources.Array(sine_16k, 16_000) | vkit.stage(lambda f: f) | AsyncPass() | sinks.Null())
    stages = session.stages
    assert stages["<lambda>"]["num_items"] == 50 and len(stages["<lambda>"]["processing_ns"]) == 50
    assert stages["AsyncPass"]["num_items"] == 50 and len(stages["AsyncPass"]["queue_wait_ns"]) == 50
    assert stages["Array"]["num_items"] == 50


def test_stage_stats_keep_the_newest_times_and_count_every_item():
    frames = 3 * 4096 + 123  # past two trims of the time log
    session = vkit.run(sources.Array(np.zeros(frames * 8, np.float32), 8_000, frame_ms=1) | vkit.stage(lambda f: f)
                       | sinks.Null())
    stage = session.stages["<lambda>"]
    assert stage["num_items"] == frames and len(stage["processing_ns"]) == 4096 and stage["processing_ns"].min() > 0


def test_a_run_asked_for_progress_shows_input_seconds_and_turns_as_text_outside_a_notebook(capfd):
    from vkit.data import sample_path
    from vkit.filters import VAD

    graph = sources.File(sample_path("two_turns.wav"), pace="realtime") | VAD("energy") | sinks.Null()
    session = vkit.run(graph, clock="virtual", progress="replay")
    err = capfd.readouterr().err.replace("\r", "\n").strip().splitlines()
    assert session.status == "complete"
    duration_s = sf.info(str(sample_path("two_turns.wav"))).duration
    assert err[-1].startswith("replay: 100%|") and (
        f"{duration_s:.1f}/{duration_s:.1f} s input, {len(session.turns)} turn(s), 0 answered [") in err[-1]
    handle = (sources.Noise(duration_ms=60_000, sample_rate_hz=16_000, pace="realtime") | sinks.Null()).start()
    with pytest.raises(TimeoutError):
        handle.wait(0.6, progress=True)  # the bar ticks while waiting, and ends at the stop
    err = capfd.readouterr().err.replace("\r", "\n").strip().splitlines()
    assert err[-1].startswith("vkit run:") and "/60.0 s input, 0 turn(s), 0 answered, timeout" in err[-1]
    vkit.run(sources.Silence(duration_ms=500, sample_rate_hz=8000) | sinks.Null())  # by default: no bar in a script
    assert capfd.readouterr().err == ""
