"""Sound-card stages with a stand-in for PortAudio: what is played and captured, and when, on the session clock."""

from __future__ import annotations

import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

import vkit
from vkit import sinks, sources
from vkit.frames import AudioFrame, Marker, Playout
from vkit.sinks.speaker import DevicePlayback

DAC_DELAY_S = 0.030
ADC_DELAY_S = 0.005


class FakeStream:
    """PortAudio in miniature: its own thread calls the callback once per block at the real block rate,
    reporting ADC and DAC times on the monotonic clock, and keeps what was played."""

    def __init__(self, kind: str, *, samplerate: int, channels: int, dtype: str, callback, blocksize: int = 0,
                 device=None, latency=None, signal: np.ndarray | None = None) -> None:
        self.kind, self.rate, self.channels, self.callback = kind, samplerate, channels, callback
        self.blocksize = blocksize or samplerate // 100
        self.signal = signal
        self.played: list[np.ndarray] = []
        self.calls_ns: list[tuple[int, int]] = []  # monotonic time just before and just after each callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def close(self) -> None:
        pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _loop(self) -> None:
        block_s, position, deadline = self.blocksize / self.rate, 0, time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            info = SimpleNamespace(currentTime=now, outputBufferDacTime=now + DAC_DELAY_S,
                                   inputBufferAdcTime=now - block_s - ADC_DELAY_S)
            before = time.monotonic_ns()
            if self.kind == "output":
                out = np.zeros((self.blocksize, self.channels), np.float32)
                self.callback(out, self.blocksize, info, None)
                self.played.append(out)
            else:
                block = self.signal[position : position + self.blocksize, None].astype(np.float32)
                if block.shape[0] < self.blocksize:
                    return
                self.callback(block, self.blocksize, info, None)
                position += self.blocksize
            self.calls_ns.append((before, time.monotonic_ns()))
            deadline += block_s
            time.sleep(max(0.0, deadline - time.monotonic()))


@pytest.fixture
def fake_sounddevice(monkeypatch):
    streams: list[FakeStream] = []
    signal = np.sin(np.arange(16_000 * 5) / 7).astype(np.float32) * 0.5

    def make(kind):
        def open_stream(**kwargs):
            stream = FakeStream(kind, signal=signal, **kwargs)
            streams.append(stream)
            return stream
        return open_stream

    module = SimpleNamespace(OutputStream=make("output"), InputStream=make("input"),
                             check_input_settings=lambda **kwargs: None)
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return SimpleNamespace(streams=streams, signal=signal)


def test_speaker_plays_every_sample_and_reports_when_it_was_heard(fake_sounddevice):
    tone = sources.Tone(440, duration_ms=300, sample_rate_hz=24_000, pace="realtime", stream="output")
    session = vkit.run(tone | sinks.Speaker(prebuffer_ms=200))
    (device,) = fake_sounddevice.streams
    played = np.concatenate(device.played)[:, 0]
    memory = sinks.Memory()
    vkit.run(sources.Tone(440, duration_ms=300, sample_rate_hz=24_000) | memory)
    expected = memory.audio("input")[0]
    first = int(np.flatnonzero(played)[0] - np.flatnonzero(expected)[0])
    assert np.array_equal(played[first : first + 7200], expected)  # nothing lost or repeated
    assert not played[:first].any() and not played[first + 7200 :].any()
    states = [(p.state, p.sample) for p in session.events_of(Playout)]
    assert states == [("started", 0), ("stopped", 7200)]
    started, stopped = session.events_of(Playout)
    # the first frame is ready 20 ms in, waits 200 ms in the jitter buffer, then 30 ms to reach the DAC
    assert started.t_ns >= (20 + 200 + 30) * 1_000_000
    assert abs(stopped.t_ns - started.t_ns - 300_000_000) < 100_000_000  # 300 ms of sound, give or take jitter


def test_device_playback_times_starts_stops_and_flushes_by_the_dac_clock():
    now_ns, events = [0], []
    playback = DevicePlayback(1000, prebuffer_ms=20, now_ns=lambda: now_ns[0], publish=events.append)
    playback.write(AudioFrame.mono(np.arange(1, 101, dtype=np.float32), 1000, stream="output"))

    def render_at(ms: int) -> np.ndarray:
        now_ns[0] = ms * 1_000_000
        out = np.full((10, 1), 9.0, np.float32)
        playback.render(out, dac_offset_ns=30_000_000)
        return out[:, 0]

    assert not render_at(10).any() and events == []  # still in the jitter buffer
    assert render_at(20).tolist() == list(range(1, 11))
    assert [(e.state, e.sample, e.t_ns) for e in events] == [("started", 0, 50_000_000)]
    for ms in (30, 40, 50, 60):
        render_at(ms)
    assert playback.played_sample(49_000_000) == 0  # the device holds four buffers: nothing heard yet
    assert playback.played_sample(55_000_000) == 5 and playback.played_sample(75_000_000) == 25
    now_ns[0] = 60_000_000
    playback.flush()  # barge-in: what was heard by now, not what was sent to the device
    assert (events[-1].state, events[-1].sample) == ("flushed", 10)

    playback.write(AudioFrame.mono(np.ones(15, np.float32), 1000, start_sample=100, stream="output"))
    assert not render_at(70).any()  # written at 60 ms: in the jitter buffer until 80 ms
    assert render_at(80).sum() == 10 and render_at(90).sum() == 5  # runs dry half-way through a buffer
    assert [(e.state, e.sample, e.t_ns) for e in events[-2:]] == [("started", 100, 110_000_000),
                                                                  ("stopped", 115, 125_000_000)]


def test_microphone_stamps_frames_with_the_adc_time_and_counts_every_sample(fake_sounddevice):
    memory = sinks.Memory()
    handle = (sources.Microphone(sample_rate_hz=16_000, frame_ms=20) | memory).start()
    deadline = time.monotonic() + 10
    while len(memory.frames.get("input", [])) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    session = handle.stop()
    (device,) = fake_sounddevice.streams
    frames = memory.frames["input"][:10]
    audio = np.concatenate([f.samples[0] for f in frames])
    assert np.array_equal(audio, fake_sounddevice.signal[: audio.size])
    assert [f.start_sample for f in frames] == [320 * k for k in range(10)]
    origin_ns = session.clock.origin_ns
    for frame, (before, after) in zip(frames, device.calls_ns, strict=False):
        delay_ns = int((0.020 + ADC_DELAY_S) * 1e9)  # the block's length plus the converter's delay
        assert before - origin_ns - delay_ns - 1_000_000 <= frame.t_ns <= after - origin_ns - delay_ns + 1_000_000
    assert all(m.name != "input_overflow" for m in session.events_of(Marker))
