"""Sinks that keep or discard what reaches them: ``Memory`` (numpy) and ``Null``."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from vkit.errors import ConfigError, got
from vkit.frames import AudioFrame, Event, Item
from vkit.graph import Pipe


class Memory(Pipe):
    """Keep every frame and event; ``audio(stream)`` assembles a stream by sample position."""

    accepts = (AudioFrame, Event)

    def __init__(self) -> None:
        self.frames: dict[str, list[AudioFrame]] = defaultdict(list)
        self.events: list[Event] = []

    def process(self, item: Item) -> None:
        if isinstance(item, AudioFrame):
            self.frames[item.stream].append(item)
        else:
            self.events.append(item)

    @property
    def streams(self) -> list[str]:
        return list(self.frames)

    def sample_rate_hz(self, stream: str | None = None) -> int:
        return self._frames(stream)[0].sample_rate_hz

    def audio(self, stream: str | None = None) -> np.ndarray:
        """The stream as ``(num_channels, num_samples)`` from its first position; gaps are silence."""
        frames = self._frames(stream)
        start = frames[0].start_sample
        end = max(f.end_sample for f in frames)
        out = np.zeros((max(f.num_channels for f in frames), end - start), np.float32)
        for f in frames:
            out[:, f.start_sample - start : f.end_sample - start] = f.samples
        return out

    def _frames(self, stream: str | None) -> list[AudioFrame]:
        if stream is None:
            if len(self.frames) != 1:
                raise ConfigError(f"Memory holds several streams; name one with stream= {got(self.streams)}")
            stream = next(iter(self.frames))
        if not self.frames.get(stream):
            raise ConfigError(f"Memory received no audio on stream {stream!r} {got(self.streams)}")
        return self.frames[stream]

    def reset(self) -> None:
        self.frames.clear()
        self.events.clear()


class Null(Pipe):
    """Discard everything, counting it (the end of a benchmark or a tap)."""

    accepts = (AudioFrame, Event)

    def __init__(self) -> None:
        self.num_frames = 0
        self.num_events = 0

    def process(self, item: Item) -> None:
        if type(item) is AudioFrame:
            self.num_frames += 1
        else:
            self.num_events += 1
