"""Budgets under concurrency: the worst overshoot over many bursts, and what admission + record costs a call.

`python -m bench.budget_stress [--runs 20] [--calls 50] [--admits 10] [--samples 2000]`

1. Overshoot: each run starts a server on a fresh SQLite ledger (the real MCP client in memory, the
   simulator on loopback with 50 ms latency so the calls are really in flight together) and sends
   `--calls` concurrent paid calls under a persona whose daily budget is `--admits` + 0.5 reservations.
   It checks every call was answered or refused with `budget_exceeded` and that the ledger holds one row
   per call, and reports the settled spend against the budget. The worst overshoot must be 0.
2. Latency: `--samples` admissions + records through `SqliteLedger` (reserve against a persona's daily
   and monthly budgets and the server's, then the row that settles it), timed one at a time: what budgets
   add to a paid call. Baseline from the same run: the same two SQLite transactions called directly on
   `AuditLog`, in this thread (the cost of the worker-thread hop is the difference).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from pydantic import SecretStr

from bench._harness import BENCH_KEY, HarnessError, emit, machine_line, note, percentile, table
from openrouter_mcp.audit.ledger import ReservationRequest
from openrouter_mcp.audit.log import AuditLog, CallRecord
from openrouter_mcp.audit.sqlite_ledger import SqliteLedger
from openrouter_mcp.config import Settings
from openrouter_mcp.routing import personas
from openrouter_mcp.routing.budgets import budget_limits
from openrouter_mcp.routing.personas import Budget
from openrouter_mcp.routing.reservations import Prices, worst_case
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Simulator
from openrouter_mcp.simulator.serve import serve_in_thread
from openrouter_mcp.tools.chat import _estimate_tokens

MINI = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "Say something short about budgets."}]
MAX_TOKENS = 40


async def burst(url: str, db: Path, calls: int, budget: float) -> dict[str, Any]:
    config = personas.parse({"personas": {"capped": {"models": [MINI], "rank_by": [], "budget": {"daily": budget}}}})
    settings = Settings(api_key=SecretStr(BENCH_KEY), base_url=url, read_timeout=30.0)
    server = build_server(settings, personas=config, audit=lambda: AuditLog(db))
    answered = refused = 0
    async with Client(server) as client:

        async def one() -> None:
            nonlocal answered, refused
            arguments = {"messages": HELLO, "persona": "capped", "max_tokens": MAX_TOKENS}
            result = await client.call_tool("create_chat_completion", arguments)
            text = "".join(getattr(part, "text", "") for part in result.content)
            if not result.is_error:
                answered += 1
            elif "budget_exceeded" in text:
                refused += 1
            else:
                raise HarnessError(f"a call failed otherwise than by the budget: {text[:300]}")

        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for _ in range(calls):
                    group.start_soon(one)
    with sqlite3.connect(db) as conn:
        count, spent = conn.execute("SELECT COUNT(*), COALESCE(SUM(COALESCE(charged, cost)), 0) FROM calls").fetchone()
    if count != calls or answered + refused != calls:
        raise HarnessError(f"{calls} calls, {answered} answered, {refused} refused, {count} rows")
    return {"answered": answered, "refused": refused, "spent": float(spent), "overshoot": max(0.0, spent - budget)}


async def overshoot(runs: int, calls: int, admits: int) -> None:
    worst = worst_case(Prices(0.15e-6, 0.6e-6), prompt_tokens=_estimate_tokens(HELLO, None)).cost(MAX_TOKENS)
    budget = worst * (admits + 0.5)
    sim = Simulator(api_key=BENCH_KEY, latency=0.05)
    results: list[dict[str, Any]] = []
    with serve_in_thread(sim) as url, tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            results.append(await burst(url, Path(tmp) / f"run{run}" / "audit.sqlite3", calls, budget))
            note(f"burst {run + 1}/{runs}: {results[-1]}")
    answered = [r["answered"] for r in results]
    emit(f"## {runs} bursts of {calls} concurrent paid calls, budget = {admits}.5 worst cases (${budget:.8f})")
    emit()
    emit(
        table(
            ["runs", "answered (min-max)", "worst settled / budget", "worst overshoot (USD)"],
            [
                [
                    runs,
                    f"{min(answered)}-{max(answered)}",
                    f"{max(r['spent'] for r in results) / budget:.3f}",
                    f"{max(r['overshoot'] for r in results):.10f}",
                ]
            ],
        )
    )
    emit()


async def latency(samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "ledger" / "audit.sqlite3")
        direct = AuditLog(Path(tmp) / "direct" / "audit.sqlite3")
        ledger = SqliteLedger(log)
        through: list[float] = []
        baseline: list[float] = []
        for index in range(samples):
            now = time.time()
            limits = [
                *budget_limits("server", "", Budget(daily=1e9, monthly=1e9), now),
                *budget_limits("persona", "p", Budget(daily=1e9, monthly=1e9), now),
            ]
            for target in ("ledger", "direct") if index % 2 else ("direct", "ledger"):
                request = ReservationRequest(uuid.uuid4().hex, "ann", "p", limits, 0.001, 0.001, now, now + 180)
                record = CallRecord(
                    ts=now, user="ann", tool="create_chat_completion", outcome="ok", latency_ms=1.0, persona="p",
                    requested_model=MINI, served_model=MINI, cost=0.0005, reservation_id=request.id,
                    arguments={"messages": HELLO}, response={"text": "ok"},
                )  # fmt: skip
                started = time.perf_counter()
                if target == "ledger":
                    await ledger.reserve(request)
                    await ledger.record(record)
                    through.append((time.perf_counter() - started) * 1000)
                else:
                    direct.reserve(request)
                    direct.record(record)
                    baseline.append((time.perf_counter() - started) * 1000)
        await ledger.aclose()
        direct.close()
    emit(f"## Admission + record latency on SQLite ({samples} calls, one at a time, rows of ~200 bytes)")
    emit()
    emit(
        table(
            ["path", "p50 ms", "p99 ms"],
            [
                ["SqliteLedger: reserve + settling record (worker thread)", *_ms(through)],
                ["baseline: the same two transactions on AuditLog, in-thread", *_ms(baseline)],
            ],
        )
    )
    emit()


def _ms(samples: list[float]) -> list[str]:
    return [f"{percentile(samples, 50):.3f}", f"{percentile(samples, 99):.3f}"]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--admits", type=int, default=10)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args(argv)
    emit(f"# Budget stress ({machine_line()})")
    emit()
    await overshoot(args.runs, args.calls, args.admits)
    await latency(args.samples)


if __name__ == "__main__":
    anyio.run(main)
