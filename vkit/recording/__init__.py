"""Session recordings: write while running, load back, replay, inspect."""

from vkit.recording.load import LoadedSession, load_session
from vkit.recording.recorder import Recorder, scrub

__all__ = ["Recorder", "LoadedSession", "load_session", "scrub", "Replay"]


def __getattr__(name: str):  # noqa: ANN202 - lazy, avoids importing sources for plain loading
    if name == "Replay":
        from vkit.recording.replay import Replay

        return Replay
    raise AttributeError(name)
