"""Serving MCP on stdin/stdout through the SDK's transport, and stopping promptly.

The SDK's `stdio_server` frames the messages and owns stdout: it claims fd 1, so a stray `print()`
(ours or a library's) goes to stderr instead of corrupting the protocol, and gives it back on exit.
Its own stdin reader, though, blocks a worker thread that no cancellation interrupts and that
interpreter exit waits for: on SIGTERM the server would keep serving until the host closes stdin.
So stdin is read here, by a daemon thread, and handed to `stdio_server` as its `stdin`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from mcp import stdio_server

from openrouter_mcp._sdk import as_stdin, serve_streams

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger("openrouter_mcp")

STDIN = 0


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve on stdin/stdout until stdin or stdout closes or SIGTERM/SIGINT arrives, then close cleanly."""
    try:
        async with anyio.create_task_group() as group:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for signum in signals:
                        logger.info("received %s, shutting down", signal.Signals(signum).name)
                        group.cancel_scope.cancel()
                        return

            group.start_soon(stop_on_signal)
            lines = _StdinLines()
            try:
                # No `stdout`: the SDK claims fd 1 itself, diverting stray writes to stderr.
                async with stdio_server(stdin=as_stdin(lines)) as (read_stream, write_stream):
                    await serve_streams(server, read_stream, write_stream)
            finally:
                lines.close()
            group.cancel_scope.cancel()
    except* BrokenPipeError:
        # Nobody is left to answer: the host went away without closing stdin first.
        logger.info("the host closed stdout, shutting down")


class _LineSplitter:
    """Newline-delimited messages out of the chunks the reader gets.

    A line's pieces are joined once its newline comes, so a long line costs O(n); a blank line is no
    message and is skipped rather than answered with a parse error.
    """

    def __init__(self) -> None:
        self._partial: list[bytes] = []

    def feed(self, data: bytes) -> list[str]:
        lines = []
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            self._partial.append(data[start:end])
            lines += self._complete()
            start = end + 1
        if start < len(data):
            self._partial.append(data[start:])
        return lines

    def end(self) -> list[str]:
        """What is left at end of input: a last message without its newline still counts."""
        return self._complete()

    def _complete(self) -> list[str]:
        line = b"".join(self._partial)
        self._partial.clear()
        return [line.decode("utf-8", "replace")] if line.strip() else []


class _StdinLines:
    """`async for line in _StdinLines()`: the lines of stdin, read by a daemon thread. `close()` when done.

    A daemon thread, unlike the SDK's worker threads, neither holds up cancellation nor interpreter exit
    while it waits for a host that has not closed stdin. Its buffer is small: a host that sends faster
    than we answer finds stdin full, not our memory.
    """

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
        splitter = _LineSplitter()
        try:
            while chunk := os.read(STDIN, 65536):
                for line in splitter.feed(chunk):
                    anyio.from_thread.run(self._send.send, line, token=token)
            for line in splitter.end():
                anyio.from_thread.run(self._send.send, line, token=token)
        except OSError as exc:
            logger.error("reading stdin failed: %s", exc)
        except (RuntimeError, anyio.BrokenResourceError):
            return  # the server stopped listening, or its event loop is gone
        with contextlib.suppress(RuntimeError):
            anyio.from_thread.run_sync(self._send.close, token=token)
