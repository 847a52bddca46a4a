"""A labelled speech corpus made offline: synthesised multi-turn items whose labels come from construction.

Each phrase is synthesised on its own (espeak-ng, or flite), resampled, and trimmed to its speech span on
the clean signal: 5 ms frames whose RMS is above -60 dBFS (``TRIM_THRESHOLD_DBFS``, ``TRIM_FRAME_MS``;
synthesiser output is digital near-silence outside speech). Phrases are then laid end to end with drawn
pauses, so every label is known exactly, in samples, before any noise is added; vkit's VAD is never
consulted. End of turn is made hard the way real speech makes it: a pause inside a turn follows a
semantically incomplete fragment ("I'd like to book a table for"), a turn ends on a complete sentence.
Some turns are one sentence, some are backchannels ("mm-hm"), flagged in the manifest.

Files per item: ``<id>.wav`` (PCM16 mono), ``<id>.segments.csv`` (one ``start_ms,end_ms`` row per phrase),
``<id>.turns.csv`` (one row per turn, first phrase's start to last phrase's end); and one ``corpus.json``
with the parameters, per-item metadata and each wav's SHA-256. The same arguments give byte-identical files
(with the same espeak-ng/flite versions, recorded in the manifest).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from vkit.errors import ConfigError, MissingExtra, got
from vkit.evaluation import mix_at_snr, pink_noise, read_segments
from vkit.units import db_to_gain, float_to_pcm16, ms_to_samples, pcm16_to_float, rms_dbfs, samples_to_ms

__all__ = ["Corpus", "CorpusItem", "generate", "load", "real_clips", "GENERATOR_VERSION", "NOISES",
           "DEFAULT_VOICES", "DEFAULT_RATES_WPM", "TRIM_THRESHOLD_DBFS", "TRIM_FRAME_MS"]

GENERATOR_VERSION = 1
MANIFEST = "corpus.json"
NOISES = ("white", "pink", "babble")
TRIM_THRESHOLD_DBFS = -60.0
TRIM_FRAME_MS = 5.0
# flite leaves faint blips (about -57 dBFS, 5-30 ms) 100-200 ms before and after its speech: an edge run of
# frames shorter than TRIM_BLIP_MS, set off from the rest by TRIM_BLIP_GAP_MS or more of quiet, is not speech
TRIM_BLIP_MS = 40.0
TRIM_BLIP_GAP_MS = 100.0
SPEECH_LEVEL_DBFS = -26.0  # RMS over the speech spans of every item, before noise
LEAD_MS = 500.0  # silence before the first turn; after the last one comes a drawn gap
TURN_KINDS = ("multi", "single", "backchannel")
TURN_KIND_P = (0.6, 0.25, 0.15)
BABBLE_TALKERS = 4
BABBLE_VOICES = ("espeak-ng:en-us+m3", "espeak-ng:en-gb+f2", "espeak-ng:en-us+f4", "espeak-ng:en-gb-x-rp+m5",
                 "espeak-ng:en-029+f3", "espeak-ng:en-gb-scotland+m2")
DEFAULT_VOICES = ("espeak-ng:en-us", "espeak-ng:en-gb", "espeak-ng:en-us+f3", "espeak-ng:en-gb-scotland+m3",
                  "flite:slt", "flite:rms")
DEFAULT_RATES_WPM = (140, 170, 200)
ENGINES = {"espeak-ng": "espeak-ng", "flite": "flite"}  # engine -> Debian package

# Multi-phrase turns: every phrase but the last is a fragment that cannot end a turn; the last one can.
# No commas inside a phrase: a synthesiser pauses at a comma, and that pause would be inside a label.
MULTI_TURNS = (
    ("I'd like to book a table for", "four people tomorrow night."),
    ("so the thing is um", "I can't make it on Friday."),
    ("and then maybe we could", "go for a walk after lunch."),
    ("can you tell me", "what time the last train leaves?"),
    ("I was wondering if", "you could send me the report today."),
    ("the problem with the heating is that", "it turns off every night."),
    ("what I really need is", "a quiet room near the window."),
    ("if it rains on Saturday", "we should move the party inside."),
    ("my flight lands at", "about half past nine in the evening."),
    ("could you remind me to", "call the dentist on Monday?"),
    ("I think the best option would be", "the green one."),
    ("we were going to", "but then the car broke down", "so we stayed at home."),
    ("the meeting is on", "uh Thursday at", "three in the afternoon."),
    ("I need to", "pick up the kids and", "then buy something for dinner."),
    ("tell me more about", "the hotels near the beach."),
    ("well what happened was", "the package never arrived."),
    ("is there any way to", "change my seat to the aisle?"),
    ("I've been trying to", "reset my password all morning."),
    ("the number you need is", "four five six", "seven eight nine."),
    ("before we start I want to", "say thank you all for coming."),
    ("because the store was closed", "I ordered it online instead."),
    ("let me check if", "um", "yes we have two rooms left."),
    ("and also", "can you add milk to the list?"),
    ("so basically what we're looking for is", "something cheap close to the station."),
    ("the weather tomorrow will be", "sunny in the morning with wind later."),
    ("I'm not sure whether", "I locked the front door."),
)
SINGLE_TURNS = (
    "What time is it?", "Turn off the lights in the kitchen.", "That sounds great to me.",
    "Please play some quiet music.", "How far is the nearest pharmacy?", "I'll have the soup please.",
    "Can you repeat that?", "Set a timer for ten minutes.", "No I meant next week.",
    "Thanks that's all I needed.", "Where did I park the car?", "Book it for seven o'clock.",
    "I don't think that's right.", "Send the message to my sister.", "What's the weather like today?",
    "Let's do it tomorrow instead.",
)
BACKCHANNELS = ("mm-hm", "yeah", "okay", "uh-huh", "right", "sure", "I see")


@dataclass(frozen=True)
class CorpusItem:
    """One labelled audio file. ``labels_source`` is ``"construction"`` (generated) or ``"hand, in-project"``."""

    item_id: str
    audio_path: Path
    segments_path: Path
    turns_path: Path
    texts: tuple[str, ...]  # one per turn ("" when unknown)
    turn_kinds: tuple[str, ...]  # "multi" | "single" | "backchannel" | "labelled"
    voice: str | None  # "engine:voice"
    rate: int | None  # words per minute asked of the synthesiser
    snr_db: float | None  # None: clean
    noise: str | None
    sample_rate_hz: int
    duration_ms: float
    labels_source: str
    sha256: str = ""

    def segments(self) -> list[tuple[float, float]]:
        """Speech spans (start_ms, end_ms), one per phrase."""
        return read_segments(self.segments_path)

    def turns(self) -> list[tuple[float, float]]:
        """Turns (start_ms, end_ms): first phrase's start to last phrase's end."""
        return read_segments(self.turns_path)

    def read(self) -> np.ndarray:
        """The audio as float32."""
        audio, _ = sf.read(self.audio_path, dtype="float32")
        return audio


@dataclass(frozen=True)
class Corpus(Sequence):
    """The items of a corpus folder (a sequence of ``CorpusItem``) and its manifest."""

    root: Path | None
    items: tuple[CorpusItem, ...]
    manifest: dict = field(default_factory=dict, compare=False)

    def __getitem__(self, index):  # type: ignore[override]
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[CorpusItem]:
        return iter(self.items)

    def segments(self, item: CorpusItem) -> list[tuple[float, float]]:
        return item.segments()

    def turns(self, item: CorpusItem) -> list[tuple[float, float]]:
        return item.turns()


# -- synthesis ---------------------------------------------------------------------------------------


def _engine_version(engine: str) -> str:
    out = subprocess.run([engine, "--version"], capture_output=True, text=True, timeout=10)
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else ""


def _parse_voice(voice: str) -> tuple[str, str]:
    engine, _, name = voice.partition(":") if ":" in voice else ("espeak-ng", "", voice)
    if engine not in ENGINES or not name:
        raise ConfigError(f"a voice is 'espeak-ng:NAME' or 'flite:NAME' {got(voice)}")
    return engine, name


def _require_engine(engine: str) -> None:
    if shutil.which(engine) is None:
        raise MissingExtra(f"the labelled corpus needs the {engine} program: apt-get install {ENGINES[engine]} "
                           f"(Debian package {ENGINES[engine]!r}) {got(engine)}", extra=f"debian:{ENGINES[engine]}")


class _Synth:
    """Phrase synthesis at ``sample_rate_hz``, trimmed to the speech span, cached per (voice, rate, text)."""

    def __init__(self, sample_rate_hz: int) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.cache: dict[tuple[str, int, str], np.ndarray] = {}

    def phrase(self, voice: str, rate: int, text: str) -> np.ndarray:
        key = (voice, rate, text)
        if key not in self.cache:
            self.cache[key] = trim(self._raw(voice, rate, text), self.sample_rate_hz)
        return self.cache[key]

    def _raw(self, voice: str, rate: int, text: str) -> np.ndarray:
        engine, name = _parse_voice(voice)
        if engine == "espeak-ng":
            command = ["espeak-ng", "-v", name, "-s", str(rate), "--stdout", text]
        else:
            stretch = f"{DEFAULT_RATES_WPM[1] / rate:.4f}"
            command = ["flite", "-voice", name, "--setf", f"duration_stretch={stretch}", "-t", text, "-o", "/dev/stdout"]
        done = subprocess.run(command, capture_output=True, timeout=60)
        if done.returncode or not done.stdout:
            raise ConfigError(f"{engine} could not synthesise with voice {name!r}: "
                              f"{done.stderr.decode(errors='replace').strip()} {got(voice)}")
        audio, rate_hz = sf.read(io.BytesIO(done.stdout), dtype="float64")
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        return soxr.resample(audio, rate_hz, self.sample_rate_hz, quality="HQ")


def trim(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Cut ``audio`` to its first and last ``TRIM_FRAME_MS`` frame whose RMS is above ``TRIM_THRESHOLD_DBFS``,
    leaving out isolated blips at the edges (``TRIM_BLIP_MS``, ``TRIM_BLIP_GAP_MS``)."""
    frame = ms_to_samples(TRIM_FRAME_MS, sample_rate_hz)
    active = np.flatnonzero(_frame_dbfs(audio, frame) > TRIM_THRESHOLD_DBFS)
    if active.size == 0:
        raise ConfigError(f"the synthesiser gave no sound above {TRIM_THRESHOLD_DBFS} dBFS {got(audio.shape)}")
    groups = np.split(active, np.flatnonzero(np.diff(active) > TRIM_BLIP_GAP_MS / TRIM_FRAME_MS) + 1)
    blip_frames = TRIM_BLIP_MS / TRIM_FRAME_MS
    while len(groups) > 1 and groups[0][-1] - groups[0][0] + 1 < blip_frames:
        groups.pop(0)
    while len(groups) > 1 and groups[-1][-1] - groups[-1][0] + 1 < blip_frames:
        groups.pop()
    return audio[groups[0][0] * frame: (groups[-1][-1] + 1) * frame]


