"""The MCP logging capability: the server's own log records sent to clients that ask for them.

A client sends `logging/setLevel`; from then on the records of the `openrouter_mcp` loggers at or above
that level reach it as `notifications/message` (level, logger name, the message as text), per
connection. Until a client sets a level it gets none (the spec leaves the default to the server).
On 2026-07-28 connections `logging/setLevel` does not exist: a request opts in by carrying a level
in its `_meta` (`io.modelcontextprotocol/logLevel`), and the records logged while handling that
request, at or above that level, are sent on its own stream before its response (`RequestLogs`).

A record must never block or break what logged it, so the log handler only appends to a bounded
buffer (and drops, counting, when it is full); a task of the server's lifespan sends what is
buffered. Records of this module's own logger, and any record logged while sending, are not
forwarded, so forwarding can never feed itself. Messages pass through the same redaction as upstream
errors (the records are key-free already; this is the second lock).

| when                                   | what happens                                             |
|----------------------------------------|----------------------------------------------------------|
| no client asked for logs               | the handler returns at once                              |
| buffer full (`capacity` records)       | the record is dropped and counted in `dropped`; clients  |
|                                        | are told how many were lost with the next one sent       |
| a record from another thread           | buffered the same way, sent within `POLL_SECONDS`        |
| a client gone, or slow to read         | its notice is dropped (after `SEND_TIMEOUT`, for a slow  |
|                                        | one); nobody else waits for it                           |
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

import anyio
from mcp.types import (
    EmptyResult,
    LoggingLevel,
    LoggingMessageNotification,
    LoggingMessageNotificationParams,
    SetLevelRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from openrouter_mcp._sdk import add_request_handler, allowed_log_levels, connection_of
from openrouter_mcp.serving.middleware import add_middleware

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from mcp.server.connection import Connection
    from mcp.server.mcpserver import MCPServer
    from pydantic import SecretStr

    from openrouter_mcp._sdk import CallNext, HandlerResult

logger = logging.getLogger(__name__)

#: The loggers whose records clients may receive: the package's own.
FORWARDED_LOGGER = "openrouter_mcp"
#: Records buffered before new ones are dropped.
DEFAULT_CAPACITY = 1000
#: How often the sender looks at the buffer when no record woke it (records from other threads cannot wake it).
POLL_SECONDS = 0.25
#: The longest one notice may wait on a client that does not read.
SEND_TIMEOUT = 2.0

#: MCP's levels (RFC 5424, least severe first) as Python logging levels.
PYTHON_LEVELS: dict[LoggingLevel, int] = dict(
    zip(
        get_args(LoggingLevel),
        (
            logging.DEBUG,
            logging.INFO,
            logging.INFO + 5,
            logging.WARNING,
            logging.ERROR,
            logging.CRITICAL,
            logging.CRITICAL + 5,
            logging.CRITICAL + 10,
        ),
        strict=True,
    )
)

_sending: ContextVar[bool] = ContextVar("openrouter_mcp_sending_logs", default=False)


def mcp_level(levelno: int) -> LoggingLevel:
    """The MCP level of a Python logging level: the most severe one it reaches."""
    found: LoggingLevel = "debug"
    for level, threshold in PYTHON_LEVELS.items():
        if levelno >= threshold:
            found = level
    return found


@dataclass(frozen=True, slots=True)
class _Entry:
    levelno: int
    logger: str
    message: str


@dataclass(slots=True)
class _Pending:
    """The records of one 2026-07-28 request that opted in, kept until its response goes."""

    threshold: int
    entries: list[_Entry]
    dropped: int = 0


_request_logs: ContextVar[_Pending | None] = ContextVar("openrouter_mcp_request_logs", default=None)


class ClientLogs:
    """Which connections asked for which level, the handler that buffers records, and their sender.

    One per server: `install` adds the `logging/setLevel` handler, `running` (entered by the server's
    lifespan) attaches the log handler and runs the sender. `key` is the API key, redacted from every
    message sent.
    """

    def __init__(self, *, key: SecretStr | None = None, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        #: Records dropped because the buffer was full, since start.
        self.dropped = 0
        self._key = key
        self._redact: Callable[[str], str] | None = None
        self._levels: dict[Connection, int] = {}
        self._buffer: deque[_Entry] = deque()
        self._unreported = 0
        self._lock = threading.Lock()
        self._handler = _Forwarder(self)
        self._wake: anyio.Event | None = None
        self._loop_thread: int | None = None
        self._users = 0
        self._logger_level: int | None = None

    def install(self, server: MCPServer[Any]) -> None:
        """Serve `logging/setLevel` on `server` (which makes the SDK declare the logging capability), and the
        per-request opt-in of 2026-07-28 requests (a middleware)."""
        # Registered as a handler, not as the constructor's on_set_logging_level, which warns of the 2026 removal.
        add_request_handler(server, "logging/setLevel", SetLevelRequestParams, self._set_level)
        add_middleware(server, self._request_logs)

    async def _request_logs(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None or ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return await call_next(ctx)
        allowed = allowed_log_levels(ctx.protocol_version, ctx.meta)
        if not allowed:
            return await call_next(ctx)
        threshold = min(PYTHON_LEVELS[level] for level in allowed)
        if self._redact is None:
            self._redact = _redactor(self._key)
        self._let_through(threshold)
        pending = _Pending(threshold, [])
        token = _request_logs.set(pending)
        try:
            return await call_next(ctx)
        finally:
            _request_logs.reset(token)
            # Before the response: the spec allows these notices only on the request's own stream.
            with anyio.CancelScope(shield=True), anyio.move_on_after(SEND_TIMEOUT):
                await self._send_pending(ctx, pending)

    async def _send_pending(self, ctx: ServerRequestContext[Any, Any], pending: _Pending) -> None:
        entries = pending.entries
        if pending.dropped:
            note = f"{pending.dropped} log record(s) were dropped: the server's log buffer was full"
            entries = [*entries, _Entry(logging.WARNING, __name__, note)]
        token = _sending.set(True)
        try:
            for entry in entries:
                notice = LoggingMessageNotification(params=LoggingMessageNotificationParams(**self._params(entry)))
                await ctx.session.send_notification(notice, related_request_id=ctx.request_id)
        finally:
            _sending.reset(token)

    def _let_through(self, threshold: int) -> None:
        """Records below the package logger's level are never made: let the most verbose client's level through."""
        package = logging.getLogger(FORWARDED_LOGGER)
        if package.getEffectiveLevel() > threshold:
            if self._logger_level is None:
                self._logger_level = package.level
            package.setLevel(threshold)

    async def _set_level(self, ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        connection = connection_of(ctx)
        if self._redact is None:
            self._redact = _redactor(self._key)
        if connection not in self._levels:
            connection.exit_stack.callback(self._forget, connection)
        self._levels[connection] = PYTHON_LEVELS[params.level]
        self._let_through(self._levels[connection])
        logger.debug("a client asked for log records at %s and above", params.level)
        return EmptyResult()

    def _forget(self, connection: Connection) -> None:
        self._levels.pop(connection, None)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Attach the log handler and send buffered records, until exited (by the last user, if nested)."""
        self._users += 1
        if self._users == 1:
            self._loop_thread = threading.get_ident()
            logging.getLogger(FORWARDED_LOGGER).addHandler(self._handler)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._send_forever)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
        finally:
            self._users -= 1
            if self._users == 0:
                logging.getLogger(FORWARDED_LOGGER).removeHandler(self._handler)
                if self._logger_level is not None:
                    logging.getLogger(FORWARDED_LOGGER).setLevel(self._logger_level)
                    self._logger_level = None
                self._wake = None

    def buffer(self, record: logging.LogRecord) -> None:
        """Keep `record` for the clients that asked for its level (called by the handler; never blocks)."""
        if _sending.get() or record.name == __name__:
            return
        pending = _request_logs.get()
        if pending is not None and record.levelno >= pending.threshold:
            if len(pending.entries) >= self.capacity:
                pending.dropped += 1
            else:
                pending.entries.append(_Entry(record.levelno, record.name, record.getMessage()))
        if not self._levels:
            return
        if record.levelno < min(self._levels.values(), default=logging.CRITICAL + 100):
            return
        entry = _Entry(record.levelno, record.name, record.getMessage())
        with self._lock:
            if len(self._buffer) >= self.capacity:
                self.dropped += 1
                self._unreported += 1
                return
            self._buffer.append(entry)
        wake = self._wake
        # An anyio Event may only be set from its loop's thread; other threads' records wait for the next poll.
        if wake is not None and threading.get_ident() == self._loop_thread:
            wake.set()

    async def _send_forever(self) -> None:
        _sending.set(True)
        while True:
            # A new event before draining, so a record buffered while we drain wakes the next round.
            wake = self._wake = anyio.Event()
            await self._drain()
            with anyio.move_on_after(POLL_SECONDS):
                await wake.wait()

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._buffer:
                    return
                entry = self._buffer.popleft()
                lost, self._unreported = self._unreported, 0
            if lost:
                logger.warning("%d log record(s) dropped: the client log buffer was full", lost)
                note = f"{lost} log record(s) were dropped: the server's log buffer was full"
                await self._send(_Entry(logging.WARNING, __name__, note))
            await self._send(entry)

    def _params(self, entry: _Entry) -> dict[str, Any]:
        redact = self._redact or (lambda text: text)
        return {"level": mcp_level(entry.levelno), "logger": entry.logger, "data": redact(entry.message)}

    async def _send(self, entry: _Entry) -> None:
        params = self._params(entry)
        for connection, threshold in list(self._levels.items()):
            if entry.levelno < threshold:
                continue
            with anyio.move_on_after(SEND_TIMEOUT):
                await connection.notify("notifications/message", params)


class _Forwarder(logging.Handler):
    """The log handler: hands records to `ClientLogs.buffer`, and never raises into the code that logged."""

    def __init__(self, logs: ClientLogs) -> None:
        super().__init__(logging.NOTSET)
        self._logs = logs

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._logs.buffer(record)
        except Exception:
            # A record that cannot be formatted (bad %-arguments) is lost, not raised into its caller.
            with self._logs._lock:  # the two classes are one unit
                self._logs.dropped += 1


def _redactor(key: SecretStr | None) -> Callable[[str], str]:
    if key is None or not key.get_secret_value():
        return lambda text: text
    # Imported when a client first asks for logs: the upstream client module loads httpx.
    from openrouter_mcp.upstream.client import redact, secret_forms

    forms = secret_forms(key.get_secret_value())
    return lambda text: redact(text, forms)
