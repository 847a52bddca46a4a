"""Client-side tools and text: schemas from type hints, the Realtime stage running calls, Transcript items."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
from typing import Literal, TypedDict

import pytest
from realtime_helpers import validate_with_sdk
from scripted_server import ScriptedToolServer

import vkit
from vkit import sinks, sources
from vkit.errors import ConfigError
from vkit.frames import ProtocolEvent, ToolCall, Transcript
from vkit.latency import compute_turns
from vkit.realtime import Realtime, conversation, tool

pytestmark = pytest.mark.timeout(60)


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@dataclasses.dataclass
class Place:
    city: str
    country: str = "FR"


class Window(TypedDict, total=False):
    days: int
    hourly: bool


def forecast(place: Place, unit: Unit = Unit.CELSIUS, window: Window | None = None,
             tags: list[str] | None = None, mode: Literal["brief", "full"] = "brief", ratio: float = 1.0) -> dict:
    """Forecast the weather.

    Args:
        place: where to forecast.
        unit: the temperature unit,
            celsius or fahrenheit.
    """
    return {"city": place.city, "country": place.country, "unit": unit.value, "ratio": ratio, "tags": tags}


def test_the_schema_is_derived_from_type_hints_and_the_docstring():
    declared = tool(forecast).declaration()
    assert declared["type"] == "function" and declared["name"] == "forecast"
    assert declared["description"] == "Forecast the weather."
    params = declared["parameters"]
    assert params["required"] == ["place"]
    assert params["properties"]["place"] == {
        "type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city"], "description": "where to forecast."}
    assert params["properties"]["unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"],
                                            "description": "the temperature unit, celsius or fahrenheit.",
                                            "default": "celsius"}
    assert params["properties"]["window"] == {"type": ["object", "null"], "properties": {
        "days": {"type": "integer"}, "hourly": {"type": "boolean"}}, "required": [], "default": None}
    assert params["properties"]["tags"] == {"type": ["array", "null"], "items": {"type": "string"}, "default": None}
    assert params["properties"]["mode"] == {"type": "string", "enum": ["brief", "full"], "default": "brief"}
    assert params["properties"]["ratio"] == {"type": "number", "default": 1.0}
    from openai.types.realtime import RealtimeFunctionTool

    RealtimeFunctionTool.model_validate(declared)


def test_a_call_converts_json_to_the_annotated_types():
    output = asyncio.run(tool(forecast).call(json.dumps({"place": {"city": "Oslo", "country": "NO"},
                                                         "unit": "fahrenheit", "ratio": 2})))
    assert json.loads(output) == {"city": "Oslo", "country": "NO", "unit": "fahrenheit", "ratio": 2.0, "tags": None}
    with pytest.raises(ValueError, match="not JSON"):
        asyncio.run(tool(forecast).call("{city"))


def test_explicit_schemas_names_and_bad_tools():
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    wrapped = tool(lambda q: q.upper(), name="shout", description="Shout it.", parameters=schema)
    assert wrapped.declaration() == {"type": "function", "name": "shout", "description": "Shout it.",
                                     "parameters": schema}
    assert asyncio.run(wrapped.call('{"q": "hi"}')) == "HI"

    @tool(name="lookup")
    async def find(term: str) -> list[str]:
        """:param term: what to look up"""
        return [term]

    assert find.name == "lookup" and find.parameters["properties"]["term"]["description"] == "what to look up"
    with pytest.raises(ConfigError, match="needs a type hint"):
        tool(lambda q: q)
    with pytest.raises(ConfigError, match=r"no JSON schema.*'when'"):
        tool(_takes_a_set)
    with pytest.raises(ConfigError, match="tool names must be unique"):
        Realtime(tools=[forecast, forecast])


def _takes_a_set(when: complex) -> None:
    """Not expressible in JSON."""


async def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Get the current weather in a city."""
    await asyncio.sleep(0.1)
    return {"city": city, "temperature": 21, "unit": unit}


