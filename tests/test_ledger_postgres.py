"""The PostgreSQL ledger against a real throwaway PostgreSQL server (tests/postgres.py): migrations, rows and reports
equal to SQLite's, admissions that never overspend (one process, three processes), shared cooldowns, leases, and a
database that stops mid-burst and comes back."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest

from openrouter_mcp.audit import AuditError, AuditLog, AuditSetupError, CallRecord
from openrouter_mcp.audit.database import check_url, redact_url
from openrouter_mcp.audit.ledger import Cooldown, Reservation, ReservationRequest, WindowSpend
from openrouter_mcp.audit.postgres import PostgresLedger
from openrouter_mcp.errors import BudgetExceededError, ConfigurationError
from openrouter_mcp.routing.budgets import BudgetLimit, budget_limits
from openrouter_mcp.routing.personas import Budget
from tests.audit_data import PARITY_RECORDS, PRIVACY
from tests.postgres import PostgresCluster, create_database, throwaway_cluster
from tests.processes import free_port

# slow: a throwaway PostgreSQL cluster and a database per test.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
MAR_1 = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
HOUR = 3600.0
#: One call's price and a daily budget that admits exactly 33 of them (34 x 0.03 = 1.02).
COST = 0.03
BUDGET = 1.0
ADMITTED = 33


@pytest.fixture
async def ledger(postgres_url: str) -> AsyncIterator[PostgresLedger]:
    opened = await PostgresLedger.open(postgres_url, pool_size=20)
    try:
        yield opened
    finally:
        await opened.aclose()


def reservation(
    limits: list[BudgetLimit],
    *,
    amount: float = COST,
    minimum: float | None = None,
    now: float = MAR_1 + HOUR,
    lease: float = 60.0,
    persona: str | None = "frugal",
    user: str = "alice",
) -> ReservationRequest:
    return ReservationRequest(
        id=uuid.uuid4().hex,
        user=user,
        persona=persona,
        limits=limits,
        amount=amount,
        minimum=amount if minimum is None else minimum,
        now=now,
        expires=now + lease,
    )


def persona_daily(budget: float = BUDGET, now: float = MAR_1 + HOUR) -> list[BudgetLimit]:
    return budget_limits("persona", "frugal", Budget(daily=budget), now)


def paid_record(
    reservation_id: str | None, *, cost: float | None = COST, ts: float = MAR_1 + HOUR, **fields: Any
) -> CallRecord:
    values: dict[str, Any] = {
        "ts": ts,
        "user": "alice",
        "tool": "create_chat_completion",
        "outcome": "ok",
        "latency_ms": 12.5,
        "persona": "frugal",
        "cost": cost,
        "reservation_id": reservation_id,
    } | fields
    return CallRecord(**values)


# -- migrations -----------------------------------------------------------------------------------------------


async def test_an_empty_database_is_migrated_to_the_current_schema_and_a_reopen_changes_nothing(
    postgres_url: str,
) -> None:
    first = await PostgresLedger.open(postgres_url)
    try:
        assert await first.schema_version() == PostgresLedger.SCHEMA_VERSION
        await first.record(paid_record(None))
    finally:
        await first.aclose()
    again = await PostgresLedger.open(postgres_url)
    try:
        assert await again.schema_version() == PostgresLedger.SCHEMA_VERSION
        assert [row["cost"] for row in await again.tail()] == [COST]
    finally:
        await again.aclose()
    with psycopg.connect(postgres_url) as connection:
        tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        indexes = {row[0] for row in connection.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'calls'")}
        versions = connection.execute("SELECT version FROM schema_version").fetchall()
    assert tables == {"schema_version", "calls", "reservations", "spend", "cooldowns"}
    assert {"calls_ts", "calls_persona_ts", "calls_user_ts"} <= indexes
    assert versions == [(PostgresLedger.SCHEMA_VERSION,)]


async def test_replicas_starting_together_on_an_empty_database_migrate_it_once(postgres_url: str) -> None:
    opened: list[PostgresLedger] = []

    async def start() -> None:
        opened.append(await PostgresLedger.open(postgres_url))

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(start)
        assert [await each.schema_version() for each in opened] == [PostgresLedger.SCHEMA_VERSION] * 3
    finally:
        for each in opened:
            await each.aclose()
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)


async def test_a_database_written_by_a_newer_version_is_refused_with_a_clear_message(postgres_url: str) -> None:
    await (await PostgresLedger.open(postgres_url)).aclose()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(AuditSetupError, match=r"newer openrouter-mcp \(schema v99; this version reads up to v1\)"):
        await PostgresLedger.open(postgres_url)


# -- rows and reports: the same as SQLite's ------------------------------------------------------------------


def rounded(value: Any) -> Any:
    """`value` with floats rounded to 12 significant digits: sums may add in another order on each engine."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


