"""Serving MCP on stdin/stdout, and stopping promptly when stdin closes or SIGTERM/SIGINT arrives.

When stdin and stdout are pipes or sockets (how every MCP host spawns a server), they are served by
the event loop itself: lines are read as epoll reports them and replies are written without
blocking. The SDK's own stdio transport instead hands every read, write and flush to a worker
thread, and each of those hops costs a thread switch on every message; a call saves three of them
here. Anything else (a terminal, a file redirected to stdin) is served the thread-based way.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, cast

import anyio

if TYPE_CHECKING:
    import anyio.lowlevel
    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger("openrouter_mcp")

STDIN, STDOUT, STDERR = 0, 1, 2
#: Lines read ahead of the server before the loop stops reading stdin (the host then waits on the pipe).
READ_AHEAD_LINES = 64


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
            # Not `server.run_stdio_async()`: the SDK reads stdin in a worker thread that no cancellation
            # interrupts and interpreter exit waits for, so a signal would leave us serving until the host
            # closes stdin. Ours never blocks a thread that shutdown would have to wait for.
            from mcp.server.stdio import stdio_server

            lowlevel = server._lowlevel_server
            async with _standard_streams() as (lines, replies):
                # The SDK claims (and diverts) fd 1 itself when `replies` is None.
                async with stdio_server(stdin=lines, stdout=replies) as (read_stream, write_stream):
                    await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
            group.cancel_scope.cancel()
    except* BrokenPipeError:
        # Nobody is left to answer: the host went away without closing stdin first.
        logger.info("the host closed stdout, shutting down")


@contextlib.asynccontextmanager
async def _standard_streams() -> AsyncIterator[tuple[anyio.AsyncFile[str], anyio.AsyncFile[str] | None]]:
    """stdin as lines and stdout as a writer: event-loop pipes when possible, else threads."""
    if _servable_by_the_loop():
        with _claimed(STDIN, os.O_RDONLY) as wire_in, _claimed(STDOUT, os.O_WRONLY) as wire_out:
            lines = await _PipeLines.open(wire_in)
            try:
                replies = await _PipeWriter.open(wire_out)
                try:
                    yield cast("anyio.AsyncFile[str]", lines), cast("anyio.AsyncFile[str]", replies)
                finally:
                    replies.close()
            finally:
                lines.close()
        return
    threaded = _StdinLines()
    try:
        yield cast("anyio.AsyncFile[str]", threaded), None
    finally:
        threaded.close()


def _servable_by_the_loop() -> bool:
    """Whether stdin and stdout can be made non-blocking and watched by the loop without harm.

    Pipes and sockets only: a terminal would stay non-blocking for the shell after we exit, and epoll
    cannot watch regular files. stdout must not be stderr's file too (`2>&1` into one pipe), or a
    non-blocking stdout would make log writes fail when that pipe is full, nor stdin's (one socket for
    both). Separate sockets, as Node-based hosts give, are fine. POSIX only: Windows event loops take
    pipes another way.
    """
    if os.name != "posix":
        return False
    try:
        asyncio.get_running_loop()
        stdin, stdout, stderr = (os.fstat(fd) for fd in (STDIN, STDOUT, STDERR))
    except (RuntimeError, OSError):
        return False
    streams = all(stat.S_ISFIFO(s.st_mode) or stat.S_ISSOCK(s.st_mode) for s in (stdin, stdout))
    file = {name: (s.st_dev, s.st_ino) for name, s in (("in", stdin), ("out", stdout), ("err", stderr))}
    # One socket as both stdin and stdout: the loop takes a readable stdout for a host gone away, so every
    # request would look like a hang-up.
    return streams and file["out"] != file["err"] and file["in"] != file["out"]


@contextlib.contextmanager
def _claimed(fd: int, flags: int) -> Iterator[int]:
    """A private duplicate of the standard stream `fd`, which meanwhile points elsewhere; restored on exit.

    As the SDK's own transport does: stray `print()`s (ours or a library's) go to stderr instead of
    corrupting the protocol, and nothing else in the process can read the host's requests.
    """
    import fcntl

    private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    elsewhere = os.dup(STDERR) if flags == os.O_WRONLY else os.open(os.devnull, flags)
    os.dup2(elsewhere, fd)
    os.close(elsewhere)
    try:
        yield private
    finally:
        # The event loop made the pipe non-blocking; whoever uses it next expects it as it was.
        os.set_blocking(private, True)
        os.dup2(private, fd)
        os.close(private)


class _LineSplitter:
    """Newline-delimited messages out of the chunks a reader gets, for both readers below.

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


