"""Calls per second of one server process against three stateless replicas sharing one PostgreSQL ledger.

`python -m bench.replicas [--clients 100] [--seconds 15] [--warmup 2] [--latency 0.05] [--replicas 1 3]
[--processes 1] [--no-budget]`

`--clients` clients call `create_chat_completion` back to back, spread round-robin over the replicas
(`--transport streamable-http --stateless`, each a process of its own, all with `OPENROUTER_MCP_DATABASE_URL` on one
PostgreSQL database). Every call goes through a persona with a daily budget (none with `--no-budget`), so each one
is admitted by a reservation in PostgreSQL and settled by its row. The upstream is the simulator in a process of
its own, answering after `--latency` seconds.

The clients are the raw JSON-RPC client of `bench/_jsonrpc.py` (one connection each), in `--processes` load-generator
processes of their own: the real `mcp.Client` costs the load generator about as much CPU per call as a replica,
which on 2 cores measured the client as much as the servers. Each run warms up until every client has had an answer
and `--warmup` seconds more, then counts the calls that end in a window of `--seconds` (opened in every
load-generator process at once). Errors (non-200, JSON-RPC errors, `isError` results, in the warm-up too) are
counted and must be 0.

Besides calls/s and the median latency, the table shows the CPU each part used during the window (from /proc): the
replicas, PostgreSQL (our cluster's postmaster and every backend, those the pools open during the window included),
the simulator, the load generator, and anything else the machine did (from /proc/stat: other processes on a shared
machine). Then the same per answered call, in CPU milliseconds: on a 2-core machine these parts share the same two
cores, so the figures say which of them saturates. The report ends with what those milliseconds allow: all parts on
the machine's cores, and the replicas on the cores they can use (a replica is one event loop: one core at most); and
three replicas' calls/s over one's, as measured and corrected for the machine's speed, which drifts between rows on
a shared host (the load generator does the same work per call in every row: its CPU per call is the yardstick).
PostgreSQL is a throwaway cluster (`tests/postgres.py`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from bench._harness import (
    BENCH_KEY,
    REPO,
    STARTUP_TIMEOUT,
    HarnessError,
    _stop,
    emit,
    machine_line,
    note,
    table,
    upstream,
)
from bench._jsonrpc import Run, Tally, client
from tests.postgres import PostgresCluster, create_database, throwaway_cluster
from tests.processes import ServerProcess, http_server, server_env

PERSONAS = """
default = "budgeted"
[personas.budgeted]
models = ["openai/gpt-4o-mini"]
rank_by = []
[personas.budgeted.budget]
daily = 1000.0
"""
HELLO = [{"role": "user", "content": "One short sentence, please."}]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each of these processes (those still there)."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return used


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (every core, every process: /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICKS


def postgres_pids(cluster: PostgresCluster) -> list[int]:
    """Our cluster's postmaster and its children, backends included: the pool opens backends during the load, so
    this is read at both ends of the window (a backend that appeared in it counts from zero)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == postmaster:
                pids.append(int(entry.name))
    return pids


