"""Renamed keywords: the old spelling still works for one release and its warning names the new one."""

from __future__ import annotations

import argparse

import pytest

from vkit.cascade import TTS
from vkit.filters import VAD
from vkit.realtime import Realtime
from vkit.realtime.server import LocalServer, ServerOptions
from vkit.realtime.server.cli import add_serve_parser
from vkit.responses.local_server import CascadeServer


def test_chunk_ms_is_frame_ms_with_a_warning_naming_it() -> None:
    with pytest.warns(DeprecationWarning, match=r"Realtime\(chunk_ms=\).*use frame_ms="):
        assert Realtime(chunk_ms=20).frame_ms == 20
    with pytest.warns(DeprecationWarning, match=r"LocalServer\(chunk_ms=\).*use frame_ms="):
        assert LocalServer(chunk_ms=100).options.frame_ms == 100
    with pytest.warns(DeprecationWarning, match=r"ServerOptions\(chunk_ms=\).*use frame_ms="):
        assert ServerOptions(chunk_ms=1000).frame_ms == 1000
    with pytest.warns(DeprecationWarning, match=r"TTS\(chunk_ms=\).*use frame_ms="):
        assert TTS(chunk_ms=60).frame_ms == 60
    assert Realtime(frame_ms=30).describe()["frame_ms"] == 30 and ServerOptions(frame_ms=20).frame_ms == 20


def test_the_webrtc_window_is_window_ms_not_frame_ms() -> None:
    with pytest.warns(DeprecationWarning, match=r"VAD\(frame_ms=\).*use window_ms="):
        assert VAD("webrtc", frame_ms=10).window_ms == 10
    assert VAD("webrtc", window_ms=20).window_ms == 20


def test_the_old_cli_flag_is_a_hidden_alias() -> None:
    parser = argparse.ArgumentParser()
    serve = add_serve_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["serve", "--chunk-ms", "20"]).frame_ms == 20
    assert parser.parse_args(["serve", "--frame-ms", "60"]).frame_ms == 60
    assert parser.parse_args(["serve"]).frame_ms == 40
    assert "--frame-ms" in serve.format_help() and "--chunk-ms" not in serve.format_help()


def test_the_cascade_servers_speech_chunk_ms_is_speech_frame_ms() -> None:
    with pytest.warns(DeprecationWarning, match=r"CascadeServer\(speech_chunk_ms=\).*use speech_frame_ms="):
        assert CascadeServer(speech_chunk_ms=20).speech_frame_ms == 20
    assert CascadeServer(speech_frame_ms=60).speech_frame_ms == 60 and CascadeServer().speech_frame_ms == 40
