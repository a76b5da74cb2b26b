"""The ledger's PostgreSQL schema: its migrations and every statement the PostgreSQL engine runs.

The logical schema is SQLite's (`audit/schema.py`): one `calls` row per tool call with the same columns, read back
under the same names, so exports and usage reports are the same whichever engine wrote them. Added for a ledger
that several replicas share: `reservations` (budget held by calls in flight, each with a lease) and `cooldowns`
(models any replica saw fail).

`schema_version` holds one row, the version; `MIGRATIONS[i]` takes a database from version `i` to `i + 1`. All
pending steps run in one transaction under an advisory lock, so replicas starting together migrate once. Times are
unix seconds (double precision), as in SQLite, so the windows and exports agree to the bit.
"""

from __future__ import annotations

from collections.abc import Sequence

from openrouter_mcp.audit import schema

#: The advisory lock taken while migrating (an arbitrary constant: "ORMC").
MIGRATION_LOCK = 0x4F524D43

#: Takes an empty database to version 0: the version table itself (idempotent, run before the lock's holder reads it).
BOOTSTRAP = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"

#: One list of statements per version step.
MIGRATIONS: list[list[str]] = [
    # v1: calls as in SQLite, plus what SQLite's v3 adds (the record's id, for idempotent spool replays; what it
    # charged against budgets); the indexes that usage reports, exports and the
    # per-persona / per-user / server budget sums scan (covering the sums' columns, so admission reads the index
    # only); reservations; cooldowns.
    [
        """
        CREATE TABLE calls (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            record_id TEXT NOT NULL UNIQUE,
            charged DOUBLE PRECISION,
            ts DOUBLE PRECISION NOT NULL,
            "user" TEXT NOT NULL,
            persona TEXT,
            transport TEXT,
            tool TEXT NOT NULL,
            outcome TEXT NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            requested_model TEXT,
            served_model TEXT,
            provider TEXT,
            generation_id TEXT,
            prompt_tokens BIGINT,
            completion_tokens BIGINT,
            cost DOUBLE PRECISION,
            attempts TEXT,
            error TEXT,
            privacy TEXT NOT NULL,
            arguments_json TEXT,
            arguments_sha256 TEXT,
            response_json TEXT,
            response_sha256 TEXT
        )
        """,
        "CREATE INDEX calls_ts ON calls (ts) INCLUDE (outcome, cost, charged)",
        "CREATE INDEX calls_persona_ts ON calls (persona, ts) INCLUDE (outcome, cost, charged)",
        'CREATE INDEX calls_user_ts ON calls ("user", ts) INCLUDE (outcome, cost, charged)',
        """
        CREATE TABLE reservations (
            id TEXT PRIMARY KEY,
            persona TEXT,
            "user" TEXT,
            amount DOUBLE PRECISION NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            expires DOUBLE PRECISION NOT NULL
        )
        """,
        "CREATE INDEX reservations_expires ON reservations (expires)",
        # Settled spend per budget scope ("server", "persona:NAME", "user:NAME") and UTC day, kept by `RECORD` in
        # the statement that inserts the row: admission sums at most 31 of these instead of every call of the month.
        """
        CREATE TABLE spend (
            scope TEXT NOT NULL,
            day DOUBLE PRECISION NOT NULL,
            amount DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (scope, day)
        )
        """,
        """
        CREATE TABLE cooldowns (
            key TEXT PRIMARY KEY,
            until DOUBLE PRECISION NOT NULL,
            strikes INTEGER NOT NULL
        )
        """,
    ],
]

