"""What a session keeps of its audio and items: the uncommitted input buffer and the conversation, both as int16
PCM (half the memory of float32), the conversation's audio within ``max_retained_audio_s``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vkit.realtime.codec import AUDIO_FORMATS

__all__ = ["StoredItem", "InputBuffer", "Conversation"]


@dataclass
class StoredItem:
    """One item as the server keeps it: its wire form, and its audio apart (None: none, or forgotten)."""

    data: dict[str, Any]
    audio: np.ndarray | None = None  # int16 PCM at ``audio_format``'s rate
    audio_format: str = "pcm16"
    transcript: str = ""


@dataclass
class InputBuffer:
    """The input audio appended since the last commit or clear, on the timeline of all appended audio."""

    chunks: list[np.ndarray] = field(default_factory=list)  # int16 PCM
    num_samples: int = 0
    start_sample: int = 0  # position of the buffer's first sample on the appended-audio timeline

    def append(self, pcm: np.ndarray) -> None:
        self.chunks.append(pcm)
        self.num_samples += pcm.size

    def take(self) -> np.ndarray:
        """Empty the buffer; return what it held."""
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        self.start_sample += self.num_samples
        self.chunks, self.num_samples = [], 0
        return audio

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.num_samples


class Conversation:
    """The conversation's items (``items`` by id, in ``order``), and the ``out_of_band`` items a response was
    given as its ``input`` (answered, never in the conversation). Of the conversation's audio, at most
    ``max_retained_audio_s`` is kept (None: all), the oldest items' dropped first."""

    def __init__(self, max_retained_audio_s: float | None) -> None:
        self.max_retained_audio_s = max_retained_audio_s
        self.items: dict[str, StoredItem] = {}
        self.order: list[str] = []
        self.out_of_band: dict[str, StoredItem] = {}

    def add(self, stored: StoredItem, previous: str | None = None) -> str | None:
        """Put an item in the conversation after ``previous`` (default: last); return its predecessor."""
        item_id = stored.data["id"]
        index = self.order.index(previous) + 1 if previous in self.items else len(self.order)
        before = self.order[index - 1] if index > 0 else None
        self.order.insert(index, item_id)
        self.items[item_id] = stored
        self.forget_old_audio()
        return before

    def lookup(self, item_id: str) -> StoredItem | None:
        """A conversation item, else an out-of-band one."""
        return self.items.get(item_id) or self.out_of_band.get(item_id)

    def forget_old_audio(self) -> None:
        """Keep at most ``max_retained_audio_s`` of conversation audio, dropping the oldest items' first."""
        budget_s = self.max_retained_audio_s
        if budget_s is None:
            return
        for item_id in reversed(self.order):
            stored = self.items[item_id]
            if stored.audio is None:
                continue
            seconds = stored.audio.size / AUDIO_FORMATS[stored.audio_format][0]
            if budget_s >= seconds:
                budget_s -= seconds
            else:
                stored.audio, budget_s = None, 0.0
