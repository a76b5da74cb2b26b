"""The audit log's SQLite schema: its migrations, the columns rows are read back under, and its statements.

`PRAGMA user_version` holds the schema version; `MIGRATIONS[i]` takes a file from version `i` to `i + 1`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

#: Marks our files (`PRAGMA application_id`), so `--db` pointed at some other SQLite file is refused.
APPLICATION_ID = 0x4F524D43  # "ORMC"

#: One script per version step, run statement by statement (split where `sqlite3.complete_statement` says one ends,
#: so a trigger's body stays whole).
MIGRATIONS: list[str] = [
    # v1: the base table, and the time index that usage reports and exports scan.
    f"""
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        user TEXT NOT NULL,
        persona TEXT,
        tool TEXT NOT NULL,
        outcome TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        requested_model TEXT,
        served_model TEXT,
        provider TEXT,
        generation_id TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost REAL,
        attempts TEXT,
        error TEXT,
        privacy TEXT NOT NULL,
        arguments_json TEXT,
        arguments_sha256 TEXT,
        response_json TEXT,
        response_sha256 TEXT
    );
    CREATE INDEX calls_ts ON calls (ts);
    PRAGMA application_id = {APPLICATION_ID}
    """,
    # v2: which transport carried the call, and the index a persona's budget check reads.
    """
    ALTER TABLE calls ADD COLUMN transport TEXT;
    CREATE INDEX calls_persona_ts ON calls (persona, ts)
    """,
    # v3: the ledger. Rows get a unique id (a spooled row replayed twice is stored once) and the amount
    # budgets count (`charged`); budget reservations of calls in flight, with their lease; shared cooldowns;
    # spend per scope and UTC day, kept with the rows, so a budget check reads a few rows, not a month of calls.
    """
    ALTER TABLE calls ADD COLUMN record_id TEXT;
    ALTER TABLE calls ADD COLUMN charged REAL;
    CREATE UNIQUE INDEX calls_record_id ON calls (record_id);
    CREATE INDEX calls_user_ts ON calls (user, ts);
    CREATE TABLE reservations (
        id TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        persona TEXT,
        amount REAL NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL
    );
    CREATE INDEX reservations_expires ON reservations (expires);
    CREATE TABLE cooldowns (
        key TEXT PRIMARY KEY,
        until REAL NOT NULL,
        strikes INTEGER NOT NULL
    );
    CREATE TABLE spend_days (
        scope TEXT NOT NULL,
        name TEXT NOT NULL,
        day REAL NOT NULL,
        amount REAL NOT NULL,
        PRIMARY KEY (scope, name, day)
    ) WITHOUT ROWID;
    INSERT INTO spend_days (scope, name, day, amount)
        SELECT 'server', '', CAST(ts / 86400 AS INTEGER) * 86400.0 AS d, SUM(COALESCE(charged, cost)) FROM calls
        WHERE outcome IN ('ok', 'error') AND COALESCE(charged, cost) IS NOT NULL GROUP BY d;
    INSERT INTO spend_days (scope, name, day, amount)
        SELECT 'persona', persona, CAST(ts / 86400 AS INTEGER) * 86400.0 AS d, SUM(COALESCE(charged, cost)) FROM calls
        WHERE outcome IN ('ok', 'error') AND COALESCE(charged, cost) IS NOT NULL AND persona IS NOT NULL
        GROUP BY persona, d;
    INSERT INTO spend_days (scope, name, day, amount)
        SELECT 'user', user, CAST(ts / 86400 AS INTEGER) * 86400.0 AS d, SUM(COALESCE(charged, cost)) FROM calls
        WHERE outcome IN ('ok', 'error') AND COALESCE(charged, cost) IS NOT NULL GROUP BY user, d
    """,
    # v4: the settle moves into the row's own INSERT. A trigger adds a charged row's amount to its scopes' daily
    # totals and ends the reservation it names, so writing a call is one statement (one implicit transaction,
    # atomic as before), and a batch of calls one multi-row statement: each statement the writer thread runs
    # gives the event loop's thread the interpreter lock back and must win it again, which under load is what a
    # write costs. A replayed row (record_id already there) inserts nothing, so it neither charges nor settles.
    """
    ALTER TABLE calls ADD COLUMN reservation_id TEXT;
    CREATE TRIGGER calls_settle AFTER INSERT ON calls BEGIN
        INSERT INTO spend_days (scope, name, day, amount)
            SELECT scope, name, CAST(NEW.ts / 86400 AS INTEGER) * 86400.0, COALESCE(NEW.charged, NEW.cost)
            FROM (SELECT 'server' AS scope, '' AS name UNION ALL SELECT 'user', NEW.user
                  UNION ALL SELECT 'persona', NEW.persona WHERE NEW.persona IS NOT NULL)
            WHERE NEW.outcome IN ('ok', 'error') AND COALESCE(NEW.charged, NEW.cost) IS NOT NULL
            ON CONFLICT (scope, name, day) DO UPDATE SET amount = amount + excluded.amount;
        DELETE FROM reservations WHERE NEW.reservation_id IS NOT NULL AND id = NEW.reservation_id;
    END
    """,
    # v5: budgets read `spend_days` since v4, and no query of `calls` filters by user, or by persona without a
    # time range: two indexes only every write paid for (each one more page per row to the WAL, two more system
    # calls per commit). `usage` for one persona reads the time range through `calls_ts`.
    """
    DROP INDEX IF EXISTS calls_persona_ts;
    DROP INDEX IF EXISTS calls_user_ts
    """,
]

# Read back under the names CallRecord uses; the JSON columns are decoded by row_as_dict.
COLUMNS = (
    "id, ts, user, persona, transport, tool, outcome, latency_ms, requested_model, served_model, provider, "
    "generation_id, prompt_tokens, completion_tokens, cost, attempts, error, privacy, "
    "arguments_json AS arguments, arguments_sha256, response_json AS response, response_sha256"
)
NAMES = tuple(column.split()[-1] for column in COLUMNS.split(", "))
#: The columns a write fills, in the order `insert_rows` takes their values (`log.written_values` names them).
WRITTEN = (
    "ts", "user", "persona", "transport", "tool", "outcome", "latency_ms", "requested_model", "served_model",
    "provider", "generation_id", "prompt_tokens", "completion_tokens", "cost", "attempts", "error", "privacy",
    "arguments_json", "arguments_sha256", "response_json", "response_sha256", "record_id", "charged", "reservation_id",
)  # fmt: skip
_ROW = "(" + ", ".join(["?"] * len(WRITTEN)) + ")"


def insert_rows(count: int) -> str:
    """One statement writing `count` rows (the `calls_settle` trigger settles each); a row whose `record_id` is
    already stored (a replay) is skipped."""
    columns = ", ".join(WRITTEN)
    return f"INSERT INTO calls ({columns}) VALUES {', '.join([_ROW] * count)} ON CONFLICT (record_id) DO NOTHING"


# Refused calls never reached OpenRouter; failed ones may still have been charged (a stream cut short).
SPENT_ALL = "SELECT COALESCE(SUM(cost), 0.0) FROM calls WHERE ts >= ? AND outcome IN ('ok', 'error')"
SPENT_BY_PERSONA = SPENT_ALL + " AND persona = ?"
# A budget window's settled spend (from the per-day totals) and live reservations; `{scope}` is one of SCOPE_FILTERS.
WINDOW_SETTLED = (
    "SELECT COALESCE(SUM(amount), 0.0) FROM spend_days WHERE scope = ? AND name = ? AND day >= ? AND day < ?"
)
WINDOW_RESERVED = (
    "SELECT COALESCE(SUM(amount), 0.0) FROM reservations WHERE created >= ? AND created < ? AND expires > ?{scope}"
)
SCOPE_FILTERS = {"server": "", "persona": " AND persona = ?", "user": " AND user = ?"}


def row_as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """One row of `SELECT {COLUMNS}` as a record: JSON columns decoded, the time also in ISO 8601 (UTC)."""
    data = dict(zip(NAMES, row, strict=True))
    for key in ("attempts", "arguments", "response"):
        if data[key] is not None:
            data[key] = json.loads(data[key])
    when = datetime.fromtimestamp(data["ts"], UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"id": data["id"], "ts": data["ts"], "time": when, **data}
