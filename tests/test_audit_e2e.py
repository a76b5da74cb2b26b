"""The audit trail and spend guardrails end to end: every call recorded before it returns, budgets, usage, limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextResourceContents

from openrouter_mcp.audit import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.routing import personas
from openrouter_mcp.server import build_server
from openrouter_mcp.serving.limits import ClientLimits
from openrouter_mcp.simulator import Fault, Simulator
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.anyio

CONFIG = personas.parse(
    {
        "default": "team",
        "personas": {
            "team": {"models": ["openai/gpt-4o"], "rank_by": []},
            "private": {"models": ["openai/gpt-4o-mini"], "rank_by": [], "audit": "metadata"},
            "capped": {"models": ["openai/gpt-4o-mini"], "rank_by": [], "budget": {"daily": 0.00001}},
        },
    }
)
HELLO = [{"role": "user", "content": "A secret plan for the audit tests."}]


class Clock:
    def __init__(self, iso: str) -> None:
        self.now = datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "audit.sqlite3")


@pytest.fixture
def clock() -> Clock:
    return Clock("2026-11-26T12:00:00")


@pytest.fixture
async def audited(settings: Settings, sim: Simulator, log: AuditLog, clock: Clock) -> AsyncIterator[Client]:
    server = build_server(settings, personas=CONFIG, audit=log, clock=clock, limits=ClientLimits(1))
    async with Client(server) as connected:
        yield connected


def out(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def test_every_call_is_recorded_with_user_persona_prompt_model_tokens_and_cost(
    audited: Client, log: AuditLog
) -> None:
    answer = out(await audited.call_tool("create_chat_completion", {"messages": HELLO, "model": "openai/gpt-4o"}))
    [row] = log.tail(1)
    assert row["tool"] == "create_chat_completion" and row["outcome"] == "ok" and row["transport"] == "memory"
    assert row["persona"] == "team" and row["user"]
    assert row["requested_model"] == row["served_model"] == "openai/gpt-4o"
    assert row["generation_id"] == answer["generation_id"] and row["provider"] == answer["provider"]
    assert row["cost"] == pytest.approx(answer["usage"]["cost"]) and row["prompt_tokens"] and row["completion_tokens"]
    assert row["arguments"]["messages"] == HELLO and row["response"]["text"] == answer["text"]
    assert row["attempts"] and row["latency_ms"] > 0


async def test_errors_and_refusals_are_recorded_too(audited: Client, log: AuditLog, sim: Simulator) -> None:
    sim.path_faults["/chat/completions"] = Fault(status=402)
    failed = await audited.call_tool("create_chat_completion", {"messages": HELLO})
    refused = await audited.call_tool("create_chat_completion", {"messages": HELLO, "persona": "ghost"})
    assert failed.is_error and refused.is_error
    rows = log.tail(2)
    assert [r["outcome"] for r in rows] == ["error", "error"]
    assert "payment_required" in rows[0]["error"] and "unknown persona" in rows[1]["error"]


async def test_a_persona_can_keep_prompts_and_answers_out_of_the_log(audited: Client, log: AuditLog) -> None:
    out(await audited.call_tool("create_chat_completion", {"messages": HELLO, "persona": "private"}))
    [row] = log.tail(1)
    assert row["persona"] == "private" and row["arguments"] is None and row["response"] is None
    assert row["served_model"] == "openai/gpt-4o-mini" and row["cost"]


async def test_a_budget_refuses_calls_once_spent_until_the_next_day(
    audited: Client, log: AuditLog, clock: Clock, sim: Simulator
) -> None:
    out(await audited.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"}))
    refused = await audited.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"})
    text = refused.content[0].text  # type: ignore[union-attr]
    assert refused.is_error and "budget_exceeded" in text and "daily budget of $1e-05" in text
    assert "2026-11-27 00:00 UTC" in text
    assert log.tail(1)[0]["outcome"] == "refused" and sim.count("/chat/completions") == 1
    clock.now += 12 * 3600  # past midnight UTC: a new day, a new budget
    out(await audited.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"}))


async def test_usage_is_summarized_by_persona_model_and_day(audited: Client) -> None:
    for persona in ("team", "team", "private"):
        out(await audited.call_tool("create_chat_completion", {"messages": HELLO, "persona": persona}))
    usage = out(await audited.call_tool("get_usage", {"days": 7}))
    assert usage["calls"] == 3 and usage["cost"] > 0
    assert {row["persona"]: row["calls"] for row in usage["by_persona"]} == {"team": 2, "private": 1}
    assert {row["model"] for row in usage["by_model"]} == {"openai/gpt-4o", "openai/gpt-4o-mini"}
    assert [row["day"] for row in usage["by_day"]] == ["2026-11-26"]
    only = out(await audited.call_tool("get_usage", {"persona": "private"}))
    assert only["calls"] == 1
    read = await audited.read_resource("openrouter://usage")
    contents = [c.text for c in read.contents if isinstance(c, TextResourceContents)]
    assert json.loads(contents[0])["calls"] == 5  # the three chats and the two get_usage calls


@pytest.mark.slow
async def test_a_client_over_its_concurrency_limit_is_refused_at_once(audited: Client, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(latency=0.5)
    results: list[CallToolResult] = []

    async def slow_chat() -> None:
        results.append(await audited.call_tool("create_chat_completion", {"messages": HELLO}))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(slow_chat)
            group.start_soon(slow_chat)
    refused = [r for r in results if r.is_error]
    assert len(refused) == 1 and "too_busy" in refused[0].content[0].text  # type: ignore[union-attr]
    assert sim.count("/chat/completions") == 1


async def test_the_key_never_reaches_the_audit_database(audited: Client, log: AuditLog, sim: Simulator) -> None:
    out(await audited.call_tool("create_chat_completion", {"messages": HELLO}))
    out(await audited.call_tool("get_current_key", {}))
    sim.path_faults["/credits"] = Fault(status=401)
    await audited.call_tool("get_credits", {})
    database = Path(log.path) if hasattr(log, "path") else None
    files = list(database.parent.iterdir()) if database else []
    assert files and all(TEST_KEY.encode() not in f.read_bytes() for f in files)


async def test_a_low_balance_is_warned_about_from_openrouters_own_figures(
    settings: Settings, sim: Simulator, log: AuditLog
) -> None:
    generous = Settings(api_key=settings.api_key, base_url=settings.base_url, low_balance_usd=1_000.0)
    async with Client(build_server(generous, audit=log)) as client:
        credits = out(await client.call_tool("get_credits", {}))
        key = out(await client.call_tool("get_current_key", {}))
    assert "below $1000" in credits["warning"]
    assert ("warning" in key) == (key.get("limit_remaining") is not None)
    async with Client(build_server(settings, audit=log)) as client:
        assert "warning" not in out(await client.call_tool("get_credits", {}))
