"""The stage contract: duck-typed stages, classified once, with fixes named."""

from __future__ import annotations

import pytest

import vkit
from vkit import filters, sinks, sources
from vkit.errors import GraphError
from vkit.stage import AsyncStage, Source, SyncStage, accepted_types, as_items, describe_stage, stage_kind


class Plain:
    def process(self, item):  # noqa: ANN001, ANN201
        return item


def test_every_shipped_stage_satisfies_its_protocol() -> None:
    assert isinstance(filters.Gain(gain_db=1), SyncStage) and stage_kind(filters.Gain(gain_db=1)) == "sync"
    assert isinstance(sinks.VirtualSpeaker(), AsyncStage) and stage_kind(sinks.VirtualSpeaker()) == "async"
    tone = sources.Tone(duration_ms=10)
    assert isinstance(tone, Source) and stage_kind(tone) == "source"
    assert stage_kind(Plain()) == "sync" and accepted_types(Plain()) == (vkit.AudioFrame,)


def test_misuse_names_the_fix() -> None:
    with pytest.raises(GraphError, match=r"is a class, not a stage: write Plain\(...\)"):
        stage_kind(Plain)
    with pytest.raises(GraphError, match=r"use vkit.stage\(helper\)"):
        def helper(frame):  # noqa: ANN001, ANN202
            return frame
        stage_kind(helper)
    with pytest.raises(GraphError, match=r"not a stage: a stage has process\(item\) or async run\(ctx\)"):
        stage_kind(object())


def test_results_normalise_and_secrets_never_describe() -> None:
    assert list(as_items(None)) == [] and len(list(as_items([1, 2]))) == 2

    class Keyed(Plain):
        def __init__(self, api_key: str = "sk-canary-123456789", rate_hz: int = 16_000) -> None:
            self.api_key, self.rate_hz = api_key, rate_hz

    assert describe_stage(Keyed()) == {"rate_hz": 16_000}
