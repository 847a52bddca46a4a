"""Sources: files of any format, arrays, generators, devices; bad input gives clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import vkit
from vkit import filters, sinks, sources
from vkit.errors import AudioInputError, ConfigError, StageError


@pytest.mark.parametrize("suffix,subtype", [(".wav", "PCM_16"), (".flac", "PCM_24"), (".ogg", "VORBIS"),
                                            (".mp3", "MPEG_LAYER_III")])
def test_file_streams_every_sample_of_any_format_rate_and_channel_count(tmp_path, suffix, subtype):
    rate = 44_100
    t = np.arange(rate) / rate
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 500 * t)], 1)
    path = tmp_path / f"tone{suffix}"
    sf.write(path, stereo, rate, subtype=subtype)
    source = sources.File(path, frame_ms=37)
    assert source.format == vkit.StreamFormat(rate, 2)
    mem = sinks.Memory()
    vkit.run(source | mem)
    audio = mem.audio()
    assert audio.shape[0] == 2 and audio.shape[1] == sf.info(path).frames
    if suffix in (".wav", ".flac"):
        np.testing.assert_allclose(audio.T, stereo, atol=2e-4)
    assert all(f.num_samples == 1632 for f in mem.frames["input"][:-1])


def test_mono_file_frames_are_contiguous_across_the_source_reads(tmp_path):
    rate = 16_000  # read a second at a time: 2.5 s + 70 samples end in a partial read and a partial frame
    samples = np.random.default_rng(3).uniform(-0.5, 0.5, int(2.5 * rate) + 70).astype(np.float32)
    path = tmp_path / "mono.wav"
    sf.write(path, samples, rate, subtype="FLOAT")
    mem = sinks.Memory()
    vkit.run(sources.File(path, frame_ms=20) | mem)
    frames = mem.frames["input"]
    assert [f.start_sample for f in frames] == list(range(0, samples.size, 320))
    assert [f.num_samples for f in frames[-2:]] == [320, 70]
    np.testing.assert_array_equal(mem.audio()[0], samples)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(AudioInputError, match=r"audio file not found \(got '.*nope.wav'\)"):
        sources.File(tmp_path / "nope.wav")


def test_non_audio_file_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all")
    with pytest.raises(AudioInputError, match=r"cannot read audio file .*\(got '.*notes.wav'\)"):
        sources.File(path)


def test_truncated_file_is_read_up_to_the_damage_or_refused_clearly(tmp_path):
    path = tmp_path / "cut.flac"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 48_000), 16_000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    mem = sinks.Memory()
    try:
        vkit.run(sources.File(path) | mem)
    except (AudioInputError, StageError) as exc:
        assert "cut.flac" in str(exc)
    else:
        assert 0 < mem.audio().shape[1] <= 48_000


def test_only_integer_files_skip_the_next_stages_finite_check(tmp_path):
    samples = np.zeros(1600, np.float32)
    samples[700] = np.nan
    sf.write(tmp_path / "float.wav", samples, 16_000, subtype="FLOAT")
    sf.write(tmp_path / "pcm.wav", np.zeros(1600, np.float32), 16_000, subtype="PCM_16")
    assert sources.File(tmp_path / "pcm.wav").finite_blocks and not sources.File(tmp_path / "float.wav").finite_blocks
    with pytest.raises(StageError, match=r"Resample got NaN or infinite samples, first at sample 700"):
        vkit.run(sources.File(tmp_path / "float.wav") | filters.Resample(8_000) | sinks.Null())
    memory = sinks.Memory()
    vkit.run(sources.File(tmp_path / "pcm.wav") | filters.Resample(8_000) | memory)
    assert memory.audio().shape == (1, 800)


def test_array_refuses_nan_with_the_position():
    samples = np.zeros(1000, np.float32)
    samples[123:130] = np.nan
    with pytest.raises(AudioInputError, match=r"NaN or infinite values, first at sample 123 \(got 7\)"):
        sources.Array(samples, 16_000)


def test_array_refuses_integers_and_transposed_layouts():
    with pytest.raises(AudioInputError, match="float in"):
        sources.Array(np.zeros(100, np.int16), 16_000)
    with pytest.raises(AudioInputError, match=r"pass samples.T \(got \(1000, 2\)\)"):
        sources.Array(np.zeros((1000, 2), np.float32), 16_000)
    with pytest.raises(ConfigError, match=r"sample_rate_hz must be a positive integer \(got 0\)"):
        sources.Array(np.zeros(100, np.float32), 0)


def test_generators_produce_the_asked_level_and_frequency():
    mem = sinks.Memory()
    vkit.run(sources.Tone(1000, duration_ms=500, sample_rate_hz=16_000, level_dbfs=-6) | mem)
    tone = mem.audio()[0]
    assert tone.shape == (8000,)
    assert abs(np.max(np.abs(tone)) - 10 ** (-6 / 20)) < 1e-3
    assert np.argmax(np.abs(np.fft.rfft(tone))) == 500  # 1000 Hz at 2 Hz per bin
    mem.reset()
    vkit.run(sources.Noise(duration_ms=1000, sample_rate_hz=16_000, level_dbfs=-30, color="pink", seed=3) | mem)
    noise = mem.audio()[0]
    assert abs(20 * np.log10(np.sqrt(np.mean(noise**2))) + 30) < 0.01
    mem.reset()
    vkit.run(sources.Silence(duration_ms=100, sample_rate_hz=8000) | mem)
    assert not mem.audio().any() and mem.audio().shape == (1, 800)
    with pytest.raises(ConfigError, match="half the sample rate"):
        sources.Tone(9000, sample_rate_hz=16_000)


def test_microphone_on_a_headless_machine_fails_clearly():
    with pytest.raises(StageError) as info:
        vkit.run(sources.Microphone(sample_rate_hz=16_000) | sinks.Null())
    cause = info.value.__cause__
    assert isinstance(cause, (ConfigError, AudioInputError))
    assert "PortAudio" in str(cause) or "no usable input device" in str(cause) or "sounddevice" in str(cause)


def test_bad_pace_is_refused():
    with pytest.raises(ConfigError, match=r"pace must be 'realtime' or 'fast' \(got 'slow'\)"):
        sources.Silence(pace="slow")


def test_fast_offline_runs_can_show_a_progress_bar(capsys):
    vkit.run(sources.Silence(duration_ms=2000, sample_rate_hz=8000, progress=True) | sinks.Null())
    assert "s audio" in capsys.readouterr().err
    vkit.run(sources.Silence(duration_ms=2000, sample_rate_hz=8000) | sinks.Null())  # short runs stay quiet
    assert capsys.readouterr().err == ""


def test_hostile_arrays_are_refused_clearly():
    import warnings

    from vkit.errors import AudioInputError as Refused

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: a clear error instead
        with pytest.raises(Refused, match="samples must be real"):
            sources.Array(np.ones(480, np.complex64) * 0.1j, 24_000)
    for empty in (np.zeros((0, 480), np.float32), np.zeros(0, np.float32), np.zeros((1, 0), np.float32)):
        with pytest.raises(Refused, match="no audio"):
            sources.Array(empty, 24_000)
    loud = np.zeros(480, np.float32)
    loud[3] = -40.0
    with pytest.raises(Refused, match=r"reach 40.*\(got 40.0\)"):
        sources.Array(loud, 24_000)
    sources.Array(loud / 25, 24_000)  # 1.6: over full scale but plausibly intended, clipped at the wire


def test_a_wav_whose_header_claims_more_frames_is_refused_naming_both_counts(tmp_path):
    import soundfile as sf

    from vkit.errors import AudioInputError as Refused

    path = tmp_path / "cut.wav"
    sf.write(path, np.zeros(24_000, np.float32), 24_000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2 * 10_000])  # the header still says 24000 frames
    with pytest.raises(Refused, match=r"cut.wav: the header claims 24000 frames but the file holds 14000"):
        sources.File(path)
