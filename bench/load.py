"""Load over streamable HTTP: ours against a bare `MCPServer`, stateful and stateless, at 1 to 200 concurrent clients.

`python -m bench.load` (about 3 minutes on 2 cores; `--quick`: about 1 minute, too short to quote). Four servers
run side by side in one run against one simulated OpenRouter (its own process, 50 ms per answer):

| target | what |
|---|---|
| ours | `python -m openrouter_mcp --transport streamable-http` as users run it (audit log on, in a scratch file), |
|      | with the per-client limits raised: every benchmark client comes from one address, 127.0.0.1 |
| bare | `bench.bare_server --port`: an `MCPServer` whose tool makes the same upstream request with one shared |
|      | `httpx2.AsyncClient` (the same pool size as ours), and nothing else |

each stateful (one session per client: `initialize` first, untimed) and `--stateless`. The clients are raw
JSON-RPC over httpx2 (one `AsyncClient`, so one connection, per client), in this process: a `tools/call` of
`create_chat_completion` after another, as fast as answers come: a warm-up until every client has had an answer
(so every upstream connection a level needs is open) and a few seconds more, then a measured window in which the
calls that end are counted (a window shorter than the slowest call still sees it). The
levels are run one after the other and, within a level, the targets in a fresh random order.

Per target and level: calls/s answered in the window; p50 and p99 of the latency *added* over the upstream's 50 ms;
errors (any non-200, JSON-RPC error or `isError` result: must be 0); server CPU seconds per 1,000 calls; the
server's peak RSS so far (VmHWM), CPU and memory both counting the processes the server started (ours' audit log
writer); the share of upstream requests that reused a kept-alive connection (from the simulator's own count of
accepted connections and served requests); and the CPU use of the server, the simulator and this client process
over the window, which says which side saturated (100% is one core).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2

from bench._harness import (
    BARE,
    OURS,
    REPO,
    STARTUP_TIMEOUT,
    HarnessError,
    child_pid,
    emit,
    machine_line,
    ms,
    note,
    percentile,
    process_tree,
    server_env,
    shuffled,
    table,
    tree_memory_kib,
    upstream,
)
from bench._jsonrpc import Run, Tally, client

LEVELS = (1, 10, 50, 100, 200)
LATENCY = 0.05
ARGUMENTS = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16}
#: Ours with limits no single real client reaches but every benchmark client shares (one address).
OURS_FLAGS = ("--max-concurrent-per-client", "10000", "--max-sessions-per-client", "10000", "--log-level", "WARNING")
TICKS = os.sysconf("SC_CLK_TCK")
#: Whether ours records every call in its audit log (`--no-audit` turns it off, to see what it costs under load).
AUDIT = [True]


@dataclass(frozen=True)
class Target:
    server: str  # "ours" or "bare"
    stateless: bool

    @property
    def label(self) -> str:
        return f"{self.server} {'stateless' if self.stateless else 'stateful'}"


TARGETS = tuple(Target(server, stateless) for server in ("ours", "bare") for stateless in (False, True))


@dataclass
class Served:
    target: Target
    url: str
    pid: int


@dataclass
class Row:
    target: Target
    clients: int
    calls: int
    seconds: float
    added: list[float]
    errors: int
    server_cpu: float
    sim_cpu: float
    client_cpu: float
    peak_rss_kib: int
    upstream_requests: int
    new_connections: int
    first_error: str = ""

    @property
    def reuse(self) -> float:
        if self.upstream_requests == 0:
            return 0.0
        return max(0.0, 1 - self.new_connections / self.upstream_requests)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (all its threads) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` of `pid` and its descendants: a server's CPU includes its audit log's writer process."""
    total = 0.0
    for member in process_tree(pid):
        try:
            total += cpu_seconds(member)
        except OSError:
            continue  # ended meanwhile
    return total


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until something accepts connections on `port` (bounded). Raises: HarnessError."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HarnessError(f"a server exited at start-up with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise HarnessError(f"nothing listened on port {port} within {STARTUP_TIMEOUT:g} s")


