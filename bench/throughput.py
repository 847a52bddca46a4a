"""Offline throughput: File -> Resample(48k->16k) -> NoiseGate -> VAD(silero) -> Null over 10+ minutes
of audio, through vkit's graph and through a bare loop calling the same libraries directly, at the same
block size (20 ms, the live frame size, and 100 ms, a usual offline block). The bare loop reads with
``sf.blocks`` (one read per block) and calls onnxruntime's ``run`` with a dict, as their documentation shows;
a second makes the calls vkit makes (blocks sliced from reads of a second, Silero through an IOBinding over
buffers reused in place) and only scores windows; a third also does the graph's job, speech segments with
refined ends (the bench checks that it finds the graph's), so the graph's ratio to it is the overhead of the
runtime and of the stages' wrappers.

    python bench/throughput.py [--minutes 10] [--repeats 5] [--frame-ms 20 100] [--instructions]

``--instructions`` also counts instructions per 20 ms frame of each under valgrind's callgrind (a run of 36 s
of audio minus one of 12 s, so start-up cancels), on the main thread only: the threads that idle or spin
beside it (tqdm's monitor, the BLAS pool) execute a number of instructions that depends on timing. On a
shared VM wall time moves by 20 % between runs of the same code, such a count by 2-4 %.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import soundfile as sf
import soxr

import vkit
from vkit import filters, sinks, sources
from vkit.data import sample_path
from vkit.filters.vad.endpoint import refine_speech_end
from vkit.units import ms_to_samples

ROOT = Path(__file__).resolve().parents[1]


def make_input(minutes: float, directory: Path) -> Path:
    """The labelled sample, at 48 kHz, repeated to ``minutes`` of audio."""
    speech, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    speech = soxr.resample(speech, rate, 48_000)
    repeats = math.ceil(minutes * 60 * 48_000 / speech.size)
    path = directory / "long.wav"
    sf.write(path, np.tile(speech, repeats), 48_000, subtype="PCM_16")
    return path


def graph(path: Path, frame_ms: int) -> vkit.Chain:
    return (sources.File(path, frame_ms=frame_ms) | filters.Resample(16_000)
            | filters.NoiseGate(threshold_dbfs=-50, attack_ms=2, hold_ms=60, release_ms=150) | vad() | sinks.Null())


def graph_seconds(path: Path, frame_ms: int) -> float:
    pipeline = graph(path, frame_ms)
    started = time.perf_counter()
    vkit.run(pipeline)
    return time.perf_counter() - started


def frame_blocks(path: Path, frame_ms: int) -> Iterator[np.ndarray]:
    """Blocks as soundfile's documented streaming reads them: one ``sf.blocks`` read per frame."""
    yield from sf.blocks(str(path), blocksize=48 * frame_ms, dtype="float32")


