"""The audit log: what each privacy mode keeps, private files, budgets and usage, migrations, and
rows that survive other writers and a SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from openrouter_mcp.audit import (
    PRIVACY_MODES,
    AuditError,
    AuditLog,
    AuditSetupError,
    CallRecord,
    canonical_json,
    default_audit_path,
)
from openrouter_mcp.audit import cli as audit_cli
from openrouter_mcp.audit.schema import MIGRATIONS, SPENT_BY_PERSONA
from openrouter_mcp.errors import AuthenticationError, ConfigurationError
from tests.audit_data import V1_DDL, raw

FAKE_KEY = "sk-or-v1-audit-test-0123456789abcdef0123456789abcdef"
CHILD_TIMEOUT = 20.0

# 2025-03-01 00:00:00 UTC and friends: fixed clock values for windows and UTC days.
MAR_1 = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
MAR_2 = datetime(2025, 3, 2, tzinfo=UTC).timestamp()
HOUR = 3600.0

ARGUMENTS = {
    "model": "openai/gpt-4o",
    "messages": [{"role": "user", "content": "Résumé the plot of Hamlet in one line."}],
    "max_tokens": 200,
}
RESPONSE = {
    "content": "A prince avenges his father and everyone dies.",
    "model": "openai/gpt-4o",
    "usage": {"prompt_tokens": 21, "completion_tokens": 11, "cost": 0.00042},
}


def chat_call(**changes: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "ts": MAR_1 + HOUR,
        "user": "alice",
        "tool": "chat",
        "outcome": "ok",
        "latency_ms": 812.5,
        "persona": "coder",
        "transport": "stdio",
        "arguments": ARGUMENTS,
        "response": RESPONSE,
        "requested_model": "openai/gpt-4o",
        "served_model": "openai/gpt-4o",
        "provider": "OpenAI",
        "generation_id": "gen-123",
        "prompt_tokens": 21,
        "completion_tokens": 11,
        "cost": 0.00042,
        "attempts": [{"model": "openai/gpt-4o", "outcome": "answered", "latency_ms": 800.0}],
    }
    fields.update(changes)
    return CallRecord(**fields)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.sqlite3"


@pytest.fixture
def log(db: Path) -> Iterator[AuditLog]:
    with AuditLog(db, clock=lambda: MAR_2 + HOUR) as opened:
        yield opened


def sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


# --- privacy modes -------------------------------------------------------------------------------


def test_full_privacy_keeps_arguments_and_response_and_reads_them_back(log: AuditLog) -> None:
    rowid = log.record(chat_call())
    [row] = log.tail(1)
    assert row["id"] == rowid
    assert row["arguments"] == ARGUMENTS and row["response"] == RESPONSE
    assert row["arguments_sha256"] is None and row["response_sha256"] is None
    assert row["privacy"] == "full"
    assert row["time"] == "2025-03-01T01:00:00.000Z"
    assert row["attempts"] == [{"model": "openai/gpt-4o", "outcome": "answered", "latency_ms": 800.0}]
    assert (row["user"], row["persona"], row["transport"], row["tool"], row["outcome"]) == (
        "alice",
        "coder",
        "stdio",
        "chat",
        "ok",
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost"], row["generation_id"]) == (
        21,
        11,
        0.00042,
        "gen-123",
    )


def test_hashes_privacy_keeps_only_the_sha256_of_the_canonical_json(db: Path) -> None:
    with AuditLog(db, privacy="hashes") as log:
        log.record(chat_call())
        [row] = log.tail(1)
        written = db.read_bytes() + Path(f"{db}-wal").read_bytes()
    assert row["arguments"] is None and row["response"] is None
    assert row["arguments_sha256"] == sha256(ARGUMENTS)
    assert row["response_sha256"] == sha256(RESPONSE)
    # Canonical: key order does not change the hash, and the text is never in the file.
    assert row["arguments_sha256"] == sha256(dict(reversed(list(ARGUMENTS.items()))))
    assert b"Hamlet" not in written and b"A prince" not in written


def test_metadata_privacy_keeps_neither_but_keeps_tokens_cost_models_and_attempts(db: Path) -> None:
    with AuditLog(db, privacy="metadata") as log:
        log.record(chat_call(outcome="error", error="rate_limited: slow down"))
        [row] = log.tail(1)
    assert [row[k] for k in ("arguments", "arguments_sha256", "response", "response_sha256")] == [None] * 4
    assert (row["served_model"], row["provider"], row["prompt_tokens"], row["cost"]) == (
        "openai/gpt-4o",
        "OpenAI",
        21,
        0.00042,
    )
    assert row["attempts"] and row["error"] == "rate_limited: slow down"


def test_a_per_call_privacy_overrides_the_logs_default(log: AuditLog) -> None:
    log.record(chat_call(), privacy="metadata")
    log.record(chat_call())
    first, second = log.tail(2)
    assert (first["privacy"], first["arguments"]) == ("metadata", None)
    assert (second["privacy"], second["arguments"]) == ("full", ARGUMENTS)


def test_an_unknown_privacy_mode_is_refused(log: AuditLog, tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="unknown audit privacy 'everything'"):
        log.record(chat_call(), privacy="everything")  # type: ignore[arg-type]
    with pytest.raises(AuditError, match="use one of full, hashes, metadata"):
        AuditLog(tmp_path / "other.sqlite3", privacy="all")  # type: ignore[arg-type]


class Opaque:
    def __str__(self) -> str:
        return "opaque value"


def test_values_json_cannot_encode_are_stored_as_text_instead_of_failing_the_call(log: AuditLog) -> None:
    log.record(chat_call(arguments={"when": datetime(2025, 3, 1, tzinfo=UTC), "what": Opaque()}))
    assert log.tail(1)[0]["arguments"] == {"when": "2025-03-01T00:00:00Z", "what": "opaque value"}


def test_no_api_key_reaches_the_database_files(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)
    with AuditLog(db) as log:
        rejected = AuthenticationError("No auth credentials found", status_code=401)
        for privacy in PRIVACY_MODES:
            log.record(chat_call(), privacy=privacy)
            log.record(
                chat_call(
                    outcome="error", response=rejected.payload(), error=f"{rejected.kind}: {rejected}", cost=None
                ),
                privacy=privacy,
            )
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        contents = b"".join(path.read_bytes() for path in files)
    assert b"Hamlet" in contents  # the scan reads what was written
    assert FAKE_KEY.encode() not in contents and b"sk-or-" not in contents
    assert FAKE_KEY.encode() not in db.read_bytes()  # and after the close's checkpoint


# --- the file ------------------------------------------------------------------------------------


def test_the_directory_database_and_wal_files_are_private_even_with_an_open_umask(db: Path) -> None:
    previous = os.umask(0)
    try:
        with AuditLog(db) as log:
            log.record(chat_call())
            modes = {path.name: path.stat().st_mode & 0o777 for path in (db.parent, *db.parent.iterdir())}
    finally:
        os.umask(previous)
    assert modes == {"audit": 0o700, "audit.sqlite3": 0o600, "audit.sqlite3-wal": 0o600, "audit.sqlite3-shm": 0o600}


def test_an_existing_log_that_others_can_read_is_made_private(db: Path) -> None:
    AuditLog(db).close()
    db.chmod(0o644)
    AuditLog(db).close()
    assert db.stat().st_mode & 0o777 == 0o600


def test_the_log_is_in_wal_mode_with_synchronous_normal(log: AuditLog, db: Path) -> None:
    with raw(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert log._db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_a_path_that_cannot_be_created_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigurationError, match="cannot create the audit log"):
        AuditLog(tmp_path / "file" / "audit.sqlite3")


def test_a_file_that_is_not_sqlite_is_refused_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AuditError, match="cannot use the audit log .*junk.sqlite3"):
        AuditLog(junk)


def test_another_applications_sqlite_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    with raw(other) as conn:
        conn.execute("PRAGMA application_id = 42")
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(AuditError, match="not an openrouter-mcp audit log"):
        AuditLog(other)


def test_writing_to_a_closed_log_raises_audit_error(db: Path) -> None:
    log = AuditLog(db)
    log.close()
    log.close()  # idempotent
    with pytest.raises(AuditError, match="could not write"):
        log.record(chat_call())


# --- schema versions -----------------------------------------------------------------------------


def test_a_version_1_log_is_migrated_and_keeps_its_rows(db: Path) -> None:
    db.parent.mkdir()
    with raw(db) as conn:
        for statement in V1_DDL:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO calls (ts, user, persona, tool, outcome, latency_ms, cost, privacy, arguments_json) "
            "VALUES (?, 'bob', 'writer', 'chat', 'ok', 100.0, 0.5, 'full', '{\"prompt\":\"old\"}')",
            (MAR_1,),
        )
        conn.commit()
    with AuditLog(db) as log:
        log.record(chat_call(ts=MAR_1 + 1, persona="writer", cost=0.25))
        old, new = log.tail()
        assert (old["user"], old["arguments"], old["transport"]) == ("bob", {"prompt": "old"}, None)
        assert new["transport"] == "stdio"
        assert log.spent(persona="writer", since=MAR_1) == pytest.approx(0.75)
    with raw(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == AuditLog.SCHEMA_VERSION == 5
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        triggers = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert triggers == {"calls_settle"}
    indexes -= {name for name in indexes if name.startswith("sqlite_autoindex_")}
    assert indexes == {"calls_ts", "calls_record_id", "reservations_expires"}


def test_the_first_migration_still_creates_exactly_the_shipped_v1_schema(tmp_path: Path) -> None:
    def schema(statements: list[str]) -> list[tuple[str, str]]:
        with raw(tmp_path / f"{len(list(tmp_path.iterdir()))}.sqlite3") as conn:
            for statement in statements:
                conn.execute(statement)
            rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
            return [(name, " ".join(sql.split())) for name, sql in rows]

    first = [s for s in MIGRATIONS[0].split(";") if s.strip()]
    assert schema(first) == schema(V1_DDL)


def test_a_log_from_a_newer_version_is_refused_and_left_untouched(db: Path) -> None:
    AuditLog(db).close()
    with raw(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(
        AuditError, match="written by a newer openrouter-mcp \\(schema v99; this version reads up to v5"
    ):
        AuditLog(db)
    with raw(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99


# --- budgets and usage ---------------------------------------------------------------------------


def test_spent_counts_answered_and_failed_calls_from_since_inclusive(log: AuditLog) -> None:
    log.record(chat_call(ts=MAR_1 - 0.001, cost=1.0))  # just before the window
    log.record(chat_call(ts=MAR_1, cost=0.25))  # exactly at `since`: counts
    log.record(chat_call(ts=MAR_1 + 5, cost=0.5, outcome="error"))  # failed but charged
    log.record(chat_call(ts=MAR_1 + 6, cost=None, outcome="refused"))
    log.record(chat_call(ts=MAR_1 + 7, cost=2.0, persona="writer"))
    log.record(chat_call(ts=MAR_1 + 8, cost=None, tool="list_available_models"))
    assert log.spent(persona="coder", since=MAR_1) == pytest.approx(0.75)
    assert log.spent(persona=None, since=MAR_1) == pytest.approx(2.75)
    assert log.spent(persona="writer", since=MAR_1 + 7.001) == 0.0
    assert log.spent(persona="nobody", since=0) == 0.0


def test_spent_for_a_persona_reads_the_time_index(log: AuditLog) -> None:
    plan = " ".join(row[3] for row in log._db.execute(f"EXPLAIN QUERY PLAN {SPENT_BY_PERSONA}", (0.0, "coder")))
    assert "calls_ts" in plan  # budgets read spend_days; the persona index (dropped in v5) only slowed every write


def test_usage_groups_by_persona_model_and_utc_day_within_the_window(log: AuditLog) -> None:
    log.record(chat_call(ts=MAR_1 - 1, cost=100.0))  # before the window
    log.record(chat_call(ts=MAR_1 + 23 * HOUR, cost=0.5, prompt_tokens=10, completion_tokens=5))
    log.record(chat_call(ts=MAR_2 + 1, cost=0.25, served_model="anthropic/claude-sonnet-4", provider="Anthropic"))
    log.record(chat_call(ts=MAR_2 + 2, persona="writer", cost=1.0, outcome="error", prompt_tokens=None))
    log.record(chat_call(ts=MAR_2 + 3, persona=None, tool="list_available_models", **_no_model()))
    log.record(chat_call(ts=MAR_2 + 4, persona="writer", outcome="refused", **_no_model()))
    log.record(chat_call(ts=MAR_2 + HOUR, cost=100.0))  # at `until`: outside

    summary = log.usage(since=MAR_1, until=MAR_2 + HOUR)

    assert (summary.calls, summary.errors, summary.refused) == (5, 1, 1)
    assert summary.cost == pytest.approx(1.75)
    assert (summary.prompt_tokens, summary.completion_tokens) == (10 + 21, 5 + 11 + 11)
    assert summary.by_persona == [
        {"persona": "writer", "calls": 2, "cost": 1.0},
        {"persona": "coder", "calls": 2, "cost": 0.75},
        {"persona": None, "calls": 1, "cost": 0.0},
    ]
    assert summary.by_model == [
        {"model": "openai/gpt-4o", "calls": 2, "cost": 1.5, "prompt_tokens": 10, "completion_tokens": 16},
        {"model": "anthropic/claude-sonnet-4", "calls": 1, "cost": 0.25, "prompt_tokens": 21, "completion_tokens": 11},
    ]
    assert summary.by_day == [
        {"day": "2025-03-01", "calls": 1, "cost": 0.5},
        {"day": "2025-03-02", "calls": 4, "cost": 1.25},
    ]
    assert json.loads(json.dumps(summary.as_dict()))["by_day"][0]["day"] == "2025-03-01"
    assert log.usage(since=MAR_1, until=MAR_2 + HOUR, persona="writer").calls == 2
    assert log.usage(since=MAR_2).until == MAR_2 + HOUR  # `until` defaults to the injected clock


def _no_model() -> dict[str, Any]:
    return {
        "requested_model": None,
        "served_model": None,
        "cost": None,
        "prompt_tokens": None,
        "completion_tokens": None,
    }


# --- reading -------------------------------------------------------------------------------------


def test_tail_returns_the_newest_rows_oldest_first(log: AuditLog) -> None:
    ids = [log.record(chat_call(ts=MAR_1 + i)) for i in range(5)]
    assert [row["id"] for row in log.tail(3)] == ids[2:]
    assert [row["id"] for row in log.tail(50)] == ids
    assert log.tail(0) == []


def test_export_yields_every_row_oldest_first_across_batches_and_honours_since(log: AuditLog) -> None:
    for i in range(1203):
        log.record(chat_call(ts=MAR_1 + i), privacy="metadata")
    assert [row["ts"] for row in log.export()] == [MAR_1 + i for i in range(1203)]
    assert [row["ts"] for row in log.export(since=MAR_1 + 1200)] == [MAR_1 + 1200, MAR_1 + 1201, MAR_1 + 1202]


def test_recording_while_an_export_is_being_read_does_not_deadlock(log: AuditLog) -> None:
    for i in range(3):
        log.record(chat_call(ts=MAR_1 + i))
    seen: list[int] = []

    def read_and_write() -> None:
        for row in log.export():
            seen.append(row["id"])
            log.record(chat_call(ts=MAR_2), privacy="metadata")

    worker = threading.Thread(target=read_and_write, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and len(seen) >= 3


def test_the_default_path_follows_the_environment_then_xdg_then_home(tmp_path: Path) -> None:
    assert default_audit_path({"OPENROUTER_MCP_AUDIT_DB": str(tmp_path / "a.db")}) == tmp_path / "a.db"
    xdg = default_audit_path({"XDG_DATA_HOME": str(tmp_path)})
    assert xdg == tmp_path / "openrouter-mcp" / "audit.sqlite3"
    home = Path.home() / ".local" / "share" / "openrouter-mcp" / "audit.sqlite3"
    assert default_audit_path({}) == home
    assert default_audit_path({"XDG_DATA_HOME": "relative/dir", "OPENROUTER_MCP_AUDIT_DB": ""}) == home


# --- other processes -----------------------------------------------------------------------------

_WRITER = """
import sys
from pathlib import Path
from openrouter_mcp.audit import AuditLog, CallRecord

