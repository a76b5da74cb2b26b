"""Cold start over stdio: from spawning the server to the first `tools/list` answer.

`python -m bench.cold_start [--runs 15]`

Ours (`python -m openrouter_mcp`) against a bare MCPServer with one tool (`bench/bare_server.py
--minimal`), spawned the same way by the real `mcp.Client`, interleaved run by run. One unmeasured
warm-up run each first, so the bytecode caches exist for both. Then `python -X importtime` of ours,
through the same handshake and `tools/list`, lists the imports that cost the most.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from bench._harness import (
    BARE_MINIMAL,
    NOWHERE,
    OURS,
    REPO,
    HarnessError,
    RawStdio,
    Summary,
    emit,
    machine_line,
    ms,
    note,
    server_env,
    shuffled,
    stdio_client,
    table,
)

#: The issue's target: ours within this fraction of the bare server's median.
TARGET_RATIO = 1.10

TARGETS = {"openrouter-mcp": OURS, "bare MCPServer (1 tool)": BARE_MINIMAL}


async def time_to_tools_list(argv: Sequence[str]) -> float:
    """Seconds from spawning `argv` to holding its `tools/list` answer (shutdown is not counted).

    Raises:
        HarnessError: the server listed no tools.
    """
    started = time.perf_counter()
    async with stdio_client(argv, server_env(NOWHERE)) as client:
        listed = await client.list_tools()
        elapsed = time.perf_counter() - started
    if not listed.tools:
        raise HarnessError(f"{' '.join(argv)} listed no tools")
    return elapsed


async def time_interpreter() -> float:
    """Seconds to spawn and reap `python -c pass`: the floor under both servers."""
    started = time.perf_counter()
    await anyio.run_process([sys.executable, "-c", "pass"])
    return time.perf_counter() - started


async def measure(runs: int) -> dict[str, list[float]]:
    names = list(TARGETS)
    for name in names:
        await time_to_tools_list(TARGETS[name])
    samples: dict[str, list[float]] = {name: [] for name in [*names, "interpreter"]}
    note(f"cold start: {runs} runs of each server, interleaved")
    rng = random.Random(0)
    for _ in range(runs):
        for name in shuffled(names, rng):
            samples[name].append(await time_to_tools_list(TARGETS[name]))
        samples["interpreter"].append(await time_interpreter())
    return samples


@dataclass(frozen=True)
class Import:
    self_us: int
    cumulative_us: int
    depth: int
    name: str


def import_times(argv: Sequence[str]) -> list[Import]:
    """`-X importtime` of `argv` through the handshake and a `tools/list`, as a host would start it.

    Raises:
        HarnessError: the server did not answer.
    """
    with RawStdio(argv, server_env(NOWHERE), extra_args=("-X", "importtime")) as server:
        server.handshake()
        server.request("tools/list")
        stderr = server.close()
    found = []
    for line in stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        stripped = name.lstrip(" ")
        found.append(Import(int(self_us), int(cumulative_us), (len(name) - len(stripped) - 1) // 2, stripped))
    if not found:
        raise HarnessError("-X importtime printed nothing")
    return found


#: Run in a fresh interpreter: how long importing, then building, each server takes (JSON on stdout).
_SPLIT = """
import json, time
t0 = time.perf_counter()
from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
t1 = time.perf_counter()
build_server(Settings())
t2 = time.perf_counter()
from bench.bare_server import build_minimal
t3 = time.perf_counter()
build_minimal()
t4 = time.perf_counter()
print(json.dumps({"ours": [t1 - t0, t2 - t1], "bare": [t3 - t2, t4 - t3]}))
"""


def import_and_build(runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds to import, then to build, ours and then bare in one fresh interpreter.

    Bare is imported second, so what it shares with ours (mcp, pydantic) is charged to ours alone:
    ours' import figure is the whole stack, bare's is what the bare server adds on top of it.
    """
    found: dict[str, list[tuple[float, float]]] = {"ours": [], "bare": []}
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-c", _SPLIT], capture_output=True, check=True, cwd=REPO, timeout=60, text=True
        )
        for name, (imported, built) in json.loads(completed.stdout).items():
            found[name].append((imported, built))
    return {
        name: (statistics.median(i for i, _ in pairs), statistics.median(b for _, b in pairs))
        for name, pairs in found.items()
    }


