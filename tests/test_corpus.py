"""vkit.corpus: labels from construction that agree with the clean audio, deterministic files, SNR as asked."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vkit import corpus
from vkit.cli import main
from vkit.errors import ConfigError, MissingExtra
from vkit.evaluation import read_segments
from vkit.units import ms_to_samples, rms_dbfs

SEED = 3
SNRS = [10.0, 20.0]
NUM = 4


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> corpus.Corpus:
    return corpus.generate(tmp_path_factory.mktemp("clean"), num_utterances=NUM, seed=SEED, snr_db=None)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> corpus.Corpus:
    return corpus.generate(tmp_path_factory.mktemp("noisy"), num_utterances=NUM, seed=SEED, snr_db=SNRS, noise="pink")


def _mask(segments: list[tuple[float, float]], num_samples: int) -> np.ndarray:
    mask = np.zeros(num_samples, bool)
    for start, end in segments:
        mask[ms_to_samples(start, 16000): ms_to_samples(end, 16000)] = True
    return mask


def _files(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(root.iterdir())}


def test_same_seed_gives_the_same_bytes_and_another_seed_other_audio(noisy, tmp_path) -> None:
    again = corpus.generate(tmp_path / "again", num_utterances=NUM, seed=SEED, snr_db=SNRS, noise="pink")
    assert _files(again.root) == _files(noisy.root)
    other = corpus.generate(tmp_path / "other", num_utterances=2, seed=SEED + 1, snr_db=SNRS, noise="pink")
    for item in other:
        assert item.audio_path.read_bytes() != (noisy.root / item.audio_path.name).read_bytes()


def test_labels_agree_with_the_clean_audio(clean) -> None:
    for item, record in zip(clean, clean.manifest["items"], strict=True):
        # the trim ran before the level gain; 0.5 dB for PCM16 rounding of a frame just above it (~15 LSB)
        threshold_dbfs = corpus.TRIM_THRESHOLD_DBFS + record["speech_gain_db"] - 0.5
        audio = item.read()
        assert item.sample_rate_hz == sf.info(str(item.audio_path)).samplerate == 16000
        assert item.duration_ms == pytest.approx(len(audio) / 16)
        segments = item.segments()
        assert record["max_quiet_inside_phrase_ms"] < 150.0  # shorter than any labelled pause
        mask = _mask(segments, len(audio))
        assert np.all(audio[~mask] == 0.0)  # pauses and gaps of the clean signal are digital silence
        for start, end in segments:
            speech = audio[ms_to_samples(start, 16000): ms_to_samples(end, 16000)]
            assert rms_dbfs(speech) > -40.0
            # a label starts and ends on a 5 ms frame above the trim threshold
            assert rms_dbfs(speech[:80]) > threshold_dbfs and rms_dbfs(speech[-80:]) > threshold_dbfs


def test_trim_keeps_the_frames_above_the_threshold() -> None:
    rate = 16000
    quiet = np.full(1600, 10 ** (-70 / 20))  # -70 dBFS: below the -60 dBFS threshold, trimmed away
    tone = 10 ** (-50 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 300 * np.arange(3200) / rate)
    kept = corpus.trim(np.concatenate([quiet, tone, quiet]), rate)
    assert len(kept) == 3200 and np.array_equal(kept, tone)
    with pytest.raises(ConfigError, match="no sound"):
        corpus.trim(quiet, rate)
    blip = np.full(160, 10 ** (-55 / 20))  # 10 ms, as flite leaves before and after its speech
    gap, short_gap = np.zeros(2400), np.zeros(800)  # 150 ms: set off; 50 ms: part of the phrase
    assert np.array_equal(corpus.trim(np.concatenate([blip, gap, tone, gap, blip]), rate), tone)
    kept = corpus.trim(np.concatenate([blip, short_gap, tone]), rate)
    assert len(kept) == 160 + 800 + 3200


def test_turns_hold_their_phrases_with_pauses_in_range(clean) -> None:
    kinds = set()
    for item, record in zip(clean, clean.manifest["items"], strict=True):
        turns, segments = item.turns(), item.segments()
        assert len(turns) == len(record["turns"]) == 3
        assert [(t["start_ms"], t["end_ms"]) for t in record["turns"]] == turns
        assert [(p["start_ms"], p["end_ms"]) for t in record["turns"] for p in t["phrases"]] == segments
        for (start, end), turn in zip(turns, record["turns"], strict=True):
            kinds.add(turn["kind"])
            inside = [s for s in segments if start <= s[0] and s[1] <= end]
            assert len(inside) == len(turn["phrases"]) and inside[0][0] == start and inside[-1][1] == end
            for before, after in zip(inside, inside[1:], strict=False):
                assert 150.0 - 0.1 <= after[0] - before[1] <= 900.0 + 0.1
            assert [p["complete"] for p in turn["phrases"]] == [False] * (len(inside) - 1) + [True]
            if turn["kind"] == "backchannel":
                assert len(inside) == 1 and turn["text"] in corpus.BACKCHANNELS
        for before, after in zip(turns, turns[1:], strict=False):
            assert 1500.0 - 0.1 <= after[0] - before[1] <= 3000.0 + 0.1
        assert item.duration_ms - turns[-1][1] >= 1500.0 - 0.1
    assert kinds == {"multi", "single", "backchannel"}


@pytest.mark.parametrize("noise", ["pink", "white", "babble"])
def test_noise_is_mixed_at_the_asked_snr_over_the_speech(clean, noisy, noise, tmp_path) -> None:
    made = noisy if noise == "pink" else corpus.generate(tmp_path, num_utterances=1, seed=SEED, snr_db=5.0, noise=noise)
    for index, item in enumerate(made):
        record = made.manifest["items"][index]
        assert record["gain_db"] == 0.0 and item.noise == noise
        speech = clean[index].read().astype(np.float64)
        residual = item.read().astype(np.float64) - speech
        mask = _mask(item.segments(), len(speech))
        achieved = 10 * np.log10(np.mean(speech[mask] ** 2) / np.mean(residual**2))
        assert achieved == pytest.approx(item.snr_db, abs=0.5)
        assert record["snr_db_measured"] == pytest.approx(achieved, abs=0.01)
    if noise == "pink":
        assert [item.snr_db for item in made] == [10.0, 20.0, 10.0, 20.0]


def test_load_round_trips_and_items_pickle(noisy) -> None:
    loaded = corpus.load(noisy.root)
    assert list(loaded) == list(noisy) and loaded.manifest == noisy.manifest
    assert loaded.manifest["parameters"]["seed"] == SEED and loaded.manifest["labels_source"] == "construction"
    import hashlib

    for item in loaded:
        assert item.labels_source == "construction"
        assert item.sha256 == hashlib.sha256(item.audio_path.read_bytes()).hexdigest()
        assert pickle.loads(pickle.dumps(item)) == item
        assert loaded.segments(item) == read_segments(item.segments_path)
    assert list(pickle.loads(pickle.dumps(loaded))) == list(loaded)


def test_real_clips_are_flagged_as_labelled_in_project() -> None:
    clips = corpus.real_clips()
    assert [item.item_id for item in clips] == ["two_turns", "vad_eval"]
    for item in clips:
        assert item.labels_source == "hand, in-project" and item.turns() == item.segments()
        assert 0 < len(item.segments()) == len(item.texts)
        assert all(0 <= a < b <= item.duration_ms for a, b in item.segments())


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"noise": "brown"}, "brown"), ({"snr_db": float("nan")}, "nan"), ({"snr_db": "loud"}, "loud"),
    ({"pause_ms": (900.0, 150.0)}, "900"), ({"gap_ms": (0.0, 100.0)}, "0.0"), ({"num_utterances": 0}, "0"),
    ({"voices": ["festival:kal"]}, "festival"), ({"rates_wpm": [20]}, "20"), ({"seed": -1}, "-1"),
])
def test_bad_parameters_are_named(kwargs, named, tmp_path) -> None:
    with pytest.raises(ConfigError, match=named):
        corpus.generate(tmp_path, **kwargs)


def test_existing_folder_missing_engine_and_missing_manifest(tmp_path, monkeypatch) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="overwrite"):
        corpus.generate(tmp_path, num_utterances=1)
    made = corpus.generate(tmp_path, num_utterances=1, overwrite=True)
    assert len(made) == 1 and (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="no corpus.json"):
        corpus.load(tmp_path / "nothing")
    monkeypatch.setattr(corpus.shutil, "which", lambda name: None)
    with pytest.raises(MissingExtra, match="apt-get install espeak-ng"):
        corpus.generate(tmp_path / "x", num_utterances=1)


def test_cli_writes_a_corpus(tmp_path, capsys) -> None:
    assert main(["corpus", str(tmp_path / "c"), "--num-utterances", "1", "--seed", "2", "--snr-db", "15",
                 "--noise", "white"]) == 0
    assert "1 labelled items" in capsys.readouterr().out
    (item,) = corpus.load(tmp_path / "c")
    assert (item.snr_db, item.noise) == (15.0, "white")
    assert main(["corpus", str(tmp_path / "c"), "--num-utterances", "1"]) == 2
    assert "overwrite" in capsys.readouterr().err
