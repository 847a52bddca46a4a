"""The speech models behind ``VAD``: each scores fixed windows of mono audio with a probability."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from vkit.errors import ConfigError, got
from vkit.units import float_to_pcm16_bytes, ms_to_samples, ms_to_whole_samples

MODEL_DIR = Path(__file__).resolve().parent.parent.parent / "models"


def cpu_session(model_file: str, config: dict[str, str] | None = None):  # noqa: ANN201 - onnxruntime type
    """An onnxruntime session on one CPU thread for a model shipped in ``vkit/models/``; ``config``: session
    config entries (``SessionOptions.add_session_config_entry``)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return onnxruntime.InferenceSession(str(MODEL_DIR / model_file), options, providers=["CPUExecutionProvider"])


class SpeechModel(Protocol):
    sample_rates_hz: tuple[int, ...]  # rates the model takes; () means any

    def window_samples(self, sample_rate_hz: int) -> int: ...
    def score(self, window: np.ndarray, sample_rate_hz: int) -> float: ...
    def reset(self) -> None: ...


_UNPICKLED = ("session", "_bindings", "_context", "_window", "_last_samples")  # rebuilt on arrival


class SileroModel:
    """Silero VAD v6 (MIT), ONNX, run by onnxruntime on one thread: 32 ms windows at 16 or 8 kHz."""

    sample_rates_hz = (16_000, 8_000)
    _session = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.session = self.load()
        self.reset()

    def __getstate__(self) -> dict:
        """Pickle the recurrent state, not the onnxruntime session (shared, and reloaded on arrival)."""
        return {k: v for k, v in self.__dict__.items() if k not in _UNPICKLED}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.session = self.load()
        self._bindings = None  # rebuilt on the next window, over the arrived buffers

    @classmethod
    def load(cls):  # noqa: ANN206 - onnxruntime type
        """The shared onnxruntime session, loaded on first use (call it early to keep the load off a hot path)."""
        with cls._lock:
            if cls._session is None:
                cls._session = cpu_session("silero_vad.onnx")
            return cls._session

    def window_samples(self, sample_rate_hz: int) -> int:
        return 512 if sample_rate_hz == 16_000 else 256

    def reset(self) -> None:
        self._states = (np.zeros((2, 1, 128), np.float32), np.zeros((2, 1, 128), np.float32))
        self._current = 0  # which of _states holds the state the next window reads
        self._input: np.ndarray | None = None  # context + window, reused between calls (views of it: _start)
        self._window_samples = 0  # the window size and rate the buffers are set up for
        self._window_rate_hz = 0
        self._rate = np.array(16_000, np.int64)
        self._output = np.zeros((1, 1), np.float32)
        self._bindings = None

    def _bind(self) -> None:
        """Two bindings of the buffers above, one per direction of the state's ping-pong: onnxruntime reads and
        writes numpy's memory in place, with no dict of inputs or list of new outputs per window (about a tenth
        of a window's time)."""
        assert self._input is not None
        self._bindings = []
        for current in (0, 1):
            binding = self.session.io_binding()
            binding.bind_cpu_input("input", self._input)
            binding.bind_cpu_input("sr", self._rate)
            binding.bind_cpu_input("state", self._states[current])
            binding.bind_output("output", "cpu", 0, np.float32, list(self._output.shape), self._output.ctypes.data)
            following = self._states[1 - current]
            binding.bind_output("stateN", "cpu", 0, np.float32, list(following.shape), following.ctypes.data)
            self._bindings.append(binding)

    def score(self, window: np.ndarray, sample_rate_hz: int) -> float:
        if self._bindings is None or window.shape[0] != self._window_samples or sample_rate_hz != self._window_rate_hz:
            self._start(window.shape[0], sample_rate_hz)
        np.copyto(self._context, self._last_samples)  # the last samples become the next context
        np.copyto(self._window, window)
        self.session.run_with_iobinding(self._bindings[self._current])
        self._current = 1 - self._current
        return float(self._output[0, 0])

    def _start(self, window_samples: int, sample_rate_hz: int) -> None:
        """The input buffer for windows of this size (new, its context zeros, if the size changed), views of its
        parts, and the bindings over it."""
        context_samples = 64 if sample_rate_hz == 16_000 else 32
        if self._input is None or self._input.shape[1] != context_samples + window_samples:
            self._input = np.zeros((1, context_samples + window_samples), np.float32)
        self._rate = np.array(sample_rate_hz, np.int64)
        self._window_samples, self._window_rate_hz = window_samples, sample_rate_hz
        x = self._input
        self._context, self._window = x[0, :context_samples], x[0, context_samples:]
        self._last_samples = x[0, -context_samples:]
        self._bind()


class WebRtcModel:
    """The WebRTC GMM VAD (webrtcvad-wheels): 10/20/30 ms frames at 8/16/32/48 kHz; scores are 0 or 1."""

    sample_rates_hz = (16_000, 8_000, 32_000, 48_000)

    def __init__(self, mode: int = 2, window_ms: int = 30) -> None:
        import webrtcvad

        if mode not in (0, 1, 2, 3):
            raise ConfigError(f"webrtc VAD mode must be 0, 1, 2 or 3 {got(mode)}")
        if window_ms not in (10, 20, 30):
            raise ConfigError(f"webrtc VAD window_ms must be 10, 20 or 30 {got(window_ms)}")
        self.mode = mode
        self.window_ms = window_ms
        self._vad = webrtcvad.Vad(mode)

    def __getstate__(self) -> dict:
        """Pickle the settings; the C detector cannot travel, so an unpickled model starts afresh."""
        return {"mode": self.mode, "window_ms": self.window_ms}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def window_samples(self, sample_rate_hz: int) -> int:
        return ms_to_whole_samples(self.window_ms, sample_rate_hz)

    def reset(self) -> None:
        pass

    def score(self, window: np.ndarray, sample_rate_hz: int) -> float:
        pcm = float_to_pcm16_bytes(window)
        return 1.0 if self._vad.is_speech(pcm, sample_rate_hz) else 0.0


class EnergyModel:
    """Frame energy against ``threshold_dbfs``, mapped to a probability by a logistic of slope 1/3 dB."""

    sample_rates_hz: tuple[int, ...] = ()

    def __init__(self, threshold_dbfs: float = -40.0, window_ms: float = 10.0) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.window_ms = window_ms

    def window_samples(self, sample_rate_hz: int) -> int:
        return max(1, ms_to_samples(self.window_ms, sample_rate_hz))

    def reset(self) -> None:
        pass

    def score(self, window: np.ndarray, sample_rate_hz: int) -> float:
        power = float(np.mean(np.square(window, dtype=np.float64)))
        level_dbfs = 10 * math.log10(power) if power > 1e-20 else -200.0
        return 1.0 / (1.0 + math.exp(-(level_dbfs - self.threshold_dbfs) / 3.0))
