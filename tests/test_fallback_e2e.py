"""Personas and fallback end to end: real mcp.Client -> our server -> HTTP -> simulated OpenRouter with faults."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from openrouter_mcp.config import Settings
from openrouter_mcp.routing import personas
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator

pytestmark = pytest.mark.anyio

FREE = [
    "qwen/qwq-32b-exp:free",
    "deepseek/deepseek-prover-v2:free",
    "qwen/qwen3-coder:free",
    "mistralai/devstral-medium-instruct:free",
]

CONFIG = personas.parse(
    {
        "default": "team",
        "personas": {
            "team": {
                "description": "Strong general models.",
                "system_prompt": "You are the team's assistant.",
                "models": ["openai/gpt-4o", "anthropic/claude-sonnet-4", "google/gemini-2.5-flash"],
                "rank_by": [],
                "fallback": {"cooldown_seconds": 60},
            },
            "frugal": {
                "description": "Never above $1 per million tokens.",
                "models": ["openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct"],
                "rank_by": ["cheap"],
                "max_price": {"prompt": 1.0, "completion": 1.0},
                "tools": ["create_chat_completion", "route_request", "get_models_count"],
            },
            "solo": {"models": ["openai/gpt-4o"], "rank_by": [], "fallback": {"max_attempts": 3}},
            "freeloader": {"models": [*FREE, "meta-llama/llama-3.3-70b-instruct"], "rank_by": []},
            "hasty": {"models": ["openai/gpt-4o"], "rank_by": [], "fallback": {"deadline_seconds": 0.3}},
        },
    }
)

HELLO = [{"role": "user", "content": "Say hello to the routing tests."}]


@pytest.fixture
async def routed(settings: Settings, sim: Simulator) -> AsyncIterator[Client]:
    async with Client(build_server(settings, personas=CONFIG)) as connected:
        yield connected


async def chat(client: Client, **args: Any) -> CallToolResult:
    return await client.call_tool("create_chat_completion", {"messages": HELLO, **args})


def out(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if block.type == "text")


def error_payload(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    return dict(json.loads(text.split("\n", 1)[1]))


def models_sent(sim: Simulator) -> list[list[str]]:
    """The models each upstream chat request named, in order (`model` first, then `models`)."""
    return [[r.body["model"], *r.body.get("models", [])] for r in sim.requests if r.path == "/chat/completions"]


async def test_a_rate_limited_primary_is_answered_by_the_next_candidate_and_the_result_says_so(
    routed: Client, sim: Simulator
) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=429, retry_after=30, provider_code=429)
    result = out(await chat(routed, persona="team"))
    assert result["model"] == "anthropic/claude-sonnet-4"
    routing = result["routing"]
    assert routing["persona"] == "team" and routing["fallback_used"] is True
    assert routing["answered_by"] == "anthropic/claude-sonnet-4"
    assert routing["attempts"][0]["model"] == "openai/gpt-4o" and routing["attempts"][0]["status"] == 429
    # OpenRouter failed over inside one request: the native `models` array is the cheap path.
    assert sim.count("/chat/completions") == 1 and routing["upstream_calls"] == 1


async def test_the_next_request_skips_the_cooling_model_so_it_costs_no_further_calls(
    routed: Client, sim: Simulator
) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=429, retry_after=30, provider_code=429)
    out(await chat(routed))
    second = out(await chat(routed))
    assert second["routing"]["candidates"][0] == "anthropic/claude-sonnet-4"
    assert {"model": "openai/gpt-4o", "reason": "cooling_down"}.items() <= second["routing"]["exclusions"][0].items()
    assert second["routing"]["fallback_used"] is False
    assert sim.count("/chat/completions") == 2
    assert "openai/gpt-4o" not in models_sent(sim)[1]


async def test_when_every_candidate_is_down_one_error_lists_every_attempt(routed: Client, sim: Simulator) -> None:
    sim.path_faults["/chat/completions"] = Fault(status=503)
    payload = error_payload(await chat(routed, persona="team"))
    assert payload["status"] == 503 and payload["error"] == "unavailable" and payload["retryable"] is True
    routing = payload["routing"]
    tried = [a["model"] for a in routing["attempts"]]
    assert tried == ["openai/gpt-4o", "anthropic/claude-sonnet-4", "google/gemini-2.5-flash"]
    assert all(a["outcome"] == "failed" and a["status"] == 503 for a in routing["attempts"])
    assert "every candidate failed" in payload["message"]


async def test_a_cheaper_persona_never_falls_back_to_a_pricier_model(routed: Client, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o-mini"] = Fault(status=503)
    sim.model_faults["meta-llama/llama-3.3-70b-instruct"] = Fault(status=502)
    result = await chat(routed, persona="frugal", model="openai/gpt-4o")
    exclusions = (out(result) if not result.is_error else error_payload(result))["routing"]["exclusions"]
    assert exclusions[0]["model"] == "openai/gpt-4o" and exclusions[0]["reason"] == "over_price_ceiling"
    prices = {m["id"]: m["pricing"] for m in sim.catalog}
    sent = [model for group in models_sent(sim) for model in group]
    assert sent and "openai/gpt-4o" not in sent
    for model in sent:
        assert (
            Decimal(prices[model]["prompt"]) * 1_000_000 <= 1 and Decimal(prices[model]["completion"]) * 1_000_000 <= 1
        )
    # The ceiling also travels upstream, so OpenRouter cannot pick a pricier endpoint either.
    bodies = [r.body for r in sim.requests if r.path == "/chat/completions"]
    assert all(b["provider"]["max_price"] == {"prompt": "1", "completion": "1"} for b in bodies)


async def test_an_account_wide_free_tier_limit_skips_every_free_model(routed: Client, sim: Simulator) -> None:
    for model in FREE[:3]:
        sim.model_faults[model] = Fault(status=429, rate_limit_headers=True)
    result = out(await chat(routed, persona="freeloader"))
    assert result["model"] == "meta-llama/llama-3.3-70b-instruct"
    # The fourth free model shares the exhausted limit: skipped without an upstream call.
    assert [group for group in models_sent(sim)] == [FREE[:3], ["meta-llama/llama-3.3-70b-instruct"]]
    again = out(await chat(routed, persona="freeloader"))
    assert {x["model"] for x in again["routing"]["exclusions"] if x["reason"] == "cooling_down"} == set(FREE)


async def test_a_short_retry_after_is_waited_out_on_the_same_model(routed: Client, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=429, retry_after=0.2, provider_code=429, times=1)
    result = out(await chat(routed, persona="solo"))
    assert result["model"] == "openai/gpt-4o"
    decisions = [a.get("decision") for a in result["routing"]["attempts"]]
    assert decisions == ["retry_same_model", None] and result["routing"]["upstream_calls"] == 2


async def test_a_mid_stream_failure_after_text_is_reported_not_restarted(routed: Client, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(mid_stream_error=True)
    payload = error_payload(await chat(routed, persona="team", stream=True))
    assert payload["error"] == "mid_stream_error" and payload["partial_text"]
    assert payload["routing"]["attempts"][-1]["decision"] == "fail"
    assert sim.count("/chat/completions") == 1


@pytest.mark.slow
async def test_the_persona_deadline_bounds_the_whole_call(routed: Client, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(latency=1.0)
    payload = error_payload(await chat(routed, persona="hasty"))
    assert "deadline" in payload["message"]


async def test_the_persona_system_prompt_is_sent_when_the_caller_gives_none(routed: Client, sim: Simulator) -> None:
    out(await chat(routed, persona="team"))
    assert sim.requests[-1].body["messages"][0] == {"role": "system", "content": "You are the team's assistant."}
    out(await chat(routed, persona="team", messages=[{"role": "system", "content": "Mine."}, *HELLO]))
    assert sim.requests[-1].body["messages"][0] == {"role": "system", "content": "Mine."}


async def test_create_message_routes_and_falls_back_too(routed: Client, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=503)
    result = await routed.call_tool("create_message", {"messages": HELLO, "persona": "team", "max_tokens": 50})
    answer = out(result)
    assert answer["model"] != "openai/gpt-4o" and answer["routing"]["fallback_used"] is True
    assert sim.requests[-1].body["system"] == "You are the team's assistant."


async def test_an_unknown_persona_is_a_clear_error(routed: Client, sim: Simulator) -> None:
    result = await chat(routed, persona="ghost")
    assert result.is_error and "unknown persona 'ghost'; available: freeloader, frugal, hasty, solo, team" in text(
        result
    )
    assert sim.count("/chat/completions") == 0


async def test_an_unknown_persona_is_reported_as_an_invalid_persona_not_worth_retrying(routed: Client) -> None:
    result = await chat(routed, persona="ghost")
    assert text(result).startswith("create_chat_completion failed: invalid_persona: unknown persona 'ghost'")
    assert "Do not retry unchanged." in text(result)
    payload = error_payload(result)
    assert payload["error"] == "invalid_persona" and payload["retryable"] is False


async def test_route_request_explains_the_choice_without_calling_a_model(routed: Client, sim: Simulator) -> None:
    result = out(await routed.call_tool("route_request", {"persona": "frugal", "model": "openai/gpt-4o"}))
    assert [c["model"] for c in result["candidates"]][:2] == ["openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct"]
    assert result["candidates"][0]["why"] == "persona preference #1"
    assert result["exclusions"][0] == {
        "model": "openai/gpt-4o",
        "reason": "over_price_ceiling",
        "detail": "prompt $2.5/M is over the persona's $1/M",
    }
    typo = out(await routed.call_tool("route_request", {"model": "openai/gpt-4o-mni"}))
    assert "closest: openai/gpt-4o-mini" in typo["exclusions"][0]["detail"]
    assert sim.count("/chat/completions") == 0


async def test_each_persona_is_offered_as_a_prompt(routed: Client) -> None:
    names = {prompt.name for prompt in (await routed.list_prompts()).prompts}
    assert {"persona-team", "persona-frugal"} <= names
    prompt = await routed.get_prompt("persona-team", {"request": "Review my plan."})
    text = prompt.messages[0].content.text  # type: ignore[union-attr]
    assert "You are the team's assistant." in text and 'persona="team"' in text and "Review my plan." in text


async def test_a_bound_session_lists_only_its_tools_and_refuses_everything_else(
    settings: Settings, sim: Simulator
) -> None:
    async with Client(build_server(settings, personas=CONFIG, bound_persona="frugal")) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert listed == {"create_chat_completion", "route_request", "get_models_count"}
        assert {p.name for p in (await client.list_prompts()).prompts} == {"persona-frugal"}
        refused = await client.call_tool("list_providers", {})
        assert refused.is_error and "list_providers is not available in this session's scope" in text(refused)
        other = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "team"})
        assert other.is_error and "bound to persona 'frugal'; it cannot act as 'team'" in text(other)
        allowed = out(await client.call_tool("create_chat_completion", {"messages": HELLO}))
        assert allowed["routing"]["persona"] == "frugal"
    assert sim.count("/providers") == 0 and sim.count("/chat/completions") == 1
