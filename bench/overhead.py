"""Per-call overhead over stdio: openrouter-mcp against a bare MCPServer and against no MCP at all.

`python -m bench.overhead [--calls 200] [--warmup 20] [--latency 0.05] [--mode legacy|auto] [--profile]`

The simulated OpenRouter runs in its own process on loopback and answers after `--latency` seconds.
Four targets make the same upstream request, interleaved: every round calls each target once, in a
fresh random order, so drift and whatever one call leaves running affect all alike:

- direct: this process calls the upstream with `httpx2.AsyncClient`, no MCP;
- bare: `bench/bare_server.py` over stdio, one tool per scenario, one shared HTTP client, nothing else;
- ours: `python -m openrouter_mcp` over stdio, key and base URL from the environment, as users run it:
  the audit log on (a row committed per tool call before the result returns), in a scratch file;
- ours, audit off: the same with `OPENROUTER_MCP_AUDIT=off`, so "on − off" is what the audit log costs a call;

All three servers are driven by the real `mcp.Client` (`--mode legacy`, the `initialize` handshake of
today's hosts, by default), so a figure includes what a host pays (framing, validation of the
result against the tool's output schema) as well as what the server does. Floors with no upstream
request (the protocol's `ping`, and a no-op tool on the bare server) are measured in the same rounds.
`--profile` then runs ours (audit log on) and bare in this process under cProfile and diffs their per-call costs.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import pstats
import random
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import CallToolResult
from pydantic import SecretStr

from bench._harness import (
    BARE,
    BENCH_KEY,
    MODES,
    OURS,
    REPO,
    HarnessError,
    Summary,
    audit_db,
    checked,
    emit,
    machine_line,
    ms,
    note,
    result_text,
    server_env,
    shuffled,
    stdio_client,
    table,
    upstream,
)
from bench.bare_server import build as build_bare
from openrouter_mcp import __version__
from openrouter_mcp.audit import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server

#: The target (issue 8, once stdio moved onto the SDK's own transport): ours at most this much slower than a bare
#: `MCPServer` tool on that same transport, at the median.
TARGET_OVER_BARE = 0.001

CATALOG_LIMIT = 5
#: Ours as users run it (the audit log on, the default), then with `OPENROUTER_MCP_AUDIT=off`. "ours" is the first.
OURS_OFF = "ours, audit off"
OURS_TARGETS = ("ours", OURS_OFF)
#: Both serve stdio through the SDK's transport, so ours − bare is what ours' tool layer costs a call.
BARE_TARGETS = ("bare",)
ARGV = {"bare": BARE}
PROMPT = [{"role": "user", "content": "Say hello in five words."}]


@dataclass(frozen=True)
class Scenario:
    """One kind of call: the tool (same name and arguments on both servers) and its upstream request."""

    label: str
    tool: str
    arguments: dict[str, Any]
    method: str
    path: str
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    #: Extra headers of the direct request (the routing metadata header, when ours sends it).
    headers: dict[str, str] | None = None
    #: Arguments for the bare server when they must differ from ours' to produce the same upstream request.
    bare_arguments: dict[str, Any] | None = None
    #: Direct calls keep the first `limit` models of the answer, as the catalog tools do.
    limit: int | None = None
    #: Whether ours reaches the upstream on every call (the catalog is cached, so it does not).
    ours_calls_upstream: bool = True


#: Floors, with no upstream request: the protocol's `ping` (transport and dispatch only, on both servers),
#: and a tool call of the bare server's `ping` tool (adds tool dispatch; ours has no such tool).
PING_REQUEST = Scenario(label="MCP `ping` request", tool="", arguments={}, method="", path="")
PING_TOOL = Scenario(label='tool call `ping` → "pong"', tool="ping", arguments={}, method="", path="")
#: `ping` is no tool call, so neither ours writes an audit row for it: on − off there is the noise level.
FLOORS = ((PING_REQUEST, (*BARE_TARGETS, *OURS_TARGETS)), (PING_TOOL, ("bare",)))


def floors(mode: str) -> tuple[tuple[Scenario, tuple[str, ...]], ...]:
    # The 2026-07-28 protocol, which "auto" adopts, has no `ping`.
    return FLOORS if mode == "legacy" else FLOORS[1:]


#: How many models ours sends in one upstream request (`model` plus native `models`).
NATIVE_GROUP = 3


def same_request(scenario: Scenario, fallbacks: list[str]) -> Scenario:
    """`scenario` with ours' native fallbacks added to the direct and bare requests, for a like-for-like comparison."""
    return replace(
        scenario,
        body={**(scenario.body or {}), "models": fallbacks},
        headers={"X-OpenRouter-Metadata": "enabled"},
        bare_arguments={**scenario.arguments, "models": fallbacks},
    )


