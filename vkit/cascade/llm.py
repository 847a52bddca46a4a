"""``LLM``: final transcripts in, streamed answer text out, over the Responses API by WebSocket mode or
HTTP streaming (one argument apart), the conversation kept server side by ``previous_response_id``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from vkit.errors import ConfigError, RemoteProtocolError, got
from vkit.frames import LlmDone, LlmRequest, LlmText, SttTranscript
from vkit.graph import Pipe
from vkit.realtime.tools import Tool, as_tool
from vkit.responses.protocol import ResponseCompleted, ResponseError, ResponsesClient, TextDelta, tool_outputs
from vkit.responses.transport import ResponsesTransport, Transport
from vkit.units import ns_to_ms

__all__ = ["LLM"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
_MAX_TOOL_ROUNDS = 4


class LLM(Pipe):
    """Text in, streamed text out: one Responses request per final ``SttTranscript``.

    ``transport``: "websocket" (one socket for the session, opened at start) or "http" (``POST /v1/responses``
    with ``stream: true``; a kept-alive connection is reused within ``keepalive_s``, else a new TCP + TLS
    handshake is paid). ``url``: None for the embedded local server (``server={...}``: its options, e.g.
    ``{"first_token_ms": 300, "tls": True}``), "openai" (``OPENAI_API_KEY``) or a base URL ``http(s)://.../v1``.
    ``tools``: Python callables the model may call; their results go back in the same turn.
    ``warm_up=True`` (WebSocket mode): at start, a ``generate: false`` request carrying the instructions and
    tools prepares the conversation, so the first turn continues it by ``previous_response_id``.
    """

    accepts = (SttTranscript,)

    def __init__(self, url: str | None = None, *, transport: Transport = "websocket", model: str = "gpt-4.1-mini",
                 instructions: str | None = None, tools: Sequence[Tool | Callable[..., Any]] = (), api_key: str | None = None,
                 server: dict[str, Any] | None = None, keepalive_s: float = 5.0, timeout_s: float = 30.0,
                 warm_up: bool = False) -> None:
        if transport not in ("websocket", "http"):
            raise ConfigError(f"transport must be 'websocket' or 'http' {got(transport)}")
        if warm_up and transport != "websocket":
            raise ConfigError(f"warm_up (generate: false) is a WebSocket-mode request {got(transport)}")
        if url is not None and server is not None:
            raise ConfigError(f"server= options are for the embedded server; they do not apply to url= {got(url)}")
        self.url = OPENAI_BASE_URL if url == "openai" else url
        self.transport = transport
        self.model = model
        self.instructions = instructions
        self.tools = {t.name: t for t in (as_tool(x) for x in tools)}
        self._api_key = api_key
        self.server = dict(server or {})
        self.keepalive_s = keepalive_s
        self.timeout_s = timeout_s
        self.warm_up = warm_up
        self.endpoint = "local" if url is None else (self.url or "").split("?", 1)[0]

    def __repr__(self) -> str:
        return f"LLM(endpoint={self.endpoint!r}, transport={self.transport!r}, model={self.model!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_api_key": None}

    def describe(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "transport": self.transport, "model": self.model,
                "tools": list(self.tools), "keepalive_s": self.keepalive_s, "warm_up": self.warm_up,
                **{f"server_{k}": v for k, v in self.server.items() if isinstance(v, (int, float, str, bool))}}

    async def run(self, ctx: Any) -> None:
        async with AsyncExitStack() as stack:
            if self.url is None:
                from vkit.responses.local_server import CascadeServer

                local = await stack.enter_async_context(CascadeServer(**self.server))
                base, ws_base, context, key = local.base_url, local.websocket_base_url, local.client_ssl_context(), None
            else:
                base = self.url.rstrip("/")
                ws_base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
                context, key = None, self._api_key or os.environ.get("OPENAI_API_KEY")
                if key is None and base.startswith(OPENAI_BASE_URL):
                    raise ConfigError(f"the LLM stage needs OPENAI_API_KEY (or api_key=) for {self.endpoint} "
                                      f"{got('no key')}")
            transport = ResponsesTransport(base, ws_base, self.transport, api_key=key, ssl_context=context,
                                           keepalive_s=self.keepalive_s, timeout_s=self.timeout_s)
            stack.push_async_callback(transport.aclose)
            await transport.connect()  # WebSocket mode: the socket is opened before the first turn
            client = ResponsesClient(self.model, instructions=self.instructions,
                                     tools=[{**t.declaration(), "strict": False} for t in self.tools.values()])
            if self.warm_up:
                body = client.request([], transport=self.transport, generate=False)
                async for event in transport.send(body, client.websocket_message(body)):
                    if isinstance(typed := client.receive(event), ResponseError):
                        raise RemoteProtocolError(f"the warm-up request was refused: {typed.message} {got(typed.code)}")
            async for item in ctx:
                if isinstance(item, SttTranscript) and item.final and item.text.strip():
                    await self._turn(ctx, client, transport, item)

    async def _call(self, ctx: Any, name: str, arguments: str) -> str:
        """Run the tool the model called (``vkit.realtime.tools``: schemas from type hints, sync or async),
        as work the session clock waits for."""
        tool = self.tools.get(name)
        if tool is None:
            raise ConfigError(f"the model called a tool that was not given {got(name)}")
        with ctx.clock.busy():
            return await tool.call(arguments)

    async def _turn(self, ctx: Any, client: ResponsesClient, transport: ResponsesTransport, said: SttTranscript) -> None:
        anchor = said.speech_end_t_ns
        items: list[dict[str, Any]] = [{"role": "user", "content": said.text}]
        setup_ns, usage, text, first = 0, {}, "", True
        completed: ResponseCompleted | None = None
        for rounds in range(_MAX_TOOL_ROUNDS + 1):
            ctx.publish(LlmRequest(t_ns=ctx.clock.now_ns(), transport=self.transport, speech_end_t_ns=anchor,
                                   num_tool_rounds=rounds))
            body = client.request(items, transport=self.transport)
            stream = transport.send(body, client.websocket_message(body))
            async for event in stream:
                typed = client.receive(event)
                if isinstance(typed, TextDelta):
                    await ctx.emit(LlmText(t_ns=ctx.clock.now_ns(), text=typed.text, response_id=typed.response_id,
                                           first=first, speech_end_t_ns=anchor))
                    first = False
                elif isinstance(typed, ResponseError):
                    raise RemoteProtocolError(f"the Responses server refused the request: {typed.message} "
                                              f"{got(typed.code)}")
                elif isinstance(typed, ResponseCompleted):
                    completed = typed
            setup_ns += transport.last_setup_ns
            if completed is None:
                raise RemoteProtocolError(f"the Responses stream ended without response.completed {got(self.transport)}")
            usage = _add_usage(usage, completed.usage)
            text += completed.text
            if not completed.tool_calls:
                break
            outputs = {c.call_id: await self._call(ctx, c.name, c.arguments) for c in completed.tool_calls}
            items = tool_outputs(completed.tool_calls, lambda c, done=outputs: done[c.call_id])
        assert completed is not None
        await ctx.emit(LlmDone(t_ns=ctx.clock.now_ns(), text=text, response_id=completed.response_id,
                               status=completed.status, usage=usage, connection_setup_ms=ns_to_ms(setup_ns),
                               speech_end_t_ns=anchor))


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """Usage of several requests (tool rounds) summed field by field."""
    out = dict(total)
    for key, value in usage.items():
        if isinstance(value, dict):
            out[key] = _add_usage(out.get(key) or {}, value)
        elif isinstance(value, (int, float)):
            out[key] = out.get(key, 0) + value
    return out
