"""Build the small labelled audio that vkit's tests, demo and notebooks use.

Run from the repository root: ``python data/make_data.py``. It needs the Debian packages
``pocketsphinx-testdata`` (real read speech, 16 kHz) and ``flite`` (offline speech synthesis).
Everything is deterministic (fixed seeds), so the outputs are reproducible.

Outputs (16 kHz mono PCM16):
- ``vkit/data/two_turns.wav`` + ``two_turns.segments.csv`` (package data, so ``vkit demo`` finds them
  in an installed wheel): three user turns separated by 1.6 s pauses, over light
  noise, with one ground-truth segment (start_ms,end_ms) per turn: from the first word, as pocketsphinx
  force-aligns the known transcript (10 ms frames, timed at their centres), to where the last word stops
  sounding (``LAST_SOUND_MS`` for the two real turns, the audible extent for the synthesised one). The demo
  plays it.
- ``data/vad_eval.flac`` + ``vad_eval.segments.csv`` (source tree only): clean speech (13 real clips and 8 synthesised
  sentences) separated by 0.4-2.0 s of silence, labelled on a 10 ms grid from the clean signal's energy.
  Tests mix noise into it at a chosen SNR.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE_HZ = 16_000
HERE = Path(__file__).resolve().parent
PACKAGE_DATA = HERE.parent / "vkit" / "data"  # the demo's sample ships inside the package
TESTDATA = Path("/usr/share/pocketsphinx/test/data")
REAL_CLIPS = [*sorted((TESTDATA / "librivox").glob("*.wav")), *sorted((TESTDATA / "cards").glob("*.wav")),
              TESTDATA / "goforward.raw", TESTDATA / "numbers.raw", TESTDATA / "something.raw"]
SENTENCES = [
    ("slt", "Could you book a table for two at seven tonight?"),
    ("rms", "What is the weather going to be like tomorrow morning?"),
    ("awb", "Please remind me to call my sister after lunch."),
    ("kal16", "Yes."),
    ("slt", "Turn the lights off in the kitchen."),
    ("rms", "How long does it take to drive to the airport from here?"),
    ("awb", "Stop."),
    ("kal16", "Play something relaxing, maybe some jazz."),
]
TARGET_LEVEL_DBFS = -26.0
ALIGNER_FRAME_CENTRE_MS = 410 / 16 / 2  # pocketsphinx: 25.6 ms (410-sample) windows every 10 ms, from sample 0
# Where the last word of each real clip stops sounding (ms into the clip), labelled by hand on its spectrogram
# (16 ms Hann frames every 5 ms, energy per band 0-400, 400-1500, 1500-4000, 4000-8000 Hz): the time at which
# the band that carries the last sound (a nasal's murmur, a fricative's hiss, a stop's burst) falls to the
# clip's own noise floor in that band; a breath or click after a gap is not part of the word. The forced aligner
# is not used for ends: it ended four of these ten within 13 ms of these labels, but three at the end of the clip,
# 130-265 ms after the sound, and three 42-62 ms early, inside a weak last sound (0870, 0880: the demo's first
# turn, 004).
LAST_SOUND_MS = {
    "librivox/sense_and_sensibility_01_austen_64kb-0870.wav": 6860.0,  # "them": creaky murmur to 6860
    "librivox/sense_and_sensibility_01_austen_64kb-0880.wav": 2795.0,  # "man": murmur under 400 Hz to 2795
    "librivox/sense_and_sensibility_01_austen_64kb-0890.wav": 5080.0,  # "disposed": the d's burst
    "librivox/sense_and_sensibility_01_austen_64kb-0920.wav": 5825.0,  # "was": the z above 1.5 kHz
    "librivox/sense_and_sensibility_01_austen_64kb-0930.wav": 3025.0,  # "himself": the f, 1.5-8 kHz
    "cards/001.wav": 960.0,  # "clubs": the s
    "cards/002.wav": 1722.0,  # "clubs": the s (a breath follows at 1800)
    "cards/003.wav": 1265.0,  # "clubs": the s
    "cards/004.wav": 1290.0,  # "five": the weak v after the vowel ends at 1210
    "cards/005.wav": 3255.0,  # "hearts": the s
}


def read_clip(path: Path) -> np.ndarray:
    if path.suffix == ".raw":
        return np.fromfile(path, "<i2").astype(np.float32) / 32768
    audio, rate = sf.read(path, dtype="float32")
    return audio if rate == RATE_HZ else soxr.resample(audio, rate, RATE_HZ)


def synthesise(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True, capture_output=True)
        audio, rate = sf.read(out, dtype="float32")
    return soxr.resample(audio, rate, RATE_HZ).astype(np.float32)


def active_level(audio: np.ndarray) -> np.ndarray:
    """Scale to an active speech level of TARGET_LEVEL_DBFS (power of the loudest half of 10 ms frames)."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    power = np.mean(frames**2, axis=1)
    active = np.sort(power)[len(power) // 2 :].mean()
    return (audio * 10 ** (TARGET_LEVEL_DBFS / 20) / np.sqrt(active)).astype(np.float32)


def speech_mask(audio: np.ndarray) -> np.ndarray:
    """Speech on a 10 ms grid: energy within 40 dB of the loud frames, gaps < 200 ms filled, islands < 50 ms dropped."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    floor = np.percentile(energy_db, 10)
    mask = (energy_db > np.percentile(energy_db, 99) - 40) & (energy_db > floor + 15)
    return _drop_short(~_drop_short(~mask, 20), 5)


def _drop_short(mask: np.ndarray, min_frames: int) -> np.ndarray:
    out = mask.copy()
    start = None
    for i, value in enumerate([*mask, False]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            if i - start < min_frames:
                out[start:i] = False
            start = None
    return out


def segments_ms(mask: np.ndarray, offset_samples: int) -> list[tuple[float, float]]:
    out, start = [], None
    for i, value in enumerate([*mask, False]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            out.append(((offset_samples + start * 160) / 16, (offset_samples + i * 160) / 16))
            start = None
    return out


def write_segments(path: Path, segments: list[tuple[float, float]]) -> None:
    path.write_text("start_ms,end_ms\n" + "".join(f"{a:.1f},{b:.1f}\n" for a, b in segments))


def audible_ms(audio: np.ndarray) -> tuple[float, float]:
    """The clean signal's audible extent (ms): from the first to the last 10 ms frame within 40 dB of its
    loud frames (99th percentile)."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    audible = np.flatnonzero(energy_db > np.percentile(energy_db, 99) - 40)
    return audible[0] * 10.0, (audible[-1] + 1) * 10.0


def aligned_start_ms(audio: np.ndarray, text: str) -> float:
    """The first word's start (ms) from pocketsphinx forced alignment to the known text, kept inside the clean
    signal's audible extent."""
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=RATE_HZ, loglevel="FATAL")
    decoder.set_align_text(text)
    decoder.start_utt()
    decoder.process_raw(np.rint(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
    decoder.end_utt()
    segments = decoder.seg()
    if segments is None:
        raise RuntimeError(f"pocketsphinx could not align the audio to {text!r}")
    words = [s for s in segments if not s.word.startswith(("<", "["))]
    # pocketsphinx's frame k analyses [10k, 10k + 25.6] ms, so it stands for its centre, 10k + 12.8 ms, and a
    # word boundary lies halfway between the centres of its frames and the previous: 5 ms before the centre
    return float(max(words[0].start_frame * 10.0 + ALIGNER_FRAME_CENTRE_MS - 5.0, audible_ms(audio)[0]))


def build_two_turns(rng: np.random.Generator) -> None:
    first, third = "librivox/sense_and_sensibility_01_austen_64kb-0880.wav", "librivox/sense_and_sensibility_01_austen_64kb-0930.wav"
    turns = [(read_clip(TESTDATA / first), "he was not an ill disposed young man", LAST_SOUND_MS[first]),
             (synthesise("slt", "Could you book a table for two at seven tonight?"),
              "could you book a table for two at seven tonight", None),
             (read_clip(TESTDATA / third), "he might even have been made amiable himself", LAST_SOUND_MS[third])]
    pieces, truth, position = [np.zeros(int(0.8 * RATE_HZ), np.float32)], [], int(0.8 * RATE_HZ)
    for index, (turn, text, end_ms) in enumerate(turns):
        turn = active_level(turn)
        start_ms = aligned_start_ms(turn, text)
        end_ms = audible_ms(turn)[1] if end_ms is None else end_ms
        truth.append((position / 16 + start_ms, position / 16 + end_ms))  # one turn: first to last word
        pieces.append(turn)
        position += len(turn)
        gap = np.zeros(int((1.6 if index < len(turns) - 1 else 1.2) * RATE_HZ), np.float32)
        pieces.append(gap)
        position += len(gap)
    clean = np.concatenate(pieces)
    noise = rng.standard_normal(len(clean)).astype(np.float32)
    noise = np.convolve(noise, np.ones(8) / 8, mode="same") * 10 ** (-58 / 20) / np.std(np.convolve(noise, np.ones(8) / 8, mode="same"))
    sf.write(PACKAGE_DATA / "two_turns.wav", np.clip(clean + noise, -1, 1), RATE_HZ, subtype="PCM_16")
    write_segments(PACKAGE_DATA / "two_turns.segments.csv", truth)


def build_vad_eval(rng: np.random.Generator) -> None:
    utterances = [read_clip(p) for p in REAL_CLIPS] + [synthesise(v, t) for v, t in SENTENCES]
    order = rng.permutation(len(utterances))
    pieces, segments, position = [np.zeros(RATE_HZ, np.float32)], [], RATE_HZ
    for index in order:
        utterance = active_level(utterances[index])
        segments += segments_ms(speech_mask(utterance), position)
        gap = np.zeros(int(rng.uniform(0.4, 2.0) * RATE_HZ), np.float32)
        pieces += [utterance, gap]
        position += len(utterance) + len(gap)
    sf.write(HERE / "vad_eval.flac", np.clip(np.concatenate(pieces), -1, 1), RATE_HZ, subtype="PCM_16")
    write_segments(HERE / "vad_eval.segments.csv", segments)


if __name__ == "__main__":
    generator = np.random.default_rng(20261124)
    build_two_turns(generator)
    build_vad_eval(generator)
    for path in [*sorted(PACKAGE_DATA.glob("two_turns.*")), *sorted(HERE.glob("vad_eval.*"))]:
        print(f"{path.relative_to(HERE.parent)!s:34s} {path.stat().st_size / 1e3:8.1f} kB")
