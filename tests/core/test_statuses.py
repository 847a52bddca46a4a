"""How a run ends is what the session and its recording say: complete, stopped, timeout, error."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import vkit
from vkit import sinks, sources
from vkit.errors import ConfigError


def manifest(path) -> dict:  # noqa: ANN001
    return json.loads((path / "manifest.json").read_text())


def test_a_stopped_run_is_recorded_as_stopped(tmp_path) -> None:  # noqa: ANN001
    graph = sources.Noise(duration_ms=60_000, sample_rate_hz=16_000, pace="realtime") | sinks.Null()
    handle = vkit.start(graph, record=tmp_path / "rec")
    time.sleep(0.2)
    session = handle.stop()
    assert session.status == "stopped" and manifest(tmp_path / "rec")["status"] == "stopped"


def test_a_timed_out_run_is_recorded_as_timeout_and_says_so(tmp_path) -> None:  # noqa: ANN001
    graph = sources.Noise(duration_ms=60_000, sample_rate_hz=16_000, pace="realtime") | sinks.Null()
    with pytest.raises(TimeoutError, match=r"did not finish within timeout_s \(got 0.2\)"):
        vkit.run(graph, record=tmp_path / "script", timeout_s=0.2)
    assert manifest(tmp_path / "script")["status"] == "timeout"
    handle = vkit.start(graph, record=tmp_path / "handle")
    with pytest.raises(TimeoutError):
        handle.wait(0.2)
    assert handle.session.status == "timeout" and manifest(tmp_path / "handle")["status"] == "timeout"


def test_an_interrupted_wait_stops_with_one_line_not_a_traceback(tmp_path) -> None:  # noqa: ANN001
    script = textwrap.dedent(f"""
        import vkit
        from vkit import sinks, sources
        graph = sources.Noise(duration_ms=60_000, sample_rate_hz=16_000, pace="realtime") | sinks.Null()
        handle = vkit.start(graph, record={str(tmp_path / "rec")!r})
        print("running", flush=True)
        session = handle.wait()  # what a notebook cell does; Interrupt sends SIGINT
        print("status", session.status, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert out.strip() == "status stopped" and manifest(tmp_path / "rec")["status"] == "stopped"
    assert err.strip().splitlines() == [f"vkit: interrupted; session stopped after 0 turn(s), 0 answered; "
                                        f"recording {tmp_path / 'rec'} marked stopped"]


def test_a_graph_that_waits_on_real_time_is_refused_on_the_virtual_clock() -> None:
    from vkit.realtime import Realtime

    graph = sources.Silence(duration_ms=100, sample_rate_hz=24_000) | Realtime("ws://127.0.0.1:9/v1/realtime") \
        | sinks.VirtualSpeaker()
    with pytest.raises(ConfigError, match=r"Realtime cannot be measured on the virtual clock"):
        vkit.run(graph, clock="virtual")