def _frame_dbfs(audio: np.ndarray, frame: int) -> np.ndarray:
    num = math.ceil(len(audio) / frame)
    padded = np.zeros(num * frame)
    padded[: len(audio)] = audio
    power = np.mean(padded.reshape(num, frame) ** 2, axis=1)
    return 10 * np.log10(np.maximum(power, 1e-20))


def _longest_quiet_ms(audio: np.ndarray, sample_rate_hz: int) -> float:
    """The longest run of sub-threshold frames inside a trimmed phrase."""
    frame = ms_to_samples(TRIM_FRAME_MS, sample_rate_hz)
    longest = run = 0
    for quiet in _frame_dbfs(audio, frame) <= TRIM_THRESHOLD_DBFS:
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    return longest * TRIM_FRAME_MS


# -- construction ------------------------------------------------------------------------------------


def _draw_turn(rng: np.random.Generator) -> tuple[str, list[tuple[str, bool]]]:
    """A turn kind and its phrases as (text, complete)."""
    kind = TURN_KINDS[int(rng.choice(len(TURN_KINDS), p=TURN_KIND_P))]
    if kind == "multi":
        phrases = MULTI_TURNS[int(rng.integers(len(MULTI_TURNS)))]
        return kind, [(text, index == len(phrases) - 1) for index, text in enumerate(phrases)]
    bank = SINGLE_TURNS if kind == "single" else BACKCHANNELS
    return kind, [(bank[int(rng.integers(len(bank)))], True)]


