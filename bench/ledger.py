"""The ledger's cost per paid call, and whether its budgets hold: SQLite against PostgreSQL.

`python -m bench.ledger [--calls 1000] [--warmup 100] [--rounds 20] [--database-url URL]`

1. **Admission + record latency.** One paid call's ledger work, as the server does it: `reserve()` against a
   persona's and the server's daily budgets (both scopes locked and summed), then `record()` of a typical chat
   row that settles the reservation. Sequential calls from one task, timed each; the engines take turns call by
   call, so machine drift hits both alike. SQLite: `SqliteLedger` (a worker thread over a WAL file); PostgreSQL:
   `PostgresLedger` (psycopg's async pool over a Unix socket). Targets: p50 <= 1 ms (SQLite), <= 3 ms (PostgreSQL).
2. **Overshoot under concurrency** (`--rounds` times each): 50 concurrent admissions of $0.03 against a $1.00
   budget (33 fit) from one process (each engine), 2 processes x 50 on one SQLite file, and 3 processes x 50 on one
   PostgreSQL database; the worst settled spend above the budget over all rounds must be $0.

PostgreSQL is a throwaway cluster of this run's own (`tests/postgres.py`: initdb in a temp dir, fsync off, like the
tests), unless `--database-url` names one (a scratch database: the benchmark writes to it). Nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from bench._harness import REPO, emit, machine_line, note, percentile, table
from openrouter_mcp.audit.ledger import Ledger, ReservationRequest
from openrouter_mcp.audit.log import AuditLog, CallRecord
from openrouter_mcp.audit.postgres import PostgresLedger
from openrouter_mcp.audit.sqlite_ledger import SqliteLedger
from openrouter_mcp.errors import BudgetExceededError
from openrouter_mcp.routing.budgets import budget_limits
from openrouter_mcp.routing.personas import Budget

PROMPT = "Summarise the following design note in three bullet points. " * 16  # ~1 KB
ANSWER = "- The ledger takes the row before the result is returned. " * 25  # ~1.5 KB
COST = 0.03
BUDGET = 1.0


def typical_call(i: int, reservation_id: str, now: float) -> CallRecord:
    return CallRecord(
        ts=now,
        user="alice",
        tool="create_chat_completion",
        outcome="ok",
        latency_ms=812.5,
        persona="coder",
        transport="streamable-http",
        arguments={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 400},
        response={"text": ANSWER, "usage": {"prompt_tokens": 260, "completion_tokens": 310, "cost": 0.00375}},
        requested_model="openai/gpt-4o",
        served_model="openai/gpt-4o",
        provider="OpenAI",
        generation_id=f"gen-{i:012d}",
        prompt_tokens=260,
        completion_tokens=310,
        cost=0.00375,
        attempts=[{"model": "openai/gpt-4o", "outcome": "ok", "latency_ms": 800.0}],
        reservation_id=reservation_id,
    )


async def one_paid_call(ledger: Ledger, i: int) -> tuple[float, float]:
    """Seconds spent in `reserve()` and in `record()` for one call under two budgets that never run out."""
    now = time.time()
    limits = [
        *budget_limits("server", "", Budget(daily=1e9), now),
        *budget_limits("persona", "coder", Budget(daily=1e9), now),
    ]
    request = ReservationRequest(
        id=uuid.uuid4().hex, user="alice", persona="coder", limits=limits, amount=0.01, minimum=0.01, now=now,
        expires=now + 120,
    )  # fmt: skip
    started = time.perf_counter()
    held = await ledger.reserve(request)
    reserved = time.perf_counter()
    await ledger.record(typical_call(i, held.id, now))
    return reserved - started, time.perf_counter() - reserved


async def latency(engines: dict[str, Ledger], calls: int, warmup: int) -> dict[str, list[tuple[float, float]]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    for i in range(warmup + calls):
        for name, ledger in engines.items():
            taken = await one_paid_call(ledger, i)
            if i >= warmup:
                samples[name].append(taken)
    return samples


async def burst(ledger: Ledger, calls: int) -> int:
    """`calls` concurrent admissions of COST against BUDGET, each granted one settled at COST; the number granted."""
    granted = 0
    now = time.time()
    limits = budget_limits("persona", f"burst-{uuid.uuid4().hex}", Budget(daily=BUDGET), now)

    async def call() -> None:
        nonlocal granted
        request = ReservationRequest(
            id=uuid.uuid4().hex, user="bench", persona=limits[0].name, limits=limits, amount=COST, minimum=COST,
            now=now, expires=now + 120,
        )  # fmt: skip
        try:
            held = await ledger.reserve(request)
        except BudgetExceededError:
            return
        await ledger.record(
            CallRecord(ts=now, user="bench", tool="create_chat_completion", outcome="ok", latency_ms=1.0,
                       persona=limits[0].name, cost=COST, reservation_id=held.id)
        )  # fmt: skip
        granted += 1

    async with anyio.create_task_group() as group:
        for _ in range(calls):
            group.start_soon(call)
    return granted


def three_processes(url: str) -> int:
    """3 x 50 admissions from three worker processes at once (tests/postgres_worker.py); the number granted."""
    persona = f"burst-{uuid.uuid4().hex}"  # a budget of this round's own
    command = [sys.executable, "-m", "tests.postgres_worker", url, "50", str(COST), str(BUDGET), persona]
    return sum(json.loads(output)["granted"] for output in _burst_together(command, 3))


def two_processes(folder: Path) -> int:
    """2 x 50 admissions from two worker processes at once on one fresh SQLite file (tests/ledger_worker.py); the
    number granted."""
    db = folder / f"two-{uuid.uuid4().hex}.sqlite3"
    AuditLog(db).close()  # created (and migrated) once, so the workers race only on reservations
    command = [sys.executable, "-m", "tests.ledger_worker", str(db), "50", str(COST), str(BUDGET)]
    return sum(int(output.split()[0]) for output in _burst_together(command, 2))


def _burst_together(command: list[str], count: int) -> list[str]:
    """Start `count` workers, wait until each says `ready`, tell them all to go; their outputs."""
    workers = [
        subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        return [worker.communicate("go\n", timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()


@asynccontextmanager
async def postgres(url: str | None) -> AsyncIterator[str]:
    if url is not None:
        yield url
        return
    from tests.postgres import create_database, throwaway_cluster

    with throwaway_cluster() as cluster:
        yield create_database(cluster)


async def run(args: argparse.Namespace) -> None:
    emit("## Ledger: admission + record per paid call, and budgets under concurrency")
    emit()
    emit(machine_line())
    emit()
    async with postgres(args.database_url) as url:
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
            db = Path(tmp) / "audit.sqlite3"
            engines: dict[str, Ledger] = {
                "SQLite (WAL, worker thread)": SqliteLedger(AuditLog(db)),
                "PostgreSQL 15 (Unix socket, async pool)": await PostgresLedger.open(url),
            }
            try:
                note(f"{args.calls} paid calls per engine, {args.warmup} warm-up, interleaved")
                samples = await latency(engines, args.calls, args.warmup)
                rows = []
                for name, taken in samples.items():
                    both = [(a + b) * 1000 for a, b in taken]
                    reserve = [a * 1000 for a, _ in taken]
                    record = [b * 1000 for _, b in taken]
                    rows.append(
                        [name]
                        + [f"{percentile(values, q):.3f}" for values in (both, reserve, record) for q in (50, 99)]
                    )
                emit(
                    table(
                        ["engine", "admission+record p50 ms", "p99", "reserve p50", "p99", "record p50", "p99"],
                        rows,
                    )
                )
                emit()
                overshoots: list[tuple[str, Callable[[], Awaitable[int]]]] = [
                    (f"{name}: 50 concurrent in one process", _bound(burst, ledger, 50))
                    for name, ledger in engines.items()
                ]
                rows = []
                for label, attempt in overshoots:
                    note(f"{args.rounds} rounds: {label}")
                    counts = [await attempt() for _ in range(args.rounds)]
                    rows.append(_overshoot_row(label, counts))
                note(f"{args.rounds} rounds: SQLite, 2 processes x 50 on one file")
                counts = [await anyio.to_thread.run_sync(two_processes, Path(tmp)) for _ in range(args.rounds)]
                rows.append(_overshoot_row("SQLite: 2 processes x 50 concurrent on one file", counts))
                note(f"{args.rounds} rounds: PostgreSQL, 3 processes x 50")
                counts = [await anyio.to_thread.run_sync(three_processes, url) for _ in range(args.rounds)]
                rows.append(_overshoot_row("PostgreSQL 15: 3 processes x 50 concurrent", counts))
                emit(table(["scenario", "rounds", "granted (min-max)", "worst overshoot USD"], rows))
            finally:
                for ledger in engines.values():
                    await ledger.aclose()
    emit()
    admitted = int(BUDGET / COST + 1e-9)
    emit(f"A budget of ${BUDGET:.2f} admits {admitted} calls of ${COST:.2f}; overshoot is settled spend above it.")


def _bound(
    function: Callable[[Ledger, int], Awaitable[int]], ledger: Ledger, calls: int
) -> Callable[[], Awaitable[int]]:
    return lambda: function(ledger, calls)


def _overshoot_row(label: str, counts: list[int]) -> list[str]:
    worst = max(0.0, max(counts) * COST - BUDGET)
    return [label, str(len(counts)), f"{min(counts)}-{max(counts)}", f"{worst:.4f}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed paid calls per engine (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first (default 100)")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of each overshoot scenario (default 20)")
    parser.add_argument("--database-url", help="a scratch PostgreSQL database instead of a throwaway cluster")
    anyio.run(run, parser.parse_args(argv))


if __name__ == "__main__":
    main()
