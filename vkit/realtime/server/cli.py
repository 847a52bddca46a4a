"""``vkit serve``: run the local Realtime server in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from vkit.realtime.server.app import LocalServer
from vkit.realtime.server.latency import PROFILES
from vkit.realtime.server.responders import RESPONDERS


def add_serve_parser(commands: Any) -> argparse.ArgumentParser:
    serve = commands.add_parser("serve", help="run the local Realtime server (OpenAI Realtime protocol)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--responder", choices=RESPONDERS, default="echo",
                       help="echo: the user's audio back; scripted: --reply; cascade: pocketsphinx -> rules -> TTS; "
                            "tools: function calls (--tool-rule, or the declared tool when asked)")
    serve.add_argument("--reply", action="append", default=None, help="scripted reply: text or an audio file (repeat)")
    serve.add_argument("--tool-rule", action="append", default=[], metavar="PATTERN=NAME:JSON",
                       help="tools responder: when the transcript matches PATTERN, call NAME with the JSON arguments "
                            "(';' between parallel calls; repeat for more rules)")
    serve.add_argument("--transcribe", action="store_true",
                       help="echo/tools: transcribe the user with pocketsphinx (fills transcripts)")
    serve.add_argument("--response-delay-ms", default="0",
                       help=f"delay before the first audio: ms, normal:MEAN,SD, uniform:LO,HI, or {', '.join(PROFILES)}")
    serve.add_argument("--created-delay-ms", type=float, default=0.0,
                       help="announce each response (response.created) this long after its trigger: a slow server")
    serve.add_argument("--output-pace", type=float, default=2.0, help="output streaming speed x real time (0 = burst)")
    serve.add_argument("--frame-ms", type=int, default=40, help="audio per output delta")
    serve.add_argument("--chunk-ms", dest="frame_ms", type=int, help=argparse.SUPPRESS)  # old name, one release
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--max-sessions", type=int, default=100)
    serve.add_argument("--max-session-s", type=float, default=3600.0)
    serve.add_argument("--max-input-buffer-s", type=float, default=600.0, help="uncommitted input audio kept")
    serve.add_argument("--max-retained-audio-s", type=float, default=300.0,
                       help="conversation audio kept per session, newest first (negative: keep all)")
    serve.add_argument("--cascade-port", type=int, default=None,
                       help="also serve /v1/responses and /v1/audio/speech on this port (0: any free port)")
    serve.add_argument("--tls", action="store_true", help="cascade endpoints over TLS (self-signed, made at start)")
    serve.add_argument("--idle-reap-s", type=float, default=600.0,
                       help="close a session with no client event and no response for this long (0: never)")
    serve.add_argument("--turn-detector", choices=["smart_turn", "silence"], default="smart_turn",
                       help="what ends a semantic_vad turn after Silero: Smart Turn v3.2 (default) or a silence")
    serve.add_argument("--max-bad-events", type=int, default=100,
                       help="close a session after this many malformed client events (0: never)")
    return serve


def run_serve(args: argparse.Namespace) -> int:
    server = LocalServer(args.host, args.port, responder=args.responder, replies=args.reply,
                         response_delay_ms=args.response_delay_ms, created_delay_ms=args.created_delay_ms,
                         output_pace=args.output_pace,
                         frame_ms=args.frame_ms, seed=args.seed, max_sessions=args.max_sessions,
                         max_session_s=args.max_session_s, max_input_buffer_s=args.max_input_buffer_s,
                         max_retained_audio_s=None if args.max_retained_audio_s < 0 else args.max_retained_audio_s,
                         idle_reap_s=args.idle_reap_s or None, max_bad_events=args.max_bad_events or None,
                         tool_rules=args.tool_rule, transcribe=args.transcribe,
                         cascade=None if args.cascade_port is None else {"port": args.cascade_port, "tls": args.tls},
                         turn_detector=args.turn_detector)
    if args.turn_detector == "smart_turn":
        from vkit.filters.turn import SmartTurnModel

        SmartTurnModel.load()  # a few seconds now rather than in the first semantic_vad session

    async def main() -> None:
        async with server:
            print(f"vkit local Realtime server on {server.url} (responder {args.responder}); Ctrl-C stops it",
                  file=sys.stderr, flush=True)
            if server.cascade is not None:
                print(f"cascade endpoints on {server.cascade.base_url}/responses (also WebSocket mode) and "
                      f"{server.cascade.base_url}/audio/speech", file=sys.stderr, flush=True)
            await asyncio.Future()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0
