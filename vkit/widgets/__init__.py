"""Notebook widgets (anywidget): the audio player, the latency inspector, the graph view, the VAD trace,
and the browser microphone. Outside a notebook they print as text. They need the ``notebook`` extra.

The player and the microphone are the browser models of ``sinks.Player`` and ``sources.BrowserMic``; they live
with their stage and are re-exported here."""

from vkit.extras import require

require("anywidget", extra="notebook", feature="vkit.widgets")  # before any widget module imports it

from vkit import display
from vkit.runtime import Handle
from vkit.sinks.browser_player import BrowserPlayer as Player
from vkit.sources.browser_mic import BrowserMic
from vkit.widgets.graph_view import GraphView
from vkit.widgets.inspector import LatencyInspector
from vkit.widgets.vad_trace import VadTrace

__all__ = ["Player", "LatencyInspector", "GraphView", "VadTrace", "BrowserMic"]


def _inspect_handle(handle: Handle) -> dict:
    """A running graph's handle displays as its live latency inspector."""
    return LatencyInspector(handle.session)._repr_mimebundle_()


display.register(Handle, _inspect_handle)
