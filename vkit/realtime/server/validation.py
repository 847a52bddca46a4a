"""Strict checks of what a client sends, answered with OpenAI's error codes.

A schema is a small tree of checkers; ``check(schema, value, "session")`` raises ``Invalid`` with the code
(``unknown_parameter``, ``missing_required_parameter``, ``invalid_type``, ``invalid_value``), the
parameter's path (``session.audio.input.format.rate``, ``item.content[0].text``) and a message worded as
the real API words it. Sessions (GA realtime, GA transcription, beta), items and ``response.create``
overrides each have one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Invalid", "check", "SESSION", "TRANSCRIPTION_SESSION", "BETA_SESSION", "BETA_TRANSCRIPTION_SESSION",
           "ITEM", "RESPONSE", "BETA_RESPONSE", "RESPONSE_INPUT_ITEM"]


class Invalid(Exception):
    """A client value the server rejects: ``code``, ``param`` (its path) and the message. ``malformed``: the
    event itself is bad (it fails its schema, its audio is not audio), not merely refused in the session's
    present state; the server counts malformed events against its ``max_bad_events``."""

    def __init__(self, code: str, param: str, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.malformed = malformed


Checker = Callable[[Any, str], None]
_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "an object",
          list: "an array", type(None): "null"}


def _word(value: Any) -> str:
    return _WORDS.get(type(value), type(value).__name__)


def _type_error(path: str, expected: str, value: Any) -> Invalid:
    return Invalid("invalid_type", path, f"Invalid type for '{path}': expected {expected}, but got {_word(value)} "
                   "instead.")


def check(schema: Checker, value: Any, path: str) -> None:
    """Raise ``Invalid`` (malformed) for the first problem of ``value`` against ``schema``."""
    try:
        schema(value, path)
    except Invalid as invalid:
        invalid.malformed = True
        raise


def anything(value: Any, path: str) -> None:
    """Any JSON value."""


def string(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise _type_error(path, "a string", value)


def boolean(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise _type_error(path, "a boolean", value)


def integer(low: float | None = None, high: float | None = None) -> Checker:
    def checker(value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _type_error(path, "an integer", value)
        _in_range(value, low, high, path)
    return checker


def number(low: float | None = None, high: float | None = None) -> Checker:
    def checker(value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(path, "a number", value)
        _in_range(value, low, high, path)
    return checker


def _in_range(value: float, low: float | None, high: float | None, path: str) -> None:
    if low is not None and value < low:
        raise Invalid("invalid_value", path, f"Invalid '{path}': expected a value greater than or equal to {low:g}, "
                      f"but got {value} instead.")
    if high is not None and value > high:
        raise Invalid("invalid_value", path, f"Invalid '{path}': expected a value less than or equal to {high:g}, "
                      f"but got {value} instead.")


def one_of(*values: Any) -> Checker:
    def checker(value: Any, path: str) -> None:
        if isinstance(value, list | dict) or value not in values or isinstance(value, bool) != isinstance(values[0], bool):
            shown = ", ".join(f"'{v}'" for v in values)
            raise Invalid("invalid_value", path, f"Invalid value: '{value}'. Supported values are: {shown}.")
    return checker


def nullable(inner: Checker) -> Checker:
    def checker(value: Any, path: str) -> None:
        if value is not None:
            inner(value, path)
    return checker


def array(inner: Checker, max_items: int | None = None) -> Checker:
    def checker(value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise _type_error(path, "an array", value)
        if max_items is not None and len(value) > max_items:
            raise Invalid("invalid_value", path, f"Invalid '{path}': array too long. Expected an array with maximum "
                          f"length {max_items}, but got an array with length {len(value)} instead.")
        for index, element in enumerate(value):
            inner(element, f"{path}[{index}]")
    return checker


def obj(fields: Mapping[str, Checker], required: tuple[str, ...] = (), *, open_keys: Checker | None = None) -> Checker:
    """An object with exactly these keys (``open_keys``: any key, each value checked by it)."""
    def checker(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _type_error(path, "an object", value)
        for name in required:
            if name not in value:
                raise Invalid("missing_required_parameter", f"{path}.{name}",
                              f"Missing required parameter: '{path}.{name}'.")
        for name, element in value.items():
            inner = fields.get(name, open_keys)
            if inner is None:
                raise Invalid("unknown_parameter", f"{path}.{name}", f"Unknown parameter: '{path}.{name}'.")
            inner(element, f"{path}.{name}")
    return checker


def tagged(key: str, variants: Mapping[str, Checker], default: str | None = None) -> Checker:
    """An object whose ``key`` (e.g. ``type``) picks its schema; ``default`` when the key is absent."""
    def checker(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _type_error(path, "an object", value)
        tag = value.get(key, default)
        if tag is None:
            raise Invalid("missing_required_parameter", f"{path}.{key}", f"Missing required parameter: '{path}.{key}'.")
        if not isinstance(tag, str) or tag not in variants:
            one_of(*variants)(tag, f"{path}.{key}")
        variants[tag](value, path)
    return checker


def either(*checkers: Checker) -> Checker:
    """The first checker that accepts the value; else the last one's complaint."""
    def checker(value: Any, path: str) -> None:
        problem: Invalid | None = None
        for inner in checkers:
            try:
                inner(value, path)
                return
            except Invalid as exc:
                problem = exc
        assert problem is not None
        raise problem
    return checker


