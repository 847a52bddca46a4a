"""System audio devices through sounddevice (PortAudio, optional extra ``vkit[devices]``).

PortAudio tells each callback when its buffer's first sample was captured (ADC time) or will be heard
(DAC time) on the stream's own clock. ``buffer_offset_ns`` turns that into an offset from the moment of
the callback, so device stages stamp audio on the session clock with the hardware's real delay.
"""

from __future__ import annotations

from typing import Any

from vkit.errors import ConfigError, got
from vkit.extras import require
from vkit.units import s_to_ns

__all__ = ["import_sounddevice", "buffer_offset_ns"]

_PLAUSIBLE_DEVICE_DELAY_S = 1.0


def import_sounddevice() -> Any:
    """Import sounddevice or explain what is missing (the package, or PortAudio on a headless box)."""
    try:
        return require("sounddevice", extra="devices", feature="audio devices")
    except OSError as exc:
        raise ConfigError("audio devices need the PortAudio library (Debian: apt-get install libportaudio2) "
                          f"{got(str(exc))}") from exc


def buffer_offset_ns(time_info: Any, kind: str, fallback_s: float) -> int:
    """How far the buffer's first sample is from now: ADC time before now (``kind="input"``, negative)
    or DAC time after now (``kind="output"``, positive).

    Some host APIs report zero or garbage times; then ``fallback_s`` (the buffer's duration, the least
    the delay can be) is used."""
    now_s = getattr(time_info, "currentTime", 0.0)
    if kind == "input":
        delay_s = now_s - getattr(time_info, "inputBufferAdcTime", 0.0)
    else:
        delay_s = getattr(time_info, "outputBufferDacTime", 0.0) - now_s
    if not now_s or not 0.0 <= delay_s < _PLAUSIBLE_DEVICE_DELAY_S:
        delay_s = fallback_s
    offset_ns = s_to_ns(delay_s)
    return -offset_ns if kind == "input" else offset_ns
