"""What falling back costs in latency, and what cooldowns save in upstream calls: `python -m bench.fallback`.

1. Latency. Ours over stdio (spawned with `--personas`, as a host runs it) against the simulated
   OpenRouter, whose every answer takes `--latency` (50 ms). Six targets, interleaved in random
   order each round: one upstream round trip with no MCP at all (httpx straight to the simulator),
   answered and failing with 503, the floors of a fallback's second call; a healthy call; the
   failed call alone (a persona whose only model answers 503); a native fallback (the primary of a
   group of three answers 503, OpenRouter fails over inside the one request); a client-side
   fallback (all three models of the first group answer 503, the fourth answers: two upstream
   calls). Every persona here has `fallback.cooldown_seconds = 0`: a failed model then cools for
   0 s, so every round meets the same faults instead of skipping the models that failed in the
   round before (which is what cooldowns are for, and what part 2 counts).
2. Upstream calls while a model cools down. Its provider rate-limits the primary (429, Retry-After
   30 s); one request fails over, 50 more follow. The simulator's request log says what each
   upstream request named.

The simulator runs in a process of its own (`--serve-upstream`, internal) with the faults fixed at
start, because `bench/_upstream.py` takes none; it also answers `GET /bench/chat-models` (outside
`/api/v1`) with the models every chat request so far named, which is how part 2 counts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.types import CallToolResult

from bench._harness import (
    BENCH_KEY,
    CALL_TIMEOUT,
    OURS,
    HarnessError,
    Summary,
    emit,
    machine_line,
    ms,
    note,
    result_text,
    server_env,
    shuffled,
    stdio_client,
    table,
    upstream_process,
)
from openrouter_mcp.errors import status_error_class
from openrouter_mcp.routing import fallback, personas
from openrouter_mcp.routing.cooldowns import Cooldowns
from openrouter_mcp.routing.personas import FallbackPolicy, Persona
from openrouter_mcp.routing.plan import Candidate, Route
from openrouter_mcp.simulator import Fault, Simulator, serve_in_thread

PROMPT = [{"role": "user", "content": "Say hello to the fallback benchmark."}]
MAX_TOKENS = 16

#: The model that answers in every scenario, so that the answer itself costs the same everywhere.
ANSWER = "openai/gpt-4o"
SPARE = "openai/gpt-4o-mini"
#: Part 1: these answer 503 (a provider outage) on every request.
DOWN = ("anthropic/claude-sonnet-4", "google/gemini-2.5-flash", "meta-llama/llama-3.3-70b-instruct")
#: Part 2: these are rate-limited by their provider, asking for 30 s.
LIMITED = (
    "mistralai/mistral-large",
    "deepseek/deepseek-chat",
    "x-ai/grok-3",
    "anthropic/claude-3.5-haiku",
    "google/gemini-2.5-pro",
)
RETRY_AFTER = 30.0

CONTROL_PATH = "/bench/chat-models"

ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# --- the upstream, with faults, in a process of its own ----------------------------------------


class _WithControl:
    """The simulator, plus `GET /bench/chat-models`: the models each chat request so far named, in order."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "http" and scope["path"] == CONTROL_PATH:
            named = [
                [r.body.get("model"), *(r.body.get("models") or [])]
                for r in self.simulator.requests
                if r.path == "/chat/completions" and isinstance(r.body, dict)
            ]
            body = json.dumps(named).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.simulator(scope, receive, send)


def serve_upstream(latency: float, faults: dict[str, dict[str, Any]]) -> None:
    """The child process: serve until stdin closes, after writing the base URL as one line on stdout."""
    simulator = Simulator(api_key=os.environ.get("OPENROUTER_API_KEY") or None, latency=latency)
    simulator.model_faults.update({model: Fault(**spec) for model, spec in faults.items()})
    with serve_in_thread(_WithControl(simulator)) as base_url:
        sys.stdout.write(base_url + "\n")
        sys.stdout.flush()
        sys.stdin.buffer.read()


