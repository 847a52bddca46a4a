"""Smart Turn v3.2 (BSD-2-Clause, by Daily): an ONNX end-of-turn classifier on Whisper log-mel features."""

from __future__ import annotations

import threading
import time

import numpy as np

from vkit.filters.turn.features import SAMPLE_RATE_HZ, filter_bank, log_mel
from vkit.filters.vad.models import cpu_session
from vkit.units import ns_to_ms

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
# The file is int8 QDQ. Left to itself onnxruntime fuses the QDQ pairs into integer kernels whose results
# depend on the CPU: on AVX2 without VNNI the u8 x s8 products saturate, and the same audio scored 0.80 there
# against 0.33 for the graph's own quantize -> float op -> dequantize arithmetic (which VNNI CPUs come close
# to). Unfused, every machine computes the model as written, for about 10 % more time per call.
SESSION_CONFIG = {"session.disable_quant_qdq": "1"}


class SmartTurnModel:
    """The probability that a turn is complete, from the audio ending at the decision (16 kHz mono).

    One shared onnxruntime session on one thread, the QDQ graph run unfused (the same probabilities on every
    CPU, see ``SESSION_CONFIG``); a call costs tens to a few hundred ms on a CPU core.
    """

    _session = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.session = self.load()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.session = self.load()

    @classmethod
    def load(cls):  # noqa: ANN206 - onnxruntime type
        """The shared session and the mel filters, loaded on first use (call early to keep it off a hot path)."""
        with cls._lock:
            if cls._session is None:
                cls._session = cpu_session(MODEL_FILE, SESSION_CONFIG)
        filter_bank()
        return cls._session

    sample_rate_hz = SAMPLE_RATE_HZ

    def probability(self, audio: np.ndarray) -> tuple[float, float]:
        """``(probability of a complete turn, inference ms)`` for 16 kHz mono audio (its last 8 s are used)."""
        t0 = time.perf_counter_ns()
        features = log_mel(audio)[np.newaxis]
        (out,) = self.session.run(None, {"input_features": features})
        return float(out.reshape(-1)[0]), ns_to_ms(time.perf_counter_ns() - t0)
