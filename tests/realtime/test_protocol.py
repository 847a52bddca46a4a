"""Client and server state machines on literal JSON, and a client/server pair with no sockets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from realtime_helpers import validate_with_sdk

from vkit.errors import LocalProtocolError
from vkit.realtime import events as ev
from vkit.realtime.codec import encode_audio
from vkit.realtime.protocol import ClientProtocol, ClientState, InvalidEvent, ServerProtocol
from vkit.realtime.session_config import default_session, from_beta, merge_session, to_beta, turn_detection


def test_client_state_follows_the_session_and_responses():
    client = ClientProtocol()
    assert client.state == ClientState.CONNECTING
    client.receive('{"type":"session.created","event_id":"e1","session":{"type":"realtime","id":"s",'
                   '"audio":{"output":{"voice":"marin"}}}}')
    assert client.state == ClientState.OPEN and client.session["audio"]["output"]["voice"] == "marin"
    client.receive('{"type":"response.created","event_id":"e2","response":{"id":"resp_1","status":"in_progress"}}')
    assert client.active_response is not None and client.active_response.response_id == "resp_1"
    client.receive('{"type":"response.output_item.added","event_id":"e3","response_id":"resp_1","output_index":0,'
                   '"item":{"id":"item_1","type":"message","role":"assistant"}}')
    delta = encode_audio(np.zeros(2400, np.float32))  # 100 ms at 24 kHz
    client.receive(json.dumps({"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_1",
                               "output_index": 0, "content_index": 0, "delta": delta}))
    assert client.items["item_1"].num_samples == 2400
    client.receive('{"type":"response.done","event_id":"e4","response":{"id":"resp_1","status":"completed"}}')
    assert client.active_response is None


def test_truncating_beyond_what_was_received_is_our_error():
    client = ClientProtocol()
    client.receive('{"type":"session.created","session":{"type":"realtime"}}')
    client.receive(json.dumps({"type": "response.output_audio.delta", "response_id": "r", "item_id": "item_1",
                               "output_index": 0, "content_index": 0, "delta": encode_audio(np.zeros(4800))}))
    ok = client.send(ev.CLIENT_EVENTS["conversation.item.truncate"](item_id="item_1", content_index=0, audio_end_ms=150))
    assert json.loads(ok)["audio_end_ms"] == 150
    with pytest.raises(LocalProtocolError, match=r"within the 200 ms received for item_1 \(got 250\)"):
        client.send(ev.CLIENT_EVENTS["conversation.item.truncate"](item_id="item_1", content_index=0, audio_end_ms=250))
    with pytest.raises(LocalProtocolError, match="never received"):
        client.send(ev.CLIENT_EVENTS["conversation.item.truncate"](item_id="nope", content_index=0, audio_end_ms=1))
    client.close()
    with pytest.raises(LocalProtocolError, match="closed connection"):
        client.send(ev.CLIENT_EVENTS["input_audio_buffer.commit"]())


def test_garbage_is_recorded_and_reported_not_raised():
    client = ClientProtocol()
    for text in ("{not json", '{"type": 5}', '{"type":"response.created","response":"oops"}'):
        event = client.receive(text)
        assert isinstance(event, InvalidEvent) and event.reason
    assert len(client.remote_errors) == 3
    assert client.receive('{"type":"session.created","session":{}}').type == "session.created"


def test_server_errors_are_shaped_as_openai_shapes_them():
    server = ServerProtocol()
    cases = {
        '{"type":"input_audio_buffer.append","event_id":"c1"}':
            ("missing_required_parameter", "audio", "Missing required parameter: 'audio'."),
        '{"type":"conversation.item.truncate","event_id":"c2","item_id":"i","content_index":0,"audio_end_ms":"1"}':
            ("invalid_type", "audio_end_ms", "Invalid type for 'audio_end_ms': expected an integer, but got a string "
             "instead."),
        '{"type":"response.explode","event_id":"c3"}': ("invalid_value", "type", None),
        "{bad json": ("invalid_json", None, None),
    }
    for text, (code, param, message) in cases.items():
        with pytest.raises(Exception) as info:
            server.receive(text)
        error = info.value.event.to_dict()  # type: ignore[attr-defined]
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert error["error"]["code"] == code and error["error"]["param"] == param
        if message:
            assert error["error"]["message"] == message
        expected_id = json.loads(text)["event_id"] if text.startswith('{"') else None
        assert error["error"]["event_id"] == expected_id
        validate_with_sdk([error])


def test_session_merge_clear_and_beta_conversion():
    session = default_session()
    merged = merge_session(session, {"audio": {"input": {"turn_detection": {"silence_duration_ms": 200}}}})
    assert turn_detection(merged)["silence_duration_ms"] == 200 and turn_detection(merged)["threshold"] == 0.5
    cleared = merge_session(merged, {"audio": {"input": {"turn_detection": None}}, "instructions": ""})
    assert turn_detection(cleared) is None and cleared["instructions"] == ""
    semantic = merge_session(session, {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}})
    assert turn_detection(semantic) == {"type": "semantic_vad", "eagerness": "auto", "create_response": True,
                                        "interrupt_response": True}
    beta = to_beta(merged)
    assert beta["input_audio_format"] == "pcm16" and beta["turn_detection"]["silence_duration_ms"] == 200
    assert from_beta({"voice": "echo", "input_audio_format": "g711_ulaw", "modalities": ["text", "audio"]}) == {
        "output_modalities": ["audio"], "audio": {"input": {"format": {"type": "audio/pcmu"}},
                                                  "output": {"voice": "echo"}}}


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_client_and_server_pair_without_sockets(dialect):
    """Text goes back and forth in memory: the two state machines agree, and every event is valid."""
    client, server = ClientProtocol(dialect), ServerProtocol(dialect)
    sent_by_server: list[str] = []

    def server_says(wire_type: str, **fields) -> None:
        text = server.encode(server.event(wire_type, **fields))
        sent_by_server.append(text)
        client.receive(text)

    session = default_session()
    server_says("session.created", session=to_beta(session) if dialect == "beta" else session)
    update = {"voice": "verse"} if dialect == "beta" else {"type": "realtime", "audio": {"output": {"voice": "verse"}}}
    received = server.receive(client.send(ev.CLIENT_EVENTS["session.update"](session=update)))
    ga_update = from_beta(received.session) if dialect == "beta" else received.session
    session = merge_session(session, ga_update)
    server_says("session.updated", session=to_beta(session) if dialect == "beta" else session)
    assert client.session["audio"]["output"]["voice"] == "verse"
    audio = encode_audio(np.zeros(2400, np.float32))
    appended = server.receive(client.send(ev.CLIENT_EVENTS["input_audio_buffer.append"](audio=audio)))
    assert appended.audio == audio and client.num_input_samples == 2400
    item = {"id": "item_a", "object": "realtime.item", "type": "message", "role": "assistant", "status": "in_progress",
            "content": []}
    response = {"id": "resp_a", "object": "realtime.response", "status": "in_progress", "output": []}
    server_says("response.created", response=response)
    server_says("response.output_item.added", response_id="resp_a", output_index=0, item=item)
    server_says("response.output_audio.delta", response_id="resp_a", item_id="item_a", output_index=0,
                content_index=0, delta=audio)
    server_says("response.done", response={**response, "status": "completed"})
    assert client.items["item_a"].num_samples == 2400 and client.active_response is None
    validate_with_sdk([json.loads(t) for t in sent_by_server], dialect)
    if dialect == "beta":
        assert json.loads(sent_by_server[-2])["type"] == "response.audio.delta"


def test_the_direct_append_text_is_what_send_writes_for_the_event():
    client, direct = ClientProtocol(), ClientProtocol()
    audio = encode_audio(np.linspace(-1, 1, 480, dtype=np.float32))
    event_id, text = direct.append_text(audio, 480)
    assert text == client.send(ev.CLIENT_EVENTS["input_audio_buffer.append"](audio=audio, event_id=event_id))
    assert json.loads(text) == {"type": "input_audio_buffer.append", "event_id": event_id, "audio": audio}
    assert direct.num_input_samples == client.num_input_samples == 480
    assert direct.append_text(audio, 480)[0] != event_id and direct.num_input_samples == 960
    direct.close()
    with pytest.raises(LocalProtocolError, match="closed"):
        direct.append_text(audio, 480)


def test_the_connection_state_follows_its_transitions():
    import json

    from vkit.realtime.protocol import ClientProtocol, ClientState

    protocol = ClientProtocol("ga")
    created = json.dumps({"type": "session.created", "event_id": "e1", "session": {"type": "realtime"}})
    protocol.receive(created)
    assert protocol.state == ClientState.OPEN
    protocol.close()
    late = protocol.receive(created)  # a server speaking after the close: skipped as a bad event, not obeyed
    assert protocol.state == ClientState.CLOSED and late.wire_type == "session.created"
    assert "cannot go from closed to open" in late.reason
