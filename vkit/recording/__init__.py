"""Session recordings: write while running, load back, inspect (``sources.Replay`` feeds one back)."""

from vkit.recording.load import LoadedSession, load_session
from vkit.recording.recorder import Recorder, scrub

__all__ = ["Recorder", "LoadedSession", "load_session", "scrub"]
