"""The audit log's cost per tool call: `AuditLog.record()` latency for each privacy mode.

`python -m bench.audit [--records 2000] [--warmup 100] [--fsync-records 200]`

Every call writes one row before its result goes back, so this time is added to every call.
Each sample is one `record()` of a typical chat call (a ~1 KB prompt, a ~1.5 KB structured answer,
two routing attempts), committed on its own, WAL with `synchronous=NORMAL`, as the server runs it.
The three modes write to three logs in turn (interleaved, so machine drift hits all alike).

Baselines from the same run:
- a bare `INSERT` of the same metadata through `sqlite3` (same pragmas): the floor SQLite sets;
  the gap to it is JSON encoding, hashing and our own code;
- `record()` with `synchronous=FULL` (an fsync per commit, `--fsync-records` samples): what
  surviving a power cut, not just a process crash, would cost per call.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._harness import emit, machine_line, note, percentile, table
from openrouter_mcp.audit import PRIVACY_MODES, AuditLog, CallRecord

PROMPT = "Summarise the following design note in three bullet points. " * 16  # ~1 KB
ANSWER = "- The log is written before the result is returned, so nothing is lost. " * 20  # ~1.5 KB


def typical_call(i: int) -> CallRecord:
    return CallRecord(
        ts=time.time(),
        user="alice",
        tool="chat",
        outcome="ok",
        latency_ms=812.5,
        persona="coder",
        transport="stdio",
        arguments={
            "model": "openai/gpt-4o",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
            "max_tokens": 400,
            "temperature": 0.2,
        },
        response={
            "content": ANSWER,
            "model": "openai/gpt-4o",
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 260, "completion_tokens": 310, "cost": 0.00375},
            "routing": {"persona": "coder", "answered_by": "openai/gpt-4o", "fallback_used": True},
        },
        requested_model="anthropic/claude-sonnet-4",
        served_model="openai/gpt-4o",
        provider="OpenAI",
        generation_id=f"gen-{i:012d}",
        prompt_tokens=260,
        completion_tokens=310,
        cost=0.00375,
        attempts=[
            {"model": "anthropic/claude-sonnet-4", "outcome": "failed", "status": 529, "latency_ms": 120.0},
            {"model": "openai/gpt-4o", "outcome": "answered", "latency_ms": 690.0},
        ],
    )


def bare_insert(path: Path) -> Callable[[CallRecord], None]:
    """The same row's metadata through plain `sqlite3`, nothing else: the floor."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(
        "CREATE TABLE calls (id INTEGER PRIMARY KEY, ts REAL, user TEXT, persona TEXT, tool TEXT, outcome TEXT, "
        "latency_ms REAL, served_model TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, cost REAL)"
    )
    sql = "INSERT INTO calls VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    def insert(r: CallRecord) -> None:
        db.execute(sql, (r.ts, r.user, r.persona, r.tool, r.outcome, r.latency_ms, r.served_model, r.prompt_tokens,
                         r.completion_tokens, r.cost))  # fmt: skip

    return insert


def measure(targets: dict[str, Callable[[CallRecord], Any]], records: int, warmup: int) -> dict[str, list[float]]:
    """Microseconds per call for each target, taken in turn so that drift affects all alike."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(warmup + records):
        call = typical_call(i)
        for name, target in targets.items():
            start = time.perf_counter_ns()
            target(call)
            elapsed = time.perf_counter_ns() - start
            if i >= warmup:
                samples[name].append(elapsed / 1000)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="timed records per mode (default 2000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed records first (default 100)")
    parser.add_argument("--fsync-records", type=int, default=200, help="samples with synchronous=FULL (default 200)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        root = Path(tmp)
        logs = {mode: AuditLog(root / f"{mode}.sqlite3", privacy=mode) for mode in PRIVACY_MODES}
        fsync_log = AuditLog(root / "fsync.sqlite3", privacy="full")
        fsync_log._db.execute("PRAGMA synchronous = FULL")
        try:
            note(f"{args.records} records per mode, {args.warmup} warm-up, in {root}")
            targets: dict[str, Callable[[CallRecord], Any]] = {
                f"`record()`, privacy={mode}": log.record for mode, log in logs.items()
            }
            targets["baseline: bare sqlite3 INSERT, metadata only"] = bare_insert(root / "bare.sqlite3")
            samples = measure(targets, args.records, args.warmup)
            note(f"{args.fsync_records} records with synchronous=FULL")
            samples |= measure(
                {"`record()`, privacy=full, synchronous=FULL (fsync per call)": fsync_log.record},
                args.fsync_records,
                min(args.warmup, 10),
            )
        finally:
            for log in (*logs.values(), fsync_log):
                log.close()

    rows = [(name, f"{percentile(s, 50):.1f}", f"{percentile(s, 99):.1f}", len(s)) for name, s in samples.items()]
    emit("## Audit log: `record()` latency per tool call (WAL, synchronous=NORMAL, one commit each)")
    emit()
    emit(machine_line())
    emit()
    emit(table(["privacy mode", "median µs", "p99 µs", "samples"], rows))


if __name__ == "__main__":
    main()
