"""What every benchmark shares: percentiles, Markdown tables, the upstream process, stdio servers.

Timing rules the benchmarks follow: every figure is compared with a baseline measured in the same
run (machines are noisy), measurements are interleaved (each round in a fresh random order) so
drift affects all targets alike, and every timed result is checked for success, so that an error
can never pass for a fast call.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import json
import os
import platform
import random
import re
import secrets
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, TextContent

REPO = Path(__file__).resolve().parent.parent

#: A fresh fake key per run: the simulator checks it, and nothing real is ever sent anywhere.
BENCH_KEY = "sk-or-v1-bench-" + secrets.token_hex(16)

#: For servers that must not reach any upstream (cold start, payload size): the discard port on loopback.
NOWHERE = "http://127.0.0.1:9/api/v1"

OURS = (sys.executable, "-m", "openrouter_mcp")
BARE = (sys.executable, "-m", "bench.bare_server")
BARE_MINIMAL = (*BARE, "--minimal")

#: Longest wait for a server or the upstream to come up, or for one request, before the run is abandoned.
STARTUP_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0


class HarnessError(RuntimeError):
    """The benchmark could not measure what it claims to (a failed call, a server that did not start)."""


def emit(text: str = "") -> None:
    """Write to stdout (the tables are the benchmarks' product; ruff bans `print`)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """Progress chatter, on stderr so that stdout holds only the report."""
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


# --- statistics and tables ---------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        return cls(len(samples), percentile(samples, 50), percentile(samples, 90), percentile(samples, 99))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; numeric-looking columns are right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]

    def numeric(column: int) -> bool:
        values = [row[column] for row in cells]
        return all(_looks_numeric(v) for v in values) and any(v not in ("", "—") for v in values)

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


_NUMBER = re.compile(r"[+\-−]?[\d.,]+")


def _looks_numeric(text: str) -> bool:
    # "1.23", "+0.42", "52.85 / 94.93"; a blank or "—" cell does not spoil a numeric column.
    return text in ("", "—") or all(_NUMBER.fullmatch(part) for part in text.split(" / "))


def machine_line() -> str:
    """One line naming what the figures were measured on, since they mean nothing without it."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load}, {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )


def shuffled(items: Sequence[Any], rng: random.Random) -> list[Any]:
    """`items` in a fresh random order for one round.

    Not a rotation: rotating keeps every item behind the same neighbour, and whatever a call leaves
    running after it answers (a server finishing its write, the upstream logging) then always lands
    on the same next call. A seeded `rng` keeps runs reproducible.
    """
    order = list(items)
    rng.shuffle(order)
    return order


# --- processes ---------------------------------------------------------------------------------


def server_env(base_url: str, key: str = BENCH_KEY, *, audit: bool = True) -> dict[str, str]:
    """Environment for a spawned server: the key comes from the environment only, never argv.

    The audit log stays on by default, as users run it, but in a fresh file of this run's scratch
    directory (`audit_db()`): benchmark calls must never land in the user's real log. `audit=False`
    turns it off (`OPENROUTER_MCP_AUDIT=off`); a file is named then too, so that even a server
    ignoring the switch would not write to the real log, and a benchmark can check the file never appears.
    """
    env = {
        "OPENROUTER_API_KEY": key,
        "OPENROUTER_BASE_URL": base_url,
        # The checkout, so `-m bench.bare_server` imports and `-m openrouter_mcp` finds the same code.
        "PYTHONPATH": str(REPO),
        "OPENROUTER_MCP_AUDIT_DB": str(audit_db()),
    }
    if not audit:
        env["OPENROUTER_MCP_AUDIT"] = "off"
    return env


@functools.cache
def scratch_dir() -> Path:
    """This benchmark run's temporary directory, made on first use and removed when the process exits.

    Each benchmark runs in a process of its own (`run_all`), so this is one directory per benchmark run.
    Every server has exited by then: they are all spawned inside context managers that stop them.
    """
    directory = tempfile.TemporaryDirectory(prefix="openrouter-mcp-bench-")
    atexit.register(directory.cleanup)
    return Path(directory.name)


_AUDIT_FILES = itertools.count(1)


def audit_db() -> Path:
    """A new audit database path in `scratch_dir()`, one per server, so no server reads another's rows (budgets)."""
    return scratch_dir() / f"audit-{next(_AUDIT_FILES)}.sqlite3"


#: How the benchmarks' client connects: "legacy" is the `initialize` handshake every deployed host speaks
#: today; "auto" is the SDK's default, which adopts the stateless 2026-07-28 protocol when the server has it.
MODES = ("legacy", "auto")


def stdio_client(argv: Sequence[str], env: dict[str, str], mode: str = "legacy") -> Client:
    """The real MCP client, spawning `argv` and talking to it over stdin/stdout."""
    params = StdioServerParameters(command=argv[0], args=list(argv[1:]), env=env, cwd=REPO)
    # No response cache: every request must reach the server we are measuring.
    return Client(params, mode=mode, cache=None, read_timeout_seconds=CALL_TIMEOUT)


def checked(result: CallToolResult, what: str) -> CallToolResult:
    """`result`, if it is a success; a run that timed errors would report nonsense.

    Raises:
        HarnessError: the tool answered with `isError`.
    """
    if result.is_error:
        raise HarnessError(f"{what} failed: {result_text(result)[:500]}")
    return result


def result_text(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


@contextmanager
def upstream(latency: float, key: str = BENCH_KEY) -> Iterator[str]:
    """The simulated OpenRouter in its own process (so it never competes for our GIL); yields its base URL.

    Raises:
        HarnessError: it did not come up within STARTUP_TIMEOUT.
    """
    with upstream_process(["-m", "bench._upstream", "--latency", str(latency)], key) as base_url:
        yield base_url


@contextmanager
def upstream_process(args: Sequence[str], key: str = BENCH_KEY) -> Iterator[str]:
    """`python ARGS`, a simulator that prints its base URL on one line and serves until stdin closes; yields the URL.

    Raises:
        HarnessError: it did not come up within STARTUP_TIMEOUT.
    """
    env = {**os.environ, "OPENROUTER_API_KEY": key, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            raise HarnessError(f"the upstream simulator did not start (exit code {process.poll()}, said {line!r})")
        yield line
    finally:
        _stop(process)
        if process.stdout is not None:
            process.stdout.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def child_pid(marker: Sequence[str]) -> int:
    """The pid of our one child process whose argv ends with `marker`.

    Raises:
        HarnessError: there is not exactly one such child.
    """
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and [a.decode() for a in argv[-len(marker) :]] == list(marker):
            found.append(int(entry.name))
    if len(found) != 1:
        raise HarnessError(f"expected one child running {' '.join(marker)}, found {found}")
    return found[0]


def process_tree(pid: int) -> list[int]:
    """`pid` and every process descended from it (ours starts its audit log's writer process), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in KiB, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def tree_memory_kib(pid: int) -> dict[str, int]:
    """`memory_kib` summed over `pid` and its descendants (ours with its audit log's writer process); the summed
    VmHWM is an upper bound of their peak together."""
    total = {"VmRSS": 0, "VmHWM": 0}
    for member in process_tree(pid):
        try:
            for name, kib in memory_kib(member).items():
                total[name] += kib
        except OSError:
            continue  # it ended meanwhile
    return total


class RawStdio:
    """A bare JSON-RPC exchange with a stdio server, one line at a time: the exact bytes on the wire.

    Used where the real client would hide what we measure (payload sizes, import timing).
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str], *, extra_args: Sequence[str] = ()) -> None:
        # stderr to a file, not a pipe: nobody reads it until the end, and a full pipe would block the server.
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [argv[0], *extra_args, *argv[1:]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**_inherited_env(), **env},
            cwd=REPO,
        )
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, *, notify: bool = False) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        if not notify:
            self._next_id += 1
            message["id"] = self._next_id
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def receive(self) -> bytes:
        """The next line the server writes (notifications included), without its newline.

        Raises:
            HarnessError: nothing arrived within CALL_TIMEOUT, or the server closed stdout.
        """
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], CALL_TIMEOUT)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            raise HarnessError(f"the server said nothing (exit code {self.process.poll()})")
        return line.rstrip(b"\n")

    def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], bytes]:
        """Send a request; its parsed response and raw line, skipping notifications in between.

        Raises:
            HarnessError: the response is an error, or none came.
        """
        self.send(method, params)
        while True:
            raw = self.receive()
            message = json.loads(raw)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise HarnessError(f"{method} failed: {message['error']}")
                return message, raw

    def handshake(self) -> dict[str, Any]:
        """The legacy `initialize` handshake, as today's hosts do it; returns the initialize result."""
        from mcp_types.version import LATEST_HANDSHAKE_VERSION

        response, _ = self.request(
            "initialize",
            {
                "protocolVersion": LATEST_HANDSHAKE_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "openrouter-mcp-bench", "version": "0"},
            },
        )
        self.send("notifications/initialized", notify=True)
        return dict(response["result"])

    def close(self) -> bytes:
        """Close stdin (the stdio way to stop a server), wait for the exit; returns everything on stderr."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.seek(0)
        stderr = self._stderr.read()
        self._stderr.close()
        return stderr

    def __enter__(self) -> RawStdio:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.close()


def _inherited_env() -> dict[str, str]:
    # What the SDK's stdio client passes on too, so raw and SDK spawns see the same environment.
    from mcp.client.stdio import get_default_environment

    return get_default_environment()