@contextmanager
def serve(target: Target, base_url: str) -> Iterator[Served]:
    port = free_port()
    flags = ("--stateless",) if target.stateless else ()
    if target.server == "ours":
        argv = [*OURS, "--transport", "streamable-http", "--port", str(port), *OURS_FLAGS, *flags]
    else:
        argv = [*BARE, "--port", str(port), *flags]
    env = {**server_env(base_url, audit=AUDIT[0]), "PYTHONPATH": str(REPO)}
    quiet = subprocess.DEVNULL
    process = subprocess.Popen(argv, env=env, cwd=REPO, stdin=quiet, stdout=quiet, stderr=quiet)
    try:
        wait_listening(port, process)
        yield Served(target, f"http://127.0.0.1:{port}/mcp", process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def upstream_counts(http: httpx2.AsyncClient, base_url: str) -> tuple[int, int]:
    """(connections accepted, requests served) by the simulator so far; this request opens one connection."""
    origin = base_url.split("/api/", 1)[0]
    answer = (await http.get(f"{origin}/_bench/stats", headers={"connection": "close"})).json()
    return int(answer["connections"]), int(answer["requests"])


async def run_level(served: Served, clients: int, base_url: str, sim_pid: int, warmup: float, window: float) -> Row:
    """Warm up until every client has had an answer and `warmup` more seconds, then measure `window` seconds."""
    tally = Tally()
    run = Run(clients)
    start = anyio.Event()
    async with httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0)) as stats:
        async with anyio.create_task_group() as group:
            for _ in range(clients):
                group.start_soon(client, served.url, served.target.stateless, start, run, tally, ARGUMENTS)
            with anyio.move_on_after(60):
                await run.ready.wait()  # every session is open before the first call
            start.set()
            with anyio.move_on_after(60):
                await run.warmed.wait()
            await anyio.sleep(warmup)
            connections, requests = await upstream_counts(stats, base_url)
            server_cpu, sim_cpu, client_cpu = tree_cpu_seconds(served.pid), cpu_seconds(sim_pid), time.process_time()
            opens = anyio.current_time()
            run.window = (opens, opens + window)
            await anyio.sleep_until(opens + window)
            server_cpu = tree_cpu_seconds(served.pid) - server_cpu
            sim_cpu = cpu_seconds(sim_pid) - sim_cpu
            client_cpu = time.process_time() - client_cpu
            connections_after, requests_after = await upstream_counts(stats, base_url)
            run.stop.set()
    return Row(
        target=served.target,
        clients=clients,
        calls=tally.calls,
        seconds=window,
        added=[latency - LATENCY for latency in tally.latencies],
        errors=tally.errors,
        server_cpu=server_cpu,
        sim_cpu=sim_cpu,
        client_cpu=client_cpu,
        peak_rss_kib=tree_memory_kib(served.pid)["VmHWM"],
        upstream_requests=requests_after - requests,
        new_connections=max(0, connections_after - connections - 1),  # less the second stats request's own
        first_error=tally.first_error,
    )


