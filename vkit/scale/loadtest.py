"""``vkit loadtest``: N simulated callers, each a real-time Realtime graph, against one endpoint.

Callers start ``ramp_s / N`` apart on the engine thread's loop and each replays speech at real-time pace
for ``duration_s``; their turn tables are merged (a ``caller`` column) and summarised. Without a URL the
embedded local server is started once, on its own thread, with its event-loop lag probe on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vkit.data import sample_path
from vkit.errors import ConfigError, got

__all__ = ["LoadTestResult", "loadtest"]

log = logging.getLogger(__name__)

SPEECH = sample_path("two_turns.wav")


@dataclass
class LoadTestResult:
    """``turns``: every caller's turns (``caller`` column); ``callers``: one row per caller (turns, error);
    ``voice_to_voice_ms``: p50/p90/p99 over all turns; ``server_lag_ms``: the local server's loop lag."""

    turns: Any
    callers: Any
    voice_to_voice_ms: dict[str, float]
    server_lag_ms: dict[str, float] | None

    def to_text(self) -> str:
        lines = [f"{len(self.callers)} callers, {len(self.turns)} turns, "
                 f"{int((self.callers['error'].notna()).sum())} callers with an error"]
        lines.append("voice-to-voice ms: " + ", ".join(f"{k} {v:.1f}" for k, v in self.voice_to_voice_ms.items()))
        if self.server_lag_ms is not None:
            lines.append("server event-loop lag ms: " + ", ".join(f"{k} {v:.2f}" for k, v in self.server_lag_ms.items()))
        lines.append(self.callers.to_string(index=False))
        return "\n".join(lines)


def _percentiles(values: list[float], names: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    return {f"p{p}": float(np.percentile(values, p)) for p in names} if values else {}


def loadtest(url: str | None = None, *, num_callers: int = 10, ramp_s: float = 1.0, duration_s: float = 10.0,
             speech: str | Path = SPEECH, response_delay_ms: str | float = 0) -> LoadTestResult:
    """Run ``num_callers`` concurrent real-time callers against ``url`` (default: the embedded server)."""
    import pandas as pd

    from vkit import sinks
    from vkit.realtime import LocalServer, Realtime
    from vkit.runtime import start
    from vkit.sources import File

    if num_callers < 1 or duration_s <= 0 or ramp_s < 0:
        raise ConfigError(f"need num_callers >= 1, duration_s > 0, ramp_s >= 0 {got((num_callers, ramp_s, duration_s))}")
    server = None
    if url is None:
        local = LocalServer(measure_lag=True, max_sessions=num_callers + 10, output_pace=1.0,
                            response_delay_ms=response_delay_ms)
        server = local.run_in_thread()
        url = server.url
    handles = []
    try:
        started = time.monotonic()
        for index in range(num_callers):
            time.sleep(max(0.0, started + index * ramp_s / num_callers - time.monotonic()))
            graph = File(speech, pace="realtime") | Realtime(url) | sinks.VirtualSpeaker(prebuffer_ms=60)
            handles.append((index, time.monotonic(), start(graph)))
        rows, callers = [], []
        for index, began, handle in handles:
            error = None
            try:
                handle.wait(max(0.1, began + duration_s - time.monotonic()))
            except TimeoutError:
                pass  # the caller's time is up: stopped cleanly, its turns so far count
            except Exception as exc:  # noqa: BLE001 - one caller's failure is its row, not the test's end
                error = f"{type(exc).__name__}: {exc}"
            session = handle.session
            turns = session.turns.rows()
            rows += [{"caller": index, **turn} for turn in turns]
            heard = [t["voice_to_voice_ms"] for t in turns if t["voice_to_voice_ms"] is not None]
            callers.append({"caller": index, "num_turns": len(turns), "num_answered": len(heard),
                            "voice_to_voice_p50_ms": float(np.median(heard)) if heard else None, "error": error})
    finally:
        for _, _, handle in handles:
            if not handle.done():
                handle.stop()
        lag = None
        if server is not None:
            lag = _percentiles(list(server.server.lag_ms))
            lag["max"] = max(server.server.lag_ms, default=0.0)
            try:
                server.stop()
            except TimeoutError:  # an overloaded server may outlive its 10 s to close: a daemon thread
                log.warning("the local server did not close within 10 s after %d callers", num_callers)
    table = pd.DataFrame(rows)
    v2v = [v for v in table.get("voice_to_voice_ms", pd.Series(dtype=float)).dropna()]
    return LoadTestResult(table, pd.DataFrame(callers), _percentiles(v2v), lag)
