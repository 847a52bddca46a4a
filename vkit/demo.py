"""``vkit demo``: the labelled sample through a full voice graph, recorded, with the latency table."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import vkit
from vkit import filters, sinks, sources
from vkit.data import sample_path
from vkit.latency import stage_table


def default_responder() -> str:
    """The most realistic responder this machine can run: a real STT -> reply -> TTS cascade if the
    offline engines are installed, else the deterministic echo."""
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return "echo"
    return "cascade" if shutil.which("espeak-ng") or shutil.which("flite") else "echo"


def build_graph(path: Path, *, responder: str, response_delay_ms: str, pace: str) -> vkit.Graph:
    from vkit.realtime import Realtime

    return (
        sources.File(path, pace=pace)  # type: ignore[arg-type]
        | filters.Resample(sample_rate_hz=24_000)
        | filters.NoiseGate(threshold_dbfs=-50, attack_ms=2, hold_ms=60, release_ms=150)
        | filters.VAD(model="silero", threshold=0.5)
        | Realtime(turn_detection="manual", transcription="local" if responder == "cascade" else None,
                   server={"responder": responder, "response_delay_ms": response_delay_ms})
        | sinks.VirtualSpeaker(prebuffer_ms=60)
    )


def run_demo(args: argparse.Namespace) -> int:
    path = args.input or sample_path("two_turns.wav")
    record = args.record or Path("sessions") / time.strftime("demo-%Y%m%dT%H%M%SZ", time.gmtime())
    responder = args.responder or default_responder()
    segments = path.with_suffix(".segments.csv")
    print(f"vkit {vkit.__version__} demo: {path} -> resample -> gate -> VAD -> Realtime "
          f"(local server, {responder} responder) -> speaker model", flush=True)
    graph = build_graph(path, responder=responder, response_delay_ms=args.response_delay_ms,
                        pace="fast" if args.fast else "realtime")
    print(graph.text(), flush=True)
    started = time.monotonic()
    try:
        session = vkit.run(graph, record=record, clock="virtual" if args.fast else None,
                           ground_truth=segments if segments.exists() else None)
    except vkit.VkitError as exc:
        print(f"vkit demo failed: {exc}", file=sys.stderr)
        return 1
    print(f"\n{len(session.turns)} turns in {time.monotonic() - started:.1f} s")
    print(session.turns.to_text())
    heard = _texts(session, "conversation.item.input_audio_transcription.completed", "transcript")
    said = _texts(session, "response.output_audio_transcript.done", "transcript")
    for index, (question, answer) in enumerate(zip(heard or [""] * len(said), said, strict=False), 1):
        print(f"turn {index}: heard {question!r} -> answered {answer!r}")
    print("\nper stage (algorithmic latency, processing time per item):")
    for row in stage_table(session.stages):
        p50 = row["processing_p50_us"]
        print(f"  {row['stage']:16s} {row['latency_ms'] or 0:7.1f} ms   "
              f"{'-' if p50 is None else f'{p50:.0f} us'} p50 over {row['num_items']} items")
    print(f"\nrecording: {record}  (vkit inspect {record})")
    return 0


def _texts(session: vkit.Session, wire_type: str, field: str) -> list[str]:
    return [getattr(e.event, field, "") or "" for e in session.events_of(vkit.ProtocolEvent)
            if e.direction == "received" and e.type == wire_type]
