"""``vkit loadtest``: N simulated callers, each a real-time Realtime graph, against one endpoint.

Without a URL the embedded server runs as ``vkit serve`` in a process of its own (127.0.0.1, an
ephemeral port, its event-loop lag probed), so the callers never share its GIL; it is stopped at the end.
Callers start ``ramp_s / N`` apart and each replays speech at real-time pace for ``duration_s``. With
``executor="inline"`` they all run on this process's engine thread; with ``"local"``, ``"dask"`` (a
``LocalCluster``), a scheduler address or a ``distributed.Client`` they are dealt round-robin into
``num_workers`` groups, one task per group. Their turn tables are merged (a ``caller`` column).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from vkit.data import sample_path
from vkit.errors import ConfigError, got
from vkit.scale.executors import is_dask, run_tasks

__all__ = ["LoadTestResult", "ServerProcess", "loadtest", "run_callers"]

log = logging.getLogger(__name__)

SPEECH = sample_path("two_turns.wav")
READY = re.compile(r"ws://127\.0\.0\.1:\d+/v1/realtime")


@dataclass
class LoadTestResult:
    """``turns``: every caller's turns (``caller`` column); ``callers``: one row per caller (turns,
    voice-to-voice p50/p90/p99, errors); ``voice_to_voice_ms``: p50/p90/p99 over all turns;
    ``server_lag_ms``: the embedded server's event-loop lag (p50/p90/p99/max), None for a given URL;
    ``cpu_pct``: CPU time over the wall time of the embedded server's process and of the callers run in
    this process (a core is 100), where measured."""

    turns: Any
    callers: Any
    voice_to_voice_ms: dict[str, float]
    server_lag_ms: dict[str, float] | None
    cpu_pct: dict[str, float] = field(default_factory=dict)

    def to_text(self) -> str:
        num_failed = int(self.callers["error"].notna().sum())
        lines = [f"{len(self.callers)} callers, {len(self.turns)} turns, {num_failed} callers failed, "
                 f"{int(self.callers['num_errors'].sum())} error events"]
        lines.append("voice-to-voice ms: " + ", ".join(f"{k} {v:.1f}" for k, v in self.voice_to_voice_ms.items()))
        if self.server_lag_ms is not None:
            lines.append("server event-loop lag ms: " + ", ".join(f"{k} {v:.2f}" for k, v in self.server_lag_ms.items()))
        if self.cpu_pct:
            lines.append("CPU % of a core: " + ", ".join(f"{k} {v:.0f}" for k, v in self.cpu_pct.items()))
        lines.append(self.callers.fillna({"error": "-"}).to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.1f}"))
        return "\n".join(lines)


def _percentiles(values: Sequence[float], prefix: str = "p", suffix: str = "") -> dict[str, float | None]:
    return {f"{prefix}{p}{suffix}": float(np.percentile(values, p)) if len(values) else None for p in (50, 90, 99)}


class ServerProcess:
    """``vkit serve --port 0 --measure-lag`` in a subprocess on 127.0.0.1; ``stop()`` returns its loop lag."""

    def __init__(self, *, max_sessions: int = 110, response_delay_ms: str | float = 0, output_pace: float = 1.0,
                 start_timeout_s: float = 60.0) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="vkit-loadtest-")
        self._stdout = open(Path(self._dir.name) / "stdout", "w+")  # noqa: SIM115 - closed in stop()
        self._stderr = open(Path(self._dir.name) / "stderr", "w+")  # noqa: SIM115 - closed in stop()
        package_root = str(Path(__file__).resolve().parents[2])  # the same vkit as this process
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "vkit", "serve", "--host", "127.0.0.1", "--port", "0", "--measure-lag",
                   "--output-pace", str(output_pace), "--max-sessions", str(max_sessions),
                   "--response-delay-ms", str(response_delay_ms), "--idle-reap-s", "0"]
        self.process = subprocess.Popen(command, stdout=self._stdout, stderr=self._stderr, env=env)
        deadline = time.monotonic() + start_timeout_s
        while True:
            match = READY.search(Path(self._stderr.name).read_text())
            if match:
                self.url = match.group(0)
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"vkit serve did not start within {start_timeout_s:g} s: "
                                   f"{Path(self._stderr.name).read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """SIGTERM, then the report it prints on stdout (``lag_ms``, ``num_responses``, ``cpu_s``); killed,
        with an empty report, if it does not end within ``timeout_s``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("vkit serve did not end within %g s of SIGTERM: killed", timeout_s)
                self.process.kill()
                self.process.wait()
        lines = Path(self._stdout.name).read_text().splitlines()
        self._stdout.close()
        self._stderr.close()
        self._dir.cleanup()
        return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def run_callers(url: str, callers: Sequence[tuple[int, float]], duration_s: float, speech: str) -> dict[str, list]:
    """Run ``(caller id, start offset s)`` callers in this process; their turn rows and one row per caller."""
    from vkit import sinks
    from vkit.frames import ProtocolEvent, ProtocolIssue
    from vkit.realtime import Realtime
    from vkit.runtime import start
    from vkit.sources import File

    began = time.monotonic()
    process = f"{socket.gethostname()}:{os.getpid()}"
    handles = []
    turn_rows: list[dict[str, Any]] = []
    caller_rows: list[dict[str, Any]] = []
    try:
        for index, offset_s in sorted(callers, key=lambda c: c[1]):
            time.sleep(max(0.0, began + offset_s - time.monotonic()))
            graph = File(speech, pace="realtime") | Realtime(url) | sinks.VirtualSpeaker(prebuffer_ms=60)
            handles.append((index, time.monotonic(), start(graph)))
        for index, started, handle in handles:
            error = None
            try:
                handle.wait(max(0.1, started + duration_s - time.monotonic()))
            except TimeoutError:
                pass  # the caller's time is up: stopped cleanly, its turns so far count
            except Exception as exc:  # noqa: BLE001 - one caller's failure is its row, not the test's end
                error = f"{type(exc).__name__}: {exc}"
            session = handle.session
            turns = session.turns.rows()
            turn_rows += [{"caller": index, **turn} for turn in turns]
            heard = [t["voice_to_voice_ms"] for t in turns if t["voice_to_voice_ms"] is not None]
            num_errors = sum(1 for e in session.events if isinstance(e, ProtocolIssue) or (
                isinstance(e, ProtocolEvent) and e.direction == "received" and e.type == "error"))
            caller_rows.append({"caller": index, "num_turns": len(turns), "num_answered": len(heard),
                                **_percentiles(heard, "v2v_p", "_ms"), "num_errors": num_errors, "error": error,
                                "process": process})
    finally:
        for _, _, handle in handles:
            if not handle.done():
                handle.stop()
    return {"turns": turn_rows, "callers": caller_rows}


