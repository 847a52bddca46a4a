"""The Responses cores as a client/server pair with no sockets: literal events, state, errors."""

from __future__ import annotations

import json

import pytest
from sdk_models import validate_events

from vkit.errors import LocalProtocolError, RemoteProtocolError
from vkit.responses import (
    ResponseCompleted,
    ResponsesClient,
    ResponsesServerSession,
    RuleModel,
    ServerSentEvents,
    TextDelta,
    ToolCall,
    encode_sse,
)
from vkit.responses.server import RequestRejected

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def _turn(client, server, said, transport="websocket"):
    body = client.request([{"role": "user", "content": said}] if isinstance(said, str) else said, transport=transport)
    timed = server.respond(json.loads(json.dumps(body)), created_at_s=1_700_000_000)
    typed = [client.receive(t.event) for t in timed]
    return body, timed, [t for t in typed if t is not None]


def test_a_conversation_carries_only_new_input_and_the_previous_response_id():
    client, server = ResponsesClient("gpt-test"), ResponsesServerSession(RuleModel(first_token_ms=100, tokens_per_s=20))
    body, timed, typed = _turn(client, server, "hello")
    assert "previous_response_id" not in body and "stream" not in json.loads(client.websocket_message(body))
    assert json.loads(client.websocket_message(body))["type"] == "response.create"
    assert [t.event["sequence_number"] for t in timed] == list(range(len(timed)))
    deltas = [t for t in timed if t.event["type"] == "response.output_text.delta"]
    assert deltas[0].offset_s == pytest.approx(0.1) and deltas[1].offset_s - deltas[0].offset_s == pytest.approx(0.05)
    assert "".join(t.text for t in typed if isinstance(t, TextDelta)) == "Hello! How can I help?"
    first_id = typed[-1].response_id
    body, _, typed = _turn(client, server, "book a table", transport="http")
    assert body["previous_response_id"] == first_id and body["stream"] is True
    done = typed[-1]
    assert isinstance(done, ResponseCompleted) and done.text == "Your table is booked."
    assert done.usage["input_tokens_details"]["cached_tokens"] > 0  # the first turn, held by the server
    validate_events([t.event for t in timed], "websocket")


def test_a_tool_call_round_trip_and_its_answer():
    client, server = ResponsesClient("gpt-test", tools=[WEATHER]), ResponsesServerSession()
    _, timed, typed = _turn(client, server, "what is the weather in Paris")
    call = next(t for t in typed if isinstance(t, ToolCall))
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "what is the weather in Paris"}
    validate_events([t.event for t in timed], "http")
    output = [{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}]
    _, _, typed = _turn(client, server, output)
    assert typed[-1].text == "Sunny, 21 C."


def test_errors_are_shaped_as_openai_shapes_them_and_the_state_survives():
    server = ResponsesServerSession()
    with pytest.raises(RequestRejected) as rejected:
        server.respond({"model": "m", "input": "hi", "previous_response_id": "resp_unknown"}, created_at_s=0)
    assert rejected.value.error["code"] == "previous_response_not_found" and rejected.value.status == 400
    validate_events([rejected.value.websocket_event()], "websocket")
    with pytest.raises(RequestRejected, match="'input'"):
        server.respond({"model": "m"}, created_at_s=0)
    client = ResponsesClient("m")
    client.request("hi", transport="websocket")
    with pytest.raises(LocalProtocolError, match="still streaming"):
        client.request("again", transport="websocket")
    error = client.receive(rejected.value.websocket_event())
    assert error.code == "previous_response_not_found" and not client.pending


def test_the_client_rejects_events_out_of_order():
    client, server = ResponsesClient("m"), ResponsesServerSession()
    timed = server.respond(client.request("hi", transport="websocket"), created_at_s=0)
    client.receive(timed[0].event)
    with pytest.raises(RemoteProtocolError, match="out of order"):
        client.receive(timed[2].event)


def test_server_sent_events_split_at_any_chunk_boundary():
    events = [t.event for t in ResponsesServerSession().respond({"model": "m", "input": "hello"}, created_at_s=0)]
    body = b"".join(encode_sse(e) for e in events) + b"data: [DONE]\n\n"
    for size in (1, 7, 64, len(body)):
        parser = ServerSentEvents()
        out = [d for i in range(0, len(body), size) for d in parser.feed(body[i:i + size])]
        assert [json.loads(d) for d in out] == events


def test_generate_false_warms_the_state_without_output():
    server = ResponsesServerSession()
    timed = server.respond({"model": "m", "input": "You are brief.", "generate": False}, created_at_s=0)
    assert [t.event["type"] for t in timed] == ["response.created", "response.in_progress", "response.completed"]
    assert timed[-1].event["response"]["output"] == [] and timed[-1].event["response"]["usage"]["output_tokens"] == 0
    validate_events([t.event for t in timed], "websocket")
    warmed = timed[-1].event["response"]["id"]
    follow = server.respond({"model": "m", "input": "hello", "previous_response_id": warmed}, created_at_s=0)
    assert follow[-1].event["response"]["usage"]["input_tokens_details"]["cached_tokens"] > 0