def chat_scenario(model: str) -> Scenario:
    arguments = {"model": model, "messages": PROMPT, "max_tokens": 16}
    return Scenario(
        label="create_chat_completion (non-stream)",
        tool="create_chat_completion",
        arguments=arguments,
        method="POST",
        path="/chat/completions",
        body={**arguments, "stream": False},
    )


def catalog_scenario(tools: set[str]) -> Scenario | None:
    """The catalog query ours supports: list_available_models if registered, else get_models_count."""
    if "list_available_models" in tools:
        return Scenario(
            label=f"list_available_models (limit={CATALOG_LIMIT})",
            tool="list_available_models",
            arguments={"limit": CATALOG_LIMIT},
            method="GET",
            path="/models",
            params={"output_modalities": "all"},
            limit=CATALOG_LIMIT,
            ours_calls_upstream=False,
        )
    if "get_models_count" in tools:
        return Scenario(
            label="get_models_count", tool="get_models_count", arguments={}, method="GET", path="/models/count"
        )
    return None


@dataclass
class Targets:
    base_url: str
    http: httpx2.AsyncClient
    clients: dict[str, Client]
    #: Tool calls sent to each target, to check the audit log holds one row per call.
    tool_calls: Counter[str] = field(default_factory=Counter)
    headers: dict[str, str] = field(
        default_factory=lambda: {
            "HTTP-Referer": "https://github.com/openrouter-mcp/openrouter-mcp",
            "X-OpenRouter-Title": "openrouter-mcp",
            "User-Agent": f"openrouter-mcp/{__version__}",
            "Authorization": f"Bearer {BENCH_KEY}",
        }
    )

    async def direct(self, scenario: Scenario) -> Any:
        response = await self.http.request(
            scenario.method,
            self.base_url + scenario.path,
            params=scenario.params,
            json=scenario.body,
            headers={**self.headers, **scenario.headers} if scenario.headers else self.headers,
        )
        response.raise_for_status()
        data = response.json()
        return data["data"][: scenario.limit] if scenario.limit is not None else data

    async def tool(self, name: str, scenario: Scenario) -> CallToolResult:
        arguments = scenario.bare_arguments if name in BARE_TARGETS and scenario.bare_arguments else scenario.arguments
        self.tool_calls[name] += 1
        return checked(await self.clients[name].call_tool(scenario.tool, arguments), f"{name} {scenario.tool}")

    def caller(self, target: str, scenario: Scenario) -> Callable[[], Awaitable[Any]]:
        if scenario is PING_REQUEST:
            return self.clients[target].send_ping
        if target == "direct":
            return lambda: self.direct(scenario)
        return lambda: self.tool(target, scenario)


