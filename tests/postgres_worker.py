"""A replica's burst of paid calls against a shared PostgreSQL ledger, for the multi-process budget tests.

`python -m tests.postgres_worker URL CALLS COST DAILY_BUDGET [PERSONA [hold]]` opens its own `PostgresLedger`, prints
`ready`, waits for a line on stdin (so several workers burst at the same moment), then runs CALLS concurrent
admissions of COST each against the daily budget of a persona (default `frugal`); each granted one is recorded
(settled) at COST. It prints one JSON line: `{"granted": N, "refused": M}`. Any other outcome is an exception and
a non-zero exit. With `hold`, it prints `{"held": N}` once every call has its reservation (or its refusal) and
then waits before recording, for a test to SIGKILL it there.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

import anyio

from openrouter_mcp.audit.ledger import ReservationRequest
from openrouter_mcp.audit.log import CallRecord
from openrouter_mcp.audit.postgres import PostgresLedger
from openrouter_mcp.errors import BudgetExceededError
from openrouter_mcp.routing.budgets import budget_limits
from openrouter_mcp.routing.personas import Budget

PERSONA = "frugal"


class Gate:
    """`hold` mode: every call waits between its reservation and its row until the gate opens (never, here: the
    test kills the process then, as a replica dies mid-call)."""

    def __init__(self, calls: int, hold: bool) -> None:
        self.calls = calls
        self.hold = hold
        self.decided = 0
        self.all_decided = anyio.Event()
        self.opened = anyio.Event()

    async def passed(self) -> None:
        self.decided += 1
        if self.decided == self.calls:
            self.all_decided.set()
        if self.hold:
            await self.opened.wait()


async def paid_call(
    ledger: PostgresLedger, cost: float, budget: float, persona: str, outcomes: list[str], gate: Gate
) -> None:
    """One call as the server makes it: reserve the worst case, then record the row that settles it."""
    now = time.time()
    request = ReservationRequest(
        id=uuid.uuid4().hex,
        user="worker",
        persona=persona,
        limits=budget_limits("persona", persona, Budget(daily=budget), now),
        amount=cost,
        minimum=cost,
        now=now,
        expires=now + 60,
    )
    try:
        reservation = await ledger.reserve(request)
    except BudgetExceededError:
        outcomes.append("refused")
        await gate.passed()
        return
    outcomes.append("granted")
    await gate.passed()
    record = CallRecord(
        ts=now,
        user="worker",
        tool="create_chat_completion",
        outcome="ok",
        latency_ms=1.0,
        persona=persona,
        cost=cost,
        reservation_id=reservation.id,
    )
    await ledger.record(record)


async def main(url: str, calls: int, cost: float, budget: float, persona: str = PERSONA, hold: bool = False) -> None:
    ledger = await PostgresLedger.open(url, pool_size=calls)
    try:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.readline)
        outcomes: list[str] = []
        gate = Gate(calls, hold)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for _ in range(calls):
                    group.start_soon(paid_call, ledger, cost, budget, persona, outcomes, gate)
                if hold:
                    await gate.all_decided.wait()
                    sys.stdout.write(json.dumps({"held": outcomes.count("granted")}) + "\n")
                    sys.stdout.flush()
        result = {"granted": outcomes.count("granted"), "refused": outcomes.count("refused")}
        sys.stdout.write(json.dumps(result) + "\n")
    finally:
        await ledger.aclose()


if __name__ == "__main__":
    persona = sys.argv[5] if len(sys.argv) > 5 else PERSONA
    hold = sys.argv[6:7] == ["hold"]
    anyio.run(main, sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), persona, hold)
