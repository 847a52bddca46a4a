"""The embedded local Realtime server (``vkit serve``)."""

from vkit.realtime.server.app import LocalServer
from vkit.realtime.server.latency import PROFILES, DelayModel
from vkit.realtime.server.options import ResponseRecord, ServerOptions
from vkit.realtime.server.responders import (
    CascadeResponder,
    EchoResponder,
    FunctionCall,
    Recogniser,
    Reply,
    ScriptedResponder,
    ToolRule,
    ToolsResponder,
    Turn,
)
from vkit.realtime.server.session import ServerSession

__all__ = ["LocalServer", "DelayModel", "PROFILES", "EchoResponder", "ScriptedResponder", "CascadeResponder",
           "ToolsResponder", "ToolRule", "FunctionCall", "Recogniser", "Reply", "Turn", "ServerSession",
           "ServerOptions", "ResponseRecord"]
