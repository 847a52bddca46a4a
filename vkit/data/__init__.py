"""Sample audio shipped inside the package: the demo's labelled two-turn conversation.

``two_turns.wav`` (16 kHz mono, three user turns over light noise) and ``two_turns.segments.csv``
(its speech segments), made by ``data/make_data.py`` in the source tree. Found through
``importlib.resources``, so they work from an installed wheel in any folder.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from vkit.errors import ConfigError, got

__all__ = ["sample_path", "SAMPLES"]

SAMPLES = ("two_turns.wav", "two_turns.segments.csv")


def sample_path(name: str = "two_turns.wav") -> Path:
    """The file path of a shipped sample (one of ``SAMPLES``)."""
    if name not in SAMPLES:
        raise ConfigError(f"vkit ships the samples {', '.join(SAMPLES)} {got(name)}")
    return Path(str(files(__name__).joinpath(name)))
