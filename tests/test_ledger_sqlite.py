"""The SQLite ledger: reservations checked and held atomically, settled by rows, freed by leases; the spool.

Real SQLite files in temp dirs; the two-process test spawns real processes on one file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from openrouter_mcp.audit import log as log_module
from openrouter_mcp.audit.ledger import Cooldown, ReservationRequest
from openrouter_mcp.audit.ledger_file import MAX_BATCH
from openrouter_mcp.audit.log import MAX_ROWS_PER_STATEMENT, AuditLog, CallRecord
from openrouter_mcp.audit.spool import Spool
from openrouter_mcp.audit.sqlite_ledger import SqliteLedger
from openrouter_mcp.errors import AuditError, BudgetExceededError
from openrouter_mcp.routing.budgets import BudgetLimit, budget_limits
from openrouter_mcp.routing.personas import Budget, Privacy
from tests.audit_data import V1_DDL, raw

pytestmark = pytest.mark.anyio

NOW = 1_780_000_000.0  # 2026-05-28, mid-day UTC
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ledger" / "audit.sqlite3"


@pytest.fixture(params=["thread", "process"])
async def ledger(db: Path, request: pytest.FixtureRequest) -> AsyncIterator[SqliteLedger]:
    """The ledger both ways it is written: from a thread of this process, and from a writer process (the server's)."""
    opened = open_ledger(request.param, db, Spool.beside(db))
    yield opened
    await opened.aclose()


def open_ledger(writer: str, db: Path, spool: Spool) -> SqliteLedger:
    if writer == "thread":
        return SqliteLedger(lambda: AuditLog(db), spool=spool)
    return SqliteLedger.in_child_process(db, privacy="full", spool=spool)


def server_daily(limit: float, now: float = NOW) -> list[BudgetLimit]:
    return budget_limits("server", "", Budget(daily=limit), now)


def ask(
    limits: Sequence[BudgetLimit], amount: float, *, minimum: float | None = None, now: float = NOW, lease: float = 60
) -> ReservationRequest:
    return ReservationRequest(
        id=uuid.uuid4().hex, user="ann", persona="p", limits=limits, amount=amount,
        minimum=amount if minimum is None else minimum, now=now, expires=now + lease,
    )  # fmt: skip


def row(*, cost: float | None = None, reservation: str | None = None, charged: float | None = None) -> CallRecord:
    return CallRecord(
        ts=NOW, user="ann", tool="create_chat_completion", outcome="ok", latency_ms=5.0, persona="p",
        cost=cost, reservation_id=reservation, charged=charged,
    )  # fmt: skip


async def test_a_reservation_counts_in_flight_until_its_row_settles_it_at_the_real_cost(ledger: SqliteLedger) -> None:
    [limit] = server_daily(1.0)
    held = await ledger.reserve(ask([limit], 0.4))
    assert held.amount == 0.4
    spend = await ledger.spend(limit, now=NOW)
    assert (spend.settled, spend.reserved) == (0.0, 0.4)
    await ledger.record(row(cost=0.1, reservation=held.id))
    spend = await ledger.spend(limit, now=NOW)
    assert spend.settled == pytest.approx(0.1) and spend.reserved == 0.0


async def test_the_last_dollar_goes_to_one_call_only(ledger: SqliteLedger) -> None:
    limits = server_daily(1.0)
    await ledger.reserve(ask(limits, 0.7))
    with pytest.raises(BudgetExceededError) as refused:
        await ledger.reserve(ask(limits, 0.4))
    assert "the server has spent $0.0000 of its daily budget of $1, with $0.7000 more reserved" in refused.value.message
    assert (await ledger.reserve(ask(limits, 0.3))).amount == pytest.approx(0.3)


async def test_a_call_without_max_tokens_gets_what_fits_between_its_minimum_and_its_wish(ledger: SqliteLedger) -> None:
    limits = server_daily(1.0)
    await ledger.reserve(ask(limits, 0.75))
    assert (await ledger.reserve(ask(limits, 0.5, minimum=0.1))).amount == pytest.approx(0.25)
    with pytest.raises(BudgetExceededError):
        await ledger.reserve(ask(limits, 0.5, minimum=0.1))


async def test_a_call_must_fit_every_budget_that_applies(ledger: SqliteLedger) -> None:
    persona = budget_limits("persona", "p", Budget(daily=10.0), NOW)
    user = budget_limits("user", "ann", Budget(monthly=0.5), NOW)
    await ledger.record(row(cost=0.45))  # ann's earlier spend this month
    with pytest.raises(BudgetExceededError, match="user 'ann' has spent \\$0.4500 of its monthly budget of \\$0.5"):
        await ledger.reserve(ask([*persona, *user], 0.1))
    assert (await ledger.reserve(ask([*persona, *user], 0.05))).amount == 0.05


async def test_fifty_concurrent_reservations_never_hold_more_than_the_budget(ledger: SqliteLedger) -> None:
    limits = server_daily(1.0)
    granted: list[float] = []

    async def one() -> None:
        try:
            granted.append((await ledger.reserve(ask(limits, 0.03))).amount)
        except BudgetExceededError:
            pass

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(one)
    assert len(granted) == 33 and sum(granted) <= 1.0


async def test_a_release_frees_the_amount_and_a_repeat_release_does_nothing(ledger: SqliteLedger) -> None:
    [limit] = server_daily(1.0)
    held = await ledger.reserve(ask([limit], 1.0))
    await ledger.release(held.id)
    await ledger.release(held.id)
    assert (await ledger.spend(limit, now=NOW)).total == 0.0


async def test_a_lease_of_a_dead_process_stops_counting_once_it_expires(ledger: SqliteLedger) -> None:
    # The holder never settles (SIGKILL): its reservation counts until the lease ends, then frees the budget.
    limits = server_daily(1.0)
    await ledger.reserve(ask(limits, 1.0, lease=180))
    with pytest.raises(BudgetExceededError):
        await ledger.reserve(ask(limits, 0.5, now=NOW + 179))
    assert (await ledger.spend(limits[0], now=NOW + 179)).reserved == 1.0
    assert (await ledger.spend(limits[0], now=NOW + 180)).reserved == 0.0
    assert (await ledger.reserve(ask(limits, 0.5, now=NOW + 181))).amount == 0.5


async def test_a_row_with_unknown_cost_charges_what_its_reservation_held(ledger: SqliteLedger) -> None:
    [limit] = server_daily(1.0)
    held = await ledger.reserve(ask([limit], 0.25))
    await ledger.record(row(cost=None, reservation=held.id, charged=held.amount))
    assert (await ledger.spend(limit, now=NOW)).settled == 0.25


async def test_recording_the_same_record_twice_stores_it_once(ledger: SqliteLedger, db: Path) -> None:
    record = row(cost=0.1)
    await ledger.record(record)
    await ledger.record(record)
    assert len(await ledger.tail(10)) == 1


async def test_a_shared_cooldown_keeps_the_later_deadline_and_expired_ones_are_not_listed(ledger: SqliteLedger) -> None:
    await ledger.put_cooldown(Cooldown("openai/gpt-4o", NOW + 30, 1))
    await ledger.put_cooldown(Cooldown("openai/gpt-4o", NOW + 10, 1))
    await ledger.put_cooldown(Cooldown("limit:free-tier", NOW - 1, 2))
    assert await ledger.cooldowns(now=NOW) == [Cooldown("openai/gpt-4o", NOW + 30, 1)]


async def test_an_export_reads_every_row_in_batches(ledger: SqliteLedger) -> None:
    for _ in range(1203):
        await ledger.record(row(cost=0.001))
    rows = [r async for r in ledger.export(since=NOW)]
    assert len(rows) == 1203 and len({r["id"] for r in rows}) == 1203


@pytest.mark.parametrize("writer", ["thread", "process"])
async def test_a_spooled_record_is_replayed_once_the_ledger_works_again_with_no_duplicate(
    tmp_path: Path, writer: str
) -> None:
    db = tmp_path / "ledger" / "audit.sqlite3"
    db.parent.mkdir()
    db.mkdir()  # the path is a directory: the ledger cannot open
    spool = Spool.beside(db)
    ledger = open_ledger(writer, db, spool)
    record = row(cost=0.2)
    with pytest.raises(AuditError):
        await ledger.record(record)
    path = spool.append(record, None)
    assert path == db.with_name("audit.sqlite3.spool.jsonl") and path.stat().st_mode & 0o777 == 0o600
    spool.append(record, None)  # spooled twice (say two retries): still one row after replay
    ledger.note_spooled()
    db.rmdir()  # the fault is fixed
    await ledger.record(row(cost=0.3))
    rows = await ledger.tail(10)
    assert sorted(r["cost"] for r in rows) == [0.2, 0.3] and not spool.pending()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    await ledger.aclose()


def test_a_spool_falls_back_to_a_private_temp_folder_when_the_ledgers_folder_cannot_be_written(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the ledger's "folder" is a file: nothing can be created in it
    spool = Spool.beside(blocked / "audit.sqlite3")
    path = spool.append(row(cost=0.1), "metadata")
    assert path == spool.paths[1] and path.parent.stat().st_mode & 0o777 == 0o700
    replayed: list[tuple[CallRecord, object]] = []
    assert spool.replay(lambda record, privacy: replayed.append((record, privacy))) == 1
    assert replayed[0][0].cost == 0.1 and replayed[0][1] == "metadata" and not spool.pending()


def test_a_torn_spool_line_is_dropped_and_the_rest_replayed(tmp_path: Path) -> None:
    spool = Spool([tmp_path / "spool.jsonl"])
    spool.append(row(cost=0.1), None)
    with (tmp_path / "spool.jsonl").open("a") as file:
        file.write('{"record": {"ts": 1')  # a write cut by a crash
    spool.append(row(cost=0.2), None)
    got: list[float | None] = []
    assert spool.replay(lambda record, privacy: got.append(record.cost)) == 2 and got == [0.1, 0.2]


def test_a_failed_replay_keeps_the_whole_spool_for_the_next_try(tmp_path: Path) -> None:
    spool = Spool([tmp_path / "spool.jsonl"])
    spool.append(row(cost=0.1), None)

    def broken(record: CallRecord, privacy: object) -> None:
        raise AuditError("still locked")

    with pytest.raises(AuditError):
        spool.replay(broken)
    lines = (tmp_path / "spool.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["record"]["cost"] == 0.1


async def test_a_full_queue_fails_at_once_instead_of_piling_up(db: Path) -> None:
    ledger = SqliteLedger(lambda: AuditLog(db), max_queue=0)
    with pytest.raises(AuditError, match="backed up"):
        await ledger.record(row(cost=0.1))


class GatedLog(AuditLog):
    """An audit log whose first write waits for `gate`, and which notes the size of every batch it writes. Every
    write goes to the writer thread, where the gate is: none is taken on the event loop's thread."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.batches: list[int] = []

    def record_many(self, records: Sequence[tuple[CallRecord, Privacy | None]], *, checked: bool = False) -> int:
        if not self.batches:
            self.batches.append(0)  # the first write has started
            assert self.gate.wait(30)
        self.batches.append(len(records))
        return super().record_many(records, checked=checked)

    def record_at_once(self, record: CallRecord, privacy: Privacy | None = None) -> bool:
        return False


async def test_records_that_finish_while_a_write_is_under_way_are_written_together_in_batches(db: Path) -> None:
    log = GatedLog(db)
    ledger = SqliteLedger(log)
    held = [await ledger.reserve(ask(server_daily(100.0), 0.5)) for _ in range(150)]

    async def write(record: CallRecord) -> None:
        await ledger.record(record)

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(write, row(cost=0.01, reservation=held[0].id))
                while not log.batches:  # the first write is in the thread, waiting at the gate
                    await anyio.sleep(0.001)
                for reservation in held[1:]:
                    group.start_soon(write, row(cost=0.01, reservation=reservation.id))
                await anyio.wait_all_tasks_blocked()
                log.gate.set()
        [limit] = server_daily(100.0)
        spend = await ledger.spend(limit, now=NOW)
    finally:
        await ledger.aclose()
    # One write for the first record, then the 149 that queued behind it, at most MAX_BATCH to a write.
    assert log.batches == [0, 1, MAX_BATCH, MAX_BATCH, 149 - 2 * MAX_BATCH]
    assert spend.settled == pytest.approx(1.5) and spend.reserved == 0.0
    with raw(db) as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT record_id) FROM calls").fetchone() == (150, 150)


async def test_a_caller_that_stops_waiting_leaves_the_rest_of_its_batch_waiting_and_its_row_is_still_written(
    db: Path,
) -> None:
    log = GatedLog(db)
    ledger = SqliteLedger(log)
    first, impatient, patient = row(cost=0.1), row(cost=0.2), row(cost=0.3)
    try:
        with anyio.fail_after(30):
            writing = ledger.record(first)
            while not log.batches:  # the first write is in the thread, waiting at the gate
                await anyio.sleep(0.001)
            with anyio.move_on_after(0.01):
                await ledger.record(impatient)  # joins the next batch, then stops waiting
            waiting = ledger.record(patient)  # the same batch
            log.gate.set()
            await writing
            await waiting
        rows = await ledger.tail(10)
    finally:
        await ledger.aclose()
    assert log.batches == [0, 1, 2]
    assert [r["cost"] for r in rows] == [0.1, 0.2, 0.3]


class NotingLog(AuditLog):
    """An audit log that notes which thread ran each write at once, and each write through the thread."""

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.at_once: list[tuple[threading.Thread, bool]] = []
        self.batches: list[int] = []

    def record_at_once(self, record: CallRecord, privacy: Privacy | None = None) -> bool:
        written = super().record_at_once(record, privacy)
        self.at_once.append((threading.current_thread(), written))
        return written

    def record_many(self, records: Sequence[tuple[CallRecord, Privacy | None]], *, checked: bool = False) -> int:
        self.batches.append(len(records))
        return super().record_many(records, checked=checked)


async def test_a_record_with_nothing_queued_is_written_on_the_loops_thread_and_settles_its_hold(db: Path) -> None:
    log = NotingLog(db)
    ledger = SqliteLedger(log)
    try:
        held = await ledger.reserve(ask(server_daily(10.0), 1.0))
        await ledger.record(row(cost=0.25, reservation=held.id))
        [limit] = server_daily(10.0)
        spend = await ledger.spend(limit, now=NOW)
    finally:
        await ledger.aclose()
        log.close()
    assert log.at_once == [(threading.current_thread(), True)] and log.batches == []
    assert spend.settled == 0.25 and spend.reserved == 0.0


async def test_a_write_that_would_wait_for_another_processs_lock_goes_to_the_writer_thread(db: Path) -> None:
    log = NotingLog(db, busy_timeout=60.0)
    ledger = SqliteLedger(log)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's write, under way
        with anyio.fail_after(30):  # well under the busy timeout: nothing here waited for the lock
            assert log.record_at_once(row(cost=0.1)) is False
            async with anyio.create_task_group() as group:

                async def record() -> None:
                    await ledger.record(row(cost=0.2))

                group.start_soon(record)
                while not log.batches:  # handed to the writer thread, which waits for the lock, as it should
                    await anyio.sleep(0.001)
                assert [written for _, written in log.at_once] == [False, False]
                other.execute("COMMIT")
        rows = await ledger.tail(10)
    finally:
        other.close()
        await ledger.aclose()
        log.close()
    assert [r["cost"] for r in rows] == [0.2]


def test_a_write_at_once_waits_for_no_lock_and_a_write_after_it_still_does(db: Path) -> None:
    # The write at once waits for no lock; `record` does, up to the log's busy timeout.
    with AuditLog(db, busy_timeout=60.0) as log:
        assert log.record_at_once(row(cost=0.1))
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        try:
            assert log.record_at_once(row(cost=0.15)) is False
            releaser = threading.Timer(0.3, other.execute, ("COMMIT",))
            releaser.start()
            log.record(row(cost=0.2))  # waits out the 0.3 s lock instead of failing at once
            releaser.join()
        finally:
            other.close()
        assert [r["cost"] for r in log.tail(10)] == [0.1, 0.2]


def test_a_write_at_once_that_cannot_be_made_writes_nothing_and_says_so(db: Path) -> None:
    with AuditLog(db) as log:
        assert log.record_at_once(row(cost=0.1), privacy="bogus") is False  # type: ignore[arg-type]
        assert log.record_at_once(dataclasses.replace(row(cost=0.5), user=None)) is False  # type: ignore[arg-type]
        assert log.tail(10) == []


def rows_in_the_database_file_alone(db: Path, scratch: Path) -> int:
    """The rows a checkpoint has copied from the WAL into the database file: those in a copy of the file alone."""
    scratch.write_bytes(db.read_bytes())
    with raw(scratch) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])


async def test_a_write_at_once_never_checkpoints_and_leaves_a_due_checkpoint_to_the_writer_thread(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_module, "CHECKPOINT_ROWS", 3)
    AuditLog(db).close()  # the schema, checkpointed into the file as the last connection closes
    log = NotingLog(db)
    ledger = SqliteLedger(log)
    in_the_file: list[int] = []
    try:
        for cost in range(7):
            await ledger.record(row(cost=float(cost)))
            in_the_file.append(rows_in_the_database_file_alone(db, tmp_path / "copy.sqlite3"))
        rows = await ledger.tail(10)
    finally:
        await ledger.aclose()
        log.close()
    # Three rows at once; the fourth finds a checkpoint due and goes to the writer thread, which writes it and
    # checkpoints (all four rows into the file); three more at once.
    assert [written for _, written in log.at_once] == [True, True, True, False, True, True, True]
    assert log.batches == [1]
    assert in_the_file == [0, 0, 0, 4, 4, 4, 4]
    assert len(rows) == 7


def test_a_batch_larger_than_one_statement_is_committed_whole_and_settles_every_row(db: Path) -> None:
    count = MAX_ROWS_PER_STATEMENT + 44
    with AuditLog(db) as log:
        held = [log.reserve(ask(server_daily(1000.0), 1.0)) for _ in range(count)]
        log.record_many([(row(cost=0.5, reservation=reservation.id), None) for reservation in held])
        [limit] = server_daily(1000.0)
        spend = log.window_spend(limit, now=NOW)
    assert spend.settled == pytest.approx(count * 0.5) and spend.reserved == 0.0
    with raw(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (count,)


def test_a_batch_that_cannot_be_written_leaves_nothing_behind(db: Path) -> None:
    count = MAX_ROWS_PER_STATEMENT + 1
    with AuditLog(db) as log:
        held = log.reserve(ask(server_daily(10.0), 1.0))
        records = [(row(cost=0.5, reservation=held.id), None) for _ in range(count)]
        # The last row breaks a NOT NULL constraint: it goes in the batch's second statement, after 256 rows.
        records[-1] = (dataclasses.replace(row(cost=0.5), user=None), None)  # type: ignore[arg-type]
        with pytest.raises(AuditError, match="NOT NULL constraint failed: calls.user"):
            log.record_many(records)
        [limit] = server_daily(10.0)
        assert log.window_spend(limit, now=NOW).total == 1.0  # still reserved, nothing settled
    with raw(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (0,)


@pytest.mark.slow
def test_two_processes_on_one_file_never_hold_more_than_the_budget_between_them(db: Path) -> None:
    AuditLog(db).close()  # created (and migrated) once, so the two workers race only on reservations
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tests.ledger_worker", str(db), "60", "0.01", "0.5"]
    workers = [
        subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    results = []
    for worker in workers:
        out, _ = worker.communicate("go\n", timeout=120)
        assert worker.returncode == 0
        results.append(tuple(int(n) for n in out.split()))
    granted = sum(r[0] for r in results)
    assert granted == 50 and sum(r[1] for r in results) == 70  # exactly the 50 calls that fit, of 120
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*), SUM(cost) FROM calls").fetchone() == (50, pytest.approx(0.5))
        assert conn.execute("SELECT COUNT(*) FROM reservations").fetchone()[0] == 0


def test_a_log_from_before_the_ledger_is_migrated_with_its_spend_counted_in_the_budget_windows(db: Path) -> None:
    db.parent.mkdir()
    with raw(db) as conn:
        for statement in V1_DDL:
            conn.execute(statement)
        for persona, cost, outcome in (("writer", 0.5, "ok"), ("writer", 0.25, "error"), ("coder", 1.0, "refused")):
            conn.execute(
                "INSERT INTO calls (ts, user, persona, tool, outcome, latency_ms, cost, privacy) "
                "VALUES (?, 'bob', ?, 'chat', ?, 1.0, ?, 'metadata')",
                (NOW, persona, outcome, cost),
            )
        conn.commit()
    with AuditLog(db) as log:
        [by_persona] = budget_limits("persona", "writer", Budget(daily=1.0), NOW)
        [by_user] = budget_limits("user", "bob", Budget(monthly=5.0), NOW)
        [by_server] = server_daily(10.0)
        assert log.window_spend(by_persona, now=NOW).settled == pytest.approx(0.75)
        assert log.window_spend(by_user, now=NOW).settled == pytest.approx(0.75)  # the refused call cost nothing
        assert log.window_spend(by_server, now=NOW).settled == pytest.approx(0.75)
