"""Keep a widget current while its session runs: call its refresh a few times a second on a daemon thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def follow_session(session: Any, refresh: Callable[[], object], refresh_hz: float, name: str) -> threading.Event:
    """Call ``refresh`` every ``1 / refresh_hz`` s until the session stops running (then once more).

    Returns the event that stops it early (set it when the widget closes). A session that is not
    running is not followed."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(1.0 / refresh_hz):
            refresh()
            if getattr(session, "status", "running") != "running":
                refresh()  # what arrived between the last refresh and the end
                return

    if getattr(session, "status", "complete") == "running":
        threading.Thread(target=loop, name=name, daemon=True).start()
    return stop