log = AuditLog(Path(sys.argv[1]))
count = int(sys.argv[2])
sys.stdout.write("ready\\n")
sys.stdout.flush()
sys.stdin.readline()  # "go": both writers start together
sys.stdout.write("writing\\n")
sys.stdout.flush()
for i in range(count):
    rowid = log.record(CallRecord(ts=float(i), user=sys.argv[3], tool="chat", outcome="ok", latency_ms=1.0,
                                  arguments={"prompt": "p" * 300}, response={"text": "r" * 600}, cost=0.001))
    # Reported only once record() has returned: the row is committed.
    sys.stdout.write(f"{rowid}\\n")
    sys.stdout.flush()
log.close()
"""


class Child:
    """A Python child running `_WRITER`, whose stdout lines arrive on a queue (so every wait is bounded)."""

    def __init__(self, db: Path, count: int, user: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), str(count), user],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        assert self.process.stdout is not None
        self._pump = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._pump.start()

    def _read(self, stdout: IO[bytes]) -> None:
        with stdout:
            for line in stdout:
                self.lines.put(line)
        self.lines.put(None)

    def line(self) -> bytes | None:
        return self.lines.get(timeout=CHILD_TIMEOUT)

    def expect(self, wanted: bytes) -> None:
        if (got := self.line()) != wanted:
            self.process.kill()
            self.process.wait(timeout=CHILD_TIMEOUT)
            raise AssertionError(f"expected {wanted!r} from the child, got {got!r}; its stderr:\n{self.stderr()}")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def finish(self) -> tuple[list[int], int]:
        """Every complete id line still to come, then the exit status."""
        ids = []
        while (line := self.line()) is not None:
            if line.endswith(b"\n"):  # a line cut short by a kill was never fully reported
                ids.append(int(line))
        return ids, self.process.wait(timeout=CHILD_TIMEOUT)

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return "" if self.process.stderr.closed else self.process.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """Kill the child if it still runs and close its pipes (idempotent)."""
        self.process.kill()
        self.process.wait(timeout=CHILD_TIMEOUT)
        self._pump.join(timeout=CHILD_TIMEOUT)
        for pipe in (self.process.stdin, self.process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.slow
def test_two_processes_writing_one_log_lose_no_rows_and_never_see_it_locked(db: Path) -> None:
    # Neither file exists yet: the two also race to create the log and switch it to WAL.
    children = [Child(db, 500, user) for user in ("first", "second")]
    try:
        for child in children:
            child.expect(b"ready\n")
        # Hold the write lock while both start, so their first writes queue on it for real.
        with raw(db) as holder:
            holder.execute("BEGIN IMMEDIATE")
            for child in children:
                child.go()
            for child in children:
                child.expect(b"writing\n")
            holder.execute("COMMIT")
        results = [child.finish() for child in children]
        for (ids, returncode), child in zip(results, children, strict=True):
            assert returncode == 0, child.stderr()
            assert len(ids) == 500
    finally:
        for child in children:
            child.stop()
    with raw(db) as conn:
        counts = dict(conn.execute("SELECT user, COUNT(*) FROM calls GROUP BY user").fetchall())
        all_ids = {row[0] for row in conn.execute("SELECT id FROM calls")}
    assert counts == {"first": 500, "second": 500}
    assert all_ids == set(results[0][0]) | set(results[1][0])


@pytest.mark.slow
def test_every_row_id_reported_before_a_sigkill_is_in_the_log(db: Path) -> None:
    child = Child(db, 10_000_000, "doomed")
    try:
        child.expect(b"ready\n")
        child.go()
        child.expect(b"writing\n")
        reported: list[int] = []
        while len(reported) < 300:
            line = child.line()
            assert line is not None, f"the writer stopped before it was killed: {child.stderr()}"
            reported.append(int(line))
        child.process.send_signal(signal.SIGKILL)  # mid-burst: no close, no checkpoint, no atexit
        more, returncode = child.finish()
    finally:
        child.stop()
    reported += more
    assert returncode == -signal.SIGKILL
    assert Path(f"{db}-wal").stat().st_size > 0  # the rows are recovered from the WAL the child left
    with raw(db) as conn:
        present = {row[0] for row in conn.execute("SELECT id FROM calls")}
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert set(reported) <= present


def test_a_log_locked_past_the_busy_timeout_fails_clearly_as_a_storage_fault_instead_of_hanging(db: Path) -> None:
    db.parent.mkdir()
    with raw(db) as holder:
        holder.execute("CREATE TABLE other (x)")
        holder.commit()
        # A reader's shared lock: others may read, but the switch to WAL (exclusive) must wait.
        holder.execute("BEGIN")
        holder.execute("SELECT COUNT(*) FROM other").fetchall()
        with pytest.raises(AuditError, match="database is locked") as caught:
            AuditLog(db, busy_timeout=0.05)
        holder.execute("ROLLBACK")
    # A lock held too long is a storage fault, not the user's configuration mistake.
    assert not isinstance(caught.value, ConfigurationError)


def test_a_file_that_is_not_a_database_is_a_configuration_mistake_and_an_audit_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AuditSetupError) as caught:
        AuditLog(junk)
    assert isinstance(caught.value, ConfigurationError) and isinstance(caught.value, AuditError)


# --- the command line ----------------------------------------------------------------------------


def _filled(db: Path) -> None:
    with AuditLog(db) as log:
        log.record(chat_call(ts=MAR_1 + HOUR, cost=0.5))
        log.record(chat_call(ts=MAR_2 + HOUR, persona="writer", outcome="error", served_model=None, cost=None))


def test_cli_tail_prints_one_readable_line_per_call(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _filled(db)
    assert audit_cli.main(["tail", "-n", "5", "--db", str(db)]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.split() == [
        "2025-03-01",
        "01:00:00Z",
        "alice",
        "coder",
        "chat",
        "openai/gpt-4o",
        "ok",
        "$0.500000",
        "812",
        "ms",
    ]
    assert second.split()[3:8] == ["writer", "chat", "openai/gpt-4o", "error", "-"]


def test_cli_export_writes_json_lines_since_a_date_or_for_the_last_days(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _filled(db)
    assert audit_cli.main(["audit", "export", "--db", str(db)]) == 0  # a leading "audit" is accepted
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["persona"] for row in rows] == ["coder", "writer"]
    assert rows[0]["arguments"] == ARGUMENTS
    assert audit_cli.main(["export", "--since", "2025-03-02", "--db", str(db)]) == 0
    assert [json.loads(line)["persona"] for line in capsys.readouterr().out.splitlines()] == ["writer"]
    assert audit_cli.main(["export", "--days", "1", "--db", str(db)], clock=lambda: MAR_2 + 2 * HOUR) == 0
    assert [json.loads(line)["persona"] for line in capsys.readouterr().out.splitlines()] == ["writer"]


def test_cli_usage_prints_the_summary_as_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _filled(db)
    assert audit_cli.main(["usage", "--days", "7", "--db", str(db)], clock=lambda: MAR_2 + 2 * HOUR) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["calls"], summary["errors"], summary["cost"]) == (2, 1, 0.5)
    assert [day["day"] for day in summary["by_day"]] == ["2025-03-01", "2025-03-02"]


def test_cli_reports_a_missing_or_unusable_log_on_stderr(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_cli.main(["tail", "--db", str(db)]) == 1
    assert "no audit log at" in capsys.readouterr().err and not db.exists()
    _filled(db)
    with raw(db) as conn:
        conn.execute("PRAGMA user_version = 7")
    assert audit_cli.main(["usage"], environ={"OPENROUTER_MCP_AUDIT_DB": str(db)}) == 2
    assert "newer openrouter-mcp" in capsys.readouterr().err
