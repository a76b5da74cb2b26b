"""The catalog's costs: `tools/list` size, upstream fetches under concurrent reads, resident memory.

`python -m bench.catalog [--readers 50] [--latency 0.05]`

(a) The bytes of ours' `tools/list` answer as compact JSON, in total and per tool: hosts send this to
    the calling model on every turn. Read from the wire after a legacy `initialize`, as hosts do.
(b) `--readers` concurrent catalog reads against a freshly started server (tool
    `list_available_models` and resource `openrouter://models`, each on its own fresh server),
    counting the upstream GET /models requests with the simulator's `count`. The simulator answers
    after `--latency` seconds, so every reader arrives while the first fetch is still in flight.
(c) Resident memory (VmRSS from /proc/<pid>/status) of ours once the catalog is loaded, against the
    bare server (`bench/bare_server.py`) after one catalog call, and both idle after `tools/list`; ours with
    the audit log's writer process it starts (`WRITER_START` after it starts serving), summed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client

from bench._harness import (
    BARE,
    BENCH_KEY,
    NOWHERE,
    OURS,
    HarnessError,
    RawStdio,
    checked,
    child_pid,
    emit,
    machine_line,
    note,
    server_env,
    stdio_client,
    table,
    tree_memory_kib,
)
from openrouter_mcp.simulator import Simulator, serve_in_thread

#: The issue's targets.
TARGET_TOOLS_BYTES = 16 * 1024
#: Long enough for ours to have started its audit log's writer process (`state.WARM_UP_DELAY` and its start-up).
WRITER_START = 1.0
TARGET_FETCHES = 1
TARGET_RSS_OVER_BARE_KIB = 15 * 1024

MODELS_URI = "openrouter://models"


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


# --- (a) tools/list size -----------------------------------------------------------------------


def tools_list_size() -> None:
    with RawStdio(OURS, server_env(NOWHERE)) as server:
        server.handshake()
        response, wire = server.request("tools/list")
    tools: list[dict[str, Any]] = response["result"]["tools"]
    rows = []
    for tool in sorted(tools, key=lambda t: -compact(t)):
        parts = [compact(tool.get(key)) if key in tool else 0 for key in ("description", "inputSchema", "outputSchema")]
        rows.append([f"`{tool['name']}`", compact(tool), *parts, compact(tool) - sum(parts)])
    total = compact(response["result"])
    emit("## `tools/list` payload of ours (compact JSON)")
    emit()
    emit(
        f"{len(tools)} tools, **{total:,} bytes** ({total / 1024:.1f} KiB) as compact JSON; the wire line was "
        f"{len(wire):,} bytes. Target: < {TARGET_TOOLS_BYTES:,} bytes (16 KiB): "
        f"{'met' if total < TARGET_TOOLS_BYTES else 'NOT met'}."
    )
    emit()
    emit(table(["tool", "total (B)", "description (B)", "inputSchema (B)", "outputSchema (B)", "other (B)"], rows))
    emit()
    emit("`other` is the name, title, annotations and JSON punctuation.")
    emit()


# --- (b) concurrent reads, (c) memory ----------------------------------------------------------


@dataclass
class Reads:
    how: str
    readers: int
    models_fetches: int
    other_requests: dict[str, int]
    seconds: float
    rss_idle_kib: int
    rss_after_kib: int
    hwm_after_kib: int


async def concurrent_reads(
    simulator: Simulator, base_url: str, how: str, readers: int, read: Callable[[Client], Coroutine[Any, Any, None]]
) -> Reads:
    """Start a fresh ours, then `readers` concurrent `read`s; count what reached the upstream.

    Raises:
        HarnessError: a read failed.
    """
    async with stdio_client(OURS, server_env(base_url)) as client:
        await client.list_tools()
        await anyio.sleep(WRITER_START)
        pid = child_pid(OURS[1:])
        idle = tree_memory_kib(pid)["VmRSS"]
        simulator.reset()
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(readers):
                group.start_soon(read, client)
        seconds = time.perf_counter() - started
        after = tree_memory_kib(pid)
    paths: dict[str, int] = {}
    for request in simulator.requests:
        paths[request.path] = paths.get(request.path, 0) + 1
    fetches = paths.pop("/models", 0)
    return Reads(how, readers, fetches, paths, seconds, idle, after["VmRSS"], after["VmHWM"])


async def bare_memory(base_url: str) -> tuple[int, int, int]:
    """VmRSS of the bare server idle after `tools/list`, then VmRSS and VmHWM after one catalog call."""
    async with stdio_client(BARE, server_env(base_url)) as client:
        await client.list_tools()
        pid = child_pid(BARE[1:])
        idle = tree_memory_kib(pid)["VmRSS"]
        checked(await client.call_tool("list_available_models", {"limit": 5}), "bare list_available_models")
        after = tree_memory_kib(pid)
    return idle, after["VmRSS"], after["VmHWM"]


async def reads_and_memory(readers: int, latency: float) -> tuple[list[Reads], tuple[int, int, int], int]:
    simulator = Simulator(api_key=BENCH_KEY, latency=latency)
    with serve_in_thread(simulator) as base_url:
        async with stdio_client(OURS, server_env(base_url)) as probe:
            tools = {tool.name for tool in (await probe.list_tools()).tools}
            resources = {str(resource.uri) for resource in (await probe.list_resources()).resources}

        async def tool_read(client: Client) -> None:
            checked(await client.call_tool("list_available_models", {"limit": 5}), "list_available_models")

        async def resource_read(client: Client) -> None:
            result = await client.read_resource(MODELS_URI)
            if not result.contents:
                raise HarnessError(f"{MODELS_URI} read returned no contents")

        runs = []
        if "list_available_models" in tools:
            how = f"{readers} × tool `list_available_models` (limit 5)"
            runs.append(await concurrent_reads(simulator, base_url, how, readers, tool_read))
        else:
            note("ours registers no list_available_models tool yet")
        if MODELS_URI in resources:
            how = f"{readers} × resource `{MODELS_URI}`"
            runs.append(await concurrent_reads(simulator, base_url, how, readers, resource_read))
        else:
            note(f"ours lists no {MODELS_URI} resource yet")
        bare = await bare_memory(base_url)
    return runs, bare, len(simulator.catalog)


def report_reads(runs: Sequence[Reads], latency: float, model_count: int) -> None:
    emit(f"## Upstream `/models` fetches during concurrent catalog reads ({latency * 1000:.0f} ms upstream)")
    emit()
    if not runs:
        emit("Not measured: ours registers neither `list_available_models` nor the models resource yet.")
        emit()
        return
    rows = [
        [
            run.how,
            run.models_fetches,
            ", ".join(f"{path} × {n}" for path, n in sorted(run.other_requests.items())) or "none",
            f"{run.seconds * 1000:.0f}",
            "met" if run.models_fetches <= TARGET_FETCHES else "NOT met",
        ]
        for run in runs
    ]
    emit(table(["reads", "GET /models upstream", "other upstream requests", "wall time (ms)", "target: 1 fetch"], rows))
    emit()
    emit(
        f"Each row on a freshly started server. The simulated catalog holds {model_count} models; "
        "every read was checked for success."
    )
    emit()


def report_memory(runs: Sequence[Reads], bare: tuple[int, int, int]) -> None:
    bare_idle, bare_after, bare_hwm = bare
    emit("## Resident memory of the stdio server process (VmRSS; VmHWM is the peak)")
    emit()
    rows = [["bare MCPServer", "idle, after `tools/list`", f"{bare_idle / 1024:.1f}", "", "—"]]
    rows.append(["bare MCPServer", "after one catalog call", f"{bare_after / 1024:.1f}", f"{bare_hwm / 1024:.1f}", "—"])
    if runs:
        run = runs[0]
        rows.append(
            [
                "openrouter-mcp",
                "idle, after `tools/list`",
                f"{run.rss_idle_kib / 1024:.1f}",
                "",
                _delta(run.rss_idle_kib, bare_idle),
            ]
        )
        for run in runs:
            rows.append(
                [
                    "openrouter-mcp",
                    f"catalog loaded ({run.how})",
                    f"{run.rss_after_kib / 1024:.1f}",
                    f"{run.hwm_after_kib / 1024:.1f}",
                    _delta(run.rss_after_kib, bare_after),
                ]
            )
    emit(table(["server", "state", "VmRSS (MiB)", "VmHWM (MiB)", "ours − bare (MiB)"], rows))
    emit()
    if runs:
        worst = max(run.rss_after_kib for run in runs) - bare_after
        verdict = "met" if worst <= TARGET_RSS_OVER_BARE_KIB else "NOT met"
        emit(
            f"Target: ours with the catalog loaded within {TARGET_RSS_OVER_BARE_KIB // 1024} MiB of the bare "
            f"server after one call: {verdict} ({worst / 1024:+.1f} MiB). Idle rows are compared idle to idle."
        )
        emit()


def _delta(ours_kib: int, bare_kib: int) -> str:
    return f"{(ours_kib - bare_kib) / 1024:+.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Catalog costs of openrouter-mcp: schema size, fetches, memory.")
    parser.add_argument("--readers", type=int, default=50, help="concurrent catalog reads")
    parser.add_argument("--latency", type=float, default=0.05, help="simulated upstream latency, seconds")
    args = parser.parse_args(argv)
    emit(machine_line())
    emit()
    tools_list_size()
    runs, bare, model_count = anyio.run(reads_and_memory, args.readers, args.latency)
    report_reads(runs, args.latency, model_count)
    report_memory(runs, bare)


if __name__ == "__main__":
    main()
