"""The SQLite ledger's synchronous side: the log file, opened on first use and reopened when replaced, and the
spool replayed into it once it works again.

Whatever runs it (the writer thread of `audit/thread_writer.py`, the writer process of `audit/process_writer.py`)
runs it from one thread at a time, so none of this is locked; the exception is `write_at_once`, which the event
loop's thread calls beside the writer thread, and which takes only the log's own lock. Operations are named
(`OPERATIONS`): a name and plain arguments cross a process boundary, a closure does not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from openrouter_mcp.audit.log import AuditLog, CallRecord
from openrouter_mcp.audit.spool import Spool
from openrouter_mcp.errors import AuditError
from openrouter_mcp.routing.personas import Privacy

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Most records one batch holds (one INSERT statement's worth of rows, and a bound on one transaction), whichever
#: writer groups them.
MAX_BATCH = 64

#: The `AuditLog` methods a ledger runs by name (every read and write of `Ledger` but `record`, which is
#: `LedgerFile.write`); anything else is refused, whoever asks.
OPERATIONS = frozenset(
    {"reserve", "release", "window_spend", "usage", "tail", "rows_after", "put_cooldown", "cooldowns"}
)


class LedgerFile:
    """An `AuditLog` (an open one, or a function opening it) and the spool replayed into it."""

    def __init__(self, log: AuditLog | Callable[[], AuditLog], spool: Spool | None) -> None:
        self.log: AuditLog | None = log if isinstance(log, AuditLog) else None
        self._opener = None if isinstance(log, AuditLog) else log
        self.spool = spool
        # Replay at the first successful operation (a spool left by an earlier run), then after each spool.
        self._replay_due = spool is not None

    def note_spooled(self) -> None:
        """A record went to the spool: replay it once the log works again."""
        self._replay_due = self.spool is not None

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """`AuditLog.<name>(*args, **kwargs)` for a name in `OPERATIONS`.

        Raises:
            AuditError: `name` is not an operation, or what the operation raised.
        """
        if name not in OPERATIONS:
            raise AuditError(f"not a ledger operation: {name!r}")
        return self.run(lambda log: getattr(log, name)(*args, **kwargs))

    def write(self, records: Sequence[tuple[CallRecord, Privacy | None]], *, checked: AuditLog | None = None) -> None:
        """Write `records` in one transaction (`AuditLog.record_many`); `checked`: the log whose file checks have
        just passed on another thread (`AuditLog.usable`), so they are not made again.

        Raises:
            AuditError: nothing was written.
        """
        self.run(lambda log: log.record_many(records, checked=log is checked))

    def write_at_once(self, log: AuditLog, record: CallRecord, privacy: Privacy | None) -> bool:
        """Write `record` into `log`, the open log whose file checks have just passed, from the calling thread
        rather than the writer's (`AuditLog.record_at_once`), when nothing else is due first (a spool to replay);
        False, with nothing written, when it was not: write it with `write` then."""
        return not self._replay_due and log is self.log and log.record_at_once(record, privacy)

    def run(self, operation: Callable[[AuditLog], T]) -> T:
        """`operation(log)`, with the log opened first if it is not; after a success, a replay of the spool if one
        is due.

        Raises:
            AuditError: the log cannot be opened, or what `operation` raised. When the file was replaced or removed
                under us, the next operation opens what the path names now (creating it if need be) and replays
                the spool into it.
        """
        if self.log is None:
            assert self._opener is not None
            self.log = self._opener()
        try:
            result = operation(self.log)
        except AuditError:
            if self._opener is not None and not self.log.is_current():
                logger.error("the audit log %s was replaced or removed while serving; reopening it", self.log.path)
                self.log.close()
                self.log = None
                self._replay_due = self.spool is not None
            raise
        if self._replay_due and self.spool is not None:
            self._replay_due = False
            try:
                log = self.log
                self.spool.replay(lambda record, privacy: log.record(record, privacy=privacy))
            except AuditError as exc:
                self._replay_due = True
                logger.error("could not replay the audit spool yet: %s", exc)
        return result

    def close(self) -> None:
        """Close the log if this opened it (one given open stays open: its owner closes it); the next operation
        opens it again."""
        if self._opener is not None and self.log is not None:
            log, self.log = self.log, None
            log.close()
