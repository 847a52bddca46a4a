"""The labelled corpus: what ``vkit.corpus.generate`` makes and how fast, per noise type.

For each noise it generates N items (default voices and rates, 3 turns each) into a temporary folder and
prints the generation time per item; then, from the manifests, per voice: phrases, median phrase length,
the longest stretch of sub-threshold (-60 dBFS) 5 ms frames inside any labelled phrase (it must stay below the
shortest labelled pause, 150 ms), and the SNR measured on the written PCM against the one asked.

    python bench/corpus.py [--num-utterances 40]
"""

from __future__ import annotations

import argparse
import collections
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import vkit
from vkit import corpus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-utterances", type=int, default=40)
    args = parser.parse_args()
    print(f"vkit {vkit.__version__}, numpy {np.__version__}, Python {platform.python_version()}")
    manifests = []
    print(f"\n{'noise':<8} {'items':>5} {'audio min':>9} {'s per item':>10} {'SNR asked':>9} {'SNR measured (min..max)':>24}")
    with tempfile.TemporaryDirectory() as tmp:
        for noise, snr_db in (("pink", 10.0), ("white", 10.0), ("babble", 10.0), (None, None)):
            start = time.perf_counter()
            made = corpus.generate(Path(tmp) / str(noise), num_utterances=args.num_utterances, seed=0,
                                   snr_db=snr_db, noise=noise)
            per_item_s = (time.perf_counter() - start) / len(made)
            measured = [r["snr_db_measured"] for r in made.manifest["items"] if r["snr_db_measured"] is not None]
            span = f"{min(measured):.2f}..{max(measured):.2f}" if measured else "-"
            minutes = sum(item.duration_ms for item in made) / 60_000
            print(f"{noise or 'clean':<8} {len(made):>5} {minutes:>9.1f} {per_item_s:>10.3f} {snr_db or '-':>9} {span:>24}")
            manifests.append(made.manifest)
    phrases: dict[str, list[float]] = collections.defaultdict(list)
    quiet: dict[str, float] = collections.defaultdict(float)
    kinds: collections.Counter = collections.Counter()
    for record in manifests[-1]["items"]:
        quiet[record["voice"]] = max(quiet[record["voice"]], record["max_quiet_inside_phrase_ms"])
        for turn in record["turns"]:
            kinds[turn["kind"]] += 1
            phrases[record["voice"]] += [p["end_ms"] - p["start_ms"] for p in turn["phrases"]]
    print(f"\n{'voice':<30} {'phrases':>7} {'median phrase ms':>16} {'longest quiet inside ms':>23}")
    for voice in sorted(phrases):
        print(f"{voice:<30} {len(phrases[voice]):>7} {np.median(phrases[voice]):>16.0f} {quiet[voice]:>23.0f}")
    print(f"\nturns: {dict(sorted(kinds.items()))}")


if __name__ == "__main__":
    main()
