"""Load over streamable HTTP: ours against a bare `MCPServer`, stateful and stateless, at 1 to 200 concurrent clients.

`python -m bench.load` (about 5 minutes on 2 cores; `--quick`: about 1 minute, too short to quote). Four servers
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
levels are run one after the other; a level runs in rounds (3 by default), each running the four targets back to
back in a fresh random order. This machine's speed drifts by up to 1.5x from one minute to the next: a ratio is
taken within a round, where the targets ran seconds apart, and the report gives the median of the rounds' ratios.

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
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
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
            runs = _runs(rows, level, target)
            added = [latency for row in runs for latency in row.added]
            seconds = sum(row.seconds for row in runs)
            requests = sum(row.upstream_requests for row in runs)
            reuse = 1 - sum(row.new_connections for row in runs) / requests if requests else 0.0
            lines.append(
                [
                    level,
                    target.label,
                    f"{statistics.median(row.calls / row.seconds for row in runs):.0f}",
                    ms(percentile(added, 50)) if added else "—",
                    ms(percentile(added, 99)) if added else "—",
                    sum(row.errors for row in runs),
                    _median_of(row.server_cpu / row.calls * 1000 for row in runs if row.calls),
                    f"{max(row.peak_rss_kib for row in runs) / 1024:.0f}",
                    f"{max(0.0, reuse) * 100:.1f}",
                    " / ".join(
                        f"{sum(getattr(row, part) for row in runs) / seconds * 100:.0f}"
                        for part in ("server_cpu", "sim_cpu", "client_cpu")
                    ),
                ]
            )
    emit(table(headers, lines))
    emit()
    emit(
        "Ratios, ours against the bare server at the same level and mode (targets: calls/s ≥ 1, p99 ≤ 1.2). "
        "calls/s: the median of the rounds' ratios (each round runs the four servers back to back), then each "
        "round's; p99: over every call of the rounds, the upstream's 50 ms included:"
    )
    emit()
    ratio_lines = []
    for level in levels:
        for stateless in (False, True):
            ours = _runs(rows, level, Target("ours", stateless))
            bare = _runs(rows, level, Target("bare", stateless))
            ours_added = [latency for row in ours for latency in row.added]
            bare_added = [latency for row in bare for latency in row.added]
            if not (ours_added and bare_added):
                continue
            rates = [mine.calls / max(theirs.calls, 1) for mine, theirs in zip(ours, bare, strict=True)]
            ratio_lines.append(
                [
                    level,
                    "stateless" if stateless else "stateful",
                    f"{statistics.median(rates):.2f}",
                    ", ".join(f"{rate:.2f}" for rate in rates),
                    f"{(percentile(ours_added, 99) + LATENCY) / (percentile(bare_added, 99) + LATENCY):.2f}",
                ]
            )
    emit(table(["clients", "mode", "calls/s ours ÷ bare", "per round", "p99 latency ours ÷ bare"], ratio_lines))
    emit()
    emit("Server CPU per call, stateless ÷ stateful (target ≤ 1.2): the median of the rounds' ratios, then each one:")
    emit()
    cpu_lines = []
    for level in levels:
        line: list[object] = [level]
        for server in ("ours", "bare"):
            full = _runs(rows, level, Target(server, False))
            less = _runs(rows, level, Target(server, True))
            ratios = [
                (stateless.server_cpu / stateless.calls) / (stateful.server_cpu / stateful.calls)
                for stateful, stateless in zip(full, less, strict=True)
                if stateful.calls and stateless.calls and stateful.server_cpu > 0
            ]
            line.append(
                f"{statistics.median(ratios):.2f} ({', '.join(f'{ratio:.2f}' for ratio in ratios)})" if ratios else "—"
            )
        cpu_lines.append(line)
    emit(table(["clients", "ours", "bare"], cpu_lines))
    failures = [row for row in rows if row.errors]
    if failures:
        emit()
        for row in failures:
            emit(f"- {row.target.label} at {row.clients} clients: {row.errors} errors, first: `{row.first_error}`")


def _runs(rows: Sequence[Row], level: int, target: Target) -> list[Row]:
    """`target`'s rows at `level`, one per round, in round order."""
    return [row for row in rows if row.clients == level and row.target == target]


def _median_of(values: Iterable[float]) -> str:
    found = list(values)
    return f"{statistics.median(found):.2f}" if found else "—"


async def measure(levels: Sequence[int], warmup: float, window: float, rounds: int) -> None:
    rows: list[Row] = []
    with upstream(LATENCY) as base_url, ExitStack() as stack:
        sim_pid = child_pid(["bench._upstream", "--latency", str(LATENCY)])
        note("starting four servers")
        servers = {target: stack.enter_context(serve(target, base_url)) for target in TARGETS}
        rng = random.Random(0)
        for level in levels:
            for round_ in range(rounds):
                for target in shuffled(TARGETS, rng):
                    note(f"{target.label}: {level} clients, round {round_ + 1} of {rounds}")
                    rows.append(await run_level(servers[target], level, base_url, sim_pid, warmup, window))
        emit("# Load over streamable HTTP")
        emit()
        emit(machine_line())
        emit()
        emit(
            f"Upstream: the simulator answering in {LATENCY * 1000:.0f} ms; {rounds} rounds per level, each running "
            f"the four servers back to back in a fresh random order, {warmup:g} s warm-up then {window:g} s measured "
            f"each; `create_chat_completion` (`{ARGUMENTS['model']}`, max_tokens 16); "
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
    parser.add_argument("--rounds", type=int, default=None, help="rounds per level (default 3, 1 with --quick)")
    parser.add_argument("--no-audit", action="store_true", help="ours with its audit log off (default: on)")
    args = parser.parse_args(argv)
    AUDIT[0] = not args.no_audit
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    window = args.window if args.window is not None else (1.5 if args.quick else 3.0)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    note(f"python {sys.version.split()[0]}; levels {args.levels}")
    anyio.run(measure, args.levels, warmup, window, rounds)


if __name__ == "__main__":
    main()