def simulator_pid(own: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"bench._upstream" in (entry / "cmdline").read_bytes() and int(entry.name) != own:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@contextmanager
def replicas(count: int, env: dict[str, str], personas_file: Path) -> Iterator[list[ServerProcess]]:
    with ExitStack() as stack:
        # Every client is the same unauthenticated user here: lift the per-client cap (4 by default).
        args = ("--stateless", "--personas", str(personas_file), "--max-concurrent-per-client", "10000")
        servers = [stack.enter_context(http_server(*args, env=env)) for _ in range(count)]
        yield servers


async def worker(urls: list[str], clients: int, offset: int, warmup: float, arguments: dict[str, Any]) -> None:
    """One load-generator process (`--worker`): `clients` raw JSON-RPC clients, client `i` on `urls[(offset + i) %
    len(urls)]`. Says `warm` on stdout once every client has had an answer and `warmup` seconds more, opens its
    window at the `go SECONDS` line on stdin, and after it prints its tally as one JSON line.
    """
    run, tally, start = Run(clients), Tally(), anyio.Event()
    with anyio.fail_after(STARTUP_TIMEOUT * 4 + warmup):
        async with anyio.create_task_group() as group:
            for i in range(clients):
                url = f"{urls[(offset + i) % len(urls)]}/mcp"
                group.start_soon(client, url, True, start, run, tally, arguments)
            await run.ready.wait()
            start.set()
            await run.warmed.wait()
            await anyio.sleep(warmup)
            sys.stdout.write("warm\n")
            sys.stdout.flush()
            command = (await anyio.to_thread.run_sync(sys.stdin.readline)).split()
            if command[:1] != ["go"]:
                raise HarnessError(f"a load-generator process was told {command!r}, not `go SECONDS`")
            opens = anyio.current_time()
            run.window = (opens, opens + float(command[1]))
            await anyio.sleep_until(run.window[1])
            run.stop.set()
    answer = {"calls": tally.calls, "errors": tally.errors, "first_error": tally.first_error}
    sys.stdout.write(json.dumps(answer | {"latencies": tally.latencies}) + "\n")
    sys.stdout.flush()


def line_of(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The next line a load-generator process writes, within `timeout` seconds.

    Raises:
        HarnessError: it wrote nothing in time, or exited.
    """
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline().decode() if ready else ""
    if not line:
        raise HarnessError(f"a load-generator process said nothing within {timeout:g} s (exit code {process.poll()})")
    return line


@contextmanager
def load_generators(
    urls: list[str], clients: int, processes: int, warmup: float
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`processes` load-generator processes sharing `clients` clients, all warmed up; stopped at the end."""
    argv = [sys.executable, "-m", "bench.replicas", "--worker", "--urls", *urls, "--warmup", str(warmup)]
    share, extra = divmod(clients, processes)
    offsets = [i * share + min(i, extra) for i in range(processes)]
    with ExitStack() as stack:
        generators = []
        for i, offset in enumerate(offsets):
            count = share + (1 if i < extra else 0)
            command = [*argv, "--clients", str(count), "--offset", str(offset)]
            process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert process.stdout is not None
            stack.callback(process.stdout.close)
            stack.callback(_stop, process)  # closes its stdin first: a process still waiting for `go` then exits
            generators.append(process)
        for process in generators:
            if line_of(process, STARTUP_TIMEOUT * 4 + warmup).strip() != "warm":
                raise HarnessError("a load-generator process did not warm up")
        yield generators


def measure(
    urls: list[str], parts: dict[str, Callable[[], list[int]]], args: argparse.Namespace
) -> tuple[Tally, list[float], dict[str, float], float]:
    """(tally, latencies, CPU seconds per part, elapsed) of one window of `args.seconds` over warmed-up clients.

    `parts`: what to measure the CPU of, each with how to find its processes (asked at both ends of the window).
    The CPU is read when the window closes, before the clients finish the calls they still have in flight.
    """
    with load_generators(urls, args.clients, args.processes, args.warmup) as generators:
        generator_pids = [process.pid for process in generators]
        parts = {**parts, "load generator": functools.partial(list, generator_pids)}
        before = {name: cpu_by_pid(found()) for name, found in parts.items()}
        busy = machine_busy()
        began = time.monotonic()
        for process in generators:
            assert process.stdin is not None
            process.stdin.write(f"go {args.seconds}\n".encode())
            process.stdin.flush()
        time.sleep(max(0.0, began + args.seconds - time.monotonic()))  # the window, as the generators time it
        elapsed = time.monotonic() - began
        busy = machine_busy() - busy
        after = {name: cpu_by_pid(found()) for name, found in parts.items()}
        answers = [json.loads(line_of(process, 60)) for process in generators]
    used = {name: sum(cpu - before[name].get(pid, 0.0) for pid, cpu in after[name].items()) for name in parts}
    used["anything else"] = max(0.0, busy - sum(used.values()))
    tally = Tally()
    latencies: list[float] = []
    for answer in answers:
        tally.calls += answer["calls"]
        tally.errors += answer["errors"]
        tally.first_error = tally.first_error or answer["first_error"]
        latencies += answer["latencies"]
    return tally, latencies, used, elapsed


def ceiling(replicas: int, per_call: dict[str, float]) -> str:
    """The calls/s the machine's cores allow at these CPU milliseconds per call, and one replica's core."""
    cores = os.cpu_count() or 1
    total = sum(per_call.values())
    parts = " + ".join(f"{ms:.2f}" for ms in per_call.values())
    line = (
        f"{replicas} replica(s): {total:.2f} ms of CPU per call in all ({parts}) "
        f"-> at most {cores * 1000 / total:.0f} calls/s on {cores} cores"
    )
    # A replica is one event loop, one thread at a time: one core at most, however many the machine has.
    single = min(replicas, cores) * 1000 / per_call["replicas"]
    return line + f"; {replicas} replica process(es) at most {single:.0f} calls/s ({min(replicas, cores)} core(s))"


def speedups(measured: list[tuple[int, float, float]]) -> list[str]:
    """Each count's calls/s over the first's, as measured and corrected for the machine's speed.

    The machine's speed drifts between rows (a shared host): the load generator does the same work per call in
    every row, so the ratio of its CPU per call says how much slower one row's machine was than another's.
    """
    if len(measured) < 2:
        return []
    base_count, base_rate, base_client = measured[0]
    return [
        f"{count} replica(s) / {base_count}: {rate / base_rate:.2f} as measured, "
        f"{rate / base_rate * client / base_client:.2f} corrected for the machine's speed in each row "
        f"(the load generator's CPU per call: {base_client:.2f} ms, then {client:.2f} ms)"
        for count, rate, client in measured[1:]
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0, help="the measured window (default 15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before the window (default 2)")
    parser.add_argument("--latency", type=float, default=0.05, help="upstream seconds per answer (default 0.05)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--processes", type=int, default=1, help="load-generator processes (default 1)")
    parser.add_argument("--no-budget", action="store_true", help="the persona has no budget: no reservations")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--urls", nargs="+", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    arguments: dict[str, Any] = {"messages": HELLO, "max_tokens": 16}
    if args.worker:
        anyio.run(worker, args.urls, args.clients, args.offset, args.warmup, arguments)
        return
    emit("## One process against stateless replicas on one PostgreSQL ledger")
    emit()
    emit(machine_line())
    emit()
    rows = []
    first_errors: list[str] = []
    ceilings: list[str] = []
    measured: list[tuple[int, float, float]] = []  # (replicas, calls/s, the load generator's ms per call)
    with upstream(args.latency) as base_url, throwaway_cluster() as cluster:
        personas_file = Path(cluster.root) / "personas.toml"
        personas_file.write_text(PERSONAS.split("[personas.budgeted.budget]")[0] if args.no_budget else PERSONAS)
        sim = simulator_pid(os.getpid())
        for count in args.replicas:
            url = create_database(cluster)
            env = server_env(
                None, OPENROUTER_API_KEY=BENCH_KEY, OPENROUTER_BASE_URL=base_url, OPENROUTER_MCP_DATABASE_URL=url
            )
            note(f"{count} replica(s), {args.clients} clients in {args.processes} process(es), {args.seconds:g} s")
            with replicas(count, env, personas_file) as servers:
                replica_pids = [server.pid for server in servers]
                parts: dict[str, Callable[[], list[int]]] = {
                    "replicas": functools.partial(list, replica_pids),
                    "PostgreSQL": functools.partial(postgres_pids, cluster),
                    "simulator": functools.partial(list, sim),
                }
                tally, latencies, used, elapsed = measure([s.url for s in servers], parts, args)
            if tally.first_error:
                first_errors.append(f"{count} replica(s): {tally.first_error}")
            latencies.sort()
            p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
            rate = tally.calls / args.seconds
            per_call = {name: used[name] / tally.calls * 1000 for name in list(used)[:4]} if tally.calls else {}
            rows.append(
                [
                    str(count),
                    f"{rate:.1f}",
                    str(tally.errors),
                    f"{p50:.0f}",
                    *(f"{used[name] / elapsed:.2f}" for name in used),
                    *(f"{ms:.2f}" for ms in per_call.values()),
                ]
            )
            if per_call:
                ceilings.append(ceiling(count, per_call))
                measured.append((count, rate, per_call["load generator"]))
    names = ["replicas", "PostgreSQL", "simulator", "load generator"]
    emit(
        table(
            [
                "replicas",
                "calls/s",
                "errors",
                "p50 ms",
                *(f"CPU: {name}" if i == 0 else name for i, name in enumerate(names)),
                "anything else",
                *(f"CPU ms/call: {name}" if i == 0 else name for i, name in enumerate(names)),
            ],
            rows,
        )
    )
    emit()
    emit(
        "CPU columns: cores in use on average over the timed window (2.00 = both cores of this machine); "
        "anything else: the rest of the machine's busy time (other processes, the kernel's own work); "
        "CPU ms/call: CPU milliseconds each part used per answered call."
    )
    emit()
    emit("What the CPU per call allows (each part's milliseconds as measured in its row):")
    emit()
    for line in ceilings + speedups(measured) + [f"first error, {line}" for line in first_errors]:
        emit(f"- {line}")


if __name__ == "__main__":
    main()
