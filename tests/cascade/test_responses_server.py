"""The local cascade server on 127.0.0.1 against the official SDK, and over TLS with vkit's own client."""

from __future__ import annotations

import asyncio

import openai
import pytest
from sdk_models import validate_events

from vkit.responses import ResponsesClient, TextDelta
from vkit.responses.local_server import CascadeServer
from vkit.responses.transport import HttpClient, ResponsesTransport
from vkit.units import pcm16_bytes_to_float


def _sdk(server: CascadeServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-local", base_url=server.base_url, websocket_base_url=server.websocket_base_url)


def test_the_sdk_holds_a_websocket_mode_conversation_by_previous_response_id():
    async def main():
        async with CascadeServer(first_token_ms=5, tokens_per_s=1000) as server:
            events, answers, previous = [], [], None
            async with _sdk(server).responses.connect() as connection:
                for said in ("hello", "book a table for two", "nothing else"):
                    await connection.response.create(model="gpt-test", input=[{"role": "user", "content": said}],
                                                     previous_response_id=previous)
                    async for event in connection:
                        events.append(event.model_dump(mode="json", exclude_unset=True))
                        if event.type == "response.completed":
                            previous = event.response.id
                            answers.append((event.response.output_text, event.response.previous_response_id,
                                            event.response.usage.input_tokens_details.cached_tokens))
                            break
                # a faithful error: an unknown previous response; the socket survives it
                await connection.response.create(model="gpt-test", input="again", previous_response_id="resp_nope")
                error = await connection.recv()
                events.append(error.model_dump(mode="json", exclude_unset=True))
                await connection.response.create(model="gpt-test", input="hello", previous_response_id=previous)
                async for event in connection:
                    if event.type == "response.completed":
                        break
            return events, answers, error, server.num_connections

    events, answers, error, num_connections = asyncio.run(main())
    assert [a[0] for a in answers] == ["Hello! How can I help?", "Your table is booked.", "You said: nothing else."]
    assert answers[0][1] is None and answers[1][1] is not None and answers[2][2] > answers[1][2] > 0
    assert error.type == "error" and error.error.code == "previous_response_not_found"
    assert num_connections == 1
    validate_events(events, "websocket")


def test_the_sdk_streams_over_http_and_fetches_streamed_speech():
    async def main():
        async with CascadeServer(first_token_ms=5, tokens_per_s=1000) as server:
            client = _sdk(server)
            stream = await client.responses.create(model="gpt-test", input="what about the weather", stream=True)
            events = [event.model_dump(mode="json", exclude_unset=True) async for event in stream]
            follow = await client.responses.create(model="gpt-test", input="hello",
                                                   previous_response_id=events[-1]["response"]["id"])
            with pytest.raises(openai.BadRequestError, match="resp_nope. not found"):
                await client.responses.create(model="gpt-test", input="x", previous_response_id="resp_nope")
            async with client.audio.speech.with_streaming_response.create(
                    model="gpt-4o-mini-tts", voice="alloy", input="Hello there.", response_format="pcm") as speech:
                chunks = [chunk async for chunk in speech.iter_bytes()]
            return events, follow, chunks

    events, follow, chunks = asyncio.run(main())
    validate_events(events, "http")
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Tomorrow looks sunny and mild."
    assert follow.output_text == "Hello! How can I help?" and follow.previous_response_id == events[-1]["response"]["id"]
    audio = pcm16_bytes_to_float(b"".join(chunks))
    assert len(chunks) > 1 and 0.3 < audio.size / 24_000 < 3 and abs(audio).max() > 0.05


@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_over_tls_a_new_connection_per_turn_pays_its_handshake_and_one_socket_does_not(transport):
    async def main():
        async with CascadeServer(first_token_ms=0, tokens_per_s=1000, tls=True) as server:
            assert server.base_url.startswith("https://") and server.websocket_base_url.startswith("wss://")
            link = ResponsesTransport(server.base_url, server.websocket_base_url, transport, api_key="sk-local",
                                      ssl_context=server.client_ssl_context(), keepalive_s=0.0)
            client = ResponsesClient("gpt-test")
            await link.connect()
            texts, setups = [], []
            for said in ("hello", "book a table"):
                body = client.request(said, transport=transport)
                parts = [t.text async for e in link.send(body, client.websocket_message(body))
                         if isinstance(t := client.receive(e), TextDelta)]
                texts.append("".join(parts))
                setups.append(link.last_setup_ns)
            await link.aclose()
            return texts, setups, link.num_connections, server.num_connections

    texts, setups, client_connections, server_connections = asyncio.run(main())
    assert texts == ["Hello! How can I help?", "Your table is booked."]
    if transport == "websocket":
        assert setups == [0, 0] and client_connections == server_connections == 1
    else:
        assert all(s > 0 for s in setups) and client_connections == server_connections == 2


def test_an_http_client_without_the_certificate_is_refused():
    async def main():
        async with CascadeServer(tls=True) as server:
            client = HttpClient(server.base_url.rsplit("/v1", 1)[0])
            with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.stream("POST", "/v1/responses", {"model": "m", "input": "hi"})

    asyncio.run(main())


def test_the_local_realtime_server_serves_the_cascade_endpoints_beside_it():
    from vkit.realtime.server import LocalServer

    async def main():
        async with LocalServer(cascade={"port": 0, "first_token_ms": 0}) as server:
            client = _sdk(server.cascade)
            response = await client.responses.create(model="gpt-test", input="hello")
            return response.output_text, server.cascade.port != server.port

    assert asyncio.run(main()) == ("Hello! How can I help?", True)
