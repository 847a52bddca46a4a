"""A canary API key through every output path: none of them shows it.

The paths: a recording and `vkit inspect` of it, log lines at DEBUG (vkit's, websockets' client and
server loggers with the handshake headers), reprs of graphs, stages, sessions and events, exceptions, the
CLI (`vkit inspect`, `vkit loadtest`), the widgets' synced state; with the key given as ``api_key=``,
in ``OPENAI_API_KEY``, as a URL password and in its query, and echoed back by a hostile server (in an
error event and in its close reason).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from misbehaving_server import FaultConnection, MisbehavingServer

import vkit
from vkit import filters, sinks, sources
from vkit.errors import ConfigError
from vkit.realtime import Realtime
from vkit.realtime.server import LocalServer
from vkit.realtime.stage import _Session

pytestmark = pytest.mark.timeout(60)
CANARY = "sk-canary-7Hq2Wm9Xv4Rt"
PASSWORD = "pw-canary-Lk3Zp8Qd"
BASIC = base64.b64encode(f"user:{PASSWORD}".encode()).decode()  # a URL's user:password, as websockets sends it


async def _echo_the_key(conn: FaultConnection) -> None:
    """A hostile server: the key back in an error event, in an unknown event, then in its close reason."""
    await conn.handshake()
    await conn.send(type="error", error={"type": "invalid_request_error", "code": "invalid_api_key",
                                         "message": f"Incorrect API key provided: {CANARY}"})
    await conn.send(type="vendor.debug", note=f"your key is {CANARY} and password {PASSWORD}")
    await asyncio.sleep(0.2)
    await conn.close(1008, f"bad key {CANARY}")


def _widget_states(graph: vkit.Graph, session: vkit.Session) -> list[str]:
    from vkit.widgets import GraphView, LatencyInspector, VadTrace

    widgets = [LatencyInspector(session), GraphView(graph, session), VadTrace(session)]
    return [json.dumps(w.get_state(), default=repr) + repr(w) for w in widgets]


def test_a_canary_key_appears_in_no_output(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    texts: list[str] = []

    async def main():
        async with LocalServer(output_pace=0) as server:
            url = server.url.replace("ws://", f"ws://user:{PASSWORD}@")
            stage = Realtime(url, api_key=CANARY, ping_interval_s=None)
            graph = sources.Silence(duration_ms=300) | filters.VAD("silero") | stage | sinks.VirtualSpeaker()
            texts.extend([repr(stage), repr(graph), str(graph.describe()), repr(stage.describe())])
            session = await vkit.arun(graph, record=tmp_path / "rec")
            texts.extend([repr(session), repr(session.events), repr(session.turns), repr(session.record())])
            texts.extend(_widget_states(graph, session))
        broken = Realtime(f"ws://user:{PASSWORD}@127.0.0.1:1/v1/realtime?api_key={CANARY}", open_timeout_s=1)
        try:
            await vkit.arun(sources.Silence(duration_ms=100) | broken | sinks.VirtualSpeaker())
        except vkit.StageError as exc:
            texts.extend([str(exc), repr(exc), str(exc.__cause__), repr(broken)])
        else:
            raise AssertionError("the unreachable endpoint did not fail")
        async with MisbehavingServer(_echo_the_key) as hostile:  # the key from OPENAI_API_KEY this time
            graph = sources.Silence(duration_ms=2000, pace="realtime") | Realtime(hostile.url, ping_interval_s=None) \
                | sinks.VirtualSpeaker()
            handle = graph.start(record=tmp_path / "echoed")
            try:
                await asyncio.get_running_loop().run_in_executor(None, handle.wait, 30)
            except vkit.StageError as exc:
                texts.extend([str(exc), repr(exc), str(exc.__cause__)])
                assert "code 1008 by the server: bad key [redacted]" in str(exc)
            else:
                raise AssertionError("the hostile server's close did not fail the session")
            assert hostile.connections[0].websocket.request.headers["Authorization"] == f"Bearer {CANARY}"  # sent
            session = handle.session
            assert any(e.type == "error" for e in session.events_of(vkit.frames.ProtocolEvent))
            texts.extend([repr(session), repr(session.events), repr(list(session.events)), repr(session.record())])
            texts.extend(_widget_states(graph, session))

    with caplog.at_level(logging.DEBUG):  # vkit's and websockets' loggers, handshake headers included
        asyncio.run(main())
    assert "Authorization" in caplog.text or "> GET" in caplog.text  # websockets did log the handshake
    texts.append(caplog.text)
    env = {**os.environ, "OPENAI_API_KEY": CANARY}
    for command in (["inspect", str(tmp_path / "rec")], ["inspect", str(tmp_path / "echoed")],
                    ["loadtest", f"ws://user:{PASSWORD}@127.0.0.1:1/v1/realtime?api_key={CANARY}", "--callers", "1",
                     "--ramp-s", "0", "--duration-s", "2"]):
        cli = subprocess.run([sys.executable, "-m", "vkit", *command], capture_output=True, text=True, timeout=60,
                             env=env)
        assert cli.stdout.strip(), (command, cli.stderr)
        texts.extend([cli.stdout, cli.stderr])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    assert any("Incorrect API key provided: [redacted]" in text for text in texts)  # the echo was seen, redacted
    for text in texts:
        assert CANARY not in text and PASSWORD not in text and BASIC not in text


def test_the_server_alone_logs_no_key_at_debug():
    """`vkit serve` with no vkit client in its process: websockets' server logs the handshake, redacted."""
    script = textwrap.dedent(f"""
        import asyncio, logging, sys
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        from websockets.asyncio.client import connect
        from vkit.realtime.server import LocalServer

        async def main():
            async with LocalServer(output_pace=0) as server:
                logging.getLogger("websockets.client").disabled = True  # the raw client here is not vkit's
                headers = {{"Authorization": "Bearer {CANARY}", "api-key": "{CANARY}"}}
                async with connect(server.url.replace("ws://", "ws://user:{PASSWORD}@"),
                                   additional_headers=headers) as ws:
                    await ws.recv()
        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "websockets.server" in proc.stderr and "GET /v1/realtime" in proc.stderr  # the handshake was logged
    assert CANARY not in proc.stderr and PASSWORD not in proc.stderr and BASIC not in proc.stderr


def test_a_key_goes_only_over_wss_or_to_loopback():
    for url in ("ws://voice.example.org/v1/realtime", "ws://user:secret-pw@10.0.0.7/v1/realtime"):
        with pytest.raises(ConfigError, match="only over wss:// or to loopback"):
            _Session(Realtime(url, api_key="k-123456"), None, url)._headers()
        assert _Session(Realtime(url, api_key="k-123456", allow_insecure_key=True), None, url)._headers()
    for url in ("ws://127.0.0.1:9/v1/realtime", "ws://[::1]:9/v1/realtime", "wss://voice.example.org/v1/realtime"):
        assert _Session(Realtime(url, api_key="k-123456"), None, url)._headers()["Authorization"] == "Bearer k-123456"
