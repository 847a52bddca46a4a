"""End-of-speech accuracy: where the model's own VAD says speech ended (Silero, as its streaming iterator
reports it: the end of the last window scored as speech) and where vkit's refined end puts it, against labels.

The labelled set: 10 real read utterances from Debian's pocketsphinx-testdata (librivox, cards), ending where
their last word stops sounding as labelled by hand (``LAST_SOUND_MS`` in ``data/make_data.py``), and 16
synthesised sentences (8 flite, 8 espeak-ng), clean, ending with their audible extent. Each is put between
0.5 s and 1 s of silence and mixed with white or pink noise at a known SNR against its active level (-26 dBFS);
at 32 dB also through the demo's noise gate, which closes after each utterance.

The sample's turns are also run with the model's windows at 16 phases (the file started 0..511 samples
later): turns found, where each ends and how long after that the end was declared (the end-of-turn
detection delay: min_silence_ms, plus Silero's probability staying high after the sound, in windows).

    python bench/endpoint.py [--snr-db 32 20 10 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
import soundfile as sf
import soxr

import vkit
from vkit import evaluation, filters
from vkit.data import sample_path
from vkit.frames import AudioFrame, SpeechStopped

ROOT = Path(__file__).resolve().parents[1]
RATE_HZ = 16_000
SENTENCES = ["Could you book a table for two at seven tonight?", "What is the weather going to be like tomorrow?",
             "Please remind me to call my sister after lunch.", "Turn the lights off in the kitchen.",
             "How long does it take to drive to the airport from here?", "Play something relaxing, maybe jazz.",
             "Send the report to the whole team.", "I think that is enough for today."]
FLITE_VOICES = ["slt", "rms", "awb", "kal16"]
ESPEAK_VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland"]


def load_make_data():  # noqa: ANN201 - the data folder's script, as a module
    spec = importlib.util.spec_from_file_location("make_data", ROOT / "data/make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def espeak(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True, capture_output=True)
        audio, rate = sf.read(out, dtype="float32")
    return soxr.resample(audio, rate, RATE_HZ).astype(np.float32)


def labelled_utterances() -> list[tuple[str, np.ndarray, float]]:
    """(kind, audio at -26 dBFS active level, end of speech in ms)."""
    md = load_make_data()
    out = []
    for clip, end_ms in md.LAST_SOUND_MS.items():
        out.append(("real", md.active_level(md.read_clip(md.TESTDATA / clip)), end_ms))
    for index, sentence in enumerate(SENTENCES):
        for kind, audio in (("flite", md.synthesise(FLITE_VOICES[index % 4], sentence)),
                            ("espeak-ng", espeak(ESPEAK_VOICES[index % 4], sentence))):
            audio = md.active_level(audio)
            out.append((kind, audio, md.audible_ms(audio)[1]))
    return out


def speech_ends_ms(audio: np.ndarray, refine_end_ms: float, gated: bool = False) -> list[float]:
    frame = AudioFrame.mono(audio, RATE_HZ)
    if gated:  # the demo's gate
        frame = filters.NoiseGate(threshold_dbfs=-50, attack_ms=2, hold_ms=60, release_ms=150).process(frame)
    vad = filters.VAD("silero", refine_end_ms=refine_end_ms)
    result = vad.process(frame)
    events = [*(result if isinstance(result, list) else []), *vad.flush()]
    return [e.speech_end_sample * 1000 / RATE_HZ for e in events if isinstance(e, SpeechStopped)]


def end_errors_ms(utterances: list[tuple[str, np.ndarray, float]], snr_db: float, noise_kind: str,
                  refine_end_ms: float, gated: bool = False) -> dict[str, list[float]]:
    errors: dict[str, list[float]] = {}
    lead, tail = np.zeros(RATE_HZ // 2, np.float32), np.zeros(RATE_HZ, np.float32)
    for index, (kind, audio, end_ms) in enumerate(utterances):
        clean = np.concatenate([lead, audio, tail])
        noise = (evaluation.pink_noise(clean.size, seed=index) if noise_kind == "pink"
                 else np.random.default_rng(index).standard_normal(clean.size))
        noise = np.asarray(noise, np.float64) / np.std(noise)
        noisy = (clean + noise * 10 ** ((-26 - snr_db) / 20)).astype(np.float32)
        truth_ms = 500 + end_ms
        found = speech_ends_ms(noisy, refine_end_ms, gated)
        if found:
            errors.setdefault(kind, []).append(min(found, key=lambda e: abs(e - truth_ms)) - truth_ms)
    return errors


def summary(errors: list[float]) -> str:
    e = np.asarray(errors)
    return f"{np.median(e):+5.0f} {np.median(np.abs(e)):4.0f} {np.mean(np.abs(e) <= 32):4.0%}"


def two_turns_rows() -> list[str]:
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    labels = [end for _, end in evaluation.read_segments(sample_path("two_turns.segments.csv"))]
    rows = []
    for name, refine, gated in (("model", 0, False), ("vkit", 300, False), ("model, after the demo's gate", 0, True),
                                ("vkit, after the demo's gate", 300, True)):
        ends = speech_ends_ms(audio if rate == RATE_HZ else soxr.resample(audio, rate, RATE_HZ), refine, gated)
        rows.append(f"  {name:30s} " + "  ".join(f"{e - t:+6.1f}" for e, t in zip(ends, labels, strict=True)))
    return rows


def phase_rows() -> list[str]:
    """Per model: turns found at each of 16 phases, and per turn the spread of its end and the end-of-turn
    detection delay (min..max, ms)."""
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    rows = []
    for model in ("silero", "webrtc", "energy"):
        ends, delays, counts = [], [], set()
        for shift in np.linspace(0, 511, 16).astype(int):
            vad, found = filters.VAD(model), []  # (speech end, declared): fed 20 ms frames as a source would be
            for start in range(shift, audio.size, rate // 50):
                chunk = audio[start : start + rate // 50]
                result = vad.process(AudioFrame.mono(chunk, rate, start_sample=start - shift))
                found += [(e.speech_end_sample, start - shift + chunk.size) for e in
                          (result if isinstance(result, list) else []) if isinstance(e, SpeechStopped)]
            counts.add(len(found))
            ends.append([(end + shift) * 1000 / rate for end, _ in found])
            delays.append([(declared - end) * 1000 / rate for end, declared in found])
        cells = "turns " + "/".join(map(str, sorted(counts)))
        if len(counts) == 1:
            end, delay = np.array(ends), np.array(delays)
            cells += "".join(f" | end spread {np.ptp(end[:, i]):4.1f}, delay {delay[:, i].min():4.0f}..{delay[:, i].max():4.0f}"
                             for i in range(end.shape[1]))
        rows.append(f"  {model:7s} {cells}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snr-db", type=float, nargs="+", default=[32, 20, 10, 5])
    args = parser.parse_args()
    flite = subprocess.run(["flite", "--version"], capture_output=True, text=True).stdout.split("version: ")[-1].split()[0]
    print(f"vkit {vkit.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}, "
          f"{flite}, Python {platform.python_version()}")
    print("\nvkit/data/two_turns.wav, end of each turn minus its label (ms):")
    print("\n".join(two_turns_rows()))
    print("\nthe same at 16 window phases (default settings; delay = declared - refined end, ms, of the audio):")
    print("\n".join(phase_rows()))
    utterances = labelled_utterances()
    kinds = ["real", "flite", "espeak-ng"]
    counts = {k: sum(1 for u in utterances if u[0] == k) for k in kinds} | {"all": len(utterances)}
    print(f"\n{len(utterances)} labelled utterances; per group: median error, median |error| (ms), share within 32 ms")
    header = f"{'noise':15s} {'end':6s}" + "".join(f" | {f'{k} ({counts[k]})':20s}" for k in [*kinds, "all"])
    print(header + "\n" + "-" * len(header))
    conditions = [(snr_db, noise_kind, False) for snr_db in args.snr_db for noise_kind in ("white", "pink")]
    conditions += [(32, noise_kind, True) for noise_kind in ("white", "pink")]  # under the gate's threshold
    for snr_db, noise_kind, gated in conditions:
        for name, refine in (("model", 0), ("vkit", 300)):
            errors = end_errors_ms(utterances, snr_db, noise_kind, refine, gated)
            every = [e for k in kinds for e in errors.get(k, [])]
            cells = [summary(errors[k]) if k in errors else "-" for k in kinds] + [summary(every)]
            print(f"{f'{noise_kind} {snr_db:g}' + (' gate' if gated else ''):15s} {name:6s}" + "".join(f" | {c:20s}" for c in cells))


if __name__ == "__main__":
    main()