async def test_rows_exports_tails_and_usage_are_the_same_as_sqlites_for_the_same_calls(
    ledger: PostgresLedger, tmp_path: Path
) -> None:
    with AuditLog(tmp_path / "audit.sqlite3") as sqlite_log:
        for record, privacy in zip(PARITY_RECORDS, PRIVACY, strict=True):
            sqlite_log.record(record, privacy=privacy)  # type: ignore[arg-type]
            await ledger.record(record, privacy=privacy)  # type: ignore[arg-type]
        sqlite_export = list(sqlite_log.export())
        sqlite_since = list(sqlite_log.export(since=MAR_1 + 15))
        sqlite_tail = sqlite_log.tail(3)
        windows = [(MAR_1 - HOUR, MAR_1 + 3 * 86_400, None), (MAR_1, MAR_1 + 86_400, None), (0, 2e9, "frugal")]
        sqlite_usage = [sqlite_log.usage(since=a, until=b, persona=p).as_dict() for a, b, p in windows]
    postgres_export = [row async for row in ledger.export()]
    assert postgres_export == sqlite_export
    assert len(postgres_export) == len(PARITY_RECORDS)
    assert [row async for row in ledger.export(since=MAR_1 + 15)] == sqlite_since
    assert await ledger.tail(3) == sqlite_tail
    for (since, until, persona), expected in zip(windows, sqlite_usage, strict=True):
        summary = await ledger.usage(since=since, until=until, persona=persona)
        assert rounded(summary.as_dict()) == rounded(expected)
    assert sqlite_usage[0]["by_day"] == [
        {"day": "2025-02-28", "calls": 1, "cost": 0.0},
        {"day": "2025-03-01", "calls": 3, "cost": pytest.approx(0.01292)},
        {"day": "2025-03-02", "calls": 1, "cost": 0.0001},
    ]


async def test_an_export_longer_than_one_batch_comes_back_whole_and_in_order(ledger: PostgresLedger) -> None:
    for i in range(1203):
        await ledger.record(paid_record(None, ts=MAR_1 + i, cost=None, tool=f"t{i}"))
    rows = [row async for row in ledger.export(since=MAR_1 + 3)]
    assert [row["tool"] for row in rows] == [f"t{i}" for i in range(3, 1203)]


async def test_a_replayed_record_is_stored_once(ledger: PostgresLedger) -> None:
    record = paid_record(None)
    await ledger.record(record)
    await ledger.record(record)
    assert len(await ledger.tail(10)) == 1


# -- budgets ----------------------------------------------------------------------------------------------------


async def test_fifty_concurrent_admissions_take_exactly_what_the_budget_admits(ledger: PostgresLedger) -> None:
    limits = persona_daily()
    outcomes: list[str] = []

    async def call() -> None:
        try:
            held = await ledger.reserve(reservation(limits))
        except BudgetExceededError:
            outcomes.append("refused")
            return
        assert held.amount == COST
        await ledger.record(paid_record(held.id))
        outcomes.append("granted")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(call)
    assert outcomes.count("granted") == ADMITTED
    assert outcomes.count("refused") == 50 - ADMITTED
    spend = await ledger.spend(limits[0], now=MAR_1 + HOUR)
    assert spend.reserved == 0.0  # every reservation was settled by its row
    assert spend.settled == pytest.approx(ADMITTED * COST)
    assert spend.settled <= BUDGET
    assert len(await ledger.tail(100)) == ADMITTED


