"""Serving the simulator on a socket: :func:`serve_in_thread` for tests and benchmarks, :func:`main` for the CLI."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import openrouter_mcp.simulator as package  # its docstring's first line is the --help description

from .app import Simulator, logger
from .asgi import API_PREFIX, ASGIApp


@contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yield the base URL ``http://host:port/api/v1``.

    Port 0 picks a free port (the socket is bound here, so the real port is known before uvicorn starts).
    The server stops, and the thread is joined, when the context exits.

    Raises:
        RuntimeError: uvicorn exited before it was ready.
        TimeoutError: uvicorn did not become ready within 10 seconds.
    """
    import uvicorn  # here, not at the top: the in-process demo never needs a server

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off only on sockets it knows are TCP,
    # and with it on, every small two-write response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", access_log=False, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="openrouter-simulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10.0
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited before it was ready")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start within 10 seconds")
            time.sleep(0.005)  # uvicorn offers no readiness event; this is a plain thread, not async code
        bound_port = sock.getsockname()[1]
        netloc = f"[{host}]:{bound_port}" if family == socket.AF_INET6 else f"{host}:{bound_port}"
        yield f"http://{netloc}{API_PREFIX}"
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
        sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulator: ``python -m openrouter_mcp.simulator --port 8765``."""
    import uvicorn  # only needed when serving from the command line

    parser = argparse.ArgumentParser(
        prog="python -m openrouter_mcp.simulator", description=(package.__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (0 = any free port)")
    parser.add_argument("--models", type=int, default=320, help="number of models in the catalog")
    parser.add_argument("--seed", type=int, default=0, help="catalog seed")
    parser.add_argument("--api-key", default=None, help="require this bearer key on authenticated endpoints")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--stream-chunk-delay", type=float, default=0.0, help="seconds between SSE events")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    simulator = Simulator(
        model_count=args.models,
        seed=args.seed,
        api_key=args.api_key,
        latency=args.latency,
        stream_chunk_delay=args.stream_chunk_delay,
    )
    logger.info(
        "simulated OpenRouter at http://%s:%d%s (%d models)", args.host, args.port, API_PREFIX, len(simulator.catalog)
    )
    # log_config=None: uvicorn's own loggers then go through the root logger above, i.e. to stderr.
    uvicorn.run(
        simulator, host=args.host, port=args.port, log_level=args.log_level, log_config=None, lifespan="off", ws="none"
    )