#: The columns rows are read back under: SQLite's (`schema.COLUMNS`), with `user` quoted (a keyword here).
COLUMNS = ", ".join(
    '"user"' if column == "user" else column for column in (part.strip() for part in schema.COLUMNS.split(","))
)
#: The columns a write fills, in the order `RECORD` takes their values (`log.written_values` names them).
WRITTEN = (
    "record_id",
    "charged",
    "ts",
    '"user"',
    "persona",
    "transport",
    "tool",
    "outcome",
    "latency_ms",
    "requested_model",
    "served_model",
    "provider",
    "generation_id",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "attempts",
    "error",
    "privacy",
    "arguments_json",
    "arguments_sha256",
    "response_json",
    "response_sha256",
)
#: Writes a row, settles its reservation and adds what it charged to the daily totals of its scopes, in one statement
#: (so one transaction). A replayed `record_id` inserts nothing, so it is counted once. What a row charges: `charged`
#: when the call knew it, else OpenRouter's `cost`; refused calls never reached OpenRouter and charge nothing, failed
#: ones may have been charged (a stream cut short). The totals are upserted in scope order, so two statements lock
#: the same rows in the same order and never deadlock. Parameters: the reservation id, then `WRITTEN` in order.
RECORD = (
    "WITH settled AS (DELETE FROM reservations WHERE id = %s), "
    f"new AS (INSERT INTO calls ({', '.join(WRITTEN)}) VALUES ({', '.join(['%s'] * len(WRITTEN))}) "
    'ON CONFLICT (record_id) DO NOTHING RETURNING ts, "user", persona, outcome, COALESCE(charged, cost) AS charge) '
    "INSERT INTO spend (scope, day, amount) "
    "SELECT s.scope, floor(new.ts / 86400) * 86400, new.charge FROM new, "
    "LATERAL (VALUES ('server'), ('persona:' || new.persona), ('user:' || new.\"user\")) AS s (scope) "
    "WHERE new.outcome IN ('ok', 'error') AND new.charge <> 0 AND s.scope IS NOT NULL ORDER BY s.scope "
    "ON CONFLICT (scope, day) DO UPDATE SET amount = spend.amount + EXCLUDED.amount"
)

#: Settled spend in a window of whole UTC days (every budget window is): the daily totals of its scope.
_SETTLED_BY_DAY = (
    "(SELECT COALESCE(SUM(amount), 0.0) FROM spend WHERE scope = %(key)s AND day >= %(since)s AND day < %(resets)s)"
)
#: Settled spend in any other window: the rows themselves (what the daily totals add up).
_SETTLED = (
    "(SELECT COALESCE(SUM(COALESCE(charged, cost)), 0.0) FROM calls "
    "WHERE ts >= %(since)s AND ts < %(resets)s AND outcome IN ('ok', 'error'){where})"
)
#: Live reservations: created in the window, lease not yet passed.
_HELD = (
    "(SELECT COALESCE(SUM(amount), 0.0) FROM reservations "
    "WHERE created >= %(since)s AND created < %(resets)s AND expires > %(now)s{where})"
)
_SCOPE_FILTER = {"server": "", "persona": " AND persona = %(name)s", "user": ' AND "user" = %(name)s'}


def window_sums(scope: str, index: int, *, by_day: bool) -> str:
    """Two select-list items, settled and held, for one budget window; parameters suffixed with `_{index}`.

    `by_day`: the window is whole UTC days, so the settled spend comes from the daily totals.
    """
    where = _SCOPE_FILTER[scope]
    items = (_SETTLED_BY_DAY if by_day else _SETTLED.format(where=where), _HELD.format(where=where))
    return ", ".join(item.replace(")s", f"_{index})s") for item in items)


def reserve(windows: Sequence[tuple[str, bool]]) -> str:
    """The admission statement for the given windows (scope kind, whole days?), after `LOCK_SCOPES` in one transaction.

    As `Ledger.reserve` defines it: each window's room is its limit less settled spend and live reservations; the
    call fits when every room (plus `%(tolerance)s`) reaches the minimum, and is granted the smallest of its
    amount and each room (never less than the minimum). The statement sums every window, inserts the reservation
    only if it fits, and returns the sums and the amount inserted (NULL: refused): one statement, so one snapshot,
    taken after the lock was granted.
    """
    sums = ", ".join(window_sums(scope, i, by_day=by_day) for i, (scope, by_day) in enumerate(windows))
    names = ", ".join(f"s{i}, h{i}" for i in range(len(windows)))
    rooms = [f"%(limit_{i})s - s{i} - h{i}" for i in range(len(windows))]
    grants = ", ".join(f"GREATEST({room}, %(minimum)s)" for room in rooms)
    return (
        f"WITH w ({names}) AS (SELECT {sums}), "
        f"g AS (SELECT LEAST(%(amount)s::float8, {grants}) AS amount, LEAST({', '.join(rooms)}) AS room FROM w), "
        'ins AS (INSERT INTO reservations (id, persona, "user", amount, created, expires) '
        "SELECT %(id)s, %(persona)s, %(user)s, amount, %(now)s, %(expires)s FROM g "
        "WHERE room + %(tolerance)s >= %(minimum)s RETURNING amount) "
        "SELECT w.*, (SELECT amount FROM ins) FROM w"
    )


