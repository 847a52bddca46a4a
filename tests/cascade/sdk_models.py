"""Strict validation of server events against the official SDK's pydantic models (picked by ``type``)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import TypeAdapter


def _by_type(union: Any) -> dict[str, TypeAdapter]:
    members = typing.get_args(typing.get_args(union)[0]) if typing.get_origin(union) is typing.Annotated else \
        typing.get_args(union)
    out = {}
    for model in members:
        literal = model.model_fields["type"].annotation
        for value in typing.get_args(literal):
            out[value] = TypeAdapter(model)
    return out


def validate_events(events: list[dict[str, Any]], mode: str) -> None:
    """Every event validates strictly: ``mode`` "websocket" (ResponsesServerEvent) or "http" (ResponseStreamEvent)."""
    if mode == "websocket":
        from openai.types.responses.responses_server_event import ResponsesServerEvent as union
    else:
        from openai.types.responses import ResponseStreamEvent as union
    models = _by_type(union)
    assert events
    for event in events:
        assert event["type"] in models, event["type"]
        models[event["type"]].validate_python(event, strict=True)