def _uniform_ms(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])


def _babble(synth: _Synth, rng: np.random.Generator, num_samples: int, exclude: str) -> np.ndarray:
    """Several other voices talking continuously, summed; unit RMS."""
    voices = [v for v in BABBLE_VOICES if v != exclude]
    chosen = rng.choice(len(voices), size=min(BABBLE_TALKERS, len(voices)), replace=False)
    texts = [t for turn in MULTI_TURNS for t in turn] + list(SINGLE_TURNS)
    total = np.zeros(num_samples)
    for index in chosen:
        parts, length = [], 0
        while length < num_samples:
            piece = synth.phrase(voices[int(index)], 170, texts[int(rng.integers(len(texts)))])
            piece = piece / max(np.sqrt(np.mean(piece**2)), 1e-12)
            parts.append(piece)
            length += len(piece)
        talker = np.concatenate(parts)
        total += np.roll(talker, int(rng.integers(len(talker))))[:num_samples]
    return total / max(np.sqrt(np.mean(total**2)), 1e-12)


def _noise(kind: str, synth: _Synth, rng: np.random.Generator, num_samples: int, voice: str) -> np.ndarray:
    if kind == "white":
        return rng.standard_normal(num_samples)
    if kind == "pink":
        fast_len = 1 << max(num_samples - 1, 1).bit_length()  # a power of two keeps the FFT fast
        return pink_noise(fast_len, seed=int(rng.integers(2**31)))[:num_samples].astype(np.float64)
    return _babble(synth, rng, num_samples, exclude=voice)


