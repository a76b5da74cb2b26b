"""The SQLite ledger's work in a process of its own, as the server runs it over HTTP.

Why a process and not a thread: every SQLite statement, every system call of a writer thread releases the
interpreter lock and must win it back from the event loop, and under load the loop holds it nearly always. At
50 concurrent HTTP clients, that tug of war cost the loop's thread 10-15 context switches and up to 1.5 ms of
CPU per recorded call, more than the write itself; with the audit log off, the server kept up with a bare
`MCPServer`, with it on it fell 10-20% behind. A child process has its own interpreter: the loop only writes a
request to a pipe and reads the answer, and the rows are encoded and written on the other core. The price is
latency after an idle wait (two process wake-ups, each side's caches cold): ~0.85 ms per record against ~0.5 ms
for a thread here, which is why stdio, one host with few overlapping calls, keeps the thread.

The child (this module's `main`, in a new interpreter) is started with the server (`AppState`) or by the first
operation, and lives until `ProcessWriter.aclose` (or until this process ends: the child stops at the end of its
input, after the work already sent). It gets no secret: its environment keeps only what finds Python and this
package (`config.helper_process_env`), its arguments name nothing, and the log's path and privacy come through
the pipe. If it dies, the operations it had not answered fail with `AuditError` (the caller spools an answered
call's record, refuses a paid one) and the next operation starts another.

The pipe carries frames: a 4-byte big-endian length, then a pickle. The first frame to the child is a `Spec`;
then each request is `(id, name, args, kwargs)`: "record" (args: a record and its privacy), "note_spooled", or
an operation of `ledger_file.OPERATIONS`. Each answer is `(ids, ok, value)`: the result, or the exception, for
every id in it. Records that reach the child while it writes join one batch: every record read in one go is
written in one statement and one transaction (group commit, up to `MAX_BATCH` records), answered in one frame.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import signal
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import anyio

from openrouter_mcp.audit.ledger_file import MAX_BATCH
from openrouter_mcp.config import helper_process_env
from openrouter_mcp.errors import AuditError

logger = logging.getLogger(__name__)

#: How long `aclose` waits for the child to finish its queued work and exit before killing it (seconds).
CLOSE_TIMEOUT = 10.0
_HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class Spec:
    """What the child opens: the log at `path` with `privacy` by default, and the spool in `spool_paths`."""

    path: Path
    privacy: str
    spool_paths: tuple[Path, ...] | None
    log_level: int = logging.WARNING


def _frame(message: object) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


class _Child(asyncio.SubprocessProtocol):
    """One writer process, seen from the event loop: its pipes and the operations waiting for its answers."""

    def __init__(self, writer: ProcessWriter) -> None:
        self._writer = writer
        self.transport: asyncio.SubprocessTransport | None = None
        self.stdin: asyncio.WriteTransport | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.gone: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._outbox = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.SubprocessTransport", transport)
        self.stdin = cast("asyncio.WriteTransport", self.transport.get_pipe_transport(0))

    def send(self, request_id: int, frame: bytes, done: asyncio.Future[Any]) -> None:
        self.pending[request_id] = done
        self.write(frame)

    def write(self, frame: bytes) -> None:
        """Queue `frame`; what is queued in one turn of the loop goes in one write (one system call, and under load
        one batch for the child)."""
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox += frame

    def _flush(self) -> None:
        if self.stdin is not None and self._outbox:
            self.stdin.write(bytes(self._outbox))
        self._outbox.clear()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            return  # only the answers are piped (the child's stderr is ours)
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            if len(buffer) < _HEADER.size + size:
                return
            payload = bytes(buffer[_HEADER.size : _HEADER.size + size])
            del buffer[: _HEADER.size + size]
            try:
                ids, ok, value = pickle.loads(payload)
            except Exception as exc:  # noqa: BLE001 - a garbled answer ends this child, whatever it is
                logger.error("the audit log's writer process sent an unreadable answer (%s); stopping it", exc)
                buffer.clear()
                self.kill()
                return
            for request_id in ids:
                done = self.pending.pop(request_id, None)
                if done is None or done.done():
                    continue
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)

    def connection_lost(self, exc: Exception | None) -> None:
        """The child exited and both its pipes are closed (every answer it sent was read by now)."""
        code = None if self.transport is None else self.transport.get_returncode()
        if self.transport is not None:
            self.transport.close()
        self.stdin = None
        if self.pending:
            failure = AuditError(
                f"the audit log's writer process ended (exit code {code}) before it answered; the next call starts "
                "another"
            )
            for done in self.pending.values():
                if not done.done():
                    done.set_exception(failure)
            self.pending.clear()
        self._writer.gone(self, code)
        if not self.gone.done():
            self.gone.set_result(code)

    def close_input(self) -> None:
        """End the child's input: it answers what it was sent, closes the log and exits."""
        self._flush()
        if self.stdin is not None:
            self.stdin.close()
            self.stdin = None

    def kill(self) -> None:
        if self.transport is not None and self.transport.get_returncode() is None:
            self.transport.kill()