@dataclass(frozen=True)
class _Unique:
    """``output_modalities``: one of ``["audio"]`` or ``["text"]``."""

    def __call__(self, value: Any, path: str) -> None:
        array(one_of("text", "audio"))(value, path)
        if len(value) != 1:
            raise Invalid("invalid_value", path, f"Invalid value for '{path}': expected ['audio'] or ['text'], "
                          f"but got {value} instead.")


# -- the pieces --------------------------------------------------------------------------------------

_STR_MAP = obj({}, open_keys=string)
FORMAT = tagged("type", {
    "audio/pcm": obj({"type": string, "rate": one_of(24_000)}),
    "audio/pcmu": obj({"type": string}),
    "audio/pcma": obj({"type": string}),
})
_VAD_COMMON = {"type": string, "create_response": boolean, "interrupt_response": boolean}
TURN_DETECTION = tagged("type", {
    "server_vad": obj({**_VAD_COMMON, "threshold": number(0, 1), "prefix_padding_ms": integer(0),
                       "silence_duration_ms": integer(0), "idle_timeout_ms": nullable(integer(5_000, 30_000))}),
    "semantic_vad": obj({**_VAD_COMMON, "eagerness": one_of("low", "medium", "high", "auto")}),
})
TRANSCRIPTION = obj({"model": string, "language": string, "prompt": string, "delay": string,
                     "keywords": array(string), "languages": array(string)})
NOISE_REDUCTION = obj({"type": one_of("near_field", "far_field"), "strength": number(0, 1)})
VOICE = either(string, obj({"id": string}, ("id",)))
TOOL = tagged("type", {
    "function": obj({"type": string, "name": string, "description": string, "parameters": obj({}, open_keys=anything)},
                    ("name",)),
    "mcp": obj({}, open_keys=anything),
}, default="function")
TOOL_CHOICE = either(one_of("auto", "none", "required"), tagged("type", {
    "function": obj({"type": string, "name": string}, ("name",)),
    "mcp": obj({"type": string, "server_label": string, "name": nullable(string)}, ("server_label",)),
}))
MAX_TOKENS = either(integer(1, 4096), one_of("inf"))
PROMPT = nullable(obj({"id": string, "version": nullable(string), "variables": obj({}, open_keys=anything)}, ("id",)))
_SESSION_IDS = {"id": anything, "object": anything, "expires_at": anything}  # echoed back by some clients