@contextmanager
def faulty_upstream(latency: float, faults: dict[str, Fault]) -> Iterator[str]:
    """The simulator with `faults` on loopback in its own process; yields its base URL.

    Raises:
        HarnessError: it did not come up within STARTUP_TIMEOUT.
    """
    specs = json.dumps({model: asdict(fault) for model, fault in faults.items()})
    with upstream_process(
        ["-m", "bench.fallback", "--serve-upstream", "--latency", str(latency), "--faults", specs]
    ) as url:
        yield url


async def chat_models_sent(http: httpx2.AsyncClient, base_url: str) -> list[list[str]]:
    """What every upstream chat request so far named (`model`, then `models`), from the simulator's log."""
    response = await http.get(base_url.removesuffix("/api/v1") + CONTROL_PATH)
    response.raise_for_status()
    return [list(map(str, named)) for named in response.json()]


# --- personas ----------------------------------------------------------------------------------


@contextmanager
def personas_file(spec: dict[str, tuple[list[str], float | None]]) -> Iterator[Path]:
    """A temporary personas TOML file: name -> (models, cooldown_seconds or None for the default).

    `rank_by = []` keeps routing from adding catalog models as extra fallbacks, so each persona tries
    exactly its own models. Checked by loading it the way the server will.

    Raises:
        HarnessError: the file does not load as the personas meant.
    """
    lines = []
    for name, (models, cooldown) in spec.items():
        lines += [f"[personas.{name}]", f"models = {json.dumps(models)}", "rank_by = []"]
        if cooldown is not None:
            lines.append(f"fallback = {{ cooldown_seconds = {cooldown:g} }}")
        lines.append("")
    with tempfile.TemporaryDirectory(prefix="bench-fallback-") as folder:
        path = Path(folder) / "personas.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        loaded = personas.load(path)
        for name, (models, cooldown) in spec.items():
            persona = loaded.get(name)
            expected = FallbackPolicy().cooldown_seconds if cooldown is None else cooldown
            if persona.models != models or persona.fallback.cooldown_seconds != expected:
                raise HarnessError(f"the personas file does not say what was meant for {name!r}")
        yield path


async def chat(client: Client, persona: str) -> CallToolResult:
    with anyio.fail_after(CALL_TIMEOUT):
        return await client.call_tool(
            "create_chat_completion", {"messages": PROMPT, "max_tokens": MAX_TOKENS, "persona": persona}
        )


