"""The SQLite engine of the `Ledger`: the `AuditLog` file, driven from a worker thread, never from the event loop.

Every operation runs in one worker thread (`audit/worker.py`), one at a time (SQLite has one writer per file
anyway), so a slow disk or a lock held by another process delays ledger calls only, never the event loop or
the tools that do not wait on the ledger. The queue is bounded: past `max_queue` waiting
operations (or `max_queue` records waiting to be written) a call fails at once with `AuditError` (the caller
refuses a budgeted call, or spools an answered one) instead of piling up behind a stuck disk.

Records are written in batches (group commit): a record joins the batch waiting for the thread, if one is, and
the thread writes a whole batch in one statement and one transaction, then wakes its callers with one
callback. One call alone is a batch of one, written as soon as the thread is free; under load, a batch holds
every record that finished while the previous one was written. What batching saves is the thread's turns at
the interpreter lock: each statement releases the lock and must win it back from the busy event loop, which
takes up to the interpreter's switch interval (5 ms), far more than the write itself.

The file is opened on first use, in the worker thread; an open that fails is retried by the next call, so
a ledger that comes back (a lock released, a path fixed) is used again, and the spool is then replayed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, TypeVar

import anyio

from openrouter_mcp.audit.ledger import Cooldown, Reservation, ReservationRequest, WindowSpend
from openrouter_mcp.audit.log import AuditLog, CallRecord, UsageSummary
from openrouter_mcp.audit.schema import COLUMNS, row_as_dict
from openrouter_mcp.audit.spool import Spool
from openrouter_mcp.audit.worker import SqliteWorker
from openrouter_mcp.errors import AuditError
from openrouter_mcp.routing.budgets import BudgetLimit
from openrouter_mcp.routing.personas import Privacy

logger = logging.getLogger(__name__)

T = TypeVar("T")
_EXPORT_BATCH = 500
#: Most records one batch holds (one INSERT statement's worth of rows, and a bound on one transaction).
MAX_BATCH = 64


class _Batch:
    """Records waiting to be written together, and the future each record's caller awaits."""

    def __init__(self) -> None:
        self.records: list[tuple[CallRecord, Privacy | None]] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.taken = False  # the worker took the records: later ones start a new batch
        #: The log whose file checks passed on the loop's thread just before (`AuditLog.usable`), if any.
        self.checked: AuditLog | None = None


