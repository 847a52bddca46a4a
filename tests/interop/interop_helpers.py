"""Constants and helpers of the interop suite (SDK key checks, the sample rate)."""

from __future__ import annotations

from typing import Any

RATE_HZ = 24_000



#: keys OpenAI's server sends that the SDK's models leave undeclared (session id/object/expires_at; usage's
#: image_tokens: see the Realtime reference's session and response.done shapes)
REAL_API_EXTRAS = frozenset({"id", "object", "expires_at", "image_tokens"})


def undeclared_keys(model: Any, where: str = "") -> list[str]:
    """Keys of a parsed SDK model (recursively) that its pydantic class does not declare and that the real
    API does not send either."""
    from pydantic import BaseModel

    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{where}.{k}" for k in (model.model_extra or {}) if k not in REAL_API_EXTRAS]
        for name in type(model).model_fields:
            found += undeclared_keys(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for index, value in enumerate(model):
            found += undeclared_keys(value, f"{where}[{index}]")
    return found