def report(
    samples: dict[str, list[float]],
    split: dict[str, tuple[float, float]],
    ours_imports: list[Import],
    bare_imports: list[Import],
) -> None:
    bare = Summary.of(samples["bare MCPServer (1 tool)"])
    rows = []
    for name in [*TARGETS, "interpreter"]:
        summary = Summary.of(samples[name])
        label = "interpreter floor (`python -c pass`, spawn to exit)" if name == "interpreter" else name
        rows.append([label, ms(summary.p50), ms(summary.p90), ms(min(samples[name])), f"{summary.p50 / bare.p50:.3f}"])
    emit("## Cold start over stdio: spawn to first `tools/list` answer")
    emit()
    emit(
        f"{len(samples['interpreter'])} runs each, interleaved in random order, after one warm-up run each; "
        "the client connects with the `initialize` handshake."
    )
    emit(machine_line())
    emit()
    emit(table(["server", "median (ms)", "p90 (ms)", "min (ms)", "ratio to bare (median)"], rows))
    emit()
    emit(f"Target: ours ≤ {TARGET_RATIO:.2f} × bare at the median.")
    emit()
    (ours_import, ours_build), (_, bare_build) = split["ours"], split["bare"]
    emit(
        f"In a fresh interpreter (median of 5): importing ours' server module and everything under it takes "
        f"{ours_import * 1000:.0f} ms, `build_server()` {ours_build * 1000:.1f} ms; building the bare one-tool "
        f"server takes {bare_build * 1000:.1f} ms."
    )
    emit()

    def total(imports: list[Import]) -> int:
        return sum(item.cumulative_us for item in imports if item.depth == 0)

    emit("## Imports of ours until the first `tools/list` (`python -X importtime`, one run)")
    emit()
    emit(
        f"Total import time: ours {total(ours_imports) / 1000:.1f} ms, bare {total(bare_imports) / 1000:.1f} ms "
        f"({len(ours_imports)} and {len(bare_imports)} modules)."
    )
    emit()
    top_level = sorted((i for i in ours_imports if i.depth == 0), key=lambda i: -i.cumulative_us)[:10]
    emit("Top 10 top-level imports by cumulative time (each includes everything it imported first):")
    emit()
    emit(
        table(
            ["import", "cumulative (ms)", "self (ms)"],
            [[f"`{i.name}`", f"{i.cumulative_us / 1000:.1f}", f"{i.self_us / 1000:.1f}"] for i in top_level],
        )
    )
    emit()
    own = sorted(ours_imports, key=lambda i: -i.self_us)[:10]
    emit("Top 10 modules by own time (their import-time code alone):")
    emit()
    emit(
        table(
            ["module", "self (ms)", "cumulative (ms)"],
            [[f"`{i.name}`", f"{i.self_us / 1000:.1f}", f"{i.cumulative_us / 1000:.1f}"] for i in own],
        )
    )
    emit()
    bare_names = {i.name for i in bare_imports}
    extra = sorted((i for i in ours_imports if i.name not in bare_names), key=lambda i: -i.self_us)
    emit(
        f"Modules ours imports and the bare server does not: {len(extra)}, "
        f"{sum(i.self_us for i in extra) / 1000:.1f} ms of own time; the costliest:"
    )
    emit()
    emit(table(["module", "self (ms)"], [[f"`{i.name}`", f"{i.self_us / 1000:.1f}"] for i in extra[:10]]))
    emit()
    heavy = ("httpx2", "pydantic", "starlette", "uvicorn", "jsonschema", "openrouter_mcp.simulator")
    loaded = {i.name for i in ours_imports}
    emit(
        "Heavy modules ours has loaded by its first answer: "
        + (", ".join(f"`{m}`" for m in heavy if m in loaded) or "none")
        + "; not loaded: "
        + (", ".join(f"`{m}`" for m in heavy if m not in loaded) or "none")
        + "."
    )
    emit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cold start of openrouter-mcp over stdio against a bare MCPServer.")
    parser.add_argument("--runs", type=int, default=15, help="measured runs of each server")
    args = parser.parse_args(argv)
    samples = anyio.run(measure, args.runs)
    report(samples, import_and_build(5), import_times(OURS), import_times(BARE_MINIMAL))


if __name__ == "__main__":
    main()
