"""Serving MCP on stdin/stdout, and stopping promptly when stdin closes or SIGTERM/SIGINT arrives."""

from __future__ import annotations

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

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger("openrouter_mcp")


async def serve_stdio(server: MCPServer[Any]) -> None:
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