def _build_item(synth: _Synth, seed: int, index: int, voices: Sequence[str], rates: Sequence[int],
                turns_per_item: int, pause_ms: tuple[float, float], gap_ms: tuple[float, float]) -> dict:
    """Draw and lay out one item's clean speech; returns the audio and its exact labels (in samples)."""
    rng = np.random.default_rng([seed, index])
    rate_hz = synth.sample_rate_hz
    voice = voices[int(rng.integers(len(voices)))]
    rate = int(rates[int(rng.integers(len(rates)))])
    pieces: list[np.ndarray] = [np.zeros(ms_to_samples(LEAD_MS, rate_hz))]
    position = len(pieces[0])
    turns, quiet_ms = [], 0.0
    for _ in range(turns_per_item):
        kind, phrases = _draw_turn(rng)
        spans = []
        for phrase_index, (text, complete) in enumerate(phrases):
            if phrase_index:
                pause = np.zeros(ms_to_samples(_uniform_ms(rng, pause_ms), rate_hz))
                pieces.append(pause)
                position += len(pause)
            # a trailing comma gives a fragment the synthesiser's continuation intonation; its pause is trimmed
            audio = synth.phrase(voice, rate, text if complete else text + ",")
            quiet_ms = max(quiet_ms, _longest_quiet_ms(audio, rate_hz))
            spans.append({"text": text, "complete": complete, "start": position, "end": position + len(audio)})
            pieces.append(audio)
            position += len(audio)
        turns.append({"kind": kind, "phrases": spans})
        gap = np.zeros(ms_to_samples(_uniform_ms(rng, gap_ms), rate_hz))
        pieces.append(gap)
        position += len(gap)
    return {"voice": voice, "rate": rate, "audio": np.concatenate(pieces), "turns": turns, "quiet_ms": quiet_ms}


