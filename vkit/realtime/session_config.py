"""Session configuration: the full default GA session, partial-merge updates, and the beta flat shape."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["default_session", "merge_session", "to_beta", "from_beta", "turn_detection", "input_format_name",
           "output_format_name", "TURN_DETECTION_DEFAULTS", "transcription_session", "realtime_session",
           "to_beta_transcription"]

TURN_DETECTION_DEFAULTS = {
    "server_vad": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
                   "create_response": True, "interrupt_response": True, "idle_timeout_ms": None},
    "semantic_vad": {"type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True},
}
_FORMAT_NAMES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_FORMAT_TYPES = {v: k for k, v in _FORMAT_NAMES.items()}


def default_session(model: str = "gpt-realtime", session_id: str = "sess_local") -> dict[str, Any]:
    """What ``session.created`` carries: a complete GA realtime session."""
    return {
        "type": "realtime",
        "id": session_id,
        "object": "realtime.session",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": 0,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24_000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(TURN_DETECTION_DEFAULTS["server_vad"]),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": "alloy", "speed": 1.0},
        },
    }


def merge_session(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Partial merge as the protocol defines it: nested objects merge, ``None`` clears, lists replace."""
    merged = copy.deepcopy(current)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "format":
            if key == "turn_detection" and value.get("type") and value.get("type") != merged[key].get("type"):
                merged[key] = {**TURN_DETECTION_DEFAULTS.get(value["type"], {}), **value}
            else:
                merged[key] = merge_session(merged[key], value)
        elif key == "turn_detection" and isinstance(value, dict):
            merged[key] = {**TURN_DETECTION_DEFAULTS.get(value.get("type", "server_vad"), {}), **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def turn_detection(session: dict[str, Any]) -> dict[str, Any] | None:
    return (session.get("audio") or {}).get("input", {}).get("turn_detection")


def input_format_name(session: dict[str, Any]) -> str:
    fmt = (session.get("audio") or {}).get("input", {}).get("format") or {"type": "audio/pcm"}
    return _FORMAT_NAMES.get(fmt.get("type", "audio/pcm"), "pcm16")


def output_format_name(session: dict[str, Any]) -> str:
    fmt = (session.get("audio") or {}).get("output", {}).get("format") or {"type": "audio/pcm"}
    return _FORMAT_NAMES.get(fmt.get("type", "audio/pcm"), "pcm16")


def to_beta(session: dict[str, Any]) -> dict[str, Any]:
    """The flat beta session object for a GA session."""
    audio = session.get("audio") or {}
    audio_in, audio_out = audio.get("input", {}), audio.get("output", {})
    modalities = session.get("output_modalities", ["audio"])
    return {
        "id": session.get("id"),
        "object": "realtime.session",
        "model": session.get("model"),
        "modalities": ["text", "audio"] if "audio" in modalities else ["text"],
        "instructions": session.get("instructions", ""),
        "voice": audio_out.get("voice", "alloy"),
        "input_audio_format": input_format_name(session),
        "output_audio_format": output_format_name(session),
        "input_audio_transcription": audio_in.get("transcription"),
        "turn_detection": _beta_turn_detection(audio_in.get("turn_detection")),
        "tools": session.get("tools", []),
        "tool_choice": session.get("tool_choice", "auto"),
        "temperature": 0.8,
        "max_response_output_tokens": session.get("max_output_tokens", "inf"),
        "speed": audio_out.get("speed", 1.0),
    }


def _beta_turn_detection(detection: dict[str, Any] | None) -> dict[str, Any] | None:
    if detection is None:
        return None
    return {k: v for k, v in detection.items() if v is not None}


def from_beta(update: dict[str, Any]) -> dict[str, Any]:
    """A GA partial session for a beta (flat) ``session.update``."""
    ga: dict[str, Any] = {}
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    for key, value in update.items():
        if key == "modalities":
            ga["output_modalities"] = ["audio"] if "audio" in value else ["text"]
        elif key == "input_audio_format":
            audio_in["format"] = _ga_format(value)
        elif key == "output_audio_format":
            audio_out["format"] = _ga_format(value)
        elif key == "voice":
            audio_out["voice"] = value
        elif key == "speed":
            audio_out["speed"] = value
        elif key == "turn_detection":
            audio_in["turn_detection"] = value
        elif key == "input_audio_transcription":
            audio_in["transcription"] = value
        elif key == "input_audio_noise_reduction":
            audio_in["noise_reduction"] = value
        elif key == "max_response_output_tokens":
            ga["max_output_tokens"] = value
        elif key != "temperature":
            ga[key] = value
    if audio_in or audio_out:
        ga["audio"] = {**({"input": audio_in} if audio_in else {}), **({"output": audio_out} if audio_out else {})}
    return ga


def _ga_format(name: str) -> dict[str, Any]:
    kind = _FORMAT_TYPES.get(name, name)
    return {"type": kind, "rate": 24_000} if kind == "audio/pcm" else {"type": kind}


def transcription_session(session: dict[str, Any]) -> dict[str, Any]:
    """The GA transcription session object for a session's state."""
    audio_in = (session.get("audio") or {}).get("input") or {}
    return {"type": "transcription", "id": session.get("id"), "object": "realtime.transcription_session",
            "expires_at": session.get("expires_at", 0), "include": session.get("include"),
            "audio": {"input": {"format": audio_in.get("format", {"type": "audio/pcm", "rate": 24_000}),
                                "transcription": audio_in.get("transcription"),
                                "noise_reduction": audio_in.get("noise_reduction"),
                                "turn_detection": audio_in.get("turn_detection")}}}


def realtime_session(session: dict[str, Any], model: str) -> dict[str, Any]:
    """A full realtime session that keeps a transcription session's input audio settings."""
    full = default_session(model, session.get("id") or "sess_local")
    full["expires_at"] = session.get("expires_at", 0)
    return merge_session(full, {"audio": {"input": session["audio"]["input"]}})


def to_beta_transcription(session: dict[str, Any]) -> dict[str, Any]:
    """The flat beta transcription session object."""
    audio_in = session["audio"]["input"]
    detection = audio_in.get("turn_detection")
    return {"id": session.get("id"), "object": "realtime.transcription_session", "modalities": ["text"],
            "input_audio_format": input_format_name(session),
            "input_audio_transcription": audio_in.get("transcription"),
            "turn_detection": None if detection is None else {k: v for k, v in detection.items() if v is not None},
            "input_audio_noise_reduction": audio_in.get("noise_reduction"), "include": session.get("include")}