def verify(scenario: Scenario, target: str, answer: Any) -> None:
    """Check a first answer is the real thing, not merely "not an error".

    Raises:
        HarnessError: the answer does not look like what the upstream request returns.
    """
    if scenario is PING_REQUEST:
        ok = True  # an error answer raises
    elif scenario is PING_TOOL:
        ok = result_text(answer) == "pong"
    elif target == "direct":
        ok = bool(answer) if scenario.limit is None else len(answer) == scenario.limit
    elif scenario.tool == "create_chat_completion":
        if target in OURS_TARGETS:
            structured = answer.structured_content or {}
            ok = bool(structured.get("text")) and structured.get("model") == scenario.arguments["model"]
        else:
            ok = bool(json.loads(result_text(answer))["choices"][0]["message"]["content"])
    elif scenario.limit is not None and target in BARE_TARGETS:
        ok = len(json.loads(result_text(answer))) == scenario.limit
    else:
        ok = bool(result_text(answer))
    if not ok:
        raise HarnessError(f"{target} {scenario.tool}: unexpected answer {str(answer)[:300]}")


async def pick_model(targets: Targets) -> str:
    """A plain paid text model of the simulated catalog, so the chat call is an ordinary one."""
    response = await targets.http.get(targets.base_url + "/models", headers=targets.headers)
    response.raise_for_status()
    for model in response.json()["data"]:
        architecture = model.get("architecture") or {}
        if architecture.get("output_modalities") == ["text"] and not model["id"].endswith(":free"):
            return str(model["id"])
    raise HarnessError("the simulated catalog has no text model")


@dataclass
class Run:
    scenarios: list[Scenario]
    samples: dict[tuple[str, str], list[float]]
    protocol: str
    #: What the reader should know about the requests themselves (e.g. ours adding routing fallbacks).
    remarks: list[str]
    #: Rows in the audit-on server's log: one per tool call it answered (checked).
    audit_rows: int


async def measure(calls: int, warmup: int, latency: float, mode: str) -> Run:
    with upstream(latency) as base_url:
        envs = {name: server_env(base_url) for name in (*BARE_TARGETS, "ours")}
        envs[OURS_OFF] = server_env(base_url, audit=False)
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx2.AsyncClient(timeout=30.0))
            clients = {
                name: await stack.enter_async_context(stdio_client(ARGV.get(name, OURS), env, mode))
                for name, env in envs.items()
            }
            targets = Targets(base_url, http, clients)
            protocol = clients["ours"].protocol_version
            ours_tools = {tool.name for tool in (await clients["ours"].list_tools()).tools}
            for name in (*BARE_TARGETS, OURS_OFF):
                await clients[name].list_tools()
            scenarios = [chat_scenario(await pick_model(targets))]
            catalog = catalog_scenario(ours_tools)
            if catalog is None:
                note("ours registers no catalog tool yet (list_available_models, get_models_count): chat only")
            else:
                scenarios.append(catalog)
            pairs = [(s, t) for s in scenarios for t in ("direct", "bare", *OURS_TARGETS)]
            pairs += [(floor, target) for floor, targets_ in floors(mode) for target in targets_]
            remarks = []
            # Ours first: when it routes, direct and bare are then made to send the very same upstream request.
            for scenario in [s for s, t in pairs if t == "ours" and s.tool == "create_chat_completion"]:
                routed = {name: await routed_candidates(targets, name, scenario) for name in OURS_TARGETS}
                if routed["ours"] != routed[OURS_OFF]:
                    raise HarnessError(f"ours routes differently with the audit log off: {routed}")
                if len(routed["ours"]) > 1:
                    fallbacks = routed["ours"][1:NATIVE_GROUP]
                    same = same_request(scenario, fallbacks)
                    pairs = [(same if s is scenario else s, t) for s, t in pairs]
                    named = ", ".join(f"`{candidate}`" for candidate in fallbacks)
                    remarks.append(
                        f"Ours (audit on and off alike) routes `{scenario.tool}`: its upstream request names the "
                        f"native fallbacks {named} (`models`) with the `X-OpenRouter-Metadata` header; direct and "
                        "bare send the same request."
                    )
            for scenario, target in pairs:
                verify(scenario, target, await targets.caller(target, scenario)())
            note(f"warm-up: {warmup} rounds; measuring {calls} rounds of {len(pairs)} calls")
            samples: dict[tuple[str, str], list[float]] = {(s.label, t): [] for s, t in pairs}
            rng = random.Random(0)
            for round_ in range(warmup + calls):
                for scenario, target in shuffled(pairs, rng):
                    call = targets.caller(target, scenario)
                    started = time.perf_counter()
                    await call()
                    elapsed = time.perf_counter() - started
                    if round_ >= warmup:
                        samples[(scenario.label, target)].append(elapsed)
    for scenario, target in pairs:
        if not scenario.path:
            continue
        reaches_upstream = target not in OURS_TARGETS or scenario.ours_calls_upstream
        fastest = min(samples[(scenario.label, target)])
        if reaches_upstream and fastest < latency:
            raise HarnessError(
                f"{target} {scenario.tool} took {fastest * 1000:.2f} ms: it cannot have reached upstream"
            )
    # The servers have exited: prove that "on" recorded every call and "off" recorded none.
    audit_rows = audit_row_count(Path(envs["ours"]["OPENROUTER_MCP_AUDIT_DB"]), targets.tool_calls["ours"])
    off_db = Path(envs[OURS_OFF]["OPENROUTER_MCP_AUDIT_DB"])
    if off_db.exists():
        raise HarnessError(f"ours with OPENROUTER_MCP_AUDIT=off wrote an audit log ({off_db})")
    return Run(scenarios, samples, protocol, remarks, audit_rows)


