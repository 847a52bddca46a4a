"""The rule-based "model" of the local server: a short answer from what the user said."""

from __future__ import annotations

import re

_RULES = [
    (r"\b(book|table|reservation)\b", "Your table is booked."),
    (r"\b(weather|rain|sunny)\b", "Tomorrow looks sunny and mild."),
    (r"\b(hello|hi|hey)\b", "Hello! How can I help?"),
    (r"\b(stop|cancel)\b", "Okay, stopping."),
]


def answer(text: str) -> str:
    """The first rule that matches ``text``, else an echo of it."""
    for pattern, reply in _RULES:
        if re.search(pattern, text, re.IGNORECASE):
            return reply
    return f"You said: {text}." if text else "Sorry, I did not catch that."
