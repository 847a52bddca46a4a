"""Where audio comes from: files, arrays, generators, devices, the browser and recorded sessions."""

from __future__ import annotations

from typing import Any

from vkit.sources.array import Array, Noise, Silence, Tone
from vkit.sources.base import PacedSource
from vkit.sources.file import File
from vkit.sources.microphone import Microphone
from vkit.sources.replay import Replay

__all__ = ["File", "Array", "Tone", "Noise", "Silence", "Microphone", "Replay", "BrowserMic", "PacedSource"]


def __getattr__(name: str) -> Any:
    if name == "BrowserMic":
        from vkit.sources.browser_mic import BrowserMic

        return BrowserMic
    raise AttributeError(f"module 'vkit.sources' has no attribute {name!r}")