class ProcessWriter:
    """Runs the ledger's operations in a writer process (see the module docstring), at most `max_queue` waiting."""

    def __init__(self, spec: Spec, *, max_queue: int) -> None:
        self._spec = spec
        self._max_queue = max_queue
        self._ids = itertools.count()
        self._child: _Child | None = None  # the running child, once started
        self._starting: asyncio.Task[None] | None = None
        #: Requests made while the child starts, sent once it runs.
        self._unsent: list[tuple[int, bytes, asyncio.Future[Any]]] = []

    def record(self, record: object, privacy: str | None) -> asyncio.Future[None]:
        """See `SqliteLedger.record`."""
        return self._send("record", (record, privacy), {})

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        # Shielded: a cancelled caller must not lose track of an operation the child will still answer.
        return await asyncio.shield(self._send(name, args, kwargs))

    def note_spooled(self) -> None:
        try:
            done = self._send("note_spooled", (), {})
        except AuditError:
            return  # backed up: a later replay will find the spool anyway (every open replays it)
        done.add_done_callback(_ignore_result)

    async def start(self) -> None:
        """Start the child unless one runs or starts; returns once it runs (or could not be started)."""
        if self._child is None and self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start())
        if self._starting is not None:
            await asyncio.shield(self._starting)

    def _send(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        """Send one request (starting the child if none runs); the future of its answer.

        Raises:
            AuditError: `max_queue` requests are already waiting (a stuck disk), or the request cannot be encoded.
        """
        waiting = len(self._unsent) + (0 if self._child is None else len(self._child.pending))
        if waiting >= self._max_queue:
            raise AuditError(f"the audit ledger is backed up ({self._max_queue} operations waiting on the disk)")
        request_id = next(self._ids)
        try:
            frame = _frame((request_id, name, args, kwargs))
        except Exception as exc:  # noqa: BLE001 - whatever pickle refuses, the caller gets an AuditError
            raise AuditError(f"a ledger request could not be encoded for the writer process: {exc}") from None
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        child = self._child
        if child is not None and child.stdin is not None:
            child.send(request_id, frame, done)
        else:
            self._unsent.append((request_id, frame, done))
            if self._starting is None:
                self._starting = asyncio.get_running_loop().create_task(self._start())
        return done

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, child = await loop.subprocess_exec(
                partial(_Child, self),
                sys.executable,
                "-c",
                f"from {__name__} import main; main()",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,  # the child's log lines go where ours go
                env=helper_process_env(),
                start_new_session=True,  # a Ctrl-C in a terminal reaches us only; we stop the child
            )
        except Exception as exc:  # noqa: BLE001 - whatever stops the start, the waiting callers must hear of it
            logger.error("the audit log's writer process could not be started: %s", exc)
            unsent, self._unsent = self._unsent, []
            failure = AuditError(f"the audit log's writer process could not be started: {exc}")
            for _, _, done in unsent:
                if not done.done():
                    done.set_exception(failure)
            return
        finally:
            self._starting = None
        assert child.stdin is not None
        self._child = child
        child.write(_frame(self._spec))
        unsent, self._unsent = self._unsent, []
        for request_id, frame, done in unsent:
            child.send(request_id, frame, done)

    def gone(self, child: _Child, code: int | None) -> None:
        """`child` exited: forget it (the next request starts another)."""
        if self._child is child:
            self._child = None
            if code != 0:
                logger.error("the audit log's writer process ended (exit code %s); the next call starts another", code)

    #: The log is opened in the child, never here.
    log: None = None

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        child = self._child
        return None if child is None or child.transport is None else child.transport.get_pid()

    async def aclose(self) -> None:
        """Let the child answer what it was sent, close the log and exit (killed past `CLOSE_TIMEOUT`); the next
        operation starts another."""
        with anyio.CancelScope(shield=True):
            if self._starting is not None:
                await asyncio.wait([self._starting])
            child = self._child
            if child is None:
                return
            child.close_input()
            with anyio.move_on_after(CLOSE_TIMEOUT):
                await asyncio.shield(child.gone)
                return
            logger.error("the audit log's writer process did not stop within %g s; killing it", CLOSE_TIMEOUT)
            child.kill()
            await asyncio.shield(child.gone)


def _ignore_result(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()  # retrieved: nobody waits for this answer


# The child's side.


def _requests(fd: int) -> Iterator[list[Any]]:
    """The requests arriving on `fd`, in lists of every request read in one go; ends at the end of the input."""
    buffer = bytearray()
    while chunk := os.read(fd, 1 << 20):
        buffer += chunk
        batch: list[Any] = []
        while len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            if len(buffer) < _HEADER.size + size:
                break
            batch.append(pickle.loads(bytes(buffer[_HEADER.size : _HEADER.size + size])))
            del buffer[: _HEADER.size + size]
        if batch:
            yield batch
    if buffer:
        logger.error("the audit log's writer process's input ended in the middle of a request (%d bytes)", len(buffer))


def _groups(requests: list[Any]) -> Iterator[list[Any]]:
    """`requests` in order, consecutive records together (at most `MAX_BATCH`), every other request alone."""
    group: list[Any] = []
    for request in requests:
        if request[1] == "record" and len(group) < MAX_BATCH:
            group.append(request)
            continue
        if group:
            yield group
            group = []
        if request[1] == "record":
            group.append(request)
        else:
            yield [request]
    if group:
        yield group


def _answer(file: Any, group: list[Any]) -> tuple[list[int], bool, Any]:
    ids = [request[0] for request in group]
    _, name, args, kwargs = group[0]
    try:
        if name == "record":
            file.write([request[2] for request in group])
            return ids, True, None
        if name == "note_spooled":
            file.note_spooled()
            return ids, True, None
        return ids, True, file.call(name, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller that asked
        if not isinstance(exc, AuditError) and not _picklable(exc):
            logger.exception("the audit ledger failed unexpectedly")
            exc = AuditError(f"the audit ledger failed: {type(exc).__name__}: {exc}")
        return ids, False, exc


def _picklable(value: object) -> bool:
    try:
        pickle.loads(pickle.dumps(value))
    except Exception:  # noqa: BLE001 - whatever fails, the value cannot cross the pipe as it is
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(requests_fd: int, answers_fd: int) -> None:
    """The child: read a `Spec`, then answer requests until the input ends; close the log."""
    from openrouter_mcp.audit.ledger_file import LedgerFile
    from openrouter_mcp.audit.log import AuditLog
    from openrouter_mcp.audit.spool import Spool

    requests = _requests(requests_fd)
    first = next(requests, None)
    if not first:
        return
    spec, rest = first[0], first[1:]
    logging.basicConfig(
        stream=sys.stderr, level=spec.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    spool = None if spec.spool_paths is None else Spool(spec.spool_paths)
    file = LedgerFile(partial(AuditLog, spec.path, privacy=spec.privacy), spool)
    try:
        for batch in itertools.chain([rest] if rest else [], requests):
            for group in _groups(batch):
                _write_all(answers_fd, _frame(_answer(file, group)))
    finally:
        file.close()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us by closing our input
    answers_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answers
    serve(0, answers_fd)
