"""The ledger on PostgreSQL: one database that several replicas, on several machines, share.

`PostgresLedger` implements `audit.ledger.Ledger` with psycopg 3's async connection pool (the optional extra
`openrouter-mcp[postgres]`); its statements and migrations are in `audit/postgres_schema.py`. Selected by
`OPENROUTER_MCP_DATABASE_URL=postgresql://...` or `--database-url` (`audit/database.py`).

- **Admission** (`reserve`) is one transaction, sent as one message (a simple query of several statements): an
  advisory lock per budget scope (`server`, `persona:NAME`, `user:NAME`, taken in sorted order, held until commit),
  then one statement that sums every window's settled spend and live reservations and inserts the reservation if it
  fits. Every replica's `reserve` on an overlapping scope waits for the lock, and the sums read a snapshot taken once
  it is held, so two calls can never both take the last dollar. The lock is held only while the server runs the
  admission, never across a round trip to a replica.
- **Settling** (`record`) is one statement: insert the row (ignored if its `record_id` is already there), delete
  its reservation, add its charge to its scopes' daily totals (`spend`). A concurrent sum sees either the
  reservation or the charge, never both or neither; admission sums at most 31 daily totals per window, however
  many calls the month holds.
- **Faults**: a database that cannot be reached (down, restarting, network gone) surfaces as a retryable
  `AuditError` within `timeout` seconds (the wait for a pooled connection), never as a hang; the pool reconnects
  by itself when the database is back, and drops a connection the server closed while it sat idle before lending
  it, so a restart costs no failed call. Other database errors are non-retryable `AuditError`s. Messages show the
  URL with its password replaced by `***`, and never the password itself. Answers that could not be recorded wait
  in the local spool, replayed after the next write that succeeds.
- **Start-up** (`PostgresLedger.open`): the database is reached and migrated before serving; failing that is an
  `AuditSetupError` (a configuration mistake: start-up exits 2 with the redacted URL and the reason).
"""

from __future__ import annotations

import hashlib
import logging
import select
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, TypeAlias
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.from_thread
import anyio.to_thread
import psycopg
import psycopg_pool

from openrouter_mcp.audit import postgres_schema as sql
from openrouter_mcp.audit.database import check_url, redact_url, url_password
from openrouter_mcp.audit.ledger import Cooldown, Reservation, ReservationRequest, WindowSpend
from openrouter_mcp.audit.log import CallRecord, UsageSummary, _checked_privacy, written_values
from openrouter_mcp.audit.schema import row_as_dict
from openrouter_mcp.audit.spool import Spool
from openrouter_mcp.config import default_audit_path
from openrouter_mcp.errors import AuditError, AuditSetupError
from openrouter_mcp.routing.budgets import FIT_TOLERANCE, BudgetLimit, budget_refusal
from openrouter_mcp.routing.personas import Privacy

#: Seconds to connect (at start-up, and for each new pooled connection) and to wait for a pooled connection.
DEFAULT_TIMEOUT = 5.0
DEFAULT_POOL_SIZE = 10
#: Expired reservations are deleted by at most one `reserve` every this many seconds (they stop counting at once).
EXPIRE_EVERY = 60.0
_EXPORT_BATCH = 500
DAY = 86_400.0

logger = logging.getLogger(__name__)

_Pool: TypeAlias = psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]]


def spool_for(url: str) -> Spool:
    """The local spool of the database at `url`: in this machine's data folder (beside the default SQLite log),
    named after the database (a hash of its redacted URL), shared by every replica on this machine."""
    digest = hashlib.sha256(redact_url(url).encode()).hexdigest()[:16]
    return Spool.beside(default_audit_path().parent / f"postgres-{digest}")


