"""The ``vkit`` command: ``demo``, ``serve``, ``inspect``, ``loadtest``, ``corpus``, ``--version``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import vkit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vkit", description="A research toolkit for real-time voice AI latency.")
    parser.add_argument("--version", action="version", version=f"vkit {vkit.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="play the labelled sample through a full voice graph and report latency")
    demo.add_argument("--input", type=Path, default=None, help="audio file (default: the labelled sample shipped in vkit/data)")
    demo.add_argument("--record", type=Path, default=None, help="recording folder (default: sessions/demo-<time>)")
    demo.add_argument("--responder", default=None, help="local server responder (default: cascade if available, else echo)")
    demo.add_argument("--response-delay-ms", default="0", help="injected server delay before the first audio")
    demo.add_argument("--fast", action="store_true", help="run as fast as possible on a virtual clock")

    inspect = commands.add_parser("inspect", help="summary and turn table of a recorded session")
    inspect.add_argument("path", type=Path)

    load = commands.add_parser("loadtest", help="N concurrent simulated callers against a Realtime endpoint")
    load.add_argument("url", nargs="?", default=None, help="ws(s) URL (default: the embedded local server)")
    load.add_argument("--callers", type=int, default=10)
    load.add_argument("--ramp-s", type=float, default=1.0)
    load.add_argument("--duration-s", type=float, default=10.0)

    corpus = commands.add_parser("corpus", help="generate a labelled speech corpus offline (espeak-ng / flite)")
    corpus.add_argument("out_dir", type=Path)
    corpus.add_argument("--num-utterances", type=int, default=20)
    corpus.add_argument("--seed", type=int, default=0)
    corpus.add_argument("--snr-db", nargs="+", default=["20"], help="one or more SNRs cycled over the items; 'none' = clean")
    corpus.add_argument("--noise", default="pink", help="white, pink, babble or none")
    corpus.add_argument("--turns-per-item", type=int, default=3)
    corpus.add_argument("--overwrite", action="store_true")

    from vkit.realtime.server.cli import add_serve_parser

    add_serve_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "demo":
        from vkit.demo import run_demo

        return run_demo(args)
    if args.command == "inspect":
        from vkit.recording.inspect import summarize

        try:
            print(summarize(args.path))
        except vkit.RecordingError as exc:
            print(f"vkit inspect: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "loadtest":
        from vkit.scale.loadtest import loadtest

        print(loadtest(args.url, num_callers=args.callers, ramp_s=args.ramp_s, duration_s=args.duration_s).to_text())
        return 0
    if args.command == "corpus":
        from vkit.corpus import generate

        try:
            snrs = [None if value.lower() == "none" else float(value) for value in args.snr_db]
            made = generate(args.out_dir, num_utterances=args.num_utterances, seed=args.seed, snr_db=snrs,
                            noise=None if args.noise.lower() == "none" else args.noise,
                            turns_per_item=args.turns_per_item, overwrite=args.overwrite)
        except ValueError as exc:  # ConfigError, or an --snr-db that is not a number
            print(f"vkit corpus: {exc}", file=sys.stderr)
            return 2
        minutes = sum(item.duration_ms for item in made) / 60_000
        print(f"{len(made)} labelled items ({minutes:.1f} min of audio) in {args.out_dir}")
        return 0
    from vkit.realtime.server.cli import run_serve

    return run_serve(args) or 0
