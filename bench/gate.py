"""NoiseGate cost per 20 ms frame: vkit's stage vs a bare numpy loop doing the same arithmetic.

The demo's sample (speech, pauses, light noise) is resampled to 8, 16, 24 and 48 kHz, cut into 20 ms
frames and gated frame by frame (the demo's settings: -50 dBFS, attack 2 ms, hold 60 ms, release
150 ms). The bare loop computes the same hop powers, detector, hysteresis and hold and applies a gain
per frame, on plain arrays, with no frames, checks or trace. Best of N passes, microseconds per frame.

    python bench/gate.py [--repeats 30] [--seconds 10]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import soundfile as sf
import soxr

import vkit
from vkit import filters
from vkit.data import sample_path

RATES_HZ = (8_000, 16_000, 24_000, 48_000)
FRAME_MS = 20
SETTINGS = {"threshold_dbfs": -50.0, "attack_ms": 2.0, "hold_ms": 60.0, "release_ms": 150.0}


def signal(rate_hz: int, seconds: float) -> np.ndarray:
    audio, source_rate_hz = sf.read(sample_path("two_turns.wav"), dtype="float32")
    audio = audio[: int(seconds * source_rate_hz)]
    return soxr.resample(audio, source_rate_hz, rate_hz).astype(np.float32)


def vkit_seconds(frames: list[vkit.AudioFrame]) -> float:
    gate = filters.NoiseGate(**SETTINGS)
    started = time.perf_counter()
    for frame in frames:
        gate.process(frame)
    return time.perf_counter() - started


def bare_seconds(frames: list[np.ndarray], rate_hz: int) -> float:
    """The gate's arithmetic on arrays: hop powers, one-pole detector, thresholds with hold, gain ramp."""
    hop = rate_hz // 1000
    smooth = math.exp(-1.0 / 10.0)
    open_power, close_power = 10 ** (SETTINGS["threshold_dbfs"] / 10), 10 ** ((SETTINGS["threshold_dbfs"] - 6) / 10)
    hold_hops = int(SETTINGS["hold_ms"])
    attack_db, release_db = 60.0 / SETTINGS["attack_ms"], 60.0 / SETTINGS["release_ms"]
    level, is_open, below, gain_db = 0.0, False, 0, -60.0
    started = time.perf_counter()
    for x in frames:
        hops = x.reshape(-1, hop).astype(np.float64)
        for power in np.einsum("nh,nh->n", hops, hops).tolist():
            level = smooth * level + (1 - smooth) * (power / hop)
            if level >= open_power:
                is_open, below = True, 0
            elif is_open and level < close_power:
                below += 1
                is_open = below < hold_hops
            gain_db = min(gain_db + attack_db, 0.0) if is_open else max(gain_db - release_db, -60.0)
        x * np.float32(10 ** (gain_db / 20))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per pass (the sample is 14 s)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}  numpy {np.__version__}  vkit {vkit.__version__}  "
          f"cpus {os.cpu_count()}  best of {args.repeats}, {FRAME_MS} ms frames of {args.seconds:g} s of speech")
    print(f"{'rate':>8} {'frames':>7} {'vkit us/frame':>14} {'bare us/frame':>14} {'vkit/bare':>10}")
    for rate_hz in RATES_HZ:
        audio = signal(rate_hz, args.seconds)
        size = rate_hz * FRAME_MS // 1000
        arrays = [audio[i : i + size] for i in range(0, audio.size - size + 1, size)]
        frames = [vkit.AudioFrame.mono(a, rate_hz, start_sample=i * size) for i, a in enumerate(arrays)]
        ours = min(vkit_seconds(frames) for _ in range(args.repeats)) / len(frames) * 1e6
        bare = min(bare_seconds(arrays, rate_hz) for _ in range(args.repeats)) / len(frames) * 1e6
        print(f"{rate_hz:>6} Hz {len(frames):>7} {ours:>14.1f} {bare:>14.1f} {ours / bare:>10.2f}")


if __name__ == "__main__":
    main()