class PostgresLedger:
    """The ledger in a PostgreSQL database (see the module docstring); created by `await PostgresLedger.open(url)`."""

    SCHEMA_VERSION: ClassVar[int] = len(sql.MIGRATIONS)

    def __init__(
        self,
        pool: _Pool,
        url: str,
        *,
        privacy: Privacy,
        timeout: float,
        spool: Spool | None = None,
    ) -> None:
        self._pool = pool
        self.spool = spool
        # Replay at the first successful write (a spool left by an earlier run), then after each spooled record.
        self._replay_due = spool is not None
        self._replaying = False
        self._secret = url_password(url)
        self.url = redact_url(url)  # the only form of the URL this object keeps in view
        self.privacy: Privacy = privacy
        self._timeout = timeout
        self._expired_at = 0.0

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        privacy: Privacy = "full",
        timeout: float = DEFAULT_TIMEOUT,
        pool_size: int = DEFAULT_POOL_SIZE,
        spool: Spool | None = None,
    ) -> PostgresLedger:
        """Connect to the database at `url`, bring its schema up to date, and return the ledger.

        `spool` keeps answered calls the database could not take (see `audit.spool`); this ledger replays it
        once writes succeed again.

        Raises:
            ConfigurationError: `url` is not a PostgreSQL URL.
            AuditSetupError: the database cannot be reached within `timeout`, refuses us, or holds a newer schema.
        """
        check_url(url)
        privacy = _checked_privacy(privacy)
        pool: _Pool = psycopg_pool.AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout,
            # Autocommit: a statement is its own transaction unless `transaction()` says otherwise.
            kwargs={"autocommit": True, **_connection_options(url, timeout)},
            check=_check_connection,
            # psycopg's pool retries a failed connection with a doubling delay until this timeout; kept short so
            # that once the database is back, the pool's next attempt comes within a call's wait, and after giving
            # up the next call starts a fresh attempt at once.
            reconnect_timeout=max(1.0, timeout / 2),
            name="openrouter-mcp-ledger",
        )
        ledger = cls(pool, url, privacy=privacy, timeout=timeout, spool=spool)
        try:
            # One direct connection first: it reports why it failed (refused, bad password, no such database)
            # where the pool would only say that it timed out.
            options = _connection_options(url, timeout)
            connection = await psycopg.AsyncConnection.connect(url, autocommit=True, **options)
            async with connection:
                await ledger._migrate(connection)
            await pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise AuditSetupError(f"cannot use the ledger database {ledger.url}: {ledger._describe(exc)}") from None
        except BaseException:
            await pool.close()
            raise
        return ledger

    async def _migrate(self, connection: psycopg.AsyncConnection[Any]) -> None:
        async with connection.transaction():
            # Replicas starting together: the first migrates, the others wait here and then find nothing to do.
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (sql.MIGRATION_LOCK,))
            await connection.execute(sql.BOOTSTRAP)
            row = await (await connection.execute("SELECT max(version) FROM schema_version")).fetchone()
            version = 0 if row is None or row[0] is None else int(row[0])
            if version > self.SCHEMA_VERSION:
                raise AuditSetupError(
                    f"the ledger database {self.url} was written by a newer openrouter-mcp (schema v{version}; "
                    f"this version reads up to v{self.SCHEMA_VERSION}): upgrade openrouter-mcp"
                )
            for statements in sql.MIGRATIONS[version:]:
                for statement in statements:
                    await connection.execute(statement)
            if version < self.SCHEMA_VERSION:
                await connection.execute("DELETE FROM schema_version")
                await connection.execute("INSERT INTO schema_version VALUES (%s)", (self.SCHEMA_VERSION,))

    async def schema_version(self) -> int:
        """The schema version the database holds.

        Raises:
            AuditError: the database cannot be read.
        """
        rows = await self._fetch("SELECT max(version) FROM schema_version", ())
        return int(rows[0][0])

    # -- calls ------------------------------------------------------------------------------------------------

    async def record(self, record: CallRecord, *, privacy: Privacy | None = None) -> None:
        """Write one call's row and settle its reservation, in one statement (see `Ledger.record`).

        Raises:
            AuditError: the row could not be written (retryable when the database is unreachable).
        """
        await self._record(record, privacy)
        await self._replay_if_due()

    async def _record(self, record: CallRecord, privacy: Privacy | None) -> None:
        mode = self.privacy if privacy is None else privacy
        values = written_values(record, mode)
        params = (record.reservation_id, *(values[column.strip('"')] for column in sql.WRITTEN))
        await self._execute(sql.RECORD, params, writing=True)

    # -- budgets ----------------------------------------------------------------------------------------------

    async def reserve(self, request: ReservationRequest) -> Reservation:
        """Hold what fits every limit, atomically with the check (see `Ledger.reserve` and the module docstring).

        Raises:
            BudgetExceededError: the minimum does not fit some limit; nothing was held.
            AuditError: the database could not be read or written; nothing was held.
        """
        limits = list(request.limits)
        if not limits:
            return Reservation(request.id, request.amount, request.expires)
        statement, params = _reservation(request, limits)
        params["scopes"] = sorted({_scope_key(limit) for limit in limits})
        expire = request.now - self._expired_at > EXPIRE_EVERY
        if expire:
            self._expired_at = request.now
        try:
            async with self._pool.connection() as connection:
                # One message: the statements travel as one simple query (parameters bound here), which the server
                # runs as one implicit transaction, each statement with its own snapshot. So the scope locks are
                # held only while the server runs the admission, never while the replica's event loop gets round to
                # sending the next statement (pipelined statements each wait for the loop: under load, milliseconds
                # with the lock held, and every replica's admissions queued behind it).
                cursor = psycopg.AsyncClientCursor(connection)
                await cursor.execute(sql.admission(statement, expire=expire), params)
                cursor.nextset()  # past the locks' result, to the admission's
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            raise self._fault(exc, "could not reserve budget in") from None
        assert row is not None  # a select from one-row `w`: always one row
        granted = row[-1]
        if granted is None:
            for i, limit in enumerate(limits):
                settled, held = float(row[2 * i]), float(row[2 * i + 1])
                if limit.limit - settled - held + FIT_TOLERANCE < request.minimum:
                    raise budget_refusal(limit, spent=settled, reserved=held, needed=request.minimum)
            raise AssertionError("refused, yet every window had room")  # the same arithmetic in SQL and here
        await self._replay_if_due()
        return Reservation(request.id, float(granted), request.expires)

    async def release(self, reservation_id: str) -> None:
        """Drop a reservation with no spend; idempotent.

        Raises:
            AuditError: the database could not be written (the lease frees the reservation in time).
        """
        await self._execute(sql.RELEASE, (reservation_id,), writing=True)

    async def spend(self, limit: BudgetLimit, *, now: float) -> WindowSpend:
        """Settled spend and live reservations in `limit`'s window (a snapshot).

        Raises:
            AuditError: the database could not be read.
        """
        statement, params = _window_sums([limit], now)
        rows = await self._fetch(statement, params)
        return WindowSpend(settled=float(rows[0][0]), reserved=float(rows[0][1]))

    # -- reports ----------------------------------------------------------------------------------------------

    async def usage(self, *, since: float, until: float, persona: str | None = None) -> UsageSummary:
        """Totals and groupings of the calls with `since <= ts < until`, as SQLite's `AuditLog.usage` reports them.

        Raises:
            AuditError: the database could not be read.
        """
        where = "ts >= %s AND ts < %s" + ("" if persona is None else " AND persona = %s")
        params: tuple[Any, ...] = (since, until) if persona is None else (since, until, persona)
        try:
            async with self._pool.connection() as connection:
                # One snapshot, so the totals and the groupings describe the same rows.
                async with connection.transaction():
                    await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    results = []
                    for query in sql.usage_queries(where):
                        cursor = await connection.execute(query, params)
                        results.append(await cursor.fetchall())
        except psycopg.Error as exc:
            raise self._fault(exc, "could not read") from None
        totals, personas, models, days = results
        calls, errors, refused, cost, prompt_tokens, completion_tokens = totals[0]
        return UsageSummary(
            since=since,
            until=until,
            calls=int(calls),
            errors=int(errors),
            cost=float(cost),
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            by_persona=[{"persona": p, "calls": int(n), "cost": float(c)} for p, n, c in personas],
            by_model=[
                {"model": m, "calls": int(n), "cost": float(c), "prompt_tokens": int(pt), "completion_tokens": int(ct)}
                for m, n, c, pt, ct in models
            ],
            by_day=[{"day": d, "calls": int(n), "cost": float(c)} for d, n, c in days],
            refused=int(refused),
        )

    async def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The newest `n` rows, oldest first.

        Raises:
            AuditError: the database could not be read.
        """
        rows = await self._fetch(sql.TAIL, (max(n, 0),))
        return [row_as_dict(row) for row in reversed(rows)]

    async def export(self, *, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every row (started at or after `since`), oldest first, in batches of short transactions.

        Raises:
            AuditError: the database could not be read.
        """
        last_id = 0
        while True:
            rows = await self._fetch(sql.EXPORT, (last_id, float("-inf") if since is None else since, _EXPORT_BATCH))
            for row in rows:
                yield row_as_dict(row)
            if len(rows) < _EXPORT_BATCH:
                return
            last_id = rows[-1][0]

    # -- cooldowns --------------------------------------------------------------------------------------------

    async def put_cooldown(self, cooldown: Cooldown) -> None:
        """Share a cooldown; an existing later end (and more strikes) is kept.

        Raises:
            AuditError: the database could not be written.
        """
        await self._execute(sql.PUT_COOLDOWN, (cooldown.key, cooldown.until, cooldown.strikes), writing=True)

    async def cooldowns(self, *, now: float) -> list[Cooldown]:
        """Every cooldown still running at `now`: one query (the server keeps the local copy, read once a second).

        Raises:
            AuditError: the database could not be read.
        """
        rows = await self._fetch(sql.ACTIVE_COOLDOWNS, (now,))
        return [Cooldown(key=key, until=float(until), strikes=int(strikes)) for key, until, strikes in rows]

    # -- the spool ----------------------------------------------------------------------------------------------

    def note_spooled(self) -> None:
        """A record went to the spool: replay it once the database takes writes again."""
        self._replay_due = self.spool is not None

    async def _replay_if_due(self) -> None:
        """After a successful write: put what the spool holds into the database (idempotent by `record_id`)."""
        if not self._replay_due or self._replaying or self.spool is None:
            return
        self._replaying, self._replay_due = True, False
        spool = self.spool

        def write(record: CallRecord, privacy: Privacy | None) -> None:
            anyio.from_thread.run(self._record, record, privacy)

        try:
            # The spool's file locking and reading are blocking: a worker thread, which writes through this loop.
            await anyio.to_thread.run_sync(spool.replay, write)
        except AuditError as exc:
            self._replay_due = True
            logger.error("could not replay the audit spool into %s yet: %s", self.url, exc.message)
        finally:
            self._replaying = False

    async def aclose(self) -> None:
        """Close every pooled connection (idempotent). Writes are committed as they happen: none is queued."""
        await self._pool.close()

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def _execute(self, statement: str, params: Sequence[Any], *, writing: bool) -> None:
        try:
            async with self._pool.connection() as connection:
                await connection.execute(statement, params)
        except psycopg.Error as exc:
            raise self._fault(exc, "could not write to" if writing else "could not read") from None

    async def _fetch(self, statement: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
        try:
            async with self._pool.connection() as connection:
                cursor = await connection.execute(statement, params)
                return await cursor.fetchall()
        except psycopg.Error as exc:
            raise self._fault(exc, "could not read") from None

    def _fault(self, exc: psycopg.Error, doing: str) -> AuditError:
        """One translation of psycopg's errors: unreachable (retryable) or anything else (not)."""
        unreachable = isinstance(exc, psycopg.OperationalError)
        if unreachable:
            message = f"the ledger database {self.url} is unreachable ({self._describe(exc)}); retry in a few seconds"
        else:
            message = f"{doing} the ledger database {self.url}: {self._describe(exc)}"
        error = AuditError(message)
        error.retryable = unreachable
        if unreachable:
            error.hint = "The ledger database is down or restarting; retry shortly."
        return error

    def _describe(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, psycopg_pool.PoolTimeout):
            text = f"no connection within {self._timeout:g} s"
        if self._secret:
            text = text.replace(self._secret, "***")
        return text


async def _check_connection(connection: psycopg.AsyncConnection[Any]) -> None:
    """Before lending a pooled connection: probe it only if the server sent it something while it sat idle.

    An idle autocommit connection receives nothing unless the server is closing it (a restart, `pg_terminate_backend`
    or an idle timeout sends a message, then EOF): a readable socket is a non-blocking, local test for that. Only
    then is the connection probed with a round trip (which raises, so the pool drops it and lends another); a
    healthy call pays no round trip for the check.

    Raises:
        psycopg.OperationalError: the connection is closed or broken.
    """
    readable, _, _ = select.select([connection.pgconn.socket], [], [], 0)
    if readable:
        await psycopg_pool.AsyncConnectionPool.check_connection(connection)


def _connection_options(url: str, timeout: float) -> dict[str, Any]:
    """libpq options bounding how long a dead database can hold a call, unless the URL sets them itself.

    `connect_timeout` bounds connecting; over TCP, keepalives and `tcp_user_timeout` bound a query to a database
    that vanished without closing the connection (a network partition, a lost machine), which no timeout of ours
    on the pool would catch. Unix sockets ignore the TCP ones.
    """
    seconds = max(1, round(timeout))
    defaults: dict[str, Any] = {
        "connect_timeout": seconds,
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": 3 * seconds * 1000,  # milliseconds
    }
    given = {key for key, _ in parse_qsl(urlsplit(url).query)}
    return {key: value for key, value in defaults.items() if key not in given}


def _scope_key(limit: BudgetLimit) -> str:
    return "server" if limit.scope == "server" else f"{limit.scope}:{limit.name}"


def _reservation(request: ReservationRequest, limits: Sequence[BudgetLimit]) -> tuple[str, dict[str, Any]]:
    """`postgres_schema.reserve` for these limits, and its parameters."""
    _, params = _window_sums(limits, request.now)
    params |= {f"limit_{i}": limit.limit for i, limit in enumerate(limits)}
    params |= {
        "amount": request.amount,
        "minimum": request.minimum,
        "tolerance": FIT_TOLERANCE,
        "id": request.id,
        "persona": request.persona,
        "user": request.user,
        "now": request.now,
        "expires": request.expires,
    }
    return sql.reserve([(limit.scope, _whole_days(limit)) for limit in limits]), params


def _window_sums(limits: Sequence[BudgetLimit], now: float) -> tuple[str, dict[str, Any]]:
    """One statement: (settled, held) for each limit's window, in order."""
    params: dict[str, Any] = {}
    items = []
    for i, limit in enumerate(limits):
        items.append(sql.window_sums(limit.scope, i, by_day=_whole_days(limit)))
        params |= {
            f"since_{i}": limit.since,
            f"resets_{i}": limit.resets,
            f"now_{i}": now,
            f"name_{i}": limit.name,
            f"key_{i}": _scope_key(limit),
        }
    return "SELECT " + ", ".join(items), params


def _whole_days(limit: BudgetLimit) -> bool:
    """Whether `limit`'s window is whole UTC days (every budget window is: a day or a month)."""
    return limit.since % DAY == 0 and limit.resets % DAY == 0