async def routed_candidates(targets: Targets, name: str, scenario: Scenario) -> list[str]:
    """The models ours' routing named for one call of `scenario` (empty when it did not route)."""
    answer = await targets.caller(name, scenario)()
    routing = (answer.structured_content or {}).get("routing")
    return list(routing.get("candidates") or []) if isinstance(routing, dict) else []


def audit_row_count(path: Path, expected: int) -> int:
    """The rows in the audit log at `path`, which must be one per tool call the server was sent.

    Raises:
        HarnessError: the log is missing or does not hold exactly `expected` rows.
    """
    if not path.exists():
        raise HarnessError(f"ours with the audit log on wrote no audit log ({path})")
    with AuditLog(path) as log:
        rows = log.usage(since=0.0).calls
    if rows != expected:
        raise HarnessError(f"ours' audit log holds {rows} rows for {expected} tool calls ({path})")
    return rows


def report(run: Run, latency: float, mode: str) -> None:
    scenarios, samples = run.scenarios, run.samples

    def paired(label: str, subject: str, baseline: str) -> float:
        # Rounds pair the calls in time, so the median of per-round differences resists drift best.
        return statistics.median(
            s - b for s, b in zip(samples[(label, subject)], samples[(label, baseline)], strict=True)
        )

    rows = []
    for scenario in scenarios:
        direct, bare, ours, off = (
            Summary.of(samples[(scenario.label, t)]) for t in ("direct", "bare", "ours", OURS_OFF)
        )
        rows.append(
            [
                scenario.label,
                f"{ms(direct.p50)} / {ms(direct.p99)}",
                f"{ms(bare.p50)} / {ms(bare.p99)}",
                f"{ms(ours.p50)} / {ms(ours.p99)}",
                f"{ms(off.p50)} / {ms(off.p99)}",
                f"{(ours.p50 - bare.p50) * 1000:+.2f}",
                f"{paired(scenario.label, 'ours', 'bare') * 1000:+.2f}",
                f"{ours.p50 / direct.p50:.3f}",
            ]
        )
    n = len(next(iter(samples.values())))
    emit("## Per-call overhead over stdio")
    emit()
    emit(
        f"{n} calls per cell after warm-up, interleaved in random order; upstream latency {latency * 1000:.0f} ms; "
        f"client mode `{mode}` (protocol {run.protocol})."
    )
    emit(machine_line())
    emit()
    emit(
        table(
            [
                "scenario",
                "direct p50 / p99 (ms)",
                "bare MCP p50 / p99 (ms)",
                "openrouter-mcp p50 / p99 (ms)",
                "ours, audit off p50 / p99 (ms)",
                "ours − bare p50 (ms)",
                "paired Δ p50 (ms)",
                "ours / direct p50",
            ],
            rows,
        )
    )
    emit()
    floor_rows = []
    for floor, targets_ in floors(mode):
        bare = Summary.of(samples[(floor.label, "bare")])
        if "ours" in targets_:
            ours = Summary.of(samples[(floor.label, "ours")])
            ours_cell, delta = f"{ms(ours.p50)} / {ms(ours.p99)}", f"{(ours.p50 - bare.p50) * 1000:+.2f}"
        else:
            ours_cell, delta = "—", "—"
        floor_rows.append([floor.label, f"{ms(bare.p50)} / {ms(bare.p99)}", ours_cell, delta])
    emit("Floors, in the same rounds (no upstream request):")
    emit()
    emit(
        table(["floor", "bare MCP p50 / p99 (ms)", "openrouter-mcp p50 / p99 (ms)", "ours − bare p50 (ms)"], floor_rows)
    )
    emit()
    emit(
        f"Target: ours − bare ≤ {TARGET_OVER_BARE * 1000:.1f} ms at p50 (for calls that reach the upstream). "
        "`openrouter-mcp` and `ours` are the server as users run it, with its audit log on. "
        "`paired Δ` is the median of per-round differences (ours − bare), the drift-resistant estimate."
    )
    if any(not s.ours_calls_upstream for s in scenarios):
        emit(
            "The catalog row is not an overhead figure: ours serves the catalog from its cache, while direct "
            "and bare fetch and parse the whole list every time; compare ours there with the floor instead."
        )
    for remark in run.remarks:
        emit(remark)
    emit()
    audit_rows = []
    for label in [s.label for s in scenarios] + [f.label for f, t in floors(mode) if OURS_OFF in t]:
        on, off = (Summary.of(samples[(label, t)]) for t in OURS_TARGETS)
        audit_rows.append(
            [
                label if label != PING_REQUEST.label else f"{label} (not audited: the noise level)",
                ms(on.p50),
                ms(off.p50),
                f"{(on.p50 - off.p50) * 1000:+.2f}",
                f"{paired(label, 'ours', OURS_OFF) * 1000:+.2f}",
            ]
        )
    emit("The audit log's cost per call, in the same rounds (ours with the audit log on against off):")
    emit()
    emit(
        table(
            ["call", "audit on p50 (ms)", "audit off p50 (ms)", "audit on − audit off p50 (ms)", "paired Δ p50 (ms)"],
            audit_rows,
        )
    )
    emit()
    emit(
        f"Audit on is the default: each tool call commits one SQLite row (WAL, `synchronous=NORMAL`, privacy "
        f"`full`) before its result returns; this run's log, in a scratch file, holds {run.audit_rows} rows, one "
        "per tool call sent to that server (checked). Audit off is `OPENROUTER_MCP_AUDIT=off` (checked: no file)."
    )
    emit()


