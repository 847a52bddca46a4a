"""vkit: a research toolkit for real-time voice AI latency.

Wire sources, filters, a Realtime WebSocket stage and sinks into a graph with ``|``; run it with
``vkit.run(graph)`` (scripts and notebooks), ``await vkit.arun(graph)`` or ``graph.start()``; every
session can be recorded and loaded back for analysis; ``vkit.sweep`` and ``vkit.batch`` run one graph per
(input, parameter set) on this process, a process pool or Dask.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from vkit.clock import SessionClock, VirtualClock
from vkit.errors import (
    AudioInputError,
    ConfigError,
    ConnectionLost,
    GraphError,
    LocalProtocolError,
    MissingExtra,
    ProtocolError,
    RecordingError,
    RemoteProtocolError,
    StageError,
    VkitError,
)
from vkit.frames import AudioFrame, Event, Marker, Playout, ProtocolEvent, SpeechStarted, SpeechStopped, VadScore
from vkit.graph import Chain, Graph, buffer, chain, merge, mix, stage, tee
from vkit.launch import arun, run, start
from vkit.plan import GraphPlan, GraphWarning
from vkit.recording import load_session
from vkit.runtime import Handle, StageContext
from vkit.scale import batch, sweep
from vkit.session import Session, SessionRecord
from vkit.stage import StreamFormat

try:
    __version__ = version("vkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

logging.getLogger("vkit").addHandler(logging.NullHandler())

if "ipykernel" in sys.modules:  # in a notebook, a Handle displays as its live inspector (vkit.widgets)
    try:
        import vkit.widgets  # noqa: F401 - registers the notebook reprs
    except ImportError:  # the notebook extra is not installed: handles show as text
        pass

__all__ = [
    "__version__",
    "run", "arun", "start", "sweep", "batch", "Handle", "Session", "SessionRecord", "StageContext", "load_session",
    "Graph", "Chain", "chain", "tee", "merge", "mix", "buffer", "stage", "StreamFormat", "GraphPlan", "GraphWarning",
    "AudioFrame", "Event", "SpeechStarted", "SpeechStopped", "VadScore", "Marker", "ProtocolEvent", "Playout",
    "SessionClock", "VirtualClock",
    "VkitError", "ConfigError", "GraphError", "AudioInputError", "StageError", "ProtocolError",
    "LocalProtocolError", "RemoteProtocolError", "ConnectionLost", "RecordingError", "MissingExtra",
    "sources", "filters", "sinks", "realtime", "enable_logging",
]


def enable_logging(level: str = "INFO", to: str = "stderr") -> None:
    """Show vkit's log records on stderr or append them to a file path (never from library code)."""
    handler: logging.Handler = logging.StreamHandler() if to == "stderr" else logging.FileHandler(to)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("vkit")
    logger.addHandler(handler)
    logger.setLevel(level)


def __getattr__(name: str) -> Any:
    if name in ("sources", "filters", "sinks", "realtime", "widgets", "plots", "evaluation", "latency"):
        import importlib

        module = importlib.import_module(f"vkit.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'vkit' has no attribute {name!r}")
