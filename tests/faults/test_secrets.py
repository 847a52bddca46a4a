"""A canary API key through every output path: none of them shows it."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

import vkit
from vkit import sources
from vkit.errors import ConfigError
from vkit.realtime import Realtime
from vkit.realtime.server import LocalServer
from vkit.realtime.stage import _Session

pytestmark = pytest.mark.timeout(60)
CANARY = "sk-canary-7Hq2Wm9Xv4Rt"
PASSWORD = "pw-canary-Lk3Zp8Qd"


def test_a_canary_key_appears_in_no_output(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    texts: list[str] = []

    async def main():
        async with LocalServer(output_pace=0) as server:
            url = server.url.replace("ws://", f"ws://user:{PASSWORD}@")
            stage = Realtime(url, api_key=CANARY, ping_interval_s=None)
            graph = sources.Silence(duration_ms=300) | stage
            texts.extend([repr(stage), repr(graph), str(graph.describe()), repr(stage.describe())])
            session = await vkit.arun(graph, record=tmp_path / "rec")
            texts.extend([repr(session), repr(session.events), repr(session.turns)])
            broken = Realtime(f"ws://user:{PASSWORD}@127.0.0.1:1/v1/realtime?api_key={CANARY}", open_timeout_s=1)
            try:
                await vkit.arun(sources.Silence(duration_ms=100) | broken)
            except vkit.StageError as exc:
                texts.extend([str(exc), repr(exc), str(exc.__cause__), repr(broken)])
            else:
                raise AssertionError("the unreachable endpoint did not fail")

    with caplog.at_level(logging.DEBUG):  # vkit's and websockets' loggers, handshake headers included
        asyncio.run(main())
    assert "Authorization" in caplog.text or "> GET" in caplog.text  # websockets did log the handshake
    texts.append(caplog.text)
    cli = subprocess.run([sys.executable, "-m", "vkit", "inspect", str(tmp_path / "rec")], capture_output=True,
                         text=True, timeout=60)
    texts.extend([cli.stdout, cli.stderr])
    for path in (tmp_path / "rec").rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    for text in texts:
        assert CANARY not in text and PASSWORD not in text


def test_a_key_goes_only_over_wss_or_to_loopback():
    for url in ("ws://voice.example.org/v1/realtime", "ws://user:secret-pw@10.0.0.7/v1/realtime"):
        with pytest.raises(ConfigError, match="only over wss:// or to loopback"):
            _Session(Realtime(url, api_key="k-123456"), None, url)._headers()
        assert _Session(Realtime(url, api_key="k-123456", allow_insecure_key=True), None, url)._headers()
    for url in ("ws://127.0.0.1:9/v1/realtime", "ws://[::1]:9/v1/realtime", "wss://voice.example.org/v1/realtime"):
        assert _Session(Realtime(url, api_key="k-123456"), None, url)._headers()["Authorization"] == "Bearer k-123456"