async def test_an_admission_needs_nothing_more_from_its_process_once_sent(
    ledger: PostgresLedger, postgres_url: str
) -> None:
    """Its scope lock is held only while the server works, never while a busy replica's event loop gets round to it."""
    limits = persona_daily()
    await ledger.reserve(reservation(limits))  # the pool's connection is open and idle: the next call sends at once
    wanted = reservation(limits)
    granted: list[Reservation] = []

    async def reserve() -> None:
        granted.append(await ledger.reserve(wanted))

    with psycopg.connect(postgres_url, autocommit=True) as watcher, anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(reserve)
            await anyio.wait_all_tasks_blocked()  # it has sent what it sends, and waits for the answer
            # This process's event loop now stands still (the watcher blocks it), as a busy replica's does for
            # milliseconds: the server must lock, admit, insert and commit on what it has already received.
            deadline = time.monotonic() + 10
            while not watcher.execute("SELECT 1 FROM reservations WHERE id = %s", (wanted.id,)).fetchall():
                assert time.monotonic() < deadline, "the admission is waiting for more from its process"
            locks = watcher.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
            assert locks == (0,)
    assert [held.id for held in granted] == [wanted.id]


async def test_a_refusal_names_the_budget_the_spend_and_what_is_in_flight(ledger: PostgresLedger) -> None:
    limits = persona_daily()
    settled = await ledger.reserve(reservation(limits, amount=0.5))
    await ledger.record(paid_record(settled.id, cost=0.5))
    await ledger.reserve(reservation(limits, amount=0.25))  # in flight
    with pytest.raises(BudgetExceededError) as refused:
        await ledger.reserve(reservation(limits, amount=0.3))
    message = refused.value.message
    assert "persona 'frugal' has spent $0.5000 of its daily budget of $1" in message
    assert "$0.2500 more reserved by calls in flight" in message
    assert "resets at 2025-03-02 00:00 UTC" in message


async def test_a_call_gets_what_fits_between_its_minimum_and_its_worst_case(ledger: PostgresLedger) -> None:
    limits = persona_daily()
    await ledger.reserve(reservation(limits, amount=0.9))
    held = await ledger.reserve(reservation(limits, amount=0.5, minimum=0.05))
    assert held.amount == pytest.approx(0.1)
    with pytest.raises(BudgetExceededError):
        await ledger.reserve(reservation(limits, amount=0.5, minimum=0.01))


async def test_every_scope_that_applies_bounds_the_call_and_the_tightest_refuses(ledger: PostgresLedger) -> None:
    now = MAR_1 + HOUR
    limits = [
        *budget_limits("server", "", Budget(daily=10.0, monthly=100.0), now),
        *budget_limits("persona", "frugal", Budget(daily=5.0), now),
        *budget_limits("user", "alice", Budget(monthly=0.4), now),
    ]
    # Bob's spend counts for the server and the persona, not for alice.
    bob = await ledger.reserve(reservation(limits[:3], amount=4.0, user="bob"))
    await ledger.record(paid_record(bob.id, cost=4.0, user="bob"))
    held = await ledger.reserve(reservation(limits, amount=0.3))
    assert held.amount == 0.3
    with pytest.raises(BudgetExceededError, match=r"user 'alice' has spent \$0.0000 of its monthly budget of \$0.4"):
        await ledger.reserve(reservation(limits, amount=0.2))
    with pytest.raises(BudgetExceededError, match=r"persona 'frugal' has spent \$4.0000 of its daily budget of \$5"):
        await ledger.reserve(reservation(limits[:3], amount=0.8, user="bob"))
    server = await ledger.spend(limits[0], now=now)
    assert (server.settled, server.reserved) == (4.0, 0.3)