class SqliteLedger:
    """`Ledger` over an `AuditLog` (an open one, or a function opening it), with the spool it replays."""

    def __init__(
        self, log: AuditLog | Callable[[], AuditLog], *, spool: Spool | None = None, max_queue: int = 1024
    ) -> None:
        self._log: AuditLog | None = log if isinstance(log, AuditLog) else None
        self._opener = None if isinstance(log, AuditLog) else log
        self.spool = spool
        self._worker = SqliteWorker(max_queue=max_queue)
        self._max_queue = max_queue
        self._queued_records = 0  # records handed to a batch and not yet written; only touched on the loop's thread
        # Replay at the first successful operation (a spool left by an earlier run), then after each spool.
        self._replay_due = spool is not None
        self._batch: _Batch | None = None  # the batch new records join, until the worker takes it
        self._batch_lock = threading.Lock()  # between the loop adding to a batch and the worker taking it

    @property
    def log(self) -> AuditLog | None:
        """The open log, if it was opened."""
        return self._log

    def note_spooled(self) -> None:
        """A record went to the spool: replay it once the ledger works again."""
        self._replay_due = self.spool is not None

    async def _run(self, operation: Callable[[AuditLog], T]) -> T:
        return await self._worker.run(partial(self._in_thread, operation))

    def _in_thread(self, operation: Callable[[AuditLog], T]) -> T:
        if self._log is None:
            assert self._opener is not None
            self._log = self._opener()
        try:
            result = operation(self._log)
        except AuditError:
            if self._opener is not None and not self._log.is_current():
                # The file was replaced or removed under us: the next operation opens what the path names now
                # (creating it if need be), and replays the spool into it. This one fails (its record is spooled).
                logger.error("the audit log %s was replaced or removed while serving; reopening it", self._log.path)
                self._log.close()
                self._log = None
                self._replay_due = self.spool is not None
            raise
        if self._replay_due and self.spool is not None:
            self._replay_due = False
            try:
                log = self._log
                self.spool.replay(lambda record, privacy: log.record(record, privacy=privacy))
            except AuditError as exc:
                self._replay_due = True
                logger.error("could not replay the audit spool yet: %s", exc)
        return result

    def record(self, record: CallRecord, *, privacy: Privacy | None = None) -> asyncio.Future[None]:
        """Write `record` with the batch waiting for the worker (see the module docstring); committed once the
        returned future is done.

        Unlike an `async def`, the record is handed to the worker when this is called, not when it is awaited:
        a caller can build its reply while the row is written, and await it just before the reply leaves. Each
        record has its own future: cancelling one caller's wait cancels no other's, and the row is still written.

        Raises:
            AuditError: at once, when the queue is full (a stuck disk); from the future, when its batch could not
                be written.
        """
        if self._queued_records >= self._max_queue:
            raise AuditError(f"the audit ledger is backed up ({self._max_queue} records waiting on the disk)")
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._batch_lock:
            batch = self._batch
            joined = batch is not None and not batch.taken and len(batch.records) < MAX_BATCH
            if batch is not None and joined:
                batch.records.append((record, privacy))
                batch.waiters.append(written)
        if not joined:
            batch = _Batch()
            # The file checks here rather than in the worker (see `AuditLog.usable`); when they fail, or the log
            # is not open yet, the worker makes them itself, and handles what they find.
            log = self._log
            batch.checked = log if log is not None and log.usable() else None
            batch.records.append((record, privacy))
            batch.waiters.append(written)
            self._worker.submit(partial(self._write, batch), batch.waiters)
            self._batch = batch
        self._queued_records += 1
        written.add_done_callback(self._unqueue)
        return written

    def _unqueue(self, _: asyncio.Future[None]) -> None:
        self._queued_records -= 1

    def _write(self, batch: _Batch) -> None:
        """In the worker thread: take the batch (later records start another) and write it in one transaction."""
        with self._batch_lock:
            batch.taken = True
        self._in_thread(lambda log: log.record_many(batch.records, checked=log is batch.checked))

    async def reserve(self, request: ReservationRequest) -> Reservation:
        return await self._run(lambda log: log.reserve(request))

    async def release(self, reservation_id: str) -> None:
        await self._run(lambda log: log.release(reservation_id))

    async def spend(self, limit: BudgetLimit, *, now: float) -> WindowSpend:
        return await self._run(lambda log: log.window_spend(limit, now=now))

    async def usage(self, *, since: float, until: float, persona: str | None = None) -> UsageSummary:
        return await self._run(lambda log: log.usage(since=since, until=until, persona=persona))

    async def tail(self, n: int = 20) -> list[dict[str, Any]]:
        return await self._run(lambda log: log.tail(n))

    async def export(self, *, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        last_id = 0
        while True:
            # One operation per batch: a long export never holds the thread against the writes.
            rows = await self._run(partial(_batch, since=since, after_id=last_id))
            for row in rows:
                yield row
            if len(rows) < _EXPORT_BATCH:
                return
            last_id = rows[-1]["id"]

    async def put_cooldown(self, cooldown: Cooldown) -> None:
        await self._run(lambda log: log.put_cooldown(cooldown))

    async def cooldowns(self, *, now: float) -> list[Cooldown]:
        return await self._run(lambda log: log.cooldowns(now=now))

    async def aclose(self) -> None:
        if self._log is not None:
            log = self._log
            with anyio.CancelScope(shield=True):
                await self._worker.run(log.close)
        self._worker.stop()


def _batch(log: AuditLog, *, since: float | None, after_id: int) -> list[dict[str, Any]]:
    rows = log._query(
        f"SELECT {COLUMNS} FROM calls WHERE id > ? AND ts >= ? ORDER BY id LIMIT ?",
        (after_id, float("-inf") if since is None else since, _EXPORT_BATCH),
    )
    return [row_as_dict(row) for row in rows]
