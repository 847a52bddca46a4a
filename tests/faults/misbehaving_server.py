"""A programmable misbehaving Realtime server on 127.0.0.1, for fault-injection tests of the client.

Each connection runs a *script*: an async function given a ``FaultConnection`` that can speak the
protocol properly (``handshake``, ``answer``) or misbehave (close with any code, drop mid-answer, stall,
stop reading, send malformed, deep, oversized or flooding events). Scripts are taken in order, one per
connection, the last repeating; ``refuse(n)`` rejects the next ``n`` handshakes with HTTP 503.
"""

from __future__ import annotations

import asyncio
import base64
import http
import json
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Script = Callable[["FaultConnection"], Awaitable[None]]
SESSION = {"type": "realtime", "output_modalities": ["audio"],
           "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
                     "output": {"format": {"type": "audio/pcm", "rate": 24000}}}}


class FaultConnection:
    """One client connection and the tools to answer it well or badly."""

    def __init__(self, server: MisbehavingServer, websocket: ServerConnection, index: int) -> None:
        self.server = server
        self.websocket = websocket
        self.index = index
        self.received: list[dict[str, Any]] = []
        self.num_sent = 0  # messages sent to the client, well-formed or not
        self._arrived = asyncio.Event()
        self._ids = 0
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.websocket:
                self.received.append(json.loads(message))
                self._arrived.set()
        except ConnectionClosed:
            pass

    def event_id(self) -> str:
        self._ids += 1
        return f"event_fault_{self.index}_{self._ids}"

    async def send(self, **event: Any) -> None:
        await self.send_raw(json.dumps({"event_id": self.event_id(), **event}))

    async def send_raw(self, text: str | bytes) -> None:
        await self.websocket.send(text)
        self.num_sent += 1

    async def wait_for(self, wire_type: str, count: int = 1, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while sum(e.get("type") == wire_type for e in self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()

    @property
    def num_appended_samples(self) -> int:
        """The input samples received in ``input_audio_buffer.append`` events."""
        return sum(len(base64.b64decode(e["audio"])) // 2 for e in self.received
                   if e.get("type") == "input_audio_buffer.append")

    async def wait_for_samples(self, num_samples: int, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.num_appended_samples < num_samples:
                self._arrived.clear()
                await self._arrived.wait()

    async def handshake(self) -> None:
        """Answer the client's session.update as a well-behaved server does."""
        await self.wait_for("session.update")
        await self.send(type="session.created", session={**SESSION, "id": f"sess_{self.index}"})
        await self.send(type="session.updated", session={**SESSION, "id": f"sess_{self.index}"})

    async def answer(self, response_id: str, item_id: str, *, num_deltas: int = 5, delta_samples: int = 2400,
                     pause_s: float = 0.0, stop_after: int | None = None) -> None:
        """A response of ``num_deltas`` audio deltas; ``stop_after`` ends it (without response.done) there."""
        await self.send(type="response.created", response={"id": response_id, "object": "realtime.response",
                                                           "status": "in_progress", "output": []})
        await self.send(type="response.output_item.added", response_id=response_id, output_index=0,
                        item={"id": item_id, "type": "message", "role": "assistant", "content": []})
        delta = base64.b64encode(b"\x00\x01" * delta_samples).decode()
        for number in range(num_deltas):
            if stop_after is not None and number >= stop_after:
                return
            await self.send(type="response.output_audio.delta", response_id=response_id, item_id=item_id,
                            output_index=0, content_index=0, delta=delta)
            await asyncio.sleep(pause_s)
        await self.send(type="response.done", response={"id": response_id, "object": "realtime.response",
                                                        "status": "completed", "output": []})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.websocket.close(code, reason)

    def freeze(self) -> None:
        """Stop reading from the socket: the client's sends back up until its buffers are full."""
        self._reader.cancel()
        self.websocket.transport.pause_reading()

    async def hold(self, seconds: float = 3600.0) -> None:
        """Say nothing for ``seconds`` (a stall), keeping the connection open."""
        await asyncio.sleep(seconds)


class MisbehavingServer:
    """``async with MisbehavingServer(script, ...) as server:`` then connect to ``server.url``."""

    def __init__(self, *scripts: Script, max_size: int | None = None) -> None:
        self.scripts = scripts or (_well_behaved,)
        self.connections: list[FaultConnection] = []
        self.num_refused = 0
        self.num_handshakes = 0
        self._to_refuse = 0
        self._max_size = max_size
        self.url = ""

    def refuse(self, num_handshakes: int) -> None:
        """Reject the next ``num_handshakes`` connection attempts with HTTP 503."""
        self._to_refuse = num_handshakes

    async def __aenter__(self) -> MisbehavingServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check, max_size=self._max_size,
                                   ping_interval=None, compression=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1/realtime"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for connection in self.connections:
            connection.websocket.transport.abort()
        self._server.close()
        await self._server.wait_closed()

    def _check(self, connection: ServerConnection, request: Any) -> Any:
        self.num_handshakes += 1
        if self._to_refuse > 0:
            self._to_refuse -= 1
            self.num_refused += 1
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "refused by the fault script\n")
        return None

    async def _handle(self, websocket: ServerConnection) -> None:
        connection = FaultConnection(self, websocket, len(self.connections) + 1)
        self.connections.append(connection)
        script = self.scripts[min(connection.index, len(self.scripts)) - 1]
        acting = asyncio.ensure_future(script(connection))
        closed = asyncio.ensure_future(websocket.wait_closed())
        await asyncio.wait({acting, closed}, return_when=asyncio.FIRST_COMPLETED)
        if acting.done() and not acting.cancelled() and acting.exception() is not None \
                and not isinstance(acting.exception(), ConnectionClosed):
            closed.cancel()
            raise acting.exception()  # type: ignore[misc]  # a broken script is a test bug: show it
        await closed  # a script that finished keeps the connection open until the client leaves
        acting.cancel()  # a client that left ends a script still holding or streaming
        await asyncio.gather(acting, return_exceptions=True)


async def _well_behaved(connection: FaultConnection) -> None:
    await connection.handshake()
