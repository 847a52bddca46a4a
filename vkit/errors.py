"""The one exception hierarchy of vkit.

::

    VkitError
     +-- ConfigError (ValueError)          a parameter or a graph is wrong; raised before anything runs
     |    +-- GraphError                   the graph does not fit together (rates, channels, wiring)
     |    +-- MissingExtra (ImportError)   an optional dependency is not installed; names the extra
     +-- AudioInputError (ValueError)      audio that cannot be used: missing/corrupt file, NaN samples
     +-- StageError (RuntimeError)         a stage failed while running; names the stage, wraps the cause
     +-- ProtocolError                     the Realtime protocol was broken
     |    +-- LocalProtocolError           we misused it (our fault)
     |    +-- RemoteProtocolError          the peer sent something bad (its fault)
     +-- ConnectionLost (ConnectionError)  the peer went away mid-session
     +-- RecordingError (OSError)          a recording could not be written or read

Messages say what was wrong and end with the value received, e.g. ``(got 44100)``.
"""

from __future__ import annotations


class VkitError(Exception):
    """Base class of every error vkit raises on purpose."""


class ConfigError(VkitError, ValueError):
    """A parameter, a stage or a graph is configured wrongly."""


class GraphError(ConfigError):
    """Stages of a graph do not fit together."""


class MissingExtra(ConfigError, ImportError):
    """A feature needs a package of one of vkit's extras; the message gives the pip command."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class AudioInputError(VkitError, ValueError):
    """Audio that cannot be used: a missing or corrupt file, NaN samples, a wrong shape."""


class StageError(VkitError, RuntimeError):
    """A stage raised while the graph ran; ``stage`` names it and ``__cause__`` is the original."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        from vkit.redact import redact_text

        super().__init__(redact_text(f"stage {stage!r} failed: {type(cause).__name__}: {cause}"))
        self.stage = stage
        self.cause = cause


class ProtocolError(VkitError):
    """The Realtime protocol was broken."""


class LocalProtocolError(ProtocolError):
    """We misused the protocol (a bug on this side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something that breaks the protocol."""


class ConnectionLost(VkitError, ConnectionError):
    """The peer closed or dropped the connection while the session was active."""


class RecordingError(VkitError, OSError):
    """A session recording could not be written or read.

    Raised out of ``vkit.run`` when the recording failed while the graph ran (a full disk): the run
    stops at once, and ``session`` holds what it measured until then (its turns)."""

    session: object = None


def got(value: object) -> str:
    """Format the tail every error message ends with: ``(got 44100)``."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"(got {text})"
