"""Filters: resampling, noise gate, voice activity detection, turn detection, and utilities."""

from vkit.filters.base import Filter
from vkit.filters.gain import ChannelMix, Gain, Reframe
from vkit.filters.network import NetworkConditions, NetworkSchedule
from vkit.filters.noise_gate import NoiseGate
from vkit.filters.resample import Resample
from vkit.filters.turn import TurnDetector
from vkit.filters.vad import VAD

__all__ = ["Resample", "NoiseGate", "VAD", "Gain", "Reframe", "ChannelMix", "NetworkConditions",
           "NetworkSchedule", "Filter", "TurnDetector"]
