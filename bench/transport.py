"""Per-turn overhead of the Responses API's WebSocket mode against HTTP streaming, side by side.

Each arm runs the same conversation of ``--turns`` turns (``previous_response_id``) against the local
cascade server with a model answering in 0 ms (so the time measured is transport only), through a link
injecting each round-trip time, with and without TLS. The HTTP arms open a new connection per turn
(``keepalive_s=0``: what a turn seconds apart gets from a client whose pool expires idle connections,
httpx's default being 5 s) or reuse one kept alive; the WebSocket arm opens its socket once, before the
first turn. Reported per turn: time from the request to the first text (median, p90) and the connection
setup that turn paid.

    python bench/transport.py [--turns 30] [--rtt-ms 0 20 80]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from vkit.responses.local_server import CascadeServer
from vkit.responses.protocol import ResponsesClient, TextDelta
from vkit.responses.transport import ResponsesTransport


async def one_arm(transport: str, keepalive_s: float, *, tls: bool, rtt_ms: float, num_turns: int) -> dict[str, float]:
    async with CascadeServer(first_token_ms=0, tokens_per_s=10_000, tls=tls, rtt_ms=rtt_ms) as server:
        link = ResponsesTransport(server.base_url, server.websocket_base_url, transport, api_key="sk-local",
                                  ssl_context=server.client_ssl_context(), keepalive_s=keepalive_s)
        client = ResponsesClient("bench")
        started_ns = time.monotonic_ns()
        await link.connect()
        open_ms = (time.monotonic_ns() - started_ns) / 1e6
        first_text_ms, setup_ms = [], []
        try:
            for turn in range(num_turns):
                body = client.request([{"role": "user", "content": f"hello {turn}"}], transport=transport)
                sent_ns, first_ns = time.monotonic_ns(), None
                async for event in link.send(body, client.websocket_message(body)):
                    if isinstance(client.receive(event), TextDelta) and first_ns is None:
                        first_ns = time.monotonic_ns()
                assert first_ns is not None
                first_text_ms.append((first_ns - sent_ns) / 1e6)
                setup_ms.append(link.last_setup_ns / 1e6)
        finally:
            await link.aclose()
        return {"p50": statistics.median(first_text_ms), "p90": statistics.quantiles(first_text_ms, n=10)[-1],
                "setup": statistics.mean(setup_ms), "open": open_ms, "connections": link.num_connections}


async def main(num_turns: int, rtts_ms: list[float]) -> None:
    arms = [("websocket", "WebSocket mode (one socket)", 0.0), ("http", "HTTP, kept-alive connection", 60.0),
            ("http", "HTTP, new connection per turn", 0.0)]
    print(f"{num_turns} turns per arm; ms from request to first text; setup = connection setup per turn (mean)")
    print(f"{'RTT':>5} {'TLS':>4}  {'arm':<31} {'p50':>7} {'p90':>7} {'setup':>7} {'conns':>6}")
    for rtt_ms in rtts_ms:
        for tls in (False, True):
            for transport, label, keepalive_s in arms:
                row = await one_arm(transport, keepalive_s, tls=tls, rtt_ms=rtt_ms, num_turns=num_turns)
                print(f"{rtt_ms:>5.0f} {'yes' if tls else 'no':>4}  {label:<31} {row['p50']:>7.1f} {row['p90']:>7.1f} "
                      f"{row['setup']:>7.1f} {row['connections']:>6}")
    print("(WebSocket mode opens its socket before the first turn; that one-off setup is not in these rows)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 20.0, 80.0])
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.rtt_ms))
