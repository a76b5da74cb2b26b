"""The simulated OpenRouter served on loopback in a process of its own, for the benchmarks.

`python -m bench._upstream --latency 0.05` writes its base URL as one line on stdout and serves until
stdin closes. A process of its own, because a server thread inside the measuring process would
compete with it for the GIL and show up in every timing. The key it accepts comes from
OPENROUTER_API_KEY in the environment.

The listening socket is made here rather than by `serve_in_thread` so that it is created with
`IPPROTO_TCP`: asyncio disables Nagle's algorithm only on sockets whose `proto` says TCP, and a
socket made with the default proto 0 leaves it on. uvicorn writes a response's headers and body
separately, so with Nagle on, every small answer waits for the client's delayed ACK: a 40 ms stall
that would swamp the sub-millisecond differences measured here.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading

import uvicorn

from openrouter_mcp.simulator import API_PREFIX, Simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the simulated OpenRouter on loopback until stdin closes.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every answer")
    args = parser.parse_args(argv)
    simulator = Simulator(api_key=os.environ.get("OPENROUTER_API_KEY") or None, latency=args.latency)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: early connections wait in the backlog instead of being refused.
    sock.listen(128)
    config = uvicorn.Config(simulator, log_level="warning", lifespan="off", ws="none", access_log=False)
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
