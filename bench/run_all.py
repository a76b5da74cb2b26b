"""Every benchmark, one after the other, printing all their tables: `python -m bench.run_all`.

`--quick` runs fewer calls and runs (a smoke test of the harness; its figures are too few to quote).
Each benchmark runs in a process of its own, so one's imports and garbage cannot weigh on the next.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench._harness import REPO, emit, note

#: Module and arguments of each benchmark: (full run, quick run).
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("bench.overhead", [], ["--calls", "30", "--warmup", "5"]),
    ("bench.cold_start", [], ["--runs", "4"]),
    ("bench.catalog", [], []),
    ("bench.fallback", [], ["--rounds", "15", "--warmup", "3", "--later", "10"]),
    ("bench.audit", [], ["--records", "200", "--warmup", "20", "--fsync-records", "20"]),
]

#: Longest any one benchmark may run before the suite gives up on it.
TIMEOUT = 600


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run every openrouter-mcp benchmark and print all tables.")
    parser.add_argument("--quick", action="store_true", help="few samples: check the harness, not the figures")
    parser.add_argument("--profile", action="store_true", help="add cProfile of ours to the overhead benchmark")
    args = parser.parse_args(argv)
    failed = []
    suite_started = time.perf_counter()
    emit("# openrouter-mcp benchmarks")
    emit()
    for module, full, quick in BENCHMARKS:
        extra = quick if args.quick else full
        if args.profile and module == "bench.overhead":
            extra = [*extra, "--profile"]
        note(f"running {module} {' '.join(extra)}")
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", module, *extra], cwd=REPO, timeout=TIMEOUT, check=False)
        note(f"{module} finished in {time.perf_counter() - started:.0f} s (exit code {completed.returncode})")
        if completed.returncode != 0:
            failed.append(module)
    emit(f"Suite wall time: {time.perf_counter() - suite_started:.0f} s.")
    if failed:
        emit(f"**Failed:** {', '.join(failed)} (see stderr); their tables are missing above.")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