async def profile(calls: int, top: int) -> None:
    """Where ours' extra time goes: both servers in this process under cProfile, diffed function by function.

    In-process (the SDK's in-memory JSON-RPC transport, `mode="legacy"`) so one profile holds server and
    client: a per-call cost either side shows up. The upstream answers at once; only CPU time differs.
    Ours records every call in an audit log (a scratch file), as the server users run does.
    """
    # Before MCPServer configures logging at INFO, which would log every upstream request here.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    with upstream(0.0) as base_url, AuditLog(audit_db()) as audit:
        ours_server = build_server(Settings(api_key=SecretStr(BENCH_KEY), base_url=base_url), audit=audit)
        bare_server = build_bare({"OPENROUTER_API_KEY": BENCH_KEY, "OPENROUTER_BASE_URL": base_url})
        async with (
            Client(ours_server, mode="legacy", cache=None) as ours,
            Client(bare_server, mode="legacy", cache=None) as bare,
            httpx2.AsyncClient() as http,
        ):
            clients = {"ours": ours, "bare": bare}
            for client in clients.values():
                await client.list_tools()
            targets = Targets(base_url, http, clients)
            scenario = chat_scenario(await pick_model(targets))
            timings: dict[str, list[float]] = {"ours": [], "bare": []}
            rng = random.Random(0)
            for _ in range(calls):
                for name in shuffled(["ours", "bare"], rng):
                    started = time.perf_counter()
                    await targets.tool(name, scenario)
                    timings[name].append(time.perf_counter() - started)
            profiles = {}
            for name in ("ours", "bare"):
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(calls):
                    await targets.tool(name, scenario)
                profiler.disable()
                profiles[name] = _own_times(pstats.Stats(profiler), calls)
    ours_p50, bare_p50 = (statistics.median(timings[name]) for name in ("ours", "bare"))
    emit(f"## Where ours' extra time goes: `{scenario.tool}`, in-process, cProfile diff against bare")
    emit()
    emit(
        "Ours with its audit log on (a scratch file), as users run it. "
        f"Without the profiler, in this process ({calls} calls each, upstream answering at once): ours "
        f"{ms(ours_p50)} ms, bare {ms(bare_p50)} ms at p50, ours − bare {(ours_p50 - bare_p50) * 1000:+.2f} ms. "
        "Both servers and the client share one process, so client-side costs (validating ours' structured "
        "result against its output schema) are in the figures too. cProfile slows small calls several-fold: "
        "read the columns as relative weights. Waiting in epoll is left out."
    )
    emit()
    keys = set(profiles["ours"]) | set(profiles["bare"])
    rows = []
    for key in keys:
        ours_calls, ours_us = profiles["ours"].get(key, (0.0, 0.0))
        bare_calls, bare_us = profiles["bare"].get(key, (0.0, 0.0))
        rows.append((ours_us - bare_us, key, ours_calls, bare_calls, ours_us, bare_us))
    rows.sort(key=lambda row: -row[0])
    total = sum(row[0] for row in rows)
    emit(
        table(
            ["function", "Δ own time (µs/call)", "ours calls/call", "bare calls/call"],
            [[f"`{key}`", f"{delta:+.1f}", f"{oc:.1f}", f"{bc:.1f}"] for delta, key, oc, bc, _, _ in rows[:top]],
        )
    )
    emit()
    emit(f"Sum of Δ own time over all functions: {total:+.1f} µs per call (under cProfile).")
    emit()


