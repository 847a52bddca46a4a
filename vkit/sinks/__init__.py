"""Where audio goes: files, memory, nowhere, a (virtual) speaker, the notebook player."""

from __future__ import annotations

from typing import Any

from vkit.sinks.file import Wav
from vkit.sinks.memory import Memory, Null
from vkit.sinks.speaker import Speaker, VirtualSpeaker

__all__ = ["Wav", "Memory", "Null", "Speaker", "VirtualSpeaker", "Player"]


def __getattr__(name: str) -> Any:
    if name == "Player":
        from vkit.sinks.player import Player

        return Player
    raise AttributeError(f"module 'vkit.sinks' has no attribute {name!r}")
