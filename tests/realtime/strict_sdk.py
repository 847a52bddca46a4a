"""Strict validation of server events against the official ``openai`` SDK's pydantic models.

The SDK never validates what it receives (it builds models unchecked), so a server can drift from the
real schema unnoticed. ``validate_strictly`` checks each event against its model in strict mode (no
coercion: a number is not a string) and walks the result for keys the model does not declare. The
only undeclared keys allowed are the ones the real API sends although the SDK's types omit them
(``REAL_EXTRAS``).
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel

#: (model class name, key): sent by the real API, absent from the SDK's types
REAL_EXTRAS = {
    # session.created / session.updated carry the session's id, object and expiry (GA request models omit them)
    ("RealtimeSessionCreateRequest", "id"), ("RealtimeSessionCreateRequest", "object"),
    ("RealtimeSessionCreateRequest", "expires_at"),
    ("RealtimeTranscriptionSessionCreateRequest", "id"), ("RealtimeTranscriptionSessionCreateRequest", "object"),
    ("RealtimeTranscriptionSessionCreateRequest", "expires_at"),
    # the beta session object names its kind
    ("Session", "object"),
}


def sdk_models(dialect: str) -> dict[str, type[BaseModel]]:
    """Wire type -> the SDK's model, for the GA or beta server-event union."""
    if dialect == "ga":
        from openai.types.realtime import RealtimeServerEvent
    else:
        from openai.types.beta.realtime import RealtimeServerEvent
    union = get_args(RealtimeServerEvent)[0]
    return {get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(union)}


def validate_strictly(events: list[dict[str, Any]], dialect: str = "ga") -> None:
    """Every event validates strictly against its SDK model, with no undeclared key."""
    models = sdk_models(dialect)
    for event in events:
        model = models.get(event["type"])
        assert model is not None, f"the SDK's {dialect} union has no event type {event['type']!r}"
        parsed = model.model_validate(event, strict=True)
        extras = list(_undeclared(parsed, event["type"]))
        assert not extras, f"{event['type']} has keys the SDK does not declare: {extras}"


def _undeclared(value: Any, path: str):
    if isinstance(value, BaseModel):
        for key in value.__pydantic_extra__ or {}:
            if (type(value).__name__, key) not in REAL_EXTRAS:
                yield f"{path}.{key} ({type(value).__name__})"
        for name in type(value).model_fields:
            yield from _undeclared(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, element in enumerate(value):
            yield from _undeclared(element, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, element in value.items():
            yield from _undeclared(element, f"{path}.{key}")
