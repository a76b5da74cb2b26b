"""The simulated OpenRouter served on loopback in a process of its own, for the benchmarks.

`python -m bench._upstream --latency 0.05` writes its base URL as one line on stdout and serves until
stdin closes. A process of its own, because a server thread inside the measuring process would
compete with it for the GIL and show up in every timing. The key it accepts comes from
OPENROUTER_API_KEY in the environment.

`GET /_bench/stats` (outside the API prefix) answers how many TCP connections the simulator accepted and how
many requests it served besides these, so that a benchmark can tell how many upstream requests reused a
kept-alive connection. A stats request opens a connection of its own (and is not counted as a request).

The listening socket is made here rather than by `serve_in_thread` so that it is created with
`IPPROTO_TCP`: asyncio disables Nagle's algorithm only on sockets whose `proto` says TCP, and a
socket made with the default proto 0 leaves it on. uvicorn writes a response's headers and body
separately, so with Nagle on, every small answer waits for the client's delayed ACK: a 40 ms stall
that would swamp the sub-millisecond differences measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import threading
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from openrouter_mcp.simulator import API_PREFIX, Simulator

STATS_PATH = "/_bench/stats"


class Counts:
    connections = 0
    requests = 0


class CountingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, counting the connections it accepts."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        Counts.connections += 1
        super().connection_made(transport)


def counting(app: Any) -> Any:
    """`app`, with its requests counted and `STATS_PATH` answered."""

    async def counted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            body = json.dumps({"connections": Counts.connections, "requests": Counts.requests}).encode()
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            Counts.requests += 1
        await app(scope, receive, send)

    return counted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the simulated OpenRouter on loopback until stdin closes.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every answer")
    args = parser.parse_args(argv)
    simulator = Simulator(api_key=os.environ.get("OPENROUTER_API_KEY") or None, latency=args.latency)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: early connections wait in the backlog instead of being refused.
    sock.listen(2048)
    config = uvicorn.Config(
        counting(simulator),
        log_level="warning",
        lifespan="off",
        ws="none",
        access_log=False,
        http=CountingH11Protocol,
        # Longer than any pause of a benchmark: a connection the simulator dropped would count as not reused.
        timeout_keep_alive=75,
        backlog=2048,
    )
    server = uvicorn.Server(config)

    def stop_when_stdin_closes() -> None:
        sys.stdin.buffer.read()
        server.should_exit = True

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    sys.stdout.write(f"http://127.0.0.1:{sock.getsockname()[1]}{API_PREFIX}\n")
    sys.stdout.flush()
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