def _loopback_scheduler(executor: Any) -> bool:
    address = executor if isinstance(executor, str) else getattr(getattr(executor, "scheduler", None), "address", "")
    if executor == "dask" or address.startswith("inproc://"):
        return True
    host = urlsplit(address).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loadtest(url: str | None = None, *, num_callers: int = 10, ramp_s: float = 1.0, duration_s: float = 10.0,
             speech: str | Path = SPEECH, response_delay_ms: str | float = 0, executor: Any = "inline",
             num_workers: int | None = None) -> LoadTestResult:
    """Run ``num_callers`` concurrent real-time callers against ``url`` (default: the embedded server in
    its own process). ``executor``: "inline" (this process), "local", "dask", a scheduler address or a
    Client, over ``num_workers`` groups of callers (default: this machine's cores)."""
    import pandas as pd

    if num_callers < 1 or duration_s <= 0 or ramp_s < 0:
        raise ConfigError(f"need num_callers >= 1, duration_s > 0, ramp_s >= 0 {got((num_callers, ramp_s, duration_s))}")
    if url is None and is_dask(executor) and not _loopback_scheduler(executor):
        raise ConfigError(f"the embedded server listens on 127.0.0.1 of this machine: give a URL the workers of a "
                          f"remote scheduler can reach {got(executor)}")
    offsets = [(index, index * ramp_s / num_callers) for index in range(num_callers)]
    num_groups = 1 if executor == "inline" else max(1, min(num_workers or os.cpu_count() or 1, num_callers))
    groups = [offsets[w::num_groups] for w in range(num_groups)]
    server = ServerProcess(max_sessions=num_callers + 10, response_delay_ms=response_delay_ms) if url is None else None
    report: dict[str, Any] = {}
    began, cpu = time.monotonic(), time.process_time()
    try:
        endpoint = server.url if server is not None else url
        tasks = [(w, (endpoint, group, duration_s, str(speech))) for w, group in enumerate(groups)]
        parts = [part for _, part in run_tasks(run_callers, tasks, executor, num_groups)]
    finally:
        wall_s, cpu_s = time.monotonic() - began, time.process_time() - cpu
        if server is not None:
            report = server.stop()
    cpu_pct = {"server": 100 * report["cpu_s"] / wall_s} if "cpu_s" in report else {}
    if executor == "inline":
        cpu_pct["callers"] = 100 * cpu_s / wall_s
    turns = pd.DataFrame([row for part in parts for row in part["turns"]])
    if len(turns):
        turns = turns.sort_values(["caller", "turn"], kind="stable").reset_index(drop=True)
    callers = pd.DataFrame([row for part in parts for row in part["callers"]]).sort_values("caller").reset_index(drop=True)
    v2v = list(turns["voice_to_voice_ms"].dropna()) if "voice_to_voice_ms" in turns else []
    overall = {k: v for k, v in _percentiles(v2v).items() if v is not None}
    return LoadTestResult(turns, callers, overall, report.get("lag_ms") if server is not None else None, cpu_pct)
