"""The SQLite engine of the `Ledger`: the `AuditLog` file, written from a process or a thread of its own, never
from the event loop.

Every operation runs in one place, one at a time (SQLite has one writer per file anyway), so a slow disk or a
lock held by another process delays ledger calls only, never the event loop or the tools that do not wait on the
ledger. Where that place is:

- `SqliteLedger.in_child_process(path, ...)`, what the server uses over HTTP: a writer process
  (`audit/process_writer.py`), which never contends with the busy event loop for the interpreter lock;
- `SqliteLedger(log)`, for a log opened here or a function opening it (the server over stdio, tests, benchmarks,
  the CLI): a thread of this process (`audit/thread_writer.py`), quicker to hand a row to after an idle wait.
  `AppState._writes_from_a_process` says why each transport gets which.

Both group-commit: records that finish while a write is under way are written together, in one statement and
one transaction. The queue is bounded: past `max_queue` waiting operations (or records) a call fails at once
with `AuditError` (the caller refuses a budgeted call, or spools an answered one) instead of piling up behind a
stuck disk. The file is opened on first use; an open that fails is retried by the next call, so a ledger that
comes back (a lock released, a path fixed) is used again, and the spool is then replayed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from openrouter_mcp.audit.ledger import Cooldown, Reservation, ReservationRequest, WindowSpend
from openrouter_mcp.audit.ledger_file import LedgerFile
from openrouter_mcp.audit.log import EXPORT_BATCH, AuditLog, CallRecord, UsageSummary
from openrouter_mcp.audit.process_writer import ProcessWriter, Spec
from openrouter_mcp.audit.spool import Spool
from openrouter_mcp.audit.thread_writer import ThreadWriter
from openrouter_mcp.routing.budgets import BudgetLimit
from openrouter_mcp.routing.personas import Privacy


class SqliteLedger:
    """`Ledger` over an `AuditLog` (an open one, or a function opening it, written from a thread), or over the log
    at a path (written from a process: `in_child_process`), with the spool it replays."""

    def __init__(
        self,
        log: AuditLog | Callable[[], AuditLog] | Spec,
        *,
        spool: Spool | None = None,
        max_queue: int = 1024,
    ) -> None:
        """`log` open, or a function opening it: written from a thread. A `Spec`: from a process (see
        `in_child_process`)."""
        self.spool = spool
        self._writer: ThreadWriter | ProcessWriter = (
            ProcessWriter(log, max_queue=max_queue)
            if isinstance(log, Spec)
            else ThreadWriter(LedgerFile(log, spool), max_queue=max_queue)
        )

    @classmethod
    def in_child_process(
        cls, path: Path, *, privacy: str, spool: Spool | None = None, max_queue: int = 1024
    ) -> SqliteLedger:
        """The ledger of the log at `path` (privacy `privacy` by default), written by a process of its own."""
        level = logging.getLogger("openrouter_mcp").getEffectiveLevel()
        spec = Spec(Path(path), privacy, None if spool is None else tuple(spool.paths), log_level=level)
        return cls(spec, spool=spool, max_queue=max_queue)

    @property
    def log(self) -> AuditLog | None:
        """The open log, if it was opened in this process."""
        return self._writer.log

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id, while one runs (None for a ledger written from a thread)."""
        return self._writer.pid

    async def start(self) -> None:
        """Start the writer process now rather than at the first operation (nothing to do for a thread)."""
        await self._writer.start()

    def note_spooled(self) -> None:
        """A record went to the spool: replay it once the ledger works again."""
        self._writer.note_spooled()

    def record(self, record: CallRecord, *, privacy: Privacy | None = None) -> asyncio.Future[None]:
        """Write `record` with the next batch; committed once the returned future is done.

        Unlike an `async def`, the record is handed over when this is called, not when it is awaited: a caller can
        build its reply while the row is written, and await it just before the reply leaves. Each record has its
        own future: cancelling one caller's wait cancels no other's, and the row is still written.

        Raises:
            AuditError: at once, when the queue is full (a stuck disk); from the future, when its batch could not
                be written.
        """
        return self._writer.record(record, privacy)

    async def reserve(self, request: ReservationRequest) -> Reservation:
        result: Reservation = await self._writer.call("reserve", request)
        return result

    async def release(self, reservation_id: str) -> None:
        await self._writer.call("release", reservation_id)

    async def spend(self, limit: BudgetLimit, *, now: float) -> WindowSpend:
        result: WindowSpend = await self._writer.call("window_spend", limit, now=now)
        return result

    async def usage(self, *, since: float, until: float, persona: str | None = None) -> UsageSummary:
        result: UsageSummary = await self._writer.call("usage", since=since, until=until, persona=persona)
        return result

    async def tail(self, n: int = 20) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._writer.call("tail", n)
        return result

    async def export(self, *, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        last_id = 0
        while True:
            # One operation per batch: a long export never holds the writer against the writes.
            rows: list[dict[str, Any]] = await self._writer.call("rows_after", last_id, since=since)
            for row in rows:
                yield row
            if len(rows) < EXPORT_BATCH:
                return
            last_id = rows[-1]["id"]

    async def put_cooldown(self, cooldown: Cooldown) -> None:
        await self._writer.call("put_cooldown", cooldown)

    async def cooldowns(self, *, now: float) -> list[Cooldown]:
        result: list[Cooldown] = await self._writer.call("cooldowns", now=now)
        return result

    async def aclose(self) -> None:
        """Finish the queued work and close the log if the ledger opened it (a log given open stays open); the
        ledger can be used again afterwards, and opens it again."""
        await self._writer.aclose()