def _own_times(stats: pstats.Stats, calls: int) -> dict[str, tuple[float, float]]:
    """Function -> (calls, own µs) per tool call; event-loop idle excluded."""
    found: dict[str, tuple[float, float]] = {}
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, function), (_, ncalls, own, _, _) in raw.items():
        if "poll" in function and "epoll" in function:
            continue
        short = filename.split("site-packages/")[-1].replace(str(REPO) + "/", "")
        short = short.split("/lib/python3")[-1] if short.startswith("/") else short
        key = f"{short}:{line}({function})" if line else function
        found[key] = (ncalls / calls, own * 1e6 / calls)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Per-call overhead of openrouter-mcp over stdio.")
    parser.add_argument("--calls", type=int, default=200, help="measured calls per scenario and target")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured rounds first")
    parser.add_argument("--latency", type=float, default=0.05, help="simulated upstream latency, seconds")
    parser.add_argument("--mode", choices=MODES, default="legacy", help="how the client connects (see _harness)")
    parser.add_argument("--profile", action="store_true", help="then diff cProfile of ours and bare, in-process")
    parser.add_argument("--profile-top", type=int, default=25, help="functions to show in the profile")
    args = parser.parse_args(argv)
    # `ping` is deprecated only in the 2026-07-28 protocol; in legacy mode it is the protocol's own floor.
    warnings.filterwarnings("ignore", message="ping is removed", category=MCPDeprecationWarning)
    report(anyio.run(measure, args.calls, args.warmup, args.latency, args.mode), args.latency, args.mode)
    if args.profile:
        anyio.run(profile, max(args.calls, 500), args.profile_top)


if __name__ == "__main__":
    main()
