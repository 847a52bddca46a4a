"""Offline text-to-speech through espeak-ng or flite (Debian packages), run as a subprocess."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import soundfile as sf
import soxr

from vkit.errors import ConfigError, got

OUTPUT_RATE_HZ = 24_000


class Speech:
    """Synthesise text to mono float32 audio at ``OUTPUT_RATE_HZ`` with espeak-ng or flite."""

    def __init__(self, engine: str | None = None, voice: str | None = None) -> None:
        self.engine = engine or ("espeak-ng" if shutil.which("espeak-ng") else "flite" if shutil.which("flite") else "")
        if not self.engine or not shutil.which(self.engine):
            raise ConfigError("text-to-speech needs espeak-ng or flite (Debian: apt-get install espeak-ng) "
                              f"{got(engine)}")
        self.voice = voice

    def synthesise(self, text: str) -> np.ndarray:
        if self.engine == "espeak-ng":
            command = ["espeak-ng", "--stdout", "-s", "170", *(["-v", self.voice] if self.voice else []), text]
        else:
            command = ["flite", *(["-voice", self.voice] if self.voice else []), "-t", text, "-o", "/dev/stdout"]
        wav = subprocess.run(command, check=True, capture_output=True, timeout=30).stdout
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
        return soxr.resample(audio, rate, OUTPUT_RATE_HZ).astype(np.float32) * 0.7
