"""Command line: `openrouter-mcp [--transport stdio|sse|streamable-http] [--host H] [--port P] [--demo]`.

Configuration comes from the environment (see `config.Settings`); the API key is never accepted
as an argument. Logs go to stderr, because on stdio, stdout carries the protocol.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.from_thread
import anyio.lowlevel

from openrouter_mcp import __version__, personas
from openrouter_mcp.config import Settings
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.personas import DEFAULT_PERSONAS_PATH, PERSONAS_ENV

if TYPE_CHECKING:
    import httpx
    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger("openrouter_mcp")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEMO_BASE_URL = "http://simulated-openrouter.invalid/api/v1"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="openrouter-mcp",
        description="MCP server for the OpenRouter API. Set OPENROUTER_API_KEY in the environment.",
    )
    parser.add_argument("--transport", choices=("stdio", "sse", "streamable-http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP transports: address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP transports: port (default 8000)")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="HTTP transports: extra Host header value to accept (DNS-rebinding protection stays on)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="serve against a built-in SIMULATED OpenRouter (no key, no network; answers are fake)",
    )
    parser.add_argument(
        "--personas",
        metavar="PATH",
        help=f"personas file (TOML); default ${PERSONAS_ENV}, else {DEFAULT_PERSONAS_PATH} if it exists",
    )
    parser.add_argument("--persona", metavar="NAME", help="bind this server's sessions to one persona and its tools")
    parser.add_argument(
        "--check-personas",
        action="store_true",
        help="load the personas file, check its model ids against the live catalog, report, and exit",
    )
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--version", action="version", version=f"openrouter-mcp {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
        persona_config = personas.load(personas.resolve_path(args.personas))
        if args.persona:
            persona_config.get(args.persona)
    except (ConfigurationError, personas.PersonaError) as exc:
        logger.error("configuration error: %s", exc)
        raise SystemExit(2) from None
    if args.check_personas:
        raise SystemExit(anyio.run(_check_personas, settings, persona_config))
    try:
        anyio.run(_run, args, settings, persona_config)
    except KeyboardInterrupt:
        pass


async def _check_personas(settings: Settings, config: personas.PersonasConfig) -> int:
    """Report persona model ids missing from the catalog (with the closest real ids); 1 if any."""
    from openrouter_mcp.client import OpenRouterClient
    from openrouter_mcp.errors import OpenRouterError

    client = OpenRouterClient(settings)
    try:
        page = await client.list_models({"output_modalities": "all"})
    except OpenRouterError as exc:
        logger.error("could not fetch the model catalog: %s", exc.message)
        return 2
    finally:
        await client.aclose()
    problems = personas.unknown_models(config, [model.id for model in page.data])
    for problem in problems:
        logger.error("%s", problem)
    if not problems:
        logger.warning("personas OK: %d persona(s), every model id is in the catalog", len(config.personas))
    return 1 if problems else 0


async def _run(args: argparse.Namespace, settings: Settings, persona_config: personas.PersonasConfig) -> None:
    from openrouter_mcp.server import build_server

    http_client: httpx.AsyncClient | None = None
    if args.demo:
        settings, http_client = _demo(settings)
    server = build_server(settings, http_client=http_client, personas=persona_config, bound_persona=args.persona)
    try:
        if args.transport == "stdio":
            await _serve_stdio(server)
        else:
            await _serve_http(server, args)
    finally:
        if http_client is not None:
            await http_client.aclose()


def _demo(settings: Settings) -> tuple[Settings, httpx.AsyncClient]:
    """Settings and an in-process HTTP client that talk to the simulator instead of OpenRouter."""
    import httpx
    from pydantic import SecretStr

    from openrouter_mcp.simulator import Simulator

    logger.warning("DEMO MODE: answers come from a built-in simulation of OpenRouter, not from real models")
    demo = Settings(
        api_key=SecretStr("sk-or-v1-demo-not-a-real-key"),
        base_url=DEMO_BASE_URL,
        http_referer=settings.http_referer,
        app_title=settings.app_title,
        catalog_ttl=settings.catalog_ttl,
        heartbeat_interval=settings.heartbeat_interval,
    )
    transport = httpx.ASGITransport(app=Simulator(stream_chunk_delay=0.05))
    return demo, httpx.AsyncClient(transport=transport, timeout=30.0)


async def _serve_stdio(server: MCPServer[Any]) -> None:
    """Serve on stdin/stdout until stdin closes or SIGTERM/SIGINT arrives, then close cleanly."""
    async with anyio.create_task_group() as group:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    logger.info("received %s, shutting down", signal.Signals(signum).name)
                    group.cancel_scope.cancel()
                    return

        group.start_soon(stop_on_signal)
        # Not `server.run_stdio_async()`: the SDK reads stdin in a worker thread that no cancellation
        # interrupts and interpreter exit waits for, so a signal would leave us serving until the host
        # closes stdin. Ours is read by a daemon thread that a shutdown simply leaves behind.
        from mcp.server.stdio import stdio_server

        lowlevel = server._lowlevel_server
        lines = _StdinLines()
        try:
            async with stdio_server(stdin=cast("anyio.AsyncFile[str]", lines)) as (read_stream, write_stream):
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
        finally:
            lines.close()
        group.cancel_scope.cancel()


class _StdinLines:
    """`async for line in _StdinLines()`: the lines of stdin, read by a daemon thread. `close()` when done."""

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[str](16)
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(token,), name="stdin-reader", daemon=True).start()

    def __aiter__(self) -> _StdinLines:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._receive.close()

    def _pump(self, token: anyio.lowlevel.EventLoopToken) -> None:
        # Raw os.read: a buffered reader's lock, held by this thread at exit, would abort the interpreter.
        buffer = b""
        try:
            while chunk := os.read(sys.stdin.fileno(), 65536):
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    anyio.from_thread.run(self._send.send, line.decode("utf-8", "replace"), token=token)
            if buffer.strip():
                anyio.from_thread.run(self._send.send, buffer.decode("utf-8", "replace"), token=token)
        except OSError as exc:
            logger.error("reading stdin failed: %s", exc)
        except (RuntimeError, anyio.BrokenResourceError):
            return  # the server stopped listening, or its event loop is gone
        with contextlib.suppress(RuntimeError):
            anyio.from_thread.run_sync(self._send.close, token=token)


async def _serve_http(server: MCPServer[Any], args: argparse.Namespace) -> None:
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    if args.host not in LOOPBACK_HOSTS:
        logger.warning(
            "listening on %s: anyone who can reach this address can spend your OpenRouter credits", args.host
        )
    hosts = [f"{h}:*" for h in ("127.0.0.1", "localhost", "[::1]")] + [f"{args.host}:*", *args.allowed_host]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts],
    )
    if args.transport == "sse":
        app = server.sse_app(transport_security=security, host=args.host)
    else:
        app = server.streamable_http_app(transport_security=security, host=args.host)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level.lower(), lifespan="on")
    # uvicorn handles SIGTERM/SIGINT itself: it stops accepting, finishes in-flight requests, runs shutdown.
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    main()