def report(rows: Sequence[Row], levels: Sequence[int]) -> None:
    headers = [
        "clients",
        "target",
        "calls/s",
        "added p50 ms",
        "added p99 ms",
        "errors",
        "server CPU s / 1,000 calls",
        "peak RSS MiB",
        "upstream reuse %",
        "CPU % server / sim / client",
    ]
    lines = []
    for level in levels:
        for target in TARGETS:
            row = next(r for r in rows if r.clients == level and r.target == target)
            rate = row.calls / row.seconds
            lines.append(
                [
                    level,
                    target.label,
                    f"{rate:.0f}",
                    ms(percentile(row.added, 50)) if row.added else "—",
                    ms(percentile(row.added, 99)) if row.added else "—",
                    row.errors,
                    f"{row.server_cpu / row.calls * 1000:.2f}" if row.calls else "—",
                    f"{row.peak_rss_kib / 1024:.0f}",
                    f"{row.reuse * 100:.1f}",
                    " / ".join(
                        f"{cpu / row.seconds * 100:.0f}" for cpu in (row.server_cpu, row.sim_cpu, row.client_cpu)
                    ),  # noqa: E501
                ]
            )
    emit(table(headers, lines))
    emit()
    emit("Ratios, ours against the bare server at the same level and mode (targets: calls/s ≥ 1, p99 ≤ 1.2):")
    emit()
    ratio_lines = []
    for level in levels:
        for stateless in (False, True):
            ours = next(r for r in rows if r.clients == level and r.target == Target("ours", stateless))
            bare = next(r for r in rows if r.clients == level and r.target == Target("bare", stateless))
            if not (ours.added and bare.added):
                continue
            ratio_lines.append(
                [
                    level,
                    "stateless" if stateless else "stateful",
                    f"{ours.calls / max(bare.calls, 1):.2f}",
                    f"{(percentile(ours.added, 99) + LATENCY) / (percentile(bare.added, 99) + LATENCY):.2f}",
                ]
            )
    emit(table(["clients", "mode", "calls/s ours ÷ bare", "p99 latency ours ÷ bare"], ratio_lines))
    emit()
    emit("Server CPU per call, stateless ÷ stateful (target ≤ 1.2):")
    emit()
    cpu_lines = []
    for level in levels:
        line: list[object] = [level]
        for server in ("ours", "bare"):
            full = next(r for r in rows if r.clients == level and r.target == Target(server, False))
            less = next(r for r in rows if r.clients == level and r.target == Target(server, True))
            if full.calls and less.calls and full.server_cpu > 0:
                line.append(f"{(less.server_cpu / less.calls) / (full.server_cpu / full.calls):.2f}")
            else:
                line.append("—")
        cpu_lines.append(line)
    emit(table(["clients", "ours", "bare"], cpu_lines))
    failures = [row for row in rows if row.errors]
    if failures:
        emit()
        for row in failures:
            emit(f"- {row.target.label} at {row.clients} clients: {row.errors} errors, first: `{row.first_error}`")


async def measure(levels: Sequence[int], warmup: float, window: float) -> None:
    rows: list[Row] = []
    with upstream(LATENCY) as base_url, ExitStack() as stack:
        sim_pid = child_pid(["bench._upstream", "--latency", str(LATENCY)])
        note("starting four servers")
        servers = {target: stack.enter_context(serve(target, base_url)) for target in TARGETS}
        rng = random.Random(0)
        for level in levels:
            for target in shuffled(TARGETS, rng):
                note(f"{target.label}: {level} clients")
                rows.append(await run_level(servers[target], level, base_url, sim_pid, warmup, window))
        emit("# Load over streamable HTTP")
        emit()
        emit(machine_line())
        emit()
        emit(
            f"Upstream: the simulator answering in {LATENCY * 1000:.0f} ms; {warmup:g} s warm-up then {window:g} s "
            f"measured per target and level; `create_chat_completion` (`{ARGUMENTS['model']}`, max_tokens 16); "
            f"ours' audit log {'on' if AUDIT[0] else 'off'}."
        )
        emit()
        report(rows, levels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Streamable-HTTP load: ours against a bare MCPServer.")
    parser.add_argument("--quick", action="store_true", help="short windows: check the harness, not the figures")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="concurrent clients per level")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up per target and level")
    parser.add_argument("--window", type=float, default=None, help="seconds measured per target and level")
    parser.add_argument("--no-audit", action="store_true", help="ours with its audit log off (default: on)")
    args = parser.parse_args(argv)
    AUDIT[0] = not args.no_audit
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.5)
    window = args.window if args.window is not None else (1.5 if args.quick else 5.0)
    note(f"python {sys.version.split()[0]}; levels {args.levels}")
    anyio.run(measure, args.levels, warmup, window)


if __name__ == "__main__":
    main()