def _speech_mask(num_samples: int, turns: list[dict]) -> np.ndarray:
    mask = np.zeros(num_samples, bool)
    for turn in turns:
        for span in turn["phrases"]:
            mask[span["start"]: span["end"]] = True
    return mask


def _write_csv(path: Path, rows: list[tuple[float, float]]) -> None:
    path.write_text("start_ms,end_ms\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rows))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_item(root: Path, synth: _Synth, seed: int, index: int, voices: Sequence[str], rates: Sequence[int],
                turns_per_item: int, pause_ms: tuple[float, float], gap_ms: tuple[float, float],
                noise: str | None, snr_db: float | None) -> dict:
    """Build one item, mix its noise, write its wav and CSVs; returns its manifest record."""
    sample_rate_hz = synth.sample_rate_hz
    item_id = f"item{index:04d}"
    built = _build_item(synth, seed, index, voices, rates, turns_per_item, pause_ms, gap_ms)
    clean = built["audio"]
    mask = _speech_mask(len(clean), built["turns"])
    speech_gain_db = SPEECH_LEVEL_DBFS - rms_dbfs(clean[mask])
    clean = clean * db_to_gain(speech_gain_db)
    item_snr = snr_db if noise is not None else None
    item_noise = noise if item_snr is not None else None
    mixed = clean
    if item_noise is not None and item_snr is not None:
        noise_rng = np.random.default_rng([seed, index, 1])  # its own stream: the speech is the same at any SNR
        noise_audio = _noise(item_noise, synth, noise_rng, len(clean), built["voice"])
        mixed = mix_at_snr(clean, noise_audio, item_snr, speech_mask=mask).astype(np.float64)
    peak = float(np.max(np.abs(mixed)))
    scale = 0.99 / peak if peak > 0.99 else 1.0  # a common scale keeps the SNR
    pcm = float_to_pcm16(mixed * scale)
    audio_path = root / f"{item_id}.wav"
    sf.write(audio_path, pcm, sample_rate_hz, subtype="PCM_16")
    measured = None
    if item_noise is not None:
        speech = pcm16_to_float(float_to_pcm16(clean * scale)).astype(np.float64)
        residual = pcm16_to_float(pcm).astype(np.float64) - speech
        measured = round(10 * math.log10(np.mean(speech[mask] ** 2) / np.mean(residual**2)), 3)

    def ms(sample: int) -> float:
        return samples_to_ms(sample, sample_rate_hz)

    turns_out = []
    for turn in built["turns"]:
        phrases = [{"text": p["text"], "complete": p["complete"], "start_ms": ms(p["start"]),
                    "end_ms": ms(p["end"])} for p in turn["phrases"]]
        turns_out.append({"kind": turn["kind"], "text": " ".join(p["text"] for p in phrases),
                          "start_ms": phrases[0]["start_ms"], "end_ms": phrases[-1]["end_ms"],
                          "phrases": phrases})
    segments = [(p["start_ms"], p["end_ms"]) for turn in turns_out for p in turn["phrases"]]
    _write_csv(root / f"{item_id}.segments.csv", segments)
    _write_csv(root / f"{item_id}.turns.csv", [(t["start_ms"], t["end_ms"]) for t in turns_out])
    return {"item_id": item_id, "voice": built["voice"], "rate": built["rate"], "snr_db": item_snr,
            "snr_db_measured": measured, "noise": item_noise, "sample_rate_hz": sample_rate_hz,
            "duration_ms": ms(len(pcm)), "speech_gain_db": round(speech_gain_db, 3),
            "gain_db": round(20 * math.log10(scale), 3), "max_quiet_inside_phrase_ms": built["quiet_ms"],
            "sha256": _sha256(audio_path), "turns": turns_out}