_Transport = TypeVar("_Transport", asyncio.ReadTransport, asyncio.WriteTransport)


class _LoopPipe(asyncio.Protocol, Generic[_Transport]):
    """One end of a host pipe served by the event loop: `await Subclass.open(fd)`, then `close()`."""

    _mode: ClassVar[str]  # "rb" reads the pipe, "wb" writes it
    _transport: _Transport | None = None

    @classmethod
    async def open(cls, fd: int) -> Self:
        loop = asyncio.get_running_loop()
        # closefd=False: the descriptor is `_claimed`'s to close, after the transport lets go of it.
        pipe = os.fdopen(fd, cls._mode, buffering=0, closefd=False)
        connect = loop.connect_read_pipe if cls._mode == "rb" else loop.connect_write_pipe
        transport, protocol = await connect(cls, pipe)
        protocol._transport = cast(_Transport, transport)
        return protocol

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _PipeLines(_LoopPipe[asyncio.ReadTransport]):
    """`async for line in lines`: stdin's lines as the event loop reads them; reading pauses when far ahead."""

    _mode = "rb"

    def __init__(self) -> None:
        self._lines: collections.deque[str] = collections.deque()
        self._splitter = _LineSplitter()
        self._arrived = asyncio.Event()
        self._ended = False
        self._paused = False

    def data_received(self, data: bytes) -> None:
        self._lines.extend(self._splitter.feed(data))
        if self._lines:
            self._arrived.set()
            if len(self._lines) >= READ_AHEAD_LINES and self._transport is not None and not self._paused:
                self._transport.pause_reading()
                self._paused = True

    def eof_received(self) -> bool:
        self._lines.extend(self._splitter.end())
        self._ended = True
        self._arrived.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        self._arrived.set()

    def __aiter__(self) -> _PipeLines:
        return self

    async def __anext__(self) -> str:
        while not self._lines:
            if self._ended:
                raise StopAsyncIteration
            self._arrived.clear()
            await self._arrived.wait()
        line = self._lines.popleft()
        if self._paused and len(self._lines) < READ_AHEAD_LINES // 4 and self._transport is not None:
            self._transport.resume_reading()
            self._paused = False
        return line


class _PipeWriter(_LoopPipe[asyncio.WriteTransport]):
    """stdout written by the event loop: a reply is written at once, or queued while the host catches up."""

    _mode = "wb"

    def __init__(self) -> None:
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost: BaseException | None = None

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or BrokenPipeError("the host closed stdout")
        self._writable.set()

    async def write(self, text: str) -> None:
        if self._lost is not None or self._transport is None:
            raise BrokenPipeError("stdout is closed") from self._lost
        self._transport.write(text.encode())
        # Back-pressure: when the host stops reading, wait for it rather than buffer without bound.
        await self._writable.wait()

    async def flush(self) -> None:
        """Nothing to do: `write` hands every byte to the pipe, or to the transport that writes it next."""


class _StdinLines:
    """`async for line in _StdinLines()`: the lines of stdin, read by a daemon thread. `close()` when done."""

    def __init__(self) -> None:
        # Imported here: only terminals and files on stdin need threads, and start-up time counts.
        import anyio.from_thread
        import anyio.lowlevel

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
            while chunk := os.read(sys.stdin.fileno(), 65536):
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
