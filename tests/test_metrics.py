"""Prometheus metrics at /metrics: a scripted mix of calls against a real server process, scraped over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult
from prometheus_client.parser import text_string_to_metric_families

from openrouter_mcp.observability.metrics import MAX_MODEL_LABELS, OTHER, Metrics
from openrouter_mcp.simulator import Fault, Simulator
from tests.conftest import TEST_KEY
from tests.processes import ServerProcess, async_http_server, server_env
from tests.team import ALICE, INITIALIZE, MCP_HEADERS, serve

pytestmark = pytest.mark.anyio

PERSONAS = """
default = "team"

[personas.team]
models = ["openai/gpt-4o", "anthropic/claude-sonnet-4", "google/gemini-2.5-flash"]
rank_by = []
fallback = { cooldown_seconds = 600 }
budget = { daily = 10.0 }

[personas.capped]
models = ["openai/gpt-4o-mini"]
rank_by = []
budget = { daily = 0.0000001 }
"""

HELLO = [{"role": "user", "content": "A secret user sentence that must never become a label."}]

#: Series of one scrape: (metric sample name, sorted label pairs) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


async def scrape(url: str, token: str | None = None) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(timeout=10.0) as http:
        return await http.get(f"{url}/metrics", headers=headers)


@asynccontextmanager
async def metered(upstream_url: str, tmp_path: Path, *args: str) -> AsyncIterator[ServerProcess]:
    personas = tmp_path / "personas.toml"
    personas.write_text(PERSONAS, encoding="utf-8")
    env = server_env(upstream_url)
    async with async_http_server("--personas", str(personas), *args, env=env) as served:
        yield served


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    return await client.call_tool(tool, arguments)


@pytest.mark.slow
async def test_a_scrape_after_a_scripted_mix_of_calls_shows_exactly_the_counts_the_mix_produces(
    upstream_url: str, sim: Simulator, tmp_path: Path
) -> None:
    async with metered(upstream_url, tmp_path, "--max-sessions-per-client", "1") as served:
        before = parse((await scrape(served.url)).text)
        assert value(before, "openrouter_mcp_tool_calls_total", tool="create_chat_completion", persona="team",
                     outcome="ok") == 0  # fmt: skip
        sim.model_faults["openai/gpt-4o"] = Fault(status=429, retry_after=30, provider_code=429)
        async with Client(f"{served.url}/mcp") as client:
            # 1: gpt-4o is rate limited, OpenRouter falls back to claude within the request; gpt-4o cools down.
            first = await call(client, "create_chat_completion", {"messages": HELLO, "persona": "team"})
            # 2: gpt-4o is skipped while it cools down; claude answers at once.
            second = await call(client, "create_chat_completion", {"messages": HELLO, "persona": "team"})
            # 3: refused by the persona's budget; 4: an unknown persona (the name must not become a label);
            # 5: an argument the tool does not take; 6: a catalog call under no persona.
            refused = await call(client, "create_chat_completion", {"messages": HELLO, "persona": "capped"})
            unknown = await call(client, "create_chat_completion", {"messages": HELLO, "persona": "a user's text"})
            invalid = await call(client, "create_chat_completion", {"messages": HELLO, "bogus": 1})
            listed = await call(client, "list_available_models", {"limit": 2})
        # Sessions in the handshake era: the first is opened and kept, the second is one past the cap.
        async with httpx2.AsyncClient(timeout=10.0) as http:
            opened = await http.post(f"{served.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            over = await http.post(f"{served.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        response = await scrape(served.url)
    assert [r.is_error for r in (first, second, refused, unknown, invalid, listed)] == [
        False,
        False,
        True,
        True,
        True,
        False,
    ]
    assert (opened.status_code, over.status_code) == (200, 429)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = parse(response.text)
    calls = {labels: count for (name, labels), count in samples.items() if name == "openrouter_mcp_tool_calls_total"}
    assert calls == {
        (("outcome", "ok"), ("persona", "team"), ("tool", "create_chat_completion")): 2.0,
        (("outcome", "refused"), ("persona", "capped"), ("tool", "create_chat_completion")): 1.0,
        (("outcome", "error"), ("persona", OTHER), ("tool", "create_chat_completion")): 1.0,
        (("outcome", "invalid_arguments"), ("persona", "none"), ("tool", "create_chat_completion")): 1.0,
        (("outcome", "ok"), ("persona", "none"), ("tool", "list_available_models")): 1.0,
    }
    claude = "anthropic/claude-sonnet-4"
    latency = "openrouter_mcp_upstream_latency_seconds_count"
    assert {labels: n for (name, labels), n in samples.items() if name == latency} == {
        (("model", claude), ("outcome", "ok")): 2.0
    }
    assert value(samples, "openrouter_mcp_fallbacks_total", reason="rate_limited", decision="switch_model") == 1.0
    assert sum(n for (name, _), n in samples.items() if name == "openrouter_mcp_fallbacks_total") == 1.0
    assert value(samples, "openrouter_mcp_models_cooling_down") == 1.0
    usages = [r.structured_content["usage"] for r in (first, second) if r.structured_content]
    assert value(samples, "openrouter_mcp_tokens_total", persona="team", model=claude, direction="input") == sum(
        u["prompt_tokens"] for u in usages
    )
    assert value(samples, "openrouter_mcp_tokens_total", persona="team", model=claude, direction="output") == sum(
        u["completion_tokens"] for u in usages
    )
    spent = sum(u["cost"] for u in usages)
    assert spent > 0
    assert value(samples, "openrouter_mcp_cost_usd_total", persona="team", model=claude) == pytest.approx(spent)
    assert value(samples, "openrouter_mcp_budget_spent_usd", scope="persona", name="team", period="daily") == (
        pytest.approx(spent)
    )
    assert value(samples, "openrouter_mcp_budget_remaining_usd", scope="persona", name="team", period="daily") == (
        pytest.approx(10.0 - spent)
    )
    assert value(samples, "openrouter_mcp_budget_spent_usd", scope="persona", name="capped", period="daily") == 0.0
    assert value(samples, "openrouter_mcp_open_sessions") == 1.0
    refusals = {labels: n for (name, labels), n in samples.items() if name == "openrouter_mcp_refusals_total"}
    assert refusals == {(("reason", "budget_exceeded"),): 1.0, (("reason", "too_many_sessions"),): 1.0}
    # Bounded labels: no user text, no ids, no key.
    assert "secret user sentence" not in response.text and "a user's text" not in response.text
    assert TEST_KEY not in response.text
    generation = first.structured_content["generation_id"] if first.structured_content else None
    assert generation and generation not in response.text


@pytest.mark.slow
async def test_metrics_need_a_valid_bearer_token_when_tokens_are_on(tmp_path: Path) -> None:
    with contextmanager(serve)(tmp_path, "streamable-http") as served:
        anonymous = await scrape(served.url)
        wrong = await scrape(served.url, "ormcp_" + "0" * 43)
        alice = await scrape(served.url, ALICE)
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert "openrouter_mcp_" not in anonymous.text + wrong.text
    assert alice.status_code == 200 and "openrouter_mcp_tool_calls_total" in alice.text
    assert value(parse(alice.text), "openrouter_mcp_refusals_total", reason="unauthenticated") == 2.0


def test_model_labels_are_catalog_ids_only_and_at_most_a_bounded_number_of_them() -> None:
    metrics = Metrics()
    catalog = {f"vendor/model-{i}" for i in range(MAX_MODEL_LABELS + 10)}
    assert metrics.model_label("not/in-the-catalog", catalog) == OTHER
    assert metrics.model_label(None, catalog) == OTHER
    labels = [metrics.model_label(f"vendor/model-{i}", catalog) for i in range(MAX_MODEL_LABELS + 10)]
    assert labels[:MAX_MODEL_LABELS] == [f"vendor/model-{i}" for i in range(MAX_MODEL_LABELS)]
    assert set(labels[MAX_MODEL_LABELS:]) == {OTHER}
    # A label once given stays the same.
    assert metrics.model_label("vendor/model-0", ()) == "vendor/model-0"


def test_two_servers_count_in_registries_of_their_own() -> None:
    first, second = Metrics(), Metrics()
    first.refused("too_busy")
    assert b'openrouter_mcp_refusals_total{reason="too_busy"} 1.0' in first.exposition()
    assert b"too_busy" not in second.exposition()


def test_each_label_set_counts_in_its_own_series_however_often_it_comes_back() -> None:
    metrics = Metrics()
    for reason in ["too_busy", "not_allowed", "too_busy", "too_busy", "budget_exceeded", "not_allowed"]:
        metrics.refused(reason)
    metrics.child(metrics.upstream_latency, "vendor/model", "ok").observe(0.07)
    metrics.child(metrics.upstream_latency, "vendor/model", "ok").observe(0.2)
    metrics.child(metrics.upstream_latency, "vendor/model", "timeout").observe(1.0)
    families = parse(metrics.exposition().decode())
    refusals = {
        reason: value(families, "openrouter_mcp_refusals_total", reason=reason)
        for reason in ("too_busy", "not_allowed", "budget_exceeded")
    }
    assert refusals == {"too_busy": 3.0, "not_allowed": 2.0, "budget_exceeded": 1.0}
    latency = "openrouter_mcp_upstream_latency_seconds_count"
    assert value(families, latency, model="vendor/model", outcome="ok") == 2.0
    assert value(families, latency, model="vendor/model", outcome="timeout") == 1.0
