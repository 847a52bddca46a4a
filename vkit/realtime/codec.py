"""Wire encoding: JSON text <-> typed events in either dialect, and audio <-> base64 (PCM16, G.711).

Decoding failures are the peer's fault and raise ``RemoteProtocolError``; the caller decides whether to
report them (a server answers with an ``error`` event) or record them (a client keeps reading).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Literal

import numpy as np

from vkit.errors import RemoteProtocolError, got
from vkit.realtime.events import BETA_SERVER_RENAMES, RealtimeEvent, UnknownEvent, event_class
from vkit.units import float_to_pcm16, float_to_pcm16_bytes, pcm16_bytes_to_float, pcm16_to_float

__all__ = ["Dialect", "decode_event", "encode_event", "encode_audio", "decode_audio", "AUDIO_FORMATS",
           "MAX_DEPTH", "json_depth_exceeds",
           "ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode"]

Dialect = Literal["ga", "beta"]
_GA_TO_BETA = {ga: beta for beta, ga in BETA_SERVER_RENAMES.items()}

#: the wire formats: name -> (sample rate, bytes per sample)
AUDIO_FORMATS = {"pcm16": (24_000, 2), "g711_ulaw": (8_000, 1), "g711_alaw": (8_000, 1)}

#: the deepest JSON nesting accepted from a peer (Realtime events nest about 6 deep)
MAX_DEPTH = 64
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth_exceeds(text: str | bytes, max_depth: int) -> bool:
    """Whether JSON ``text`` nests deeper than ``max_depth``, found without parsing it (no recursion).

    The bracket count bounds the depth, so ordinary events cost two ``count`` calls; only text with more
    brackets than ``max_depth`` is scanned, strings skipped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.count("{") + text.count("[") <= max_depth:
        return False
    depth = 0
    for match in _STRUCTURE.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
    return False


def decode_event(text: str | bytes, direction: Literal["client", "server"], dialect: Dialect = "ga", *,
                 max_depth: int = MAX_DEPTH) -> RealtimeEvent:
    """Parse one frame sent by ``direction`` into a typed event (GA vocabulary).

    Raises RemoteProtocolError for text that is not a JSON object with a string ``type``, or that nests
    deeper than ``max_depth`` (checked before parsing). Unknown types become UnknownEvent. Missing
    required fields are reported as a RemoteProtocolError naming the field.
    """
    if json_depth_exceeds(text, max_depth):
        raise RemoteProtocolError(f"the peer sent JSON nested deeper than {max_depth} levels {got(_preview(text))}")
    try:
        data = json.loads(text)
    except RecursionError as exc:  # a max_depth set beyond what the parser can take
        raise RemoteProtocolError(f"the peer sent JSON too deeply nested to parse {got(_preview(text))}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"the peer sent invalid JSON ({exc.msg if hasattr(exc, 'msg') else exc}) "
                                  f"{got(_preview(text))}") from exc
    if not isinstance(data, dict):
        raise RemoteProtocolError(f"an event must be a JSON object {got(_preview(text))}")
    wire_type = data.get("type")
    if not isinstance(wire_type, str):
        raise RemoteProtocolError(f"an event needs a string 'type' {got(_preview(text))}")
    ga_type = BETA_SERVER_RENAMES.get(wire_type, wire_type) if direction == "server" and dialect == "beta" else wire_type
    if direction == "server" and dialect == "ga" and wire_type in BETA_SERVER_RENAMES:
        ga_type = BETA_SERVER_RENAMES[wire_type]  # tolerate mixed dialects (some Azure deployments)
    cls = event_class(ga_type, direction)
    if cls is None:
        return UnknownEvent(wire_type=wire_type, event_id=data.get("event_id"),
                            extra={k: v for k, v in data.items() if k not in ("type", "event_id")})
    missing = [name for name in getattr(cls, "required", ()) if name not in data]
    if missing:
        raise RemoteProtocolError(f"{wire_type} is missing required parameter {missing[0]!r} {got(_preview(text))}",
                                  ) if direction == "server" else MissingParameter(wire_type, missing[0], data)
    return cls.from_dict(data)


class MissingParameter(RemoteProtocolError):
    """A client event without a required field (the server answers ``missing_required_parameter``)."""

    def __init__(self, wire_type: str, name: str, data: dict[str, Any]) -> None:
        super().__init__(f"Missing required parameter: '{name}'.")
        self.param = name
        self.event_id = data.get("event_id")