def routing_of(result: CallToolResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the result's payload, its `routing` record), for a success and for an `isError` result alike.

    Raises:
        HarnessError: the result carries no routing record.
    """
    if result.is_error:
        text = result_text(result)
        try:
            payload = json.loads(text.split("\n", 1)[1])
        except (IndexError, ValueError):
            raise HarnessError(f"an error result without a payload: {text[:300]}") from None
    else:
        payload = result.structured_content or {}
    routing = payload.get("routing")
    if not isinstance(routing, dict):
        raise HarnessError(f"no routing record in {result_text(result)[:300]}")
    return payload, routing


# --- part 1: latency ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    models: list[str]
    upstream_calls: int
    #: None: the call must fail with a 503; else the model that must answer.
    answered_by: str | None

    def check(self, result: CallToolResult) -> None:
        """Raises HarnessError unless `result` did exactly what this scenario is about."""
        payload, routing = routing_of(result)
        problems = []
        if routing.get("upstream_calls") != self.upstream_calls:
            problems.append(f"{routing.get('upstream_calls')} upstream calls, expected {self.upstream_calls}")
        if self.answered_by is None:
            if not result.is_error or payload.get("status") != 503:
                problems.append(f"expected a 503 error, got {result_text(result)[:200]}")
        elif result.is_error or routing.get("answered_by") != self.answered_by:
            problems.append(f"expected {self.answered_by} to answer, got {result_text(result)[:200]}")
        elif routing.get("fallback_used") != (self.models[0] != self.answered_by):
            problems.append(f"fallback_used is {routing.get('fallback_used')}")
        if problems:
            raise HarnessError(f"{self.label}: {'; '.join(problems)}")


SCENARIOS = [
    Scenario("healthy", "healthy: the primary answers", [ANSWER], 1, ANSWER),
    Scenario("failed", "failed call alone (503)", [DOWN[0]], 1, None),
    Scenario("native", "native fallback (primary 503, same request)", [DOWN[0], ANSWER, SPARE], 1, ANSWER),
    Scenario("client", "client-side fallback (first group 503)", [*DOWN, ANSWER], 2, ANSWER),
]
DIRECT_OK = "direct-ok"
DIRECT_FAIL = "direct-fail"


@dataclass
class LatencyRun:
    samples: dict[str, list[float]] = field(default_factory=dict)
    protocol: str = ""


async def measure_latency(rounds: int, warmup: int, latency: float) -> LatencyRun:
    faults = {model: Fault(status=503, provider_code=503) for model in DOWN}
    spec: dict[str, tuple[list[str], float | None]] = {s.key: (s.models, 0.0) for s in SCENARIOS}
    run = LatencyRun({key: [] for key in [DIRECT_OK, DIRECT_FAIL, *(s.key for s in SCENARIOS)]})
    with faulty_upstream(latency, faults) as base_url, personas_file(spec) as path:
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx2.AsyncClient(timeout=CALL_TIMEOUT))
            client = await stack.enter_async_context(
                stdio_client((*OURS, "--personas", str(path)), server_env(base_url))
            )
            run.protocol = client.protocol_version
            auth = {"Authorization": f"Bearer {BENCH_KEY}"}
            # The same upstream requests ours sends: the answering model alone, and the failing first group.
            bodies: dict[str, tuple[dict[str, Any], int]] = {
                DIRECT_OK: ({"model": ANSWER}, 200),
                DIRECT_FAIL: ({"model": DOWN[0], "models": list(DOWN[1:])}, 503),
            }

            async def direct(key: str) -> None:
                aimed, status = bodies[key]
                body = {**aimed, "messages": PROMPT, "max_tokens": MAX_TOKENS, "stream": False}
                # Like ours, ask for OpenRouter's routing metadata only when the request names fallbacks.
                headers = {**auth, "X-OpenRouter-Metadata": "enabled"} if "models" in aimed else auth
                with anyio.fail_after(CALL_TIMEOUT):
                    response = await http.post(base_url + "/chat/completions", json=body, headers=headers)
                if response.status_code != status:
                    raise HarnessError(f"direct call: {response.status_code}, expected {status}: {response.text[:200]}")

            by_key = {s.key: s for s in SCENARIOS}
            note(f"latency: {warmup} warm-up rounds, then {rounds} rounds of {len(run.samples)} calls")
            rng = random.Random(0)
            for round_ in range(warmup + rounds):
                for key in shuffled(list(run.samples), rng):
                    started = time.perf_counter()
                    if key in bodies:
                        await direct(key)
                        elapsed = time.perf_counter() - started
                    else:
                        result = await chat(client, key)
                        elapsed = time.perf_counter() - started
                        by_key[key].check(result)
                    if round_ >= warmup:
                        run.samples[key].append(elapsed)
    for scenario in SCENARIOS:
        fastest = min(run.samples[scenario.key])
        if fastest < scenario.upstream_calls * latency:
            raise HarnessError(f"{scenario.label} took {ms(fastest)} ms: fewer upstream round trips than claimed")
    return run


def short(model: str) -> str:
    return model.split("/", 1)[1]


def report_latency(run: LatencyRun, latency: float) -> None:
    samples = run.samples
    summaries = {key: Summary.of(values) for key, values in samples.items()}

    def paired(key: str, minus: Sequence[str]) -> float:
        # Per round: the calls of one round are close in time, so their difference resists drift.
        return statistics.median(
            value - sum(samples[other][i] for other in minus) for i, value in enumerate(samples[key])
        )

    rows: list[list[object]] = []
    for key, label, models in (
        (DIRECT_OK, "one upstream round trip, answered (httpx, no MCP)", short(ANSWER)),
        (DIRECT_FAIL, "one upstream round trip, 503 (httpx, no MCP)", ", ".join(short(m) + " ✗" for m in DOWN)),
    ):
        rows.append([label, models, 1, f"{ms(summaries[key].p50)} / {ms(summaries[key].p99)}", "—", "—"])
    for scenario in SCENARIOS:
        summary = summaries[scenario.key]
        models = ", ".join(short(m) + (" ✗" if m in DOWN else "") for m in scenario.models)
        over = "—" if scenario.key == "failed" else f"{(summary.p50 - summaries['failed'].p50) * 1000:+.2f}"
        pair = "—" if scenario.key == "failed" else f"{paired(scenario.key, ['failed']) * 1000:+.2f}"
        rows.append(
            [scenario.label, models, scenario.upstream_calls, f"{ms(summary.p50)} / {ms(summary.p99)}", over, pair]
        )
    emit("## Latency a fallback adds over the failed call")
    emit()
    emit(
        f"{len(samples['failed'])} rounds after warm-up, each calling every target once in a fresh random order; "
        f"the simulator answers every upstream request after {latency * 1000:.0f} ms and fails the models marked ✗ "
        "with 503 at once. Ours over stdio (`python -m openrouter_mcp --personas FILE`, client mode `legacy`, "
        f"protocol {run.protocol}); the simulator in a process of its own."
    )
    emit(machine_line())
    emit()
    emit(
        "Cooldowns would make later rounds skip the models that failed in earlier ones, so every persona here "
        "has `fallback.cooldown_seconds = 0` (a failed model cools for 0 s; the 503s carry no Retry-After, which "
        "would otherwise win). Nothing is reset between rounds: the server keeps its state, as in real use."
    )
    emit()
    headers = ["target", "persona's models (✗ = 503)", "upstream calls", "p50 / p99 (ms)"]
    headers += ["− failed call p50 (ms)", "paired Δ p50 (ms)"]
    emit(table(headers, rows))
    emit()
    native = paired("native", ["failed"])
    native_healthy = paired("native", ["healthy"])
    client_added = paired("client", ["failed"])
    overhead = paired("client", ["failed", DIRECT_OK])
    overhead_healthy = paired("client", ["healthy", DIRECT_FAIL])
    emit(
        f"- **Native fallback** adds {native * 1000:+.2f} ms over the failed call (paired). OpenRouter fails over "
        "inside the one request; the simulator charges nothing for the failed attempt, so this is our side only "
        "(on the live API, add the time the failed provider took to say no). Most of it is what a success costs "
        f"over an error result; over the healthy call, native fallback adds {native_healthy * 1000:+.2f} ms."
    )
    emit(
        f"- **Client-side fallback** adds {client_added * 1000:+.2f} ms over the failed call (paired) = a second "
        f"upstream round trip ({ms(summaries[DIRECT_OK].p50)} ms at p50 without MCP) + our decision. **Our overhead: "
        f"{overhead * 1000:+.2f} ms** (per round: client-side − failed call − the answered direct round trip). "
        "The same from the other side (client-side − healthy − the 503 direct round trip): "
        f"{overhead_healthy * 1000:+.2f} ms. Over stdio these two resolve no better than about a millisecond "
        "(the machine's noise); the in-process table below isolates our part."
    )
    emit(
        "- `paired Δ` is the median of per-round differences (drift-resistant); `− failed call` is the difference "
        "of the medians."
    )
    emit()


async def measure_decision(runs: int) -> dict[str, list[float]]:
    """`fallback.run` alone, in this process, with an upstream that answers (or fails) at once.

    What remains is our own work per request: grouping, the decision after a failure, cooldown
    bookkeeping and the routing record. The stdio figures cannot resolve it (their noise is larger).
    Each run gets fresh cooldowns, as the stdio personas' 0 s cooldowns amount to.
    """
    persona = Persona(name="bench", rank_by=[], fallback=FallbackPolicy(cooldown_seconds=0))
    down = set(DOWN)

    async def call(models: list[str]) -> str:
        if all(model in down for model in models):
            raise status_error_class(503)("simulated outage", status_code=503, provider_code=503)
        return next(model for model in models if model not in down)

    def router_attempts(served: str) -> list[dict[str, Any]]:
        # What OpenRouter's metadata says about the models it passed over before `served`.
        return [{"model": model, "status": 503} for model in DOWN]

    upstream = fallback.Upstream(call=call, served_model=lambda served: served, router_attempts=router_attempts)
    samples: dict[str, list[float]] = {s.key: [] for s in SCENARIOS if s.answered_by is not None}
    routes = {s.key: Route("bench", None, [Candidate(m, "", None, None) for m in s.models], []) for s in SCENARIOS}
    rng = random.Random(0)
    for _ in range(runs):
        for key in shuffled(list(samples), rng):
            route = routes[key]
            started = time.perf_counter()
            record = fallback.RoutingRecord("bench", None, [c.model_id for c in route.candidates], [])
            await fallback.run_with_fallback(route, persona, Cooldowns(), upstream, record)
            samples[key].append(time.perf_counter() - started)
            if record.answered_by != ANSWER:
                raise HarnessError(f"in-process {key}: answered by {record.answered_by}")
    return samples


def report_decision(samples: dict[str, list[float]]) -> None:
    labels = {s.key: s for s in SCENARIOS}
    base = statistics.median(samples["healthy"])
    rows = []
    for key, values in samples.items():
        summary = Summary.of(values)
        delta = "—" if key == "healthy" else f"{(summary.p50 - base) * 1e6:+.1f}"
        row = [labels[key].label, labels[key].upstream_calls, f"{summary.p50 * 1e6:.1f} / {summary.p99 * 1e6:.1f}"]
        rows.append([*row, delta])
    emit(
        f"Our decision alone: `fallback.run` in this process, {len(samples['healthy'])} runs per path, with an "
        "upstream that answers (or raises the 503) at once and fresh cooldowns per run; what is left is our work."
    )
    emit()
    emit(table(["path", "upstream calls", "fallback.run p50 / p99 (µs)", "− healthy p50 (µs)"], rows))
    emit()


# --- part 2: upstream calls while a model cools down -------------------------------------------


@dataclass(frozen=True)
class CoolingCase:
    key: str
    label: str
    models: list[str]
    limited: list[str]
    cooldown: float | None


COOLING_CASES = [
    CoolingCase("cooling", "primary rate-limited, default cooldown", [LIMITED[0], ANSWER, SPARE], [LIMITED[0]], None),
    CoolingCase("nocool", "primary rate-limited, cooldown_seconds = 0", [LIMITED[1], ANSWER, SPARE], [LIMITED[1]], 0.0),
    CoolingCase(
        "group",
        "whole first group rate-limited, cooldown_seconds = 0",
        [*LIMITED[2:5], ANSWER],
        list(LIMITED[2:5]),
        0.0,
    ),
]


@dataclass
class CoolingResult:
    case: CoolingCase
    first_calls: int
    first_named: list[list[str]]
    later: int
    later_sent: list[list[str]]
    later_cooling_exclusions: int
    later_fallbacks: int


async def measure_cooling(later: int) -> list[CoolingResult]:
    # Counts, not times: the upstream answers at once.
    faults = {model: Fault(status=429, retry_after=RETRY_AFTER, provider_code=429) for model in LIMITED}
    spec = {case.key: (case.models, case.cooldown) for case in COOLING_CASES}
    results = []
    with faulty_upstream(0.0, faults) as base_url, personas_file(spec) as path:
        async with (
            httpx2.AsyncClient(timeout=CALL_TIMEOUT) as http,
            stdio_client((*OURS, "--personas", str(path)), server_env(base_url)) as client,
        ):
            for case in COOLING_CASES:
                note(f"cooling: {case.label}: 1 + {later} requests")
                before = len(await chat_models_sent(http, base_url))
                _, first = routing_of(await succeeded(chat(client, case.key), case))
                middle = len(await chat_models_sent(http, base_url))
                excluded = fallbacks = 0
                for _ in range(later):
                    _, routing = routing_of(await succeeded(chat(client, case.key), case))
                    excluded += any(
                        x.get("model") in case.limited and x.get("reason") == "cooling_down"
                        for x in routing.get("exclusions") or []
                    )
                    fallbacks += bool(routing.get("fallback_used"))
                sent = await chat_models_sent(http, base_url)
                first_sent, later_sent = sent[before:middle], sent[middle:]
                calls = int(first["upstream_calls"])
                results.append(CoolingResult(case, calls, first_sent, later, later_sent, excluded, fallbacks))
    return results


async def succeeded(call: Awaitable[CallToolResult], case: CoolingCase) -> CallToolResult:
    result = await call
    if result.is_error:
        raise HarnessError(f"{case.label}: the request failed: {result_text(result)[:300]}")
    return result


def report_cooling(results: list[CoolingResult]) -> None:
    default = FallbackPolicy().cooldown_seconds
    rows = []
    for r in results:
        cooldown = f"{default:g} s (default)" if r.case.cooldown is None else f"{r.case.cooldown:g} s"
        upstream = len(r.first_named) + len(r.later_sent)
        naming = sum(any(m in r.case.limited for m in named) for named in r.later_sent)
        first = " + ".join("[" + ", ".join(short(m) for m in named) + "]" for named in r.first_named)
        rows.append(
            [
                r.case.label,
                cooldown,
                first,
                f"{upstream / (1 + r.later):.2f}",
                f"{naming} of {len(r.later_sent)}",
                f"{r.later_cooling_exclusions} of {r.later}",
                f"{r.later_fallbacks} of {r.later}",
            ]
        )
    later = results[0].later
    emit("## Upstream calls per request while a model cools down")
    emit()
    emit(
        f"One request, then {later} more, one after the other, per persona. The models rate-limited by their "
        f"provider answer every request with 429 and `Retry-After: {RETRY_AFTER:g}` (`provider_code` 429: not "
        "OpenRouter's own account-wide limit). Each persona lists its models (rank_by = []), and each has its own "
        "rate-limited models, so no case inherits another's cooldowns. Counts from the simulator's request log; "
        "the upstream answers at once (latency does not change a count)."
    )
    emit()
    headers = [
        "case",
        "cooldown",
        "first request sent (groups)",
        "upstream chat requests per request",
        "later upstream requests naming a rate-limited model",
        "later results: excluded as cooling_down",
        "later results: fallback_used",
    ]
    emit(table(headers, rows))
    emit()
    emit(
        "A later upstream request that still names the rate-limited model costs OpenRouter a failed attempt inside "
        "that request (the simulator charges no time for it; the live API charges the provider's refusal). "
        "Inside a native group, the model OpenRouter passed over cools for `cooldown_seconds` only: OpenRouter "
        "reports its status, not its Retry-After. When the whole group fails, the last error's Retry-After "
        "reaches us and wins over a shorter cooldown, even `cooldown_seconds = 0`."
    )
    emit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Latency of fallback, and upstream calls saved by cooldowns.")
    parser.add_argument("--rounds", type=int, default=100, help="measured rounds (each calls every target once)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured rounds first")
    parser.add_argument("--latency", type=float, default=0.05, help="simulated upstream latency, seconds")
    parser.add_argument("--decisions", type=int, default=2000, help="in-process runs of fallback.run per path")
    parser.add_argument("--later", type=int, default=50, help="requests after the first, per cooldown case")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--faults", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        serve_upstream(args.latency, json.loads(args.faults))
        return
    started = time.perf_counter()
    report_latency(anyio.run(measure_latency, args.rounds, args.warmup, args.latency), args.latency)
    report_decision(anyio.run(measure_decision, args.decisions))
    report_cooling(anyio.run(measure_cooling, args.later))
    note(f"bench.fallback took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