def broken_tool() -> str:
    """Always fails."""
    raise RuntimeError("the weather service is down")


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_the_stage_runs_parallel_calls_and_answers_once(dialect):
    calls = [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"}), ("broken_tool", {})]

    async def main():
        async with ScriptedToolServer(calls) as server:
            stage = Realtime(server.url, dialect=dialect, tools=[get_weather, broken_tool], frame_ms=40)
            session = await vkit.arun(sources.Silence(duration_ms=1500, pace="realtime") | stage | sinks.Memory())
            return server, session

    server, session = asyncio.run(main())
    assert not server.errors
    declared = server.of("session.update")[0]["session"]
    assert [t["name"] for t in declared["tools"]] == ["get_weather", "broken_tool"]
    assert declared["tool_choice"] == "auto" and ("audio" in declared) == (dialect == "ga")
    if dialect == "ga":
        validate_with_sdk(server.sent, "ga")
    outputs = {e["item"]["call_id"]: e["item"]["output"] for e in server.of("conversation.item.create")}
    call_ids = [e["call_id"] for e in server.sent if e["type"] == "response.function_call_arguments.done"]
    assert set(outputs) == set(call_ids)
    assert [json.loads(outputs[c]) for c in call_ids[:2]] == [
        {"city": "Paris", "temperature": 21, "unit": "celsius"}, {"city": "Oslo", "temperature": 21, "unit": "celsius"}]
    assert json.loads(outputs[call_ids[2]]) == {"error": "RuntimeError: the weather service is down"}
    creates = [i for i, e in enumerate(server.received) if e["type"] == "response.create"]
    item_creates = [i for i, e in enumerate(server.received) if e["type"] == "conversation.item.create"]
    assert len(creates) == 1 and creates[0] > max(item_creates)  # one response.create, after every output

    steps = [(e.phase, e.call_id) for e in session.events_of(ToolCall)]
    weather = call_ids[:2]
    started = [steps.index(("started", c)) for c in weather]
    finished = [steps.index(("finished", c)) for c in weather]
    assert max(started) < min(finished)  # the two slow calls ran at the same time
    failed = [e for e in session.events_of(ToolCall) if e.phase == "finished" and e.error]
    assert [e.name for e in failed] == ["broken_tool"]
    assert session.events_of(ToolCall)[-1].phase in ("output_sent", "response_requested")

    turns = session.turns
    assert len(turns) == 1  # the tools' answer belongs to the turn that called them
    turn = turns[0]
    assert turn.num_tool_calls == 3 and turn.tool_call_ms is not None and turn.tool_call_ms > 0
    assert turn.tool_round_trip_ms is not None and turn.tool_round_trip_ms >= turn.tool_call_ms
    assert turn.first_audio_received_ms is not None and turn.status == "completed"
    assert turns.rows() == compute_turns(session.events).rows()
    assert "tool round trip" in turns.to_text() and "tool round trip" in turns._repr_html_()

    texts = session.events_of(Transcript)
    assert [t.text for t in texts if t.role == "user" and not t.final] == ["What's the weather ", "in Paris?"]
    lines = conversation(session.events)
    assert [(u.role, u.text) for u in lines] == [("user", "What's the weather in Paris?"),
                                                 ("assistant", "It is sunny in Paris.")]
    assert all(u.final_ms is not None and u.final_ms >= u.first_ms for u in lines)
    assert "assistant: It is sunny in Paris." in str(lines[1])


def test_transcripts_reach_downstream_stages():
    seen: list[Transcript] = []

    def keep(item):
        if isinstance(item, Transcript):
            seen.append(item)
        return item

    async def main():
        async with ScriptedToolServer([("get_weather", {"city": "Paris"})]) as server:
            graph = (sources.Silence(duration_ms=1200, pace="realtime")
                     | Realtime(server.url, tools=[get_weather]) | vkit.stage(keep, accepts=(Transcript,)))
            return await vkit.arun(graph)

    session = asyncio.run(main())
    assert [t.text for t in seen if t.final] == ["What's the weather in Paris?", "It is sunny in Paris."]
    assert all(t.stage and t.t_ns > 0 for t in seen) and len(seen) == len(session.events_of(Transcript))


def test_the_stage_completes_a_tool_round_trip_against_the_local_server(speech_24k):
    async def weather(city: str = "Paris") -> str:
        """Get the weather."""
        return f"sunny in {city}"

    audio, _ = speech_24k
    stage = Realtime(tools=[tool(weather, name="get_weather")], tool_choice="required",
                     server={"responder": "tools", "output_pace": 0})
    session = vkit.run(sources.Array(audio[: 24_000 * 5], 24_000, pace="realtime") | stage | sinks.Memory())
    phases = [e.phase for e in session.events_of(ToolCall)]
    assert phases[:4] == ["arrived", "started", "finished", "output_sent"] and "response_requested" in phases
    done = [e for e in session.events_of(ProtocolEvent) if e.direction == "received" and e.type == "response.done"]
    assert len(done) == 2 and done[-1].event.response["status"] == "completed"
    assert session.turns[0].num_tool_calls == 1 and session.turns[0].tool_round_trip_ms is not None
