"""Serving MCP on stdin/stdout through the SDK's transport, and stopping promptly.

The SDK's `stdio_server` frames the messages and owns stdout: it claims fd 1, so a stray `print()`
(ours or a library's) goes to stderr instead of corrupting the protocol, and gives it back on exit.
Its own stdin reader, though, blocks a worker thread that no cancellation interrupts and that
interpreter exit waits for: on SIGTERM the server would keep serving until the host closes stdin.
So stdin is read here, by a daemon thread, and handed to `stdio_server` as its `stdin`.

When stdin ends, the SDK cancels whatever is still running; but a host that writes its requests
and then closes stdin (`openrouter-mcp < requests.jsonl`) wants their answers. So the server's
input is ended only once every request read has been answered (or cancelled by the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Self

import anyio
from mcp import stdio_server
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse, RequestId

from openrouter_mcp._sdk import SessionMessage, as_stdin, serve_streams
from openrouter_mcp.serving.frames import frame_error

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger("openrouter_mcp")

STDIN = 0
#: Longest wait, once stdin has ended, for the requests already read to be answered.
DRAIN_TIMEOUT = 60.0
#: Lines read from stdin and not yet taken by the transport, at most.
BUFFERED_LINES = 16


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
            checked = _AnsweringGarbage(lines)
            try:
                # No `stdout`: the SDK claims fd 1 itself, diverting stray writes to stderr.
                async with stdio_server(stdin=as_stdin(checked)) as (wire_in, wire_out):
                    checked.answer_on(wire_out)
                    await _serve_answering_what_was_read(server, wire_in, wire_out)
            finally:
                lines.close()
            group.cancel_scope.cancel()
    except* BrokenPipeError:
        # Nobody is left to answer: the host went away without closing stdin first.
        logger.info("the host closed stdout, shutting down")


async def _serve_answering_what_was_read(server: MCPServer[Any], wire_in: Any, wire_out: Any) -> None:
    """Serve `server` on the transport's streams; when input ends, first answer the requests already read.

    `wire_in` and `wire_out` are what `stdio_server` yields: streams of `SessionMessage`s. The server reads and
    writes them through thin wrappers that note what was asked and what was answered, rather than through tasks
    relaying each message from one stream to another: a relay costs every message a task switch each way.
    """
    unanswered = _Unanswered()
    await serve_streams(server, _Requests(wire_in, unanswered), _Replies(wire_out, unanswered))


class _Noting:
    """A stream of the transport's, wrapped to note what passes (`_Requests`, `_Replies`); closing it closes that
    stream."""

    def __init__(self, wire: Any, unanswered: _Unanswered) -> None:
        self._wire = wire
        self._unanswered = unanswered

    async def aclose(self) -> None:
        await self._wire.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Requests(_Noting):
    """The transport's input as the server reads it (the SDK's `ReadStream` protocol), noting every request;
    when it ends, the end reaches the server only once the requests read have been answered (or cancelled), or
    after `DRAIN_TIMEOUT`: the SDK cancels whatever is running when its input ends."""

    @property
    def last_context(self) -> Any:
        """The context the transport received the last message in, which the SDK runs its handler in."""
        return getattr(self._wire, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item: SessionMessage | Exception = await self._wire.receive()
        except anyio.EndOfStream:
            with anyio.move_on_after(DRAIN_TIMEOUT):
                await self._unanswered.none_left()
            raise
        if isinstance(item, SessionMessage):
            self._unanswered.note_request(item.message)
        return item

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class _Replies(_Noting):
    """The transport's output as the server writes it (the SDK's `WriteStream` protocol), noting every answer."""

    async def send(self, item: SessionMessage, /) -> None:
        await self._wire.send(item)
        self._unanswered.note_reply(item.message)


class _Unanswered:
    """The ids of the requests read and not yet answered; `await none_left()` once input has ended."""

    def __init__(self) -> None:
        self._ids: set[RequestId] = set()
        self._none_left: anyio.Event | None = None

    def note_request(self, message: object) -> None:
        if isinstance(message, JSONRPCRequest):
            self._ids.add(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            # A cancelled request is never answered.
            self._discard((message.params or {}).get("requestId"))

    def note_reply(self, message: object) -> None:
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            self._discard(message.id)

    async def none_left(self) -> None:
        if self._ids:
            self._none_left = anyio.Event()
            await self._none_left.wait()

    def _discard(self, request_id: object) -> None:
        self._ids.discard(request_id)
        if not self._ids and self._none_left is not None:
            self._none_left.set()


class _AnsweringGarbage:
    """The lines of `lines` that are JSON-RPC messages; each other line is answered with its JSON-RPC error
    (`frames.frame_error`) on the transport's output, given by `answer_on` once the transport has started.

    The SDK would hand such a line to the server as an exception, which drops it unanswered. Its answer is
    sent before the next line is read, so it goes out before any answer to what follows.
    """

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines
        self._out: Any = None
        self._ready = anyio.Event()

    def answer_on(self, wire_out: Any) -> None:
        """Send answers on `wire_out`, the transport's stream of `SessionMessage`s to stdout."""
        self._out = wire_out
        self._ready.set()

    def __aiter__(self) -> _AnsweringGarbage:
        return self

    async def __anext__(self) -> str:
        while True:
            line = await self._lines.__anext__()
            error = frame_error(line)
            if error is None:
                return line
            await self._ready.wait()
            try:
                await self._out.send(SessionMessage(error))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # the server is closing or stdout is gone: there is no one left to answer


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
    while it waits for a host that has not closed stdin. It hands each line to the event loop without waiting
    for the loop to take it, and goes back to reading: waiting would wake the thread once more per line, and
    make it fight the busy loop for the interpreter lock before it could read again. At most `BUFFERED_LINES`
    lines wait to be taken: a host that sends faster than we answer finds stdin full, not our memory.
    """

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[str](BUFFERED_LINES)
        self._room = threading.Semaphore(BUFFERED_LINES)  # lines the reader may still hand over untaken
        loop = asyncio.get_running_loop()  # the server runs on asyncio, as the SDK's transports do
        threading.Thread(target=self._pump, args=(loop,), name="stdin-reader", daemon=True).start()

    def __aiter__(self) -> _StdinLines:
        return self

    async def __anext__(self) -> str:
        try:
            line = await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        self._room.release()
        return line

    def close(self) -> None:
        self._receive.close()

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        # Raw os.read: a buffered reader's lock, held by this thread at exit, would abort the interpreter.
        splitter = _LineSplitter()
        try:
            try:
                while chunk := os.read(STDIN, 65536):
                    for line in splitter.feed(chunk):
                        self._hand_over(loop, line)
                for line in splitter.end():
                    self._hand_over(loop, line)
            except OSError as exc:
                logger.error("reading stdin failed: %s", exc)
            loop.call_soon_threadsafe(self._send.close)
        except RuntimeError:
            return  # the server is gone, and its event loop closed: nobody is left to read for

    def _hand_over(self, loop: asyncio.AbstractEventLoop, line: str) -> None:
        """In the reader thread: queue `line` for the loop, once fewer than `BUFFERED_LINES` wait there.

        Raises:
            RuntimeError: the event loop is closed.
        """
        self._room.acquire()
        loop.call_soon_threadsafe(self._deliver, line)

    def _deliver(self, line: str) -> None:
        """On the loop: never blocks (the semaphore leaves the stream room); a closed stream drops the line."""
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send.send_nowait(line)
