"""Calls per second of one server process against three stateless replicas sharing one PostgreSQL ledger.

`python -m bench.replicas [--clients 100] [--seconds 15] [--latency 0.05] [--replicas 1 3]`

`--clients` MCP clients (the real `mcp.Client` over streamable HTTP, in this process) call `create_chat_completion`
back to back for `--seconds`, spread round-robin over the replicas (`--transport streamable-http --stateless`, each a
process of its own, all with `OPENROUTER_MCP_DATABASE_URL` on one PostgreSQL database). Every call goes through a
persona with a daily budget, so each one is admitted by a reservation in PostgreSQL and settled by its row. The
upstream is the simulator in a process of its own, answering after `--latency` seconds.

Besides calls/s, the table shows the CPU seconds each part used during the timed window (from /proc): on a
2-core machine the load generator, the replicas, PostgreSQL and the simulator share the same two cores, so the
figure says which of them saturates. PostgreSQL is a throwaway cluster (`tests/postgres.py`).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench._harness import BENCH_KEY, emit, machine_line, note, result_text, table, upstream
from tests.postgres import create_database, throwaway_cluster
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (those still there)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                continue
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


async def load(urls: list[str], clients: int, seconds: float) -> tuple[int, int, list[float]]:
    """(answered, failed, latencies): `clients` clients calling back to back until `seconds` have passed."""
    answered = failed = 0
    latencies: list[float] = []
    deadline = 0.0
    started = anyio.Event()

    async def client(i: int) -> None:
        nonlocal answered, failed
        async with (
            httpx2.AsyncClient(timeout=60) as http,
            Client(streamable_http_client(f"{urls[i % len(urls)]}/mcp", http_client=http)) as session,
        ):
            await started.wait()
            while time.monotonic() < deadline:
                begun = time.monotonic()
                result = await session.call_tool("create_chat_completion", {"messages": HELLO, "max_tokens": 16})
                if result.is_error:
                    if not failed:
                        note(f"first error: {result_text(result)[:300]}")
                    failed += 1
                else:
                    answered += 1
                    latencies.append(time.monotonic() - begun)

    with anyio.fail_after(seconds + 120):
        async with anyio.create_task_group() as group:
            for i in range(clients):
                group.start_soon(client, i)
            await anyio.wait_all_tasks_blocked()
            deadline = time.monotonic() + seconds
            started.set()
    return answered, failed, latencies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--latency", type=float, default=0.05, help="upstream seconds per answer (default 0.05)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--no-budget", action="store_true", help="the persona has no budget: no reservations")
    args = parser.parse_args(argv)
    emit("## One process against stateless replicas on one PostgreSQL ledger")
    emit()
    emit(machine_line())
    emit()
    rows = []
    with upstream(args.latency) as base_url, throwaway_cluster() as cluster:
        personas_file = Path(cluster.root) / "personas.toml"
        personas_file.write_text(PERSONAS.split("[personas.budgeted.budget]")[0] if args.no_budget else PERSONAS)
        sim = simulator_pid(os.getpid())
        for count in args.replicas:
            url = create_database(cluster)
            env = server_env(
                None, OPENROUTER_API_KEY=BENCH_KEY, OPENROUTER_BASE_URL=base_url, OPENROUTER_MCP_DATABASE_URL=url
            )
            note(f"{count} replica(s), {args.clients} clients, {args.seconds:g} s")
            with replicas(count, env, personas_file) as servers:
                parts = {
                    "replicas": [server.pid for server in servers],
                    "PostgreSQL": postgres_pids(),
                    "simulator": sim,
                    "load generator": [os.getpid()],
                }
                before = {name: cpu_seconds(pids) for name, pids in parts.items()}
                began = time.monotonic()
                answered, failed, latencies = anyio.run(load, [s.url for s in servers], args.clients, args.seconds)
                elapsed = time.monotonic() - began
                used = {name: cpu_seconds(pids) - before[name] for name, pids in parts.items()}
            latencies.sort()
            p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
            rows.append(
                [
                    str(count),
                    f"{answered / args.seconds:.1f}",
                    str(failed),
                    f"{p50:.0f}",
                    *(f"{used[name] / elapsed:.2f}" for name in parts),
                ]
            )
    emit(
        table(
            ["replicas", "calls/s", "errors", "p50 ms", "CPU: replicas", "PostgreSQL", "simulator", "load generator"],
            rows,
        )
    )
    emit()
    emit("CPU columns: cores in use on average over the timed window (2.00 = both cores of this machine).")


if __name__ == "__main__":
    main()
