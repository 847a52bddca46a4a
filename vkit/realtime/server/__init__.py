"""The embedded local Realtime server (``vkit serve``)."""

from vkit.realtime.server.app import LocalServer
from vkit.realtime.server.latency import PROFILES, DelayModel
from vkit.realtime.server.responders import CascadeResponder, EchoResponder, Reply, ScriptedResponder

__all__ = ["LocalServer", "DelayModel", "PROFILES", "EchoResponder", "ScriptedResponder", "CascadeResponder", "Reply"]
