"""AuditLog: writing one row per call (committed before the result returns) and the queries over them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import pydantic_core

from openrouter_mcp.audit.files import create_private, tighten
from openrouter_mcp.audit.ledger import Cooldown, Reservation, ReservationRequest, WindowSpend, new_id
from openrouter_mcp.audit.schema import (
    APPLICATION_ID,
    COLUMNS,
    MIGRATIONS,
    SCOPE_FILTERS,
    SPENT_ALL,
    SPENT_BY_PERSONA,
    WINDOW_RESERVED,
    WINDOW_SETTLED,
    WRITTEN,
    insert_rows,
    row_as_dict,
)
from openrouter_mcp.config import AUDIT_DB_ENV
from openrouter_mcp.errors import AuditError, AuditSetupError
from openrouter_mcp.routing.budgets import FIT_TOLERANCE, BudgetLimit, budget_refusal
from openrouter_mcp.routing.personas import Privacy

logger = logging.getLogger(__name__)

PRIVACY_MODES: tuple[Privacy, ...] = get_args(Privacy)
#: Rows per read of `export` (and of the ledger's).
EXPORT_BATCH = 500
#: Largest arguments or response JSON stored whole in one row (and longest error text). Past it, "full" stores
#: `{"truncated": {"size_bytes", "sha256", "cap_bytes"}}` instead, with the sha256 also in the `*_sha256`
#: column: the same hash "hashes" would keep, so what was cut can still be proven. A constant rather than a
#: setting: a prompt or answer this large is a catalog listing or a bulk transcript, not an audit fact, and
#: one 50 MB answer must not turn every call into a 100 MB write on the hot path (`audit tail` and `export`
#: read rows whole). 256 KiB still keeps a ~60,000-token prompt or answer whole.
MAX_STORED_JSON_BYTES = 256 * 1024
#: Rows per INSERT statement when writing a batch (SQLite allows 32,766 values in one statement).
MAX_ROWS_PER_STATEMENT = 256
#: Rows written between two checkpoints of the WAL by `record_many` (`record_at_once` never checkpoints): about
#: 800 pages of WAL at ~8 a row, near SQLite's own automatic checkpoint (1,000 pages), which `record_many`'s
#: connection keeps too.
CHECKPOINT_ROWS = 100


@dataclass(frozen=True)
class CallRecord:
    """One tool call as the audit log keeps it."""

    ts: float  # unix seconds when the call started
    user: str  # the OS user on stdio; the authenticated client over HTTP
    tool: str
    outcome: Literal["ok", "error", "refused", "invalid_arguments"]
    latency_ms: float
    persona: str | None = None
    transport: str | None = None  # "stdio" | "streamable-http" | "sse" | "memory"
    arguments: Mapping[str, Any] | None = None  # the tool arguments, prompt included
    response: Mapping[str, Any] | None = None  # the structured result, or the {"error": ...} payload
    requested_model: str | None = None
    served_model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None  # USD
    attempts: Sequence[Mapping[str, Any]] | None = None  # routing attempts
    error: str | None = None  # error kind and message
    #: Unique per call: `record` is idempotent on it, so a spooled row replayed twice is stored once.
    record_id: str = field(default_factory=new_id)
    #: The budget reservation this row settles (see `audit.ledger`), if the call held one.
    reservation_id: str | None = None
    #: USD counted against budgets: `cost` when OpenRouter reported it, the reserved amount when the cost
    #: is unknown (a stream cut before its usage block), 0 when nothing was sent. None: `cost`.
    charged: float | None = None


@dataclass(frozen=True)
class UsageSummary:
    """Calls, errors, tokens and cost over a time window, grouped by persona, model and UTC day."""

    since: float
    until: float
    calls: int
    errors: int
    cost: float
    prompt_tokens: int
    completion_tokens: int
    by_persona: list[dict[str, Any]]  # [{persona, calls, cost}], cost descending
    by_model: list[dict[str, Any]]  # [{model, calls, cost, prompt_tokens, completion_tokens}], cost descending
    by_day: list[dict[str, Any]]  # [{day: "YYYY-MM-DD" (UTC), calls, cost}], oldest first
    refused: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def canonical_json(value: Any) -> str:
    """The JSON that "full" stores and "hashes" hashes: sorted keys, no spaces, UTF-8 kept as is.

    Values JSON cannot represent are stored as their `str()`, so an odd argument never fails a call.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class AuditLog:
    """An append-only SQLite log of tool calls; safe to share between threads and processes."""

    SCHEMA_VERSION: ClassVar[int] = len(MIGRATIONS)

    def __init__(
        self,
        path: Path,
        *,
        privacy: Privacy = "full",
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        max_field_bytes: int = MAX_STORED_JSON_BYTES,
    ) -> None:
        """Open (creating if needed) the log at `path` and bring its schema up to date.

        `busy_timeout` is how long a write waits for another process's write before failing;
        `max_field_bytes` is the largest arguments or response JSON stored whole (see `MAX_STORED_JSON_BYTES`).

        Raises:
            AuditSetupError: the path cannot be created or opened, is not an openrouter-mcp audit log,
                or was written by a newer openrouter-mcp (a configuration mistake).
            AuditError: the file is locked past `busy_timeout` (a storage fault).
        """
        self.path = Path(path)
        self.privacy: Privacy = _checked_privacy(privacy)
        self._clock = clock
        self._max_field_bytes = max_field_bytes
        self._lock = threading.Lock()
        #: The connection `record_at_once` writes through (opened by its first write), and its own lock.
        self._at_once_db: sqlite3.Connection | None = None
        self._at_once_lock = threading.Lock()
        #: Rows written since this log last checkpointed the WAL (see `CHECKPOINT_ROWS`); counted loosely, from
        #: two threads: a lost count only moves the next checkpoint a row later.
        self._rows_unchecked = 0
        create_private(self.path)
        try:
            # Autocommit (isolation_level=None): each INSERT is its own transaction, committed when
            # execute() returns. Shared across threads, serialised by self._lock.
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise AuditSetupError(f"cannot open the audit log {self.path}: {exc}") from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            opened = os.stat(self.path)
            self._identity = (opened.st_dev, opened.st_ino)
            self._check_shared_files()
            self._enable_wal(busy_timeout)
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            tighten(self.path)  # -wal and -shm exist now
        except sqlite3.Error as exc:
            self._db.close()
            # A file that is not a database is the wrong path; anything else (locked too long) is a fault.
            fault = AuditSetupError if exc.sqlite_errorcode == sqlite3.SQLITE_NOTADB else AuditError
            raise fault(f"cannot use the audit log {self.path}: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _locked(self, *, checked: bool = False) -> Iterator[None]:
        """This process's turn at the connection, once the file is known to be the one it opened, and the WAL's
        side files to be writable (`checked`: the caller just made sure, see `usable`)."""
        with self._lock:
            if not checked:
                self._check_same_file()
                self._check_shared_files()
            yield

    def usable(self) -> bool:
        """Whether the path still names the file this connection opened and the WAL's side files can be written:
        the checks every operation makes first, without raising. Thread-safe: it reads the file system only.

        The SQLite ledger's writer thread asks the event loop's thread to make them (a few system calls) before
        it hands over a batch: each system call in the writer thread would give the loop's thread the interpreter
        lock and take it back, a pair of context switches that under load costs far more than the call itself.
        """
        try:
            self._check_same_file()
            self._check_shared_files()
        except AuditError:
            return False
        return True

    def is_current(self) -> bool:
        """Whether the log's path still names the file this connection opened."""
        try:
            current = os.stat(self.path)
        except OSError:
            return False
        return (current.st_dev, current.st_ino) == self._identity

    def _check_same_file(self) -> None:
        """Refuse to write when the log's path no longer names the file this connection opened.

        A file replaced (or deleted) while serving keeps taking this connection's rows in the old, unlinked
        file, where nobody would ever see them: a row written there is a row lost without a word.

        Raises:
            AuditError: the path is gone or names another file.
        """
        if not self.is_current():
            raise AuditError(f"the audit log {self.path} was replaced or removed while serving")

    def _check_shared_files(self) -> None:
        """Refuse to touch the log when its `-shm` or `-wal` file cannot be written.

        SQLite maps `-shm` into memory and writes to it on every read and write: once that file is read-only or
        immutable (`chattr +i`), the next access kills the whole process with SIGBUS instead of failing. A
        permission check per operation (microseconds) turns that into an `AuditError` the caller handles. It
        asks `access()` rather than opening the file: closing any descriptor of a file drops every POSIX lock
        this process holds on it, which would break SQLite's own locking between processes.

        Raises:
            AuditError: a side file exists and cannot be written.
        """
        for suffix in ("-shm", "-wal"):
            side = f"{self.path}{suffix}"
            # `access` first: one system call when the file is there and writable, as it is on every write.
            if not os.access(side, os.W_OK) and os.path.exists(side):
                raise AuditError(
                    f"the audit log's {suffix[1:]} file {side} cannot be written (read-only or immutable); "
                    "make it writable again"
                )

    def _enable_wal(self, busy_timeout: float) -> None:
        """Switch a new file to WAL (the mode persists in the file, so later opens find it set).

        Raises:
            AuditSetupError: the file system cannot do WAL (a network share, typically).
        """
        if self._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        # The switch needs an exclusive lock and SQLite does not run the busy handler for it, so when
        # several processes create the log at once the losers get SQLITE_BUSY at once: retry until the
        # busy timeout. Only a file's first open ever gets here.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
        if str(mode).lower() != "wal":
            raise AuditSetupError(
                f"the audit log {self.path} cannot use WAL mode (got {mode!r}); put it on a local disk"
            )

    def _migrate(self) -> None:
        version = self._version()
        if version == self.SCHEMA_VERSION:
            return
        # IMMEDIATE takes the write lock first, so two processes opening an old file migrate it once.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._version()
            for script in MIGRATIONS[version:]:
                for statement in _statements(script):
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _version(self) -> int:
        application_id = int(self._db.execute("PRAGMA application_id").fetchone()[0])
        if application_id not in (0, APPLICATION_ID):
            raise AuditSetupError(f"{self.path} is an SQLite database but not an openrouter-mcp audit log")
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > self.SCHEMA_VERSION:
            raise AuditSetupError(
                f"the audit log {self.path} was written by a newer openrouter-mcp (schema v{version}; this "
                f"version reads up to v{self.SCHEMA_VERSION}): upgrade openrouter-mcp, or point "
                f"{AUDIT_DB_ENV} at another file"
            )
        return version

    def record(self, record: CallRecord, *, privacy: Privacy | None = None) -> int:
        """Write one call and commit it, settling its reservation; returns its row id. `privacy` overrides the
        log's default.

        Raises:
            AuditError: the row could not be written (disk full, another writer held the lock past
                the busy timeout, log closed) or `privacy` is not a known mode.
        """
        return self.record_many([(record, privacy)])

    def record_many(self, records: Sequence[tuple[CallRecord, Privacy | None]], *, checked: bool = False) -> int:
        """Write calls (each with its privacy override, None: the log's default) in one statement, committed
        together: every row or none. Each row settles its reservation and adds what it charged to its scopes'
        daily totals (the `calls_settle` trigger, in the same transaction); a row already stored (its `record_id`,
        a replay) is skipped, and neither charges nor settles again.

        `checked`: `usable()` has just said yes, so its checks are not made again. Returns the row id of the last
        row written.

        Raises:
            AuditError: the rows could not be written (nothing was), or a privacy is not a known mode.
        """
        params = self._params(records)
        rowid: int | None = None
        try:
            with self._locked(checked=checked):
                for start in range(0, len(records), MAX_ROWS_PER_STATEMENT):
                    count = min(MAX_ROWS_PER_STATEMENT, len(records) - start)
                    if start == 0 and count < len(records):
                        self._db.execute("BEGIN IMMEDIATE")  # more rows than one statement takes: one transaction
                    values = params[start * len(WRITTEN) : (start + count) * len(WRITTEN)]
                    rowid = self._db.execute(insert_rows(count), values).lastrowid
                if len(records) > MAX_ROWS_PER_STATEMENT:
                    self._db.execute("COMMIT")
                self._rows_unchecked += len(records)
                if self._rows_unchecked >= CHECKPOINT_ROWS:
                    self._checkpoint()
        except sqlite3.Error as exc:
            _roll_back(self._db)
            raise AuditError(f"could not write to the audit log {self.path}: {exc}") from None
        assert rowid is not None  # an INSERT always sets it
        return rowid

    def record_at_once(self, record: CallRecord, privacy: Privacy | None = None) -> bool:
        """Write one call as `record` does, if that waits on nothing but the write itself; False, with nothing
        written, when it would have to wait or failed in any way: write it with `record_many` then, which waits,
        checkpoints when due, and reports.

        It writes through a connection of its own, which never waits for a lock (another connection's or another
        process's write under way: it gives up at once) and never checkpoints (that syncs the files to disk; when
        one is due, it leaves the row to `record_many`). So the event loop's thread can write a row itself for the
        price of the INSERT: handing it to a writer thread and being woken once it is written costs more. The
        file checks (`usable`) are the caller's.
        """
        if self._rows_unchecked >= CHECKPOINT_ROWS:
            return False
        try:
            params = self._params([(record, privacy)])
        except AuditError:
            return False
        if not self._at_once_lock.acquire(blocking=False):
            return False
        try:
            db = self._at_once_db or self._open_at_once()
            db.execute(insert_rows(1), params)
        except sqlite3.Error:
            _roll_back(self._at_once_db)
            return False
        finally:
            self._at_once_lock.release()
        self._rows_unchecked += 1
        return True

    def _open_at_once(self) -> sqlite3.Connection:
        """The connection `record_at_once` writes through: no busy wait, no automatic checkpoint."""
        db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA wal_autocheckpoint = 0")
            db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error:
            db.close()
            raise
        self._at_once_db = db
        return db

    def _checkpoint(self) -> None:
        """Copy the WAL into the database file as far as no reader needs it (SQLite's PASSIVE checkpoint, as its
        automatic one: it waits for nobody), and sync it. Under `_lock`; the rows are written whatever happens."""
        self._rows_unchecked = 0
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            logger.warning("could not checkpoint the audit log %s: %s", self.path, exc)

    def _params(self, records: Sequence[tuple[CallRecord, Privacy | None]]) -> list[Any]:
        """The values `schema.insert_rows(len(records))` takes, row after row."""
        params: list[Any] = []
        for record, privacy in records:
            params.extend(self._row(record, self.privacy if privacy is None else privacy))
        return params

    def _row(self, record: CallRecord, mode: Privacy) -> tuple[Any, ...]:
        """`record`'s values in `schema.insert_rows`' column order, keeping of its content what `mode` says."""
        values = written_values(record, mode, self._max_field_bytes)
        return tuple(values[column] for column in WRITTEN)

    def reserve(self, request: ReservationRequest) -> Reservation:
        """Hold up to `request.amount` against every limit, atomically with the check (see `Ledger.reserve`).

        Raises:
            BudgetExceededError: the minimum does not fit a limit; nothing was held.
            AuditError: the log could not be read or written; nothing was held.
        """
        granted = request.amount
        try:
            with self._locked(), self._transaction():
                # BEGIN IMMEDIATE took the write lock: no other process can reserve or settle until COMMIT.
                self._db.execute("DELETE FROM reservations WHERE expires <= ?", (request.now,))
                for limit in request.limits:
                    spend = self._window_spend(limit, request.now)
                    room = limit.limit - spend.total
                    if room + FIT_TOLERANCE < request.minimum:
                        raise budget_refusal(
                            limit, spent=spend.settled, reserved=spend.reserved, needed=request.minimum
                        )
                    granted = min(granted, max(room, request.minimum))
                self._db.execute(
                    "INSERT INTO reservations (id, user, persona, amount, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
                    (request.id, request.user, request.persona, granted, request.now, request.expires),
                )
        except sqlite3.Error as exc:
            raise AuditError(f"could not reserve budget in the audit log {self.path}: {exc}") from None
        return Reservation(request.id, granted, request.expires)

    def release(self, reservation_id: str) -> None:
        """Drop a reservation with no spend; unknown ids are ignored.

        Raises:
            AuditError: the log could not be written.
        """
        try:
            with self._locked():
                self._db.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))
        except sqlite3.Error as exc:
            raise AuditError(f"could not release a reservation in the audit log {self.path}: {exc}") from None

    def window_spend(self, limit: BudgetLimit, *, now: float) -> WindowSpend:
        """Settled spend and live reservations in `limit`'s window, for its scope.

        Raises:
            AuditError: the log cannot be read.
        """
        try:
            with self._locked(), self._transaction("BEGIN"):
                return self._window_spend(limit, now)
        except sqlite3.Error as exc:
            raise AuditError(f"could not read the audit log {self.path}: {exc}") from None

    def _window_spend(self, limit: BudgetLimit, now: float) -> WindowSpend:
        scope = SCOPE_FILTERS[limit.scope]
        who: tuple[Any, ...] = () if limit.scope == "server" else (limit.name,)
        name = "" if limit.scope == "server" else limit.name
        settled = self._db.execute(WINDOW_SETTLED, (limit.scope, name, limit.since, limit.resets)).fetchone()
        reserved = self._db.execute(
            WINDOW_RESERVED.format(scope=scope), (limit.since, limit.resets, now, *who)
        ).fetchone()
        return WindowSpend(float(settled[0]), float(reserved[0]))

    def put_cooldown(self, cooldown: Cooldown) -> None:
        """Share a cooldown; a later `until` already stored is kept.

        Raises:
            AuditError: the log could not be written.
        """
        try:
            with self._locked():
                self._db.execute(
                    "INSERT INTO cooldowns (key, until, strikes) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                    "until = MAX(until, excluded.until), strikes = MAX(strikes, excluded.strikes)",
                    (cooldown.key, cooldown.until, cooldown.strikes),
                )
        except sqlite3.Error as exc:
            raise AuditError(f"could not write a cooldown to the audit log {self.path}: {exc}") from None

    def cooldowns(self, *, now: float) -> list[Cooldown]:
        """The cooldowns still running at `now`.

        Raises:
            AuditError: the log cannot be read.
        """
        rows = self._query("SELECT key, until, strikes FROM cooldowns WHERE until > ? ORDER BY key", (now,))
        return [Cooldown(key, float(until), int(strikes)) for key, until, strikes in rows]

    @contextmanager
    def _transaction(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
        """One transaction on the (autocommit) connection: committed on success, rolled back on any error."""
        self._db.execute(begin)
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def spent(self, *, persona: str | None, since: float) -> float:
        """USD charged for calls (answered or failed) that started at or after `since`; `persona=None`: all.

        Raises:
            AuditError: the log cannot be read.
        """
        if persona is None:
            return float(self._query(SPENT_ALL, (since,))[0][0])
        return float(self._query(SPENT_BY_PERSONA, (since, persona))[0][0])

    def usage(self, *, since: float, until: float | None = None, persona: str | None = None) -> UsageSummary:
        """Totals and groupings for calls with `since <= ts < until` (`until` defaults to now).

        Calls that named no model (catalog and account tools) count in the totals but not in `by_model`.

        Raises:
            AuditError: the log cannot be read.
        """
        end = self._clock() if until is None else until
        where = "ts >= ? AND ts < ?" + ("" if persona is None else " AND persona = ?")
        params: tuple[Any, ...] = (since, end) if persona is None else (since, end, persona)
        model = "COALESCE(served_model, requested_model)"
        queries = (
            "SELECT COUNT(*), COALESCE(SUM(outcome = 'error'), 0), COALESCE(SUM(outcome = 'refused'), 0), "
            "COALESCE(SUM(cost), 0.0), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
            f"FROM calls WHERE {where}",
            f"SELECT persona, COUNT(*) AS n, COALESCE(SUM(cost), 0.0) AS c FROM calls WHERE {where} "
            "GROUP BY persona ORDER BY c DESC, n DESC, persona",
            f"SELECT {model} AS m, COUNT(*) AS n, COALESCE(SUM(cost), 0.0) AS c, COALESCE(SUM(prompt_tokens), 0), "
            f"COALESCE(SUM(completion_tokens), 0) FROM calls WHERE {where} AND {model} IS NOT NULL "
            "GROUP BY m ORDER BY c DESC, n DESC, m",
            "SELECT strftime('%Y-%m-%d', ts, 'unixepoch') AS d, COUNT(*), COALESCE(SUM(cost), 0.0) "
            f"FROM calls WHERE {where} GROUP BY d ORDER BY d",
        )
        # One read transaction, so the totals and the groupings describe the same rows.
        totals, personas, models, days = self._query_all(queries, params)
        calls, errors, refused, cost, prompt_tokens, completion_tokens = totals[0]
        return UsageSummary(
            since=since,
            until=end,
            calls=int(calls),
            errors=int(errors),
            cost=float(cost),
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            by_persona=[{"persona": p, "calls": n, "cost": float(c)} for p, n, c in personas],
            by_model=[
                {"model": m, "calls": n, "cost": float(c), "prompt_tokens": pt, "completion_tokens": ct}
                for m, n, c, pt, ct in models
            ],
            by_day=[{"day": d, "calls": n, "cost": float(c)} for d, n, c in days],
            refused=int(refused),
        )

    def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The newest `n` rows (in the order they were written), oldest first.

        Raises:
            AuditError: the log cannot be read.
        """
        rows = self._query(f"SELECT {COLUMNS} FROM calls ORDER BY id DESC LIMIT ?", (max(n, 0),))
        return [row_as_dict(row) for row in reversed(rows)]

    def export(self, *, since: float | None = None) -> Iterator[dict[str, Any]]:
        """Every row (that started at or after `since`), oldest first, as JSON-ready dicts.

        Read in batches with the lock released between them, so a long export neither blocks
        `record()` nor holds a read transaction that stops the WAL from being checkpointed.

        Raises:
            AuditError: the log cannot be read.
        """
        last_id = 0
        while True:
            rows = self.rows_after(last_id, since=since)
            yield from rows
            if len(rows) < EXPORT_BATCH:
                return
            last_id = rows[-1]["id"]

    def rows_after(
        self, last_id: int, *, since: float | None = None, limit: int = EXPORT_BATCH
    ) -> list[dict[str, Any]]:
        """Up to `limit` rows with an id above `last_id` (that started at or after `since`), oldest first: one batch
        of `export`.

        Raises:
            AuditError: the log cannot be read.
        """
        rows = self._query(
            f"SELECT {COLUMNS} FROM calls WHERE id > ? AND ts >= ? ORDER BY id LIMIT ?",
            (last_id, float("-inf") if since is None else since, limit),
        )
        return [row_as_dict(row) for row in rows]

    def close(self) -> None:
        """Close the connection (idempotent); SQLite checkpoints the WAL if this was the last one.

        A connection whose `-shm` file can no longer be written is never closed, not even at exit: closing
        writes to that memory-mapped file, which would kill the process with SIGBUS. It is leaked on purpose.
        """
        with self._lock, self._at_once_lock:
            connections = [self._db] if self._at_once_db is None else [self._db, self._at_once_db]
            try:
                self._check_shared_files()
            except AuditError:
                for connection in connections:
                    _never_finalize(connection)
                return
            for connection in connections:
                connection.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._locked():
                return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise AuditError(f"could not read the audit log {self.path}: {exc}") from None

    def _query_all(self, queries: Sequence[str], params: tuple[Any, ...]) -> list[list[tuple[Any, ...]]]:
        try:
            with self._locked():
                self._db.execute("BEGIN")
                try:
                    return [self._db.execute(sql, params).fetchall() for sql in queries]
                finally:
                    self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise AuditError(f"could not read the audit log {self.path}: {exc}") from None


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration script, each whole (a trigger's body included)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""
    if statement.strip():
        yield statement.strip()


def _roll_back(connection: sqlite3.Connection | None) -> None:
    """End a transaction a failed statement left open on `connection` (SQLite rolls back some failures by itself)."""
    try:
        if connection is not None and connection.in_transaction:
            connection.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the connection is closed or unusable; the next operation reports that


def _never_finalize(connection: sqlite3.Connection) -> None:
    """Keep `connection` alive until the process ends, so that nothing (not even interpreter shutdown, which
    deallocates what it can) ever makes SQLite close it."""
    import ctypes

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(connection))


@dataclass(frozen=True)
class KeptContent:
    """What a row keeps of a call's arguments, response and error under its privacy mode (every engine alike)."""

    arguments_json: str | None = None
    arguments_sha256: str | None = None
    response_json: str | None = None
    response_sha256: str | None = None
    error: str | None = None


def kept_content(record: CallRecord, mode: str, cap: int = MAX_STORED_JSON_BYTES) -> KeptContent:
    """ "full": the JSON (past `cap` bytes a marker with the size and sha256); "hashes": sha256 only; "metadata":
    neither. The error text is kept in every mode, cut at `cap` characters.

    Raises:
        AuditSetupError: `mode` is not a privacy mode.
    """
    error = _capped_text(record.error, cap)
    if mode == "full":
        arguments_json, arguments_sha256 = _capped_json(record.arguments, cap)
        response_json, response_sha256 = _capped_json(record.response, cap)
        return KeptContent(arguments_json, arguments_sha256, response_json, response_sha256, error)
    if mode == "hashes":
        return KeptContent(
            arguments_sha256=_sha256_or_none(record.arguments),
            response_sha256=_sha256_or_none(record.response),
            error=error,
        )
    _checked_privacy(mode)
    return KeptContent(error=error)


def written_values(record: CallRecord, mode: str, cap: int = MAX_STORED_JSON_BYTES) -> dict[str, Any]:
    """What a call's row holds, by column name (every engine stores the same columns), keeping of its arguments,
    response and error what privacy `mode` says.

    Raises:
        AuditSetupError: `mode` is not a privacy mode.
    """
    kept = kept_content(record, mode, cap)
    return {
        "ts": record.ts,
        "user": record.user,
        "persona": record.persona,
        "transport": record.transport,
        "tool": record.tool,
        "outcome": record.outcome,
        "latency_ms": record.latency_ms,
        "requested_model": record.requested_model,
        "served_model": record.served_model,
        "provider": record.provider,
        "generation_id": record.generation_id,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cost": record.cost,
        "attempts": _json_or_none(None if record.attempts is None else list(record.attempts)),
        "error": kept.error,
        "privacy": mode,
        "arguments_json": kept.arguments_json,
        "arguments_sha256": kept.arguments_sha256,
        "response_json": kept.response_json,
        "response_sha256": kept.response_sha256,
        "record_id": record.record_id,
        "charged": record.charged,
        "reservation_id": record.reservation_id,
    }


def _checked_privacy(mode: str) -> Privacy:
    if mode not in PRIVACY_MODES:
        raise AuditSetupError(f"unknown audit privacy {mode!r}: use one of {', '.join(PRIVACY_MODES)}")
    return mode


def _json_or_none(value: Any) -> str | None:
    # pydantic-core's encoder (Rust): several times faster than json.dumps, and this runs on every call's path.
    return None if value is None else pydantic_core.to_json(value, fallback=str).decode()


def _capped_json(value: Any, cap: int) -> tuple[str | None, str | None]:
    """(JSON to store, sha256 to store) for "full": the JSON itself, or past `cap` bytes a marker and the hash."""
    stored = None if value is None else pydantic_core.to_json(value, fallback=str)
    if stored is None or len(stored) <= cap:
        return (None if stored is None else stored.decode()), None
    full = canonical_json(value).encode()
    digest = hashlib.sha256(full).hexdigest()
    marker = {"truncated": {"size_bytes": len(full), "sha256": digest, "cap_bytes": cap}}
    return canonical_json(marker), digest


def _capped_text(text: str | None, cap: int) -> str | None:
    if text is None or len(text) <= cap:
        return text
    return f"{text[:cap]}... [cut: {len(text)} characters in all]"


def _sha256_or_none(value: Any) -> str | None:
    return None if value is None else hashlib.sha256(canonical_json(value).encode()).hexdigest()