#: Serialises admissions to the given scopes (text keys, locked in sorted order so two never deadlock) across
#: every replica until the transaction ends. A separate statement from the sums that follow: in READ COMMITTED
#: each statement reads a snapshot taken when it starts, so the sums see everything committed before the lock.
LOCK_SCOPES = "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(%(scopes)s::text[]) AS k ORDER BY k"
RELEASE = "DELETE FROM reservations WHERE id = %s"
#: Reservations whose lease passed no longer count; deleting them now and then keeps the table small.
EXPIRE = "DELETE FROM reservations WHERE expires <= %(now)s"


def admission(reserve_statement: str, *, expire: bool) -> str:
    """`LOCK_SCOPES`, then `reserve_statement` (from `reserve`), then (if `expire`) `EXPIRE`: one simple query.

    Sent as one message, the server runs them as one implicit transaction (so the locks are held until all are
    done, and released on any error), each statement reading a snapshot taken when it starts. Its results: the
    locks' rows, then the admission's one row, then nothing.
    """
    return "; ".join([LOCK_SCOPES, reserve_statement, *([EXPIRE] if expire else [])])


#: A cooldown only lengthens here: two replicas that saw the same model fail keep the later end, the more strikes.
PUT_COOLDOWN = (
    "INSERT INTO cooldowns (key, until, strikes) VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE "
    "SET until = GREATEST(cooldowns.until, EXCLUDED.until), strikes = GREATEST(cooldowns.strikes, EXCLUDED.strikes)"
)
ACTIVE_COOLDOWNS = "SELECT key, until, strikes FROM cooldowns WHERE until > %s ORDER BY key"

#: The usage report, as SQLite's (`AuditLog.usage`): NULL personas first and bytewise order, as SQLite sorts.
_MODEL = "COALESCE(served_model, requested_model)"
_DAY = "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def usage_queries(where: str) -> tuple[str, str, str, str]:
    """Totals, by persona, by model and by UTC day, for the rows matching `where`."""
    return (
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome = 'error'), COUNT(*) FILTER (WHERE outcome = 'refused'), "
        "COALESCE(SUM(cost), 0.0), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
        f"FROM calls WHERE {where}",
        f"SELECT persona, COUNT(*) AS n, COALESCE(SUM(cost), 0.0) AS c FROM calls WHERE {where} "
        'GROUP BY persona ORDER BY c DESC, n DESC, persona COLLATE "C" NULLS FIRST',
        f"SELECT {_MODEL} AS m, COUNT(*) AS n, COALESCE(SUM(cost), 0.0) AS c, COALESCE(SUM(prompt_tokens), 0), "
        f"COALESCE(SUM(completion_tokens), 0) FROM calls WHERE {where} AND {_MODEL} IS NOT NULL "
        f'GROUP BY m ORDER BY c DESC, n DESC, {_MODEL} COLLATE "C"',
        f"SELECT {_DAY} AS d, COUNT(*), COALESCE(SUM(cost), 0.0) FROM calls WHERE {where} GROUP BY d ORDER BY d",
    )


TAIL = f"SELECT {COLUMNS} FROM calls ORDER BY id DESC LIMIT %s"
EXPORT = f"SELECT {COLUMNS} FROM calls WHERE id > %s AND ts >= %s ORDER BY id LIMIT %s"