SESSION = obj({
    **_SESSION_IDS,
    "type": one_of("realtime", "transcription"), "model": string, "output_modalities": _Unique(),
    "instructions": string, "tools": array(TOOL), "tool_choice": TOOL_CHOICE, "max_output_tokens": MAX_TOKENS,
    "tracing": nullable(either(one_of("auto"), obj({"workflow_name": string, "group_id": string,
                                                     "metadata": obj({}, open_keys=anything)}))),
    "truncation": either(one_of("auto", "disabled"), obj({"type": one_of("retention_ratio"),
                                                           "retention_ratio": number(0, 1),
                                                           "token_limits": obj({}, open_keys=anything)}, ("type",))),
    "prompt": PROMPT, "include": nullable(array(one_of("item.input_audio_transcription.logprobs"))),
    "reasoning": nullable(obj({"effort": nullable(one_of("minimal", "low", "medium", "high", "xhigh"))})),
    "parallel_tool_calls": boolean,
    "audio": obj({
        "input": obj({"format": FORMAT, "transcription": nullable(TRANSCRIPTION),
                      "noise_reduction": nullable(NOISE_REDUCTION), "turn_detection": nullable(TURN_DETECTION)}),
        "output": obj({"format": FORMAT, "voice": VOICE, "speed": number(0.25, 1.5)}),
    }),
}, ("type",))
TRANSCRIPTION_SESSION = obj({
    **_SESSION_IDS, "type": one_of("transcription", "realtime"),
    "include": nullable(array(one_of("item.input_audio_transcription.logprobs"))),
    "audio": obj({"input": obj({"format": FORMAT, "transcription": nullable(TRANSCRIPTION),
                                "noise_reduction": nullable(NOISE_REDUCTION),
                                "turn_detection": nullable(TURN_DETECTION)})}),
}, ("type",))
_BETA_FORMAT = one_of("pcm16", "g711_ulaw", "g711_alaw")
BETA_SESSION = obj({
    **_SESSION_IDS, "model": string, "modalities": array(one_of("text", "audio")), "instructions": string,
    "voice": string, "input_audio_format": _BETA_FORMAT, "output_audio_format": _BETA_FORMAT,
    "input_audio_transcription": nullable(TRANSCRIPTION), "turn_detection": nullable(TURN_DETECTION),
    "input_audio_noise_reduction": nullable(NOISE_REDUCTION), "tools": array(TOOL), "tool_choice": TOOL_CHOICE,
    "temperature": number(0.6, 1.2), "max_response_output_tokens": MAX_TOKENS, "speed": number(0.25, 1.5),
    "tracing": anything, "client_secret": anything,
})
BETA_TRANSCRIPTION_SESSION = obj({
    **_SESSION_IDS, "input_audio_format": _BETA_FORMAT, "input_audio_transcription": nullable(TRANSCRIPTION),
    "turn_detection": nullable(TURN_DETECTION), "input_audio_noise_reduction": nullable(NOISE_REDUCTION),
    "include": nullable(array(string)), "modalities": array(one_of("text", "audio")),
})

_ITEM_COMMON = {"id": string, "object": one_of("realtime.item"), "status": one_of("completed", "incomplete",
                                                                                   "in_progress"), "type": string}
_PART = {
    "input_text": obj({"type": string, "text": string}, ("text",)),
    "input_audio": obj({"type": string, "audio": string, "transcript": nullable(string)}),
    "input_image": obj({"type": string, "image_url": string, "detail": one_of("auto", "low", "high")}),
    "item_reference": obj({"type": string, "id": string}, ("id",)),
    "output_text": obj({"type": string, "text": string}),
    "output_audio": obj({"type": string, "audio": string, "transcript": nullable(string)}),
    "text": obj({"type": string, "text": string}),
    "audio": obj({"type": string, "audio": string, "transcript": nullable(string)}),
}
_ROLE_PARTS = {"user": ("input_text", "input_audio", "input_image", "item_reference"),
               "system": ("input_text",), "assistant": ("output_text", "output_audio", "text", "audio")}


def _message(value: Any, path: str) -> None:
    obj({**_ITEM_COMMON, "role": one_of("user", "assistant", "system"), "content": anything},
        ("role", "content"))(value, path)
    kinds = _ROLE_PARTS[value["role"]]
    array(tagged("type", {k: _PART[k] for k in kinds}))(value["content"], f"{path}.content")


_ITEMS = {
    "message": _message,
    "function_call": obj({**_ITEM_COMMON, "call_id": string, "name": string, "arguments": string},
                         ("name", "arguments")),
    "function_call_output": obj({**_ITEM_COMMON, "call_id": string, "output": string}, ("call_id", "output")),
}
ITEM = tagged("type", _ITEMS)
RESPONSE_INPUT_ITEM = tagged("type", {**_ITEMS, "item_reference": obj({"type": string, "id": string}, ("id",))})
_RESPONSE_COMMON = {
    "instructions": string, "tools": array(TOOL), "tool_choice": TOOL_CHOICE, "max_output_tokens": MAX_TOKENS,
    "metadata": nullable(obj({}, open_keys=string)), "prompt": PROMPT, "parallel_tool_calls": boolean,
    "reasoning": nullable(obj({"effort": nullable(string)})),
    "conversation": either(one_of("auto", "none"), string), "input": array(RESPONSE_INPUT_ITEM),
}
def _optional(fields: dict[str, Checker]) -> dict[str, Checker]:
    """A response.create's fields may each be null, meaning "the session's" (LiveKit sends
    ``instructions: null``, and OpenAI accepts it)."""
    return {name: nullable(checker) for name, checker in fields.items()}


RESPONSE = obj(_optional({**_RESPONSE_COMMON, "output_modalities": _Unique(),
                          "audio": obj({"output": obj({"format": FORMAT, "voice": VOICE})})}))
BETA_RESPONSE = obj(_optional({**_RESPONSE_COMMON, "modalities": array(one_of("text", "audio")), "voice": VOICE,
                               "output_audio_format": _BETA_FORMAT, "temperature": number(0.6, 1.2),
                               "max_response_output_tokens": MAX_TOKENS}))
