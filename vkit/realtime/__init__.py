"""The OpenAI Realtime protocol: a sans-I/O core, the ``Realtime`` stage, and a local server.

``Realtime()`` with no URL starts the embedded ``LocalServer`` in-process, so everything runs offline.
"""

from __future__ import annotations

from typing import Any

from vkit.realtime.codec import decode_audio, decode_event, encode_audio, encode_event
from vkit.realtime.protocol import ClientProtocol, InvalidEvent, ServerProtocol
from vkit.realtime.tools import Tool, tool
from vkit.realtime.transcripts import conversation

__all__ = ["Realtime", "LocalServer", "ClientProtocol", "ServerProtocol", "InvalidEvent", "encode_event",
           "decode_event", "encode_audio", "decode_audio", "Tool", "tool", "conversation"]


def __getattr__(name: str) -> Any:
    if name == "Realtime":
        from vkit.realtime.stage import Realtime

        return Realtime
    if name == "LocalServer":
        from vkit.realtime.server import LocalServer

        return LocalServer
    raise AttributeError(f"module 'vkit.realtime' has no attribute {name!r}")