def encode_event(event: RealtimeEvent, dialect: Dialect = "ga") -> str:
    """Serialise an event in ``dialect`` (server events are renamed for beta)."""
    if event.type == "input_audio_buffer.append" and not event.extra and isinstance(event.event_id, str) \
            and isinstance(event.audio, str):  # type: ignore[attr-defined]
        # the per-chunk event, written directly: base64 needs no escaping (same text as json.dumps gives)
        return f'{{"type":"input_audio_buffer.append","event_id":{json.dumps(event.event_id)},"audio":"{event.audio}"}}'  # type: ignore[attr-defined]
    data = event.to_dict()
    if dialect == "beta" and event.direction == "server" and data["type"] in _GA_TO_BETA:
        data["type"] = _GA_TO_BETA[data["type"]]
    return json.dumps(data, separators=(",", ":"))


def _preview(text: str | bytes) -> str:
    shown = text if isinstance(text, str) else text[:200].decode("utf-8", "replace")
    return shown[:120]


# -- audio ------------------------------------------------------------------------------------------


def encode_audio(samples: np.ndarray, audio_format: str = "pcm16") -> str:
    """Mono float32 samples at the format's rate -> base64 text."""
    x = np.asarray(samples, np.float32).reshape(-1)
    if audio_format == "pcm16":
        data = float_to_pcm16_bytes(x)
    else:
        pcm = float_to_pcm16(x)
        data = (ulaw_encode(pcm) if audio_format == "g711_ulaw" else alaw_encode(pcm)).tobytes()
    return base64.b64encode(data).decode("ascii")


def decode_audio(text: str, audio_format: str = "pcm16") -> np.ndarray:
    """Base64 text -> mono float32 samples. Raises RemoteProtocolError for bad base64 or odd PCM16 sizes."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise RemoteProtocolError(f"audio is not valid base64 {got(str(text)[:40])}") from exc
    if audio_format == "pcm16":
        if len(data) % 2:
            raise RemoteProtocolError(f"PCM16 audio must have an even number of bytes {got(len(data))}")
        return pcm16_bytes_to_float(data)
    codes = np.frombuffer(data, np.uint8)
    pcm = ulaw_decode(codes) if audio_format == "g711_ulaw" else alaw_decode(codes)
    return pcm16_to_float(pcm)


def _build_ulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    """The CCITT G.711 mu-law tables, computed on 14-bit magnitudes as the reference code does."""
    bias = 0x84
    pcm = np.arange(-32768, 32768, dtype=np.int64) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + (bias >> 2)
    segment = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), magnitude)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F)
    encode = (np.where(segment >= 8, 0x7F, code) ^ mask).astype(np.uint8)
    codes = ~np.arange(256, dtype=np.int64) & 0xFF
    exp, man = (codes >> 4) & 0x07, codes & 0x0F
    value = (((man << 3) + bias) << exp) - bias
    decode = np.where(codes & 0x80, -value, value).astype(np.int16)
    return encode, decode


def _build_alaw_tables() -> tuple[np.ndarray, np.ndarray]:
    pcm = np.arange(-32768, 32768, dtype=np.int64) >> 3  # A-law works on 13-bit values
    sign = np.where(pcm >= 0, 0x80, 0)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    exponent = np.where(magnitude < 32, 0, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int64) - 4)
    exponent = np.clip(exponent, 0, 7)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    encode = (((sign | (exponent << 4) | mantissa) ^ 0x55) & 0xFF).astype(np.uint8)
    encode = np.where(magnitude >= 4096, (sign | 0x7F) ^ 0x55, encode).astype(np.uint8)
    codes = np.arange(256, dtype=np.int64) ^ 0x55
    exp, man = (codes >> 4) & 0x07, codes & 0x0F
    value = np.where(exp == 0, (man << 4) + 8, ((man << 4) + 0x108) << np.maximum(exp - 1, 0))
    decode = np.where(codes & 0x80, value, -value).astype(np.int16)
    return encode, decode


_ULAW_ENCODE, _ULAW_DECODE = _build_ulaw_tables()
_ALAW_ENCODE, _ALAW_DECODE = _build_alaw_tables()


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM -> G.711 mu-law codes (uint8)."""
    return _ULAW_ENCODE[np.asarray(pcm, np.int16).astype(np.int64) + 32768]


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 mu-law codes -> int16 PCM."""
    return _ULAW_DECODE[np.asarray(codes, np.uint8)]


def alaw_encode(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM -> G.711 A-law codes (uint8)."""
    return _ALAW_ENCODE[np.asarray(pcm, np.int16).astype(np.int64) + 32768]


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 A-law codes -> int16 PCM."""
    return _ALAW_DECODE[np.asarray(codes, np.uint8)]
