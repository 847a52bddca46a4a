"""Progress of a run someone waits on: seconds of input the sources have produced out of their length,
and the turns so far. A widget bar in a notebook, a text bar on stderr elsewhere (``tqdm.auto``).

Shown by ``vkit.run(graph)`` and ``handle.wait()``: by default only inside a Jupyter kernel, and only
once the run has lasted ``delay_s``; ``progress=True`` (or a label) shows it anywhere at once, ``False``
never. The bar is made and updated on the waiting thread, so it lands in the cell that waits.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["RunProgress", "in_notebook", "wanted"]

Progress = bool | str | None


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm.auto draws a widget)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def wanted(progress: Progress) -> bool:
    """Whether ``progress`` asks for a bar: None means "in a notebook"."""
    return in_notebook() if progress is None else progress is not False and progress != ""


class RunProgress:
    """A bar over the input of a running session; ``tick()`` a few times a second, ``close()`` at the end.

    ``sources``: (stats name, frame_ms, total_s or None) of each source; the input position is the
    longest source's frames so far times its frame length.
    """

    def __init__(self, session: Any, sources: list[tuple[str, float | None, float | None]],
                 progress: Progress = None) -> None:
        self.session = session
        self.sources = sources
        self.label = progress if isinstance(progress, str) else "vkit run"
        self.delay_s = 0.0 if progress is not None else 1.5  # asked for: at once; by default: long runs only
        self._started = time.monotonic()
        self._bar: Any = None

    @classmethod
    def for_plan(cls, session: Any, plan: Any, progress: Progress = None) -> RunProgress:
        sources = []
        for node in plan.stages():
            if node.kind != "source":
                continue
            obj = node.obj
            total = obj.total_samples() if callable(getattr(obj, "total_samples", None)) else None
            rate = getattr(getattr(obj, "format", None), "sample_rate_hz", None)
            total_s = total / rate if total is not None and rate else None
            sources.append((node.name, getattr(obj, "frame_ms", None), total_s))
        return cls(session, sources, progress)

    def position_s(self) -> float | None:
        """Seconds of input produced so far (None when no source says how long its frames are)."""
        stages = self.session.stages
        positions = [stages[name]["num_items"] * frame_ms / 1000 for name, frame_ms, _ in self.sources
                     if frame_ms and name in stages]
        if not positions:
            return None
        total = self.total_s()
        return min(max(positions), total) if total is not None else max(positions)

    def total_s(self) -> float | None:
        totals = [t for _, _, t in self.sources if t is not None]
        return max(totals) if totals else None

    def _postfix(self) -> str:
        turns = self.session.turns
        answered = sum(1 for t in turns if t.first_audio_received_ms is not None)
        status = self.session.status
        return f"{len(turns)} turn(s), {answered} answered" + ("" if status in ("running", "complete") else f", {status}")

    def tick(self) -> None:
        """Update the bar (made on the first tick after ``delay_s``)."""
        if self._bar is None:
            if time.monotonic() - self._started < self.delay_s:
                return
            self._bar = self._make_bar()
        position = self.position_s()
        if position is not None:
            self._bar.n = round(position, 1)
        self._bar.set_postfix_str(self._postfix(), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """The final state, then leave the bar in place (a run that ended within ``delay_s`` shows none)."""
        self.tick()
        if self._bar is not None:
            self._bar.close()

    def _make_bar(self) -> Any:
        from tqdm.auto import tqdm

        total = self.total_s()
        if total is None:
            form = "{desc}{postfix} [{elapsed}]"  # tqdm puts ", " before the postfix
        else:
            form = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s input{postfix} [{elapsed}]"
        return tqdm(total=None if total is None else round(total, 1), desc=self.label, bar_format=form,
                    leave=True, dynamic_ncols=True, file=sys.stderr)