# -- public API --------------------------------------------------------------------------------------


def _check_range(name: str, value: Sequence[float], *, positive: bool) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a (low_ms, high_ms) pair {got(value)}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high or low < 0 or (positive and low <= 0):
        raise ConfigError(f"{name} must be 0 {'<' if positive else '<='} low_ms <= high_ms, finite {got(value)}")
    return low, high


def _check_snrs(snr_db: float | None | Sequence[float | None]) -> list[float | None]:
    values = list(snr_db) if isinstance(snr_db, Sequence) and not isinstance(snr_db, str) else [snr_db]
    if not values:
        raise ConfigError(f"snr_db needs at least one value {got(snr_db)}")
    for value in values:
        if value is not None and (isinstance(value, bool) or not isinstance(value, Real)
                                  or not math.isfinite(value)):
            raise ConfigError(f"snr_db must be a finite number or None {got(value)}")
    return [None if v is None else float(v) for v in values]


def generate(out_dir: str | Path, *, num_utterances: int = 20, seed: int = 0,
             snr_db: float | None | Sequence[float | None] = 20.0, noise: str | None = "pink",
             voices: Sequence[str] | None = None, rates_wpm: Sequence[int] = DEFAULT_RATES_WPM,
             pause_ms: tuple[float, float] = (150.0, 900.0), gap_ms: tuple[float, float] = (1500.0, 3000.0),
             turns_per_item: int = 3, sample_rate_hz: int = 16000, overwrite: bool = False) -> Corpus:
    """Write ``num_utterances`` labelled items into ``out_dir`` and return them as a ``Corpus``.

    ``snr_db``: one value for all items, ``None`` for clean, or a sequence cycled over the items; the SNR is
    active-speech power (over the labelled spans) over noise power. ``noise``: ``"white"``, ``"pink"``,
    ``"babble"`` (other synthetic voices) or ``None``. ``voices``: ``"espeak-ng:NAME"`` / ``"flite:NAME"``
    (default ``DEFAULT_VOICES``, flite ones only if flite is installed); each item draws one voice and one of
    ``rates_wpm``. ``pause_ms``: range of pauses inside a turn; ``gap_ms``: between turns (and after the last).
    """
    for name, value, low in (("num_utterances", num_utterances, 1), ("turns_per_item", turns_per_item, 1),
                             ("sample_rate_hz", sample_rate_hz, 8000)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low} {got(value)}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer {got(seed)}")
    if noise is not None and noise not in NOISES:
        raise ConfigError(f"noise must be one of {', '.join(NOISES)} or None {got(noise)}")
    snrs = _check_snrs(snr_db)
    pause = _check_range("pause_ms", pause_ms, positive=False)
    gap = _check_range("gap_ms", gap_ms, positive=True)
    rates = list(rates_wpm)
    if not rates or any(isinstance(r, bool) or not isinstance(r, Integral) or not 80 <= r <= 450 for r in rates):
        raise ConfigError(f"rates_wpm must be integers in 80..450 words per minute {got(rates_wpm)}")
    num_utterances, seed, turns_per_item, sample_rate_hz = map(int, (num_utterances, seed, turns_per_item, sample_rate_hz))
    rates = [int(r) for r in rates]
    if voices is None:
        chosen = [v for v in DEFAULT_VOICES if shutil.which(_parse_voice(v)[0])]
        _require_engine("espeak-ng")
    else:
        chosen = list(voices)
        if not chosen or isinstance(voices, str):
            raise ConfigError(f"voices must be a non-empty sequence of 'engine:name' {got(voices)}")
    engines = sorted({_parse_voice(v)[0] for v in chosen} | ({"espeak-ng"} if noise == "babble" else set()))
    for engine in engines:
        _require_engine(engine)

    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"out_dir is not a folder {got(str(root))}")
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise ConfigError("out_dir is not empty; pass overwrite=True (vkit corpus --overwrite) to replace "
                              f"a corpus {got(str(root))}")
        for old in [*root.glob("item*.wav"), *root.glob("item*.segments.csv"), *root.glob("item*.turns.csv"),
                    root / MANIFEST]:
            old.unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)

    synth = _Synth(sample_rate_hz)
    records = [_write_item(root, synth, seed, index, chosen, rates, turns_per_item, pause, gap,
                           noise, snrs[index % len(snrs)]) for index in range(num_utterances)]
    manifest = {
        "generator": "vkit.corpus", "generator_version": GENERATOR_VERSION,
        "engines": {engine: _engine_version(engine) for engine in engines},
        "labels_source": "construction",
        "labels": {"trim_threshold_dbfs": TRIM_THRESHOLD_DBFS, "trim_frame_ms": TRIM_FRAME_MS,
                   "trim_blip_ms": TRIM_BLIP_MS, "trim_blip_gap_ms": TRIM_BLIP_GAP_MS,
                   "speech_level_dbfs": SPEECH_LEVEL_DBFS, "lead_ms": LEAD_MS},
        "parameters": {"num_utterances": num_utterances, "seed": seed, "snr_db": snrs if len(snrs) > 1 else snrs[0],
                       "noise": noise, "voices": chosen, "rates_wpm": rates, "pause_ms": list(pause),
                       "gap_ms": list(gap), "turns_per_item": turns_per_item, "sample_rate_hz": sample_rate_hz},
        "items": records,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return load(root)


def load(out_dir: str | Path) -> Corpus:
    """Read a corpus folder written by ``generate`` (its ``corpus.json``)."""
    root = Path(out_dir)
    path = root / MANIFEST
    if not path.is_file():
        raise ConfigError(f"no {MANIFEST} in the corpus folder {got(str(root))}")
    try:
        manifest = json.loads(path.read_text())
        items = tuple(
            CorpusItem(item_id=r["item_id"], audio_path=root / f"{r['item_id']}.wav",
                       segments_path=root / f"{r['item_id']}.segments.csv",
                       turns_path=root / f"{r['item_id']}.turns.csv",
                       texts=tuple(t["text"] for t in r["turns"]), turn_kinds=tuple(t["kind"] for t in r["turns"]),
                       voice=r["voice"], rate=r["rate"], snr_db=r["snr_db"], noise=r["noise"],
                       sample_rate_hz=r["sample_rate_hz"], duration_ms=r["duration_ms"],
                       labels_source=manifest["labels_source"], sha256=r["sha256"])
            for r in manifest["items"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a vkit corpus manifest {got(str(exc))}") from exc
    return Corpus(root, items, manifest)


def real_clips() -> Corpus:
    """The labelled recordings the project ships: ``vkit/data/two_turns.wav`` and, in a source tree,
    ``data/vad_eval.flac``. Their labels were made in this project (``labels_source="hand, in-project"``);
    each labelled segment counts as a turn."""
    from vkit.data import sample_path

    candidates = [("two_turns", sample_path("two_turns.wav"), sample_path("two_turns.segments.csv"), "light"),
                  ("vad_eval", Path(__file__).resolve().parents[1] / "data" / "vad_eval.flac",
                   Path(__file__).resolve().parents[1] / "data" / "vad_eval.segments.csv", None)]
    items = []
    for item_id, audio, labels, noise in candidates:
        if not (audio.is_file() and labels.is_file()):
            continue
        info = sf.info(str(audio))
        num_turns = len(read_segments(labels))
        items.append(CorpusItem(item_id=item_id, audio_path=audio, segments_path=labels, turns_path=labels,
                                texts=("",) * num_turns, turn_kinds=("labelled",) * num_turns, voice=None, rate=None,
                                snr_db=None, noise=noise, sample_rate_hz=info.samplerate,
                                duration_ms=samples_to_ms(info.frames, info.samplerate),
                                labels_source="hand, in-project", sha256=_sha256(audio)))
    return Corpus(None, tuple(items), {"labels_source": "hand, in-project"})