def second_blocks(path: Path, frame_ms: int) -> Iterator[np.ndarray]:
    """Blocks sliced from reads of about a second, as vkit's File source reads."""
    size = 48 * frame_ms
    with sf.SoundFile(str(path)) as audio_file:
        while (chunk := audio_file.read(size * max(1, 48_000 // size), dtype="float32")).size:
            for start in range(0, chunk.size, size):
                yield chunk[start:start + size]


class BareSegments:
    """Speech segments from Silero's probabilities as a hand-written loop finds them (the state machine of
    Silero's own ``VADIterator``, counted in windows, with the VAD's thresholds, minimum durations and pad),
    each end refined by vkit's ``refine_speech_end`` on the audio kept as a deque of the frames since."""

    def __init__(self, vad: filters.VAD, frame_ms: int, rate_hz: int = 16_000, window: int = 512) -> None:
        self.threshold, self.negative = vad.threshold, vad.negative_threshold
        self.min_speech = ms_to_samples(vad.min_speech_ms, rate_hz)
        self.min_silence = ms_to_samples(vad.min_silence_ms, rate_hz)
        self.pad, self.lookback = ms_to_samples(vad.speech_pad_ms, rate_hz), ms_to_samples(vad.refine_end_ms, rate_hz)
        self.rate_hz, self.window = rate_hz, window
        held_frames = math.ceil((vad.refine_end_ms + vad.min_silence_ms + 1000) / frame_ms) + 1
        self.recent: deque[np.ndarray] = deque(maxlen=held_frames)  # 16 kHz frames, newest last
        self.recent_end = 0  # absolute index past the newest sample kept
        self.end = 0  # past the newest window scored
        self.candidate = self.silence = self.speech_end = -1
        self.triggered = False
        self.segments: list[tuple[int, int]] = []  # (start, end) samples at 16 kHz, ends refined

    def add_frame(self, samples: np.ndarray) -> None:
        self.recent.append(samples)
        self.recent_end += samples.shape[0]

    def add_window(self, probability: float) -> None:
        start, self.end = self.end, self.end + self.window
        if probability >= self.threshold:
            self.silence = -1
            self.speech_end = self.end
            if not self.triggered:
                if self.candidate < 0:
                    self.candidate = start
                if self.end - self.candidate >= self.min_speech:
                    self.triggered = True
        elif self.triggered:
            if probability < self.negative and self.silence < 0:
                self.silence = start
            if self.silence >= 0 and self.end - self.silence >= self.min_silence:
                self.segments.append((max(0, self.candidate - self.pad), self._refined_end() + self.pad))
                self.triggered, self.candidate, self.silence = False, -1, -1
        elif probability < self.negative:
            self.candidate = -1

    def _refined_end(self) -> int:
        audio = np.concatenate(self.recent)
        first = self.recent_end - audio.shape[0]
        begin = max(first, self.speech_end - self.lookback)
        audio = audio[begin - first : self.end - first]
        return begin + refine_speech_end(audio, self.speech_end - begin, self.rate_hz)


def bare_seconds(path: Path, frame_ms: int, blocks: Callable[[Path, int], Iterator[np.ndarray]] = frame_blocks,
                 iobinding: bool = False, segments: BareSegments | None = None) -> float:
    """The same work without vkit's runtime: soxr stream, a gate core, Silero via onnxruntime (``run`` with a
    dict of inputs, as its documentation shows, or with ``iobinding`` over buffers reused in place, as vkit's
    ``SileroModel`` calls it); with ``segments``, also the speech segments, as the graph's VAD finds them."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    model = onnxruntime.InferenceSession(str(ROOT / "vkit/models/silero_vad.onnx"), options,
                                         providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, 64), np.float32)
    sr = np.array(16_000, np.int64)
    window_in = np.zeros((1, 64 + 512), np.float32)  # context + window, updated in place (iobinding)
    states = (np.zeros((2, 1, 128), np.float32), np.zeros((2, 1, 128), np.float32))
    probability = np.zeros((1, 1), np.float32)
    bindings = []
    for k in (0, 1) if iobinding else ():  # one binding per direction of the state's ping-pong
        binding = model.io_binding()
        binding.bind_cpu_input("input", window_in)
        binding.bind_cpu_input("sr", sr)
        binding.bind_cpu_input("state", states[k])
        binding.bind_output("output", "cpu", 0, np.float32, [1, 1], probability.ctypes.data)
        binding.bind_output("stateN", "cpu", 0, np.float32, [2, 1, 128], states[1 - k].ctypes.data)
        bindings.append(binding)
    k = 0
    resampler = soxr.ResampleStream(48_000, 16_000, 1, dtype="float32")
    gate = filters.NoiseGate(threshold_dbfs=-50, attack_ms=2, hold_ms=60, release_ms=150)  # the gate core itself
    pending = np.zeros(0, np.float32)
    started = time.perf_counter()
    for block in blocks(path, frame_ms):
        x = resampler.resample_chunk(block)
        gated = gate.process(vkit.AudioFrame.mono(x, 16_000))
        if gated is None:
            continue
        if segments is not None:
            segments.add_frame(gated.samples[0])
        pending = np.concatenate([pending, gated.samples[0]])
        while pending.size >= 512:
            if iobinding:
                window_in[0, :64] = window_in[0, -64:]
                window_in[0, 64:] = pending[:512]
                model.run_with_iobinding(bindings[k])
                k = 1 - k
                if segments is not None:
                    segments.add_window(float(probability[0, 0]))
            else:
                window = np.concatenate([context, pending[None, :512]], 1)
                _, state = model.run(None, {"input": window, "state": state, "sr": sr})
                context = window[:, -64:]
            pending = pending[512:]
    return time.perf_counter() - started


def vad() -> filters.VAD:
    return filters.VAD("silero", emit_scores=False)


RUNS: dict[str, Callable[[Path, int], float]] = {
    "bare": bare_seconds,
    "bare-same-calls": lambda path, frame_ms: bare_seconds(path, frame_ms, second_blocks, iobinding=True),
    "bare-same-job": lambda path, frame_ms: bare_seconds(path, frame_ms, second_blocks, iobinding=True,
                                                         segments=BareSegments(vad(), frame_ms)),
    "graph": graph_seconds}


def segments_agree(path: Path, tolerance_ms: float = 40.0) -> str:
    """Whether the same-job loop finds the graph's segments: their count, and how many of both ends agree
    within ``tolerance_ms`` (the loop counts in whole windows, the VAD interpolates between them)."""
    session = vkit.run(graph(path, 20))
    graph_ms = session.speech_segments()
    found = BareSegments(vad(), 20)
    bare_seconds(path, 20, second_blocks, iobinding=True, segments=found)
    bare_ms = [(start / 16, end / 16) for start, end in found.segments]
    close = sum(abs(a[0] - b[0]) <= tolerance_ms and abs(a[1] - b[1]) <= tolerance_ms
                for a, b in zip(graph_ms, bare_ms, strict=False))
    return (f"segments: graph {len(graph_ms)}, same-job loop {len(bare_ms)}, both ends within "
            f"{tolerance_ms:g} ms for {close}")


def instructions_per_frame(frame_ms: int = 20, seconds: tuple[float, float] = (12.0, 36.0)) -> dict[str, float]:
    """Instructions per frame on the main thread of the bare loops and of the graph, counted by callgrind on two
    lengths of audio."""
    counts: dict[tuple[str, float], float] = {}
    frames: dict[float, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for length in seconds:
            folder = Path(tmp) / f"{length:g}"
            folder.mkdir()
            path = make_input(length / 60, folder)
            frames[length] = sf.info(str(path)).frames / (48 * frame_ms)
            for name in RUNS:
                out = Path(tmp) / f"{name}.{length:g}.out"
                subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}",
                                sys.executable, __file__, "--worker", name, str(path), str(frame_ms)],
                               check=True, capture_output=True)
                main_thread = Path(f"{out}-01").read_text().splitlines()
                counts[name, length] = next(float(line.split()[1]) for line in main_thread
                                            if line.startswith(("summary:", "totals:")))
    short, long = seconds
    return {name: (counts[name, long] - counts[name, short]) / (frames[long] - frames[short]) for name in RUNS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frame-ms", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--instructions", action="store_true", help="also count instructions per frame (valgrind)")
    parser.add_argument("--worker", nargs=3, metavar=("RUN", "PATH", "FRAME_MS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one run under valgrind (instructions_per_frame)
        name, path, frame_ms = args.worker
        RUNS[name](Path(path), int(frame_ms))
        return
    print(f"python {platform.python_version()}  vkit {vkit.__version__}  soxr {soxr.__version__}  "
          f"onnxruntime {onnxruntime.__version__}  cores {os.cpu_count()}  audio {args.minutes:g} min at 48 kHz  "
          f"best of {args.repeats}")
    print()
    print(f"{'block':>8s}{'vkit graph s':>14s}{'x real time':>13s}{'bare loop s':>13s}{'vkit/that':>11s}"
          f"{'same calls s':>14s}{'vkit/that':>11s}{'same job s':>12s}{'vkit/that':>11s}")
    with tempfile.TemporaryDirectory() as tmp:
        path = make_input(args.minutes, Path(tmp))
        audio_s = sf.info(str(path)).duration
        for frame_ms in args.frame_ms:
            best = dict.fromkeys(RUNS, math.inf)
            for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits all alike
                for name, run in RUNS.items():
                    best[name] = min(best[name], run(path, frame_ms))
            graph_s = best["graph"]
            cells = "".join(f"{best[name]:{width}.2f}{best[name] / graph_s:11.0%}"
                            for name, width in (("bare", 13), ("bare-same-calls", 14), ("bare-same-job", 12)))
            print(f"{frame_ms:6d}ms{graph_s:14.2f}{audio_s / graph_s:13.0f}{cells}")
        print(segments_agree(path))
    print("\ntarget: the graph reaches at least 90% of the bare loop's throughput. 'bare loop' reads with sf.blocks, "
          "one read per frame, and calls onnxruntime's run with a dict, as their documentation shows; 'same calls' "
          "makes vkit's calls (frames sliced from reads of a second, Silero through an IOBinding) but only scores "
          "windows; 'same job' also finds the speech segments with refined ends, as the graph does, so vkit/that is "
          "the runtime's and the stages' own overhead")
    if args.instructions:
        counts = instructions_per_frame()
        print("instructions per 20 ms frame on the main thread (callgrind): " + ", ".join(
            f"{name} {count:,.0f} ({count / counts['graph']:.0%} of the graph's)" for name, count in counts.items()))


if __name__ == "__main__":
    main()
