"""Token usage of a response, computed from the audio and text that actually went in and out."""

from __future__ import annotations

import math
from typing import Any

from vkit.realtime.codec import AUDIO_FORMATS
from vkit.units import samples_to_ms

__all__ = ["usage"]


def usage(context: list[Any], outputs: list[dict[str, Any]], output_audio_ms: float,
          instructions: str = "") -> dict[str, Any]:
    """Token usage as OpenAI counts it, from what actually went in and out.

    Audio tokens by duration, as OpenAI's Realtime pricing counts them: user (input) audio is one token per
    100 ms, assistant (output) audio one token per 50 ms, rounded up per item. Text is counted at one token per
    four characters (rounded up), the usual approximation of OpenAI's tokenisers (vkit ships none). Input
    is the response's context (the conversation or its ``input`` items: objects with ``data``, ``audio`` and
    ``audio_format``) plus the instructions; output is
    the response's items: its audio, its transcript or text, and its function calls' names and arguments.
    Nothing is cached.
    """
    def text_tokens(text: str) -> int:
        return math.ceil(len(text) / 4)

    input_audio = input_text = 0
    for stored in context:
        data = stored.data
        if stored.audio is not None and stored.audio.size:
            duration_ms = samples_to_ms(stored.audio.size, AUDIO_FORMATS[stored.audio_format][0])
            input_audio += math.ceil(duration_ms / (50 if data.get("role") == "assistant" else 100))
        for part in data.get("content", []):
            input_text += text_tokens(part.get("text") or "")
        input_text += text_tokens(data.get("output", "") + data.get("arguments", ""))
    input_text += text_tokens(instructions)
    output_audio = math.ceil(output_audio_ms / 50)
    output_text = 0
    for item in outputs:
        for part in item.get("content", []):
            output_text += text_tokens(part.get("transcript") or part.get("text") or "")
        output_text += text_tokens(item.get("name", "") + item.get("arguments", ""))
    total_in, total_out = input_audio + input_text, output_audio + output_text
    return {"total_tokens": total_in + total_out, "input_tokens": total_in, "output_tokens": total_out,
            "input_token_details": {"text_tokens": input_text, "audio_tokens": input_audio, "image_tokens": 0,
                                    "cached_tokens": 0, "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0,
                                                                                  "image_tokens": 0}},
            "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio}}
