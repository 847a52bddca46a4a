"""Latency injection: how long the server waits before the first audio delta, and how fast it streams.

A delay spec is a number of milliseconds (``"150"``), a distribution (``"normal:300,50"``,
``"uniform:100,400"``, ``"lognormal:300,0.3"``), or a profile name: ``"speech-to-speech"`` (a fast
one-socket model) or ``"cascade"`` (STT + LLM + TTS). Draws come from a seeded generator.
"""

from __future__ import annotations

import numpy as np

from vkit.errors import ConfigError, got

PROFILES = {
    "none": "0",
    "speech-to-speech": "normal:280,40",
    "cascade": "normal:1100,150",
}


class DelayModel:
    """Draws the injected delay (ms) for each response."""

    def __init__(self, spec: str | float | int = 0, seed: int = 0) -> None:
        self.spec = str(spec)
        text = PROFILES.get(self.spec, self.spec)
        self._rng = np.random.default_rng(seed)
        kind, _, args = text.partition(":")
        try:
            if not args:
                self._kind, self._params = "fixed", (float(kind),)
            else:
                self._kind, self._params = kind, tuple(float(a) for a in args.split(","))
        except ValueError:
            raise ConfigError(f"response delay must be ms, 'normal:MEAN,SD', 'uniform:LO,HI', 'lognormal:MEDIAN,SIGMA' "
                              f"or one of {sorted(PROFILES)} {got(spec)}") from None
        arity = {"fixed": 1, "normal": 2, "uniform": 2, "lognormal": 2}
        if arity.get(self._kind) != len(self._params) or self._params[0] < 0:
            raise ConfigError(f"response delay spec not understood {got(spec)}")

    def draw_ms(self) -> float:
        a = self._params[0]
        if self._kind == "fixed":
            return a
        b = self._params[1]
        if self._kind == "normal":
            return max(0.0, float(self._rng.normal(a, b)))
        if self._kind == "uniform":
            return float(self._rng.uniform(a, b))
        return float(a * np.exp(self._rng.normal(0.0, b)))

    def __repr__(self) -> str:
        return f"DelayModel({self.spec!r})"
