"""Hypothesis fuzz of the server's client events over a real loopback socket, a well-behaved canary alongside.

Every fuzzed event is followed by a sentinel (a retrieve of an unknown item with its own ``event_id``): its
error proves the fuzzed event was fully handled and the session still lives. The fuzz fails on a session
that closes, on a ``server_error`` (an exception of ours) and on any ERROR log line of the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest
from realtime_helpers import RawClient

from vkit.realtime.events import CLIENT_EVENTS
from vkit.realtime.server import LocalServer

hypothesis = pytest.importorskip("hypothesis")  # the `test` extra (see notes); skipped, never passed, without
st = hypothesis.strategies

pytestmark = pytest.mark.timeout(120)
USER_TEXT = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
FIELDS = ["session", "item", "item_id", "audio", "response", "previous_item_id", "content_index", "audio_end_ms",
          "event_id", "type", "audio", "input", "instructions", "tools", "turn_detection", "threshold",
          "output_modalities", "conversation", "metadata", "call_id", "output", "role", "content", "id"]
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(max_size=20), st.sampled_from(["", "server_vad", "semantic_vad", "pcm16", "audio/pcm",
                                                             "none", "auto", "high", "message", "user"]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


@st.composite
def client_frames(draw: Any) -> str | bytes:
    """A near-valid client event: a real type with mutated fields, or a frame that is wrong as a whole."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "deep", "huge", "raw", "binary"]))
    wire_type = draw(st.sampled_from(sorted(CLIENT_EVENTS)))
    if kind == "deep":
        depth = draw(st.integers(1_000, 100_000))
        return '{"type": "%s", "session": %s%s}' % (wire_type, "[" * depth, "]" * depth)
    if kind == "huge":
        field = draw(st.sampled_from(FIELDS))
        return json.dumps({"type": wire_type, field: "A" * draw(st.integers(100_000, 2_000_000))})
    if kind == "binary":
        return draw(st.binary(max_size=64)) or json.dumps({"type": wire_type}).encode()
    if kind == "raw":
        return json.dumps(draw(json_value))
    event = {"type": wire_type, **draw(st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=4))}
    event["type"] = wire_type if draw(st.booleans()) else event.get("type", wire_type)
    return json.dumps(event)


class _Loop:
    """A server, a fuzzed session and a canary session on an event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.num_canary_turns = 0

    def call(self, coro: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    async def start(self) -> None:
        self.server = LocalServer(output_pace=0, max_bad_events=None)  # the fuzzed session sends hundreds
        await self.server.start()
        self.fuzzed = await RawClient(self.server.url).__aenter__()
        self.canary = await RawClient(self.server.url).__aenter__()
        await self.canary.send(type="session.update", session={"type": "realtime", "output_modalities": ["text"]})
        self._canary_task = asyncio.ensure_future(self._canary())

    async def _canary(self) -> None:
        while True:
            await self.canary.send(type="conversation.item.create", item=USER_TEXT)
            await self.canary.send(type="response.create")
            await self.canary.wait_for("response.done", count=self.num_canary_turns + 1)
            self.num_canary_turns += 1
            await asyncio.sleep(0.05)

    async def send(self, frame: str | bytes, sentinel: str) -> list[dict[str, Any]]:
        start = len(self.fuzzed.events)
        await self.fuzzed.send_raw(frame)
        await self.fuzzed.send(type="conversation.item.retrieve", item_id="no_such_item", event_id=sentinel)
        for _ in range(2000):
            if any(e.get("type") == "error" and e["error"].get("event_id") == sentinel
                   for e in self.fuzzed.events[start:]):
                break
            assert self.fuzzed.ws.close_code is None, f"the session closed ({self.fuzzed.ws.close_code}) on {frame[:200]}"
            await asyncio.sleep(0.005)
        else:
            raise AssertionError(f"no answer to the sentinel after {frame[:200]}")
        return self.fuzzed.events[start:]

    async def stop(self) -> tuple[int, bool]:
        turns_before = self.num_canary_turns
        await self.canary.wait_for("response.done", count=turns_before + 1)
        self._canary_task.cancel()
        alive = self.fuzzed.ws.close_code is None
        await self.fuzzed.__aexit__(None, None, None)
        await self.canary.__aexit__(None, None, None)
        await self.server.close()
        return self.num_canary_turns, alive


def test_fuzzed_client_events_never_kill_a_session_nor_raise_in_the_server(caplog):
    caplog.set_level(logging.INFO, logger="vkit.realtime.server")
    runner = _Loop()
    runner.call(runner.start())
    counter = iter(range(10**9))
    errors: list[dict[str, Any]] = []

    @hypothesis.settings(max_examples=400, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(client_frames())
    def check(frame: str | bytes) -> None:
        answered = runner.call(runner.send(frame, f"sentinel_{next(counter)}"))
        errors.extend(e["error"] for e in answered if e.get("type") == "error")
        assert not [e for e in answered if e.get("type") == "error" and e["error"].get("type") == "server_error"], frame[:300]

    try:
        check()
        num_turns, alive = runner.call(runner.stop())
    finally:
        runner.loop.call_soon_threadsafe(runner.loop.stop)
        runner.thread.join(5)
    assert alive and num_turns >= 2  # the canary kept taking turns throughout
    assert len(errors) > 300  # the sentinels at least, and the fuzzed events' own errors
    assert {e["code"] for e in errors} > {"invalid_value"}  # more than one kind of refusal was reached
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records
                                                                         if r.levelno >= logging.ERROR][:5]
