"""Shared pieces of the interop suite: real third-party Realtime clients against vkit's local server.

Each client module skips when its package is not installed (``pip install -e '.[interop]'``). Features
the local server does not have yet are ``xfail(strict=True)`` marks naming the server feature, so a fixed
server turns them into failures to unmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr

from vkit.evaluation import read_segments
from vkit.units import ms_to_samples

DATA = Path(__file__).resolve().parents[2] / "data"
RATE_HZ = 24_000

#: the server features the suite waits for (the reasons of the strict xfail marks)
NEEDS_TOOLS = "server: no responder makes function calls (needs server tool support)"
NEEDS_TEXT = "server: output_modalities ['text'] still answers audio (needs the text modality)"
NEEDS_METADATA = "server: response.create metadata is replaced by vkit_* keys (needs metadata merge)"


@pytest.fixture(scope="session")
def turns_24k() -> list[np.ndarray]:
    """The three labelled utterances of data/two_turns.wav at 24 kHz, each with 1.2 s of silence after it."""
    audio, rate = sf.read(DATA / "two_turns.wav", dtype="float32")
    audio = soxr.resample(audio, rate, RATE_HZ).astype(np.float32)
    out = []
    for start_ms, end_ms in read_segments(DATA / "two_turns.segments.csv"):
        start, end = ms_to_samples(start_ms - 100, RATE_HZ), ms_to_samples(end_ms, RATE_HZ)
        out.append(np.concatenate([audio[max(start, 0) : end], np.zeros(ms_to_samples(1200, RATE_HZ), np.float32)]))
    return out


#: keys OpenAI's server sends that the SDK's models leave undeclared (session id/object/expires_at; usage's
#: image_tokens: see the Realtime reference's session and response.done shapes)
REAL_API_EXTRAS = frozenset({"id", "object", "expires_at", "image_tokens"})


def undeclared_keys(model: Any, where: str = "") -> list[str]:
    """Keys of a parsed SDK model (recursively) that its pydantic class does not declare and that the real
    API does not send either."""
    from pydantic import BaseModel

    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{where}.{k}" for k in (model.model_extra or {}) if k not in REAL_API_EXTRAS]
        for name in type(model).model_fields:
            found += undeclared_keys(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for index, value in enumerate(model):
            found += undeclared_keys(value, f"{where}[{index}]")
    return found