async def test_a_released_or_expired_reservation_no_longer_counts(ledger: PostgresLedger) -> None:
    now = MAR_1 + HOUR
    limits = persona_daily(now=now)
    released = await ledger.reserve(reservation(limits, amount=0.6, now=now))
    await ledger.release(released.id)
    await ledger.release(released.id)  # idempotent
    leased = await ledger.reserve(reservation(limits, amount=0.6, now=now, lease=30))
    assert (await ledger.spend(limits[0], now=now)).reserved == 0.6
    with pytest.raises(BudgetExceededError):
        await ledger.reserve(reservation(limits, amount=0.6, now=now + 29))
    # Its holder died: once the lease passes, the budget is free again.
    assert (await ledger.spend(limits[0], now=now + 31)).reserved == 0.0
    await ledger.reserve(reservation(limits, amount=0.6, now=now + 31))
    # Settling after expiry still records the row (and finds no reservation to delete).
    await ledger.record(paid_record(leased.id, cost=0.1))
    assert (await ledger.spend(limits[0], now=now + 31)).settled == 0.1


async def test_a_row_with_a_known_charge_counts_that_charge_not_its_cost(ledger: PostgresLedger) -> None:
    limits = persona_daily()
    held = await ledger.reserve(reservation(limits, amount=0.2))
    # A stream cut before its usage block: the cost is unknown, the reservation is kept as spent.
    await ledger.record(paid_record(held.id, cost=None, charged=0.2, outcome="error"))
    await ledger.record(paid_record(None, cost=0.7, outcome="refused"))  # refused calls never count
    spend = await ledger.spend(limits[0], now=MAR_1 + HOUR)
    assert (spend.settled, spend.reserved) == (0.2, 0.0)


async def test_the_daily_totals_admission_reads_agree_with_the_rows_they_sum(ledger: PostgresLedger) -> None:
    day = MAR_1 + HOUR
    rows = [
        paid_record(None, cost=0.25),
        paid_record(None, cost=0.5, user="bob", persona="coder"),
        paid_record(None, cost=None, charged=0.125, outcome="error"),  # cut stream: the reserved amount counts
        paid_record(None, cost=0.0625, persona=None),
        paid_record(None, cost=9.0, outcome="refused"),  # never counts
        paid_record(None, cost=0.03125, ts=MAR_1 - 1),  # the day before
        paid_record(None, cost=1.0, ts=MAR_1 + 40 * 86_400),  # next month
    ]
    for row in rows:
        await ledger.record(row)
    await ledger.record(rows[0])  # a replay is counted once
    windows = {
        "server day": (budget_limits("server", "", Budget(daily=1), day)[0], 0.9375),
        "server month": (budget_limits("server", "", Budget(monthly=1), day)[0], 0.9375),
        "alice day": (budget_limits("user", "alice", Budget(daily=1), day)[0], 0.4375),
        "alice month": (budget_limits("user", "alice", Budget(monthly=1), MAR_1 - 1)[0], 0.03125),
        "frugal day": (budget_limits("persona", "frugal", Budget(daily=1), day)[0], 0.375),
        "coder day": (budget_limits("persona", "coder", Budget(daily=1), day)[0], 0.5),
    }
    for name, (limit, expected) in windows.items():
        assert (await ledger.spend(limit, now=day)).settled == expected, name
        # The same window, not aligned to whole days, is summed from the rows themselves: the same figure.
        shifted = BudgetLimit(limit.scope, limit.name, limit.period, limit.limit, limit.since - 0.5, limit.resets - 0.5)
        assert (await ledger.spend(shifted, now=day)).settled == expected, name


