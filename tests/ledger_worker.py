"""A process that hammers one SQLite ledger with reservations: `python -m tests.ledger_worker DB COUNT AMOUNT LIMIT`.

Prints `ready` once its ledger is open, and waits for a line on stdin (so that several workers burst at the same
moment). Then each of COUNT concurrent tasks reserves AMOUNT against a server-wide daily LIMIT and, when granted,
settles it with a row charging exactly AMOUNT. Prints `granted refused` on one line. Used by the two-process test
and `bench.ledger`'s two-process rounds.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import anyio

from openrouter_mcp.audit.ledger import ReservationRequest
from openrouter_mcp.audit.log import AuditLog, CallRecord
from openrouter_mcp.audit.sqlite_ledger import SqliteLedger
from openrouter_mcp.errors import BudgetExceededError
from openrouter_mcp.routing.budgets import budget_limits
from openrouter_mcp.routing.personas import Budget


async def main(db: Path, count: int, amount: float, limit: float) -> None:
    ledger = SqliteLedger(lambda: AuditLog(db, busy_timeout=30.0))
    await ledger.cooldowns(now=time.time())  # opens the file in the worker thread before the burst
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await anyio.to_thread.run_sync(sys.stdin.readline)
    outcomes: list[bool] = []

    async def one() -> None:
        now = time.time()
        request = ReservationRequest(
            id=uuid.uuid4().hex, user=f"pid{id(ledger)}", persona="p",
            limits=budget_limits("server", "", Budget(daily=limit), now),
            amount=amount, minimum=amount, now=now, expires=now + 120,
        )  # fmt: skip
        try:
            held = await ledger.reserve(request)
        except BudgetExceededError:
            outcomes.append(False)
            return
        record = CallRecord(
            ts=now, user="worker", tool="create_chat_completion", outcome="ok", latency_ms=1.0, persona="p",
            cost=held.amount, reservation_id=held.id,
        )  # fmt: skip
        await ledger.record(record)
        outcomes.append(True)

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(one)
    await ledger.aclose()
    sys.stdout.write(f"{sum(outcomes)} {len(outcomes) - sum(outcomes)}\n")


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
