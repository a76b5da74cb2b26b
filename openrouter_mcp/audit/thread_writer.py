"""The SQLite ledger's work in a thread of this process (`audit/worker.py`): over stdio, and for a log the caller
opened itself.

A record that finds nothing queued for the thread is written there and then, on the event loop's thread
(`AuditLog.record_at_once`): one INSERT, ~0.2 ms after the idle wait of a model call, where handing it to the
thread and being woken once it is written costs ~0.5 ms (two wake-ups, and the thread's turn at the interpreter
lock). That only happens when the write can wait on nothing but the disk: no lock to wait for (another write
under way, here or in another process) and no checkpoint due (which syncs the files). Anything else goes to the
thread.

There, records are written in batches (group commit): a record joins the batch waiting for the thread, if one
is, and the thread writes a whole batch in one statement and one transaction, then wakes its callers with one
callback. Under load, a batch holds every record that finished while the previous one was written. What
batching saves is the thread's turns at the interpreter lock: each statement releases the lock and must win it
back from the busy event loop, which takes up to the interpreter's switch interval (5 ms), far more than the
write itself. Over HTTP, where many clients keep the loop busy, the server writes from a process of its own
instead (`audit/process_writer.py`).
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any

import anyio

from openrouter_mcp.audit.ledger_file import MAX_BATCH, LedgerFile
from openrouter_mcp.audit.log import AuditLog, CallRecord
from openrouter_mcp.audit.worker import SqliteWorker
from openrouter_mcp.errors import AuditError
from openrouter_mcp.routing.personas import Privacy


class _Batch:
    """Records waiting to be written together, and the future each record's caller awaits."""

    def __init__(self) -> None:
        self.records: list[tuple[CallRecord, Privacy | None]] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.taken = False  # the worker took the records: later ones start a new batch
        #: The log whose file checks passed on the loop's thread just before (`AuditLog.usable`), if any.
        self.checked: AuditLog | None = None


class ThreadWriter:
    """Runs a `LedgerFile`'s operations in one worker thread, at most `max_queue` operations or records waiting."""

    def __init__(self, file: LedgerFile, *, max_queue: int) -> None:
        self._file = file
        self._worker = SqliteWorker(max_queue=max_queue)
        self._max_queue = max_queue
        self._queued_records = 0  # records handed to a batch and not yet written; only touched on the loop's thread
        self._batch: _Batch | None = None  # the batch new records join, until the worker takes it
        self._batch_lock = threading.Lock()  # between the loop adding to a batch and the worker taking it

    #: No process of its own (see `ProcessWriter.pid`).
    pid: int | None = None

    @property
    def log(self) -> AuditLog | None:
        """The open log, once opened."""
        return self._file.log

    async def start(self) -> None:
        """Nothing to start ahead: the thread starts with the first operation, at no cost worth hiding."""

    def record(self, record: CallRecord, privacy: Privacy | None) -> asyncio.Future[None]:
        """See `SqliteLedger.record`."""
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
            # The file checks here rather than in the worker (see `AuditLog.usable`); when they fail, or the log
            # is not open yet, the worker makes them itself, and handles what they find.
            log = self._file.log
            checked = log if log is not None and log.usable() else None
            if checked is not None and self._queued_records == 0 and self._file.write_at_once(checked, record, privacy):
                written.set_result(None)
                return written
            batch = _Batch()
            batch.checked = checked
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
        self._file.write(batch.records, checked=batch.checked)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await self._worker.run(partial(self._file.call, name, *args, **kwargs))

    def note_spooled(self) -> None:
        self._file.note_spooled()

    async def aclose(self) -> None:
        """Finish the queued work and close the log if the ledger opened it; the next operation starts again."""
        with anyio.CancelScope(shield=True):
            await self._worker.run(self._file.close)
        self._worker.stop()