@pytest.mark.slow
async def test_three_replica_processes_on_one_database_never_exceed_the_budget(postgres_url: str) -> None:
    command = [sys.executable, "-m", "tests.postgres_worker", postgres_url, "50", str(COST), str(BUDGET)]
    workers = [
        subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    try:
        with anyio.fail_after(60):
            for worker in workers:
                assert worker.stdout is not None
                assert await anyio.to_thread.run_sync(worker.stdout.readline) == "ready\n"
            for worker in workers:  # all three burst at once
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            results = [json.loads(await anyio.to_thread.run_sync(worker.stdout.readline)) for worker in workers]  # type: ignore[union-attr]
            codes = [await anyio.to_thread.run_sync(worker.wait) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.communicate()  # reaps it and closes its pipes
    assert codes == [0, 0, 0]
    assert sum(result["granted"] for result in results) == ADMITTED
    assert sum(result["refused"] for result in results) == 150 - ADMITTED
    with psycopg.connect(postgres_url) as connection:
        rows, spent = connection.execute("SELECT count(*), sum(cost) FROM calls").fetchone()  # type: ignore[misc]
        held = connection.execute("SELECT count(*) FROM reservations").fetchone()
    assert rows == ADMITTED
    assert spent <= BUDGET
    assert held == (0,)


@pytest.mark.slow
async def test_a_replica_killed_mid_burst_holds_its_budget_only_until_its_leases_expire(postgres_url: str) -> None:
    command = [sys.executable, "-m", "tests.postgres_worker", postgres_url, "10", "0.25", "1.0", "frugal", "hold"]
    worker = subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None and worker.stdin is not None
        with anyio.fail_after(60):
            assert await anyio.to_thread.run_sync(worker.stdout.readline) == "ready\n"
            worker.stdin.write("go\n")
            worker.stdin.flush()
            held = json.loads(await anyio.to_thread.run_sync(worker.stdout.readline))
        assert held == {"held": 4}
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.communicate()
    now = time.time()
    [limit] = budget_limits("persona", "frugal", Budget(daily=1.0), now)
    ledger = await PostgresLedger.open(postgres_url)
    try:
        # The dead replica's reservations still hold the whole budget: nobody can spend it twice meanwhile.
        assert (await ledger.spend(limit, now=now)).reserved == 1.0
        with pytest.raises(BudgetExceededError):
            await ledger.reserve(reservation([limit], amount=0.25, now=now))
        # Its leases (60 s in the worker) expire: the budget is free again, and nothing was charged.
        later = now + 61
        assert await ledger.spend(limit, now=later) == WindowSpend(settled=0.0, reserved=0.0)
        assert (await ledger.reserve(reservation([limit], amount=1.0, now=later))).amount == 1.0
    finally:
        await ledger.aclose()


# -- cooldowns --------------------------------------------------------------------------------------------------


async def test_a_cooldown_written_by_one_replica_is_seen_by_another_and_only_lengthens(postgres_url: str) -> None:
    one = await PostgresLedger.open(postgres_url)
    other = await PostgresLedger.open(postgres_url)
    try:
        now = time.time()
        await one.put_cooldown(Cooldown("openai/gpt-4o", now + 30, 1))
        with anyio.fail_after(1):
            seen = await other.cooldowns(now=now)
        assert seen == [Cooldown("openai/gpt-4o", now + 30, 1)]
        await other.put_cooldown(Cooldown("openai/gpt-4o", now + 5, 1))  # an earlier end does not shorten it
        await other.put_cooldown(Cooldown("limit:free-tier", now + 10, 2))
        assert await one.cooldowns(now=now) == [
            Cooldown("limit:free-tier", now + 10, 2),
            Cooldown("openai/gpt-4o", now + 30, 1),
        ]
        assert await one.cooldowns(now=now + 20) == [Cooldown("openai/gpt-4o", now + 30, 1)]
    finally:
        await one.aclose()
        await other.aclose()


# -- faults -------------------------------------------------------------------------------------------------------


def test_urls_are_shown_without_their_password() -> None:
    assert redact_url("postgresql://app:s3cr%21t@db:5432/ledger") == "postgresql://app:***@db:5432/ledger"
    assert redact_url("postgresql://db/ledger?password=s3cret&sslmode=require") == (
        "postgresql://db/ledger?password=***&sslmode=require"
    )
    assert redact_url("postgresql://app@/ledger?host=/run/pg") == "postgresql://app@/ledger?host=/run/pg"
    with pytest.raises(ConfigurationError, match=r"must be a postgresql:// URL, got 'mysql://app:\*\*\*@db/x'"):
        check_url("mysql://app:hunter2@db/x")


async def test_a_wrong_password_or_an_unreachable_server_fails_start_up_without_showing_the_password(
    postgres_cluster: PostgresCluster,
) -> None:
    wrong = postgres_cluster.url(tcp=True).replace(postgres_cluster.password, "not-the-password-42")
    with anyio.fail_after(20), pytest.raises(AuditSetupError) as refused:
        await PostgresLedger.open(wrong, timeout=3)
    assert "password authentication failed" in refused.value.message
    assert "not-the-password-42" not in refused.value.message
    assert ":***@127.0.0.1" in refused.value.message
    nobody = f"postgresql://app:hunter2@127.0.0.1:{free_port()}/ledger"
    with anyio.fail_after(20), pytest.raises(AuditSetupError) as unreachable:
        await PostgresLedger.open(nobody, timeout=2)
    assert f"cannot use the ledger database postgresql://app:***@127.0.0.1:{nobody.split(':')[-1]}" in (
        unreachable.value.message
    )
    assert "hunter2" not in unreachable.value.message
    # The right password, over loopback TCP, works.
    ledger = await PostgresLedger.open(postgres_cluster.url(tcp=True))
    await ledger.aclose()


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own, which it may stop and start without disturbing the others."""
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.mark.slow
async def test_a_database_stopped_mid_burst_gives_clear_retryable_errors_and_works_again_once_restarted(
    own_cluster: PostgresCluster,
) -> None:
    url = create_database(own_cluster)
    ledger = await PostgresLedger.open(url, timeout=2)
    limits = persona_daily(budget=1000.0)
    outcomes: list[str] = []
    errors: list[AuditError] = []
    stopped = anyio.Event()
    under_way = anyio.Event()

    async def caller() -> None:
        # Paid calls until the database is seen down.
        while not stopped.is_set() or len(errors) == 0:
            try:
                held = await ledger.reserve(reservation(limits, now=time.time()))
                await ledger.record(paid_record(held.id, ts=time.time()))
                outcomes.append("ok")
                if len(outcomes) == 40:
                    under_way.set()
            except AuditError as exc:
                errors.append(exc)
                return

    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(caller)
                await under_way.wait()
                await anyio.to_thread.run_sync(own_cluster.stop)
                stopped.set()
            answered_before = len(outcomes)
            assert errors
            for error in errors:
                assert error.retryable
                assert "the ledger database postgresql://ormcp@/" in error.message
            # While down: every call is refused the same way, within the pool's timeout.
            with anyio.fail_after(10), pytest.raises(AuditError) as down:
                await ledger.reserve(reservation(limits, now=time.time()))
            assert down.value.retryable
            assert "is unreachable" in down.value.message
            await anyio.to_thread.run_sync(own_cluster.start)
            # Once it is back, calls work again (the pool reconnects by itself).
            recovered = False
            while not recovered:
                try:
                    held = await ledger.reserve(reservation(limits, now=time.time()))
                    await ledger.record(paid_record(held.id, ts=time.time()))
                    recovered = True
                except AuditError as exc:
                    assert exc.retryable
            rows = [row async for row in ledger.export()]
    finally:
        await ledger.aclose()
    # Every call that was answered before the stop was recorded, once; and the one after.
    assert len(rows) >= answered_before + 1
    assert len({row["id"] for row in rows}) == len(rows)
    assert math.isclose(sum(row["cost"] for row in rows), COST * len(rows))
