"""``vkit.run``, ``vkit.arun`` and ``vkit.start``: the runtime, with what attaches from above.

The runtime knows stages and the plan only. Recording a session (``record=path``) attaches a
``Recorder`` to the session as a subscriber before the first stage runs; it writes while the graph
runs and finishes itself (turns.csv, the final status) when the session ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vkit import runtime
from vkit.clock import SessionClock
from vkit.graph import set_runner
from vkit.recording.recorder import Recorder
from vkit.runtime import Attach, Handle
from vkit.session import Session

__all__ = ["run", "arun", "start"]


def _attachments(record: str | Path | None, overwrite: bool, attach: Sequence[Attach]) -> list[Attach]:
    hooks = list(attach)
    if record is not None:
        hooks.append(lambda session: Recorder.attach(session, record, overwrite=overwrite))
    return hooks


def run(graph: object, *, record: str | Path | None = None, overwrite: bool = False, clock: SessionClock | str | None = None,
        ground_truth: Any = None, timeout_s: float | None = None, attach: Sequence[Attach] = (),
        keep_all_events: bool = False, progress: bool | str | None = None) -> Session:
    """Run ``graph`` to the end and return its Session (a script, or a notebook cell).

    ``record``: a folder to record the session into while it runs (an existing recording there is
    refused unless ``overwrite=True``); ``clock``: "system" (default),
    "virtual" (deterministic and instant where nothing waits on real time) or a SessionClock;
    ``ground_truth``: labelled speech segments (a segments CSV path or (start_ms, end_ms) pairs) that
    anchor each turn's end of speech; ``timeout_s``: stop and raise TimeoutError after this long;
    ``keep_all_events``: keep every event in ``session.events`` (by default the per-chunk kinds keep
    their newest 2000, so memory stays bounded however long the session; the recording has them all);
    ``progress``: a bar over the input and the turns so far, by default in a notebook once the run takes
    more than a moment (a widget there; True or a label: a text bar on stderr anywhere; False: never).
    """
    return runtime.run(graph, clock=clock, ground_truth=ground_truth, timeout_s=timeout_s,
                       attach=_attachments(record, overwrite, attach), keep_all_events=keep_all_events,
                       progress=progress)


async def arun(graph: object, *, record: str | Path | None = None, overwrite: bool = False, clock: SessionClock | str | None = None,
               ground_truth: Any = None, timeout_s: float | None = None, attach: Sequence[Attach] = (),
        keep_all_events: bool = False) -> Session:
    """``await vkit.arun(graph)``: ``run`` on the caller's event loop."""
    return await runtime.arun(graph, clock=clock, ground_truth=ground_truth, timeout_s=timeout_s,
                              attach=_attachments(record, overwrite, attach), keep_all_events=keep_all_events)


def start(graph: object, *, record: str | Path | None = None, overwrite: bool = False, clock: SessionClock | str | None = None,
          ground_truth: Any = None, attach: Sequence[Attach] = (),
          keep_all_events: bool = False) -> Handle:
    """Start ``graph`` on the engine thread and return a Handle at once (``stop()``, ``wait()``)."""
    return runtime.start(graph, clock=clock, ground_truth=ground_truth, attach=_attachments(record, overwrite, attach), keep_all_events=keep_all_events)


class _Runner:
    run = staticmethod(run)
    start = staticmethod(start)


set_runner(_Runner())
