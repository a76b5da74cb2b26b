"""Chat, messages and account tools end to end: real mcp.Client -> our server -> HTTP -> simulated OpenRouter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult
from pydantic import SecretStr

from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator
from openrouter_mcp.tools.chat import ChatCompletionOutput, MessageOutput
from openrouter_mcp.tools.registry import ToolOutput
from tests.conftest import TEST_KEY
from tests.openapi_contract import validate_request

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "Say hello to the test suite."}]

#: Every result these tests see, scanned for the key at the end of each test.
SEEN: list[str] = []


@pytest.fixture(autouse=True)
def _no_key_in_any_result_or_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every result and every log line (DEBUG and up, httpx's included) is scanned for the key."""
    caplog.set_level(logging.DEBUG)
    SEEN.clear()
    yield
    leaked = [text for text in SEEN if TEST_KEY in text]
    assert not leaked, "the API key appeared in a tool result"
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    assert records, "nothing was logged: the log scan would prove nothing"
    assert not [r for r in records if TEST_KEY in r.getMessage()], "the API key appeared in a log line"


async def call(client: Client, tool: str, args: dict[str, Any]) -> CallToolResult:
    result = await client.call_tool(tool, args)
    SEEN.append(result.model_dump_json())
    return result


def error_text(result: CallToolResult) -> str:
    assert result.is_error, f"expected an error result, got {result.structured_content}"
    return " ".join(block.text for block in result.content if block.type == "text")


async def test_chat_completion_reports_text_model_provider_generation_and_cost(client: Client, sim: Simulator) -> None:
    result = await call(client, "create_chat_completion", {"model": "openai/gpt-4o", "messages": HELLO})
    assert not result.is_error
    out = result.structured_content
    assert out is not None
    assert out["text"] and out["model"] == "openai/gpt-4o" and out["provider"]
    assert out["generation_id"].startswith("gen-")
    assert out["usage"]["cost"] > 0 and out["usage"]["total_tokens"] > 0
    assert out["finish_reason"] == "stop" and out["streamed"] is False
    request = sim.requests[-1]
    assert request.path == "/chat/completions" and request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["x-openrouter-title"] == "openrouter-mcp" and request.headers["http-referer"]
    validate_request("post", "/chat/completions", request.body)


async def test_every_chat_parameter_reaches_openrouter_in_its_wire_shape(client: Client, sim: Simulator) -> None:
    args = {
        "model": "openai/gpt-4o",
        "models": ["anthropic/claude-sonnet-4"],
        "messages": [{"role": "system", "content": "Be brief."}, *HELLO],
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["\n\n"],
        "response_format": {"type": "json_object"},
        "reasoning": {"effort": "low"},
        "provider": {"sort": "price", "data_collection": "deny", "max_price": {"prompt": 1, "completion": 2}},
        "plugins": [{"id": "web"}],
        "user": "tester",
    }
    result = await call(client, "create_chat_completion", args)
    assert not result.is_error
    body = sim.requests[-1].body
    assert body["provider"]["max_price"] == {"prompt": "1", "completion": "2"}
    assert body["models"][0] == "anthropic/claude-sonnet-4" and body["stream"] is False
    assert body["reasoning"] == {"effort": "low"} and body["max_tokens"] == 64
    validate_request("post", "/chat/completions", body)


WEATHER_TOOL = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


async def test_tool_calls_come_back_with_their_arguments(client: Client) -> None:
    args = {"model": "openai/gpt-4o", "messages": HELLO, "tools": WEATHER_TOOL, "tool_choice": "required"}
    for stream in (False, True):
        result = await call(client, "create_chat_completion", {**args, "stream": stream})
        out = result.structured_content
        assert out is not None and out["finish_reason"] == "tool_calls"
        call_ = out["tool_calls"][0]
        assert call_["name"] == "get_weather" and isinstance(json.loads(call_["arguments"]), dict)


async def test_streamed_chat_is_aggregated_into_one_completion(client: Client, sim: Simulator) -> None:
    plain = await call(client, "create_chat_completion", {"model": "openai/gpt-4o-mini", "messages": HELLO})
    streamed = await call(
        client, "create_chat_completion", {"model": "openai/gpt-4o-mini", "messages": HELLO, "stream": True}
    )
    assert plain.structured_content is not None and streamed.structured_content is not None
    assert streamed.structured_content["streamed"] is True
    assert streamed.structured_content["text"] == plain.structured_content["text"]
    assert streamed.structured_content["usage"]["cost"] > 0
    assert streamed.structured_content["generation_id"].startswith("gen-")
    assert sim.requests[-1].body["stream"] is True


async def test_a_mid_stream_error_is_reported_with_the_text_that_had_arrived(client: Client, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(mid_stream_error=True)
    result = await call(client, "create_chat_completion", {"model": "openai/gpt-4o", "messages": HELLO, "stream": True})
    text = error_text(result)
    assert "mid_stream_error" in text and "partial_text" in text
    payload = json.loads(text.split("\n", 1)[1])
    assert payload["partial_text"]


async def test_a_200_carrying_an_error_is_an_error_result(client: Client, sim: Simulator) -> None:
    sim.path_faults["/chat/completions"] = Fault(error_in_200=True)
    result = await call(client, "create_chat_completion", {"model": "openai/gpt-4o", "messages": HELLO})
    assert "error_in_response" in error_text(result)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(status=402), ["payment_required", "HTTP 402", "settings/credits", "Do not retry"]),
        (Fault(status=429, retry_after=5), ["rate_limited", "HTTP 429", "Retry after 5 s", '"retry_after_seconds":5']),
        (Fault(status=503), ["unavailable", "HTTP 503", "Retrying may succeed"]),
        (Fault(status=502), ["bad_gateway", "HTTP 502"]),
        (Fault(malformed=True), ["malformed_response"]),
    ],
)
async def test_upstream_failures_become_actionable_error_results(
    client: Client, sim: Simulator, fault: Fault, expected: list[str]
) -> None:
    # Every model fails (the whole endpoint is down), so fallback cannot hide the error class under test.
    sim.path_faults["/chat/completions"] = fault
    text = error_text(await call(client, "create_chat_completion", {"model": "openai/gpt-4o", "messages": HELLO}))
    for fragment in expected:
        assert fragment in text


@pytest.mark.slow
async def test_a_slow_upstream_times_out_with_a_retryable_error(settings: Settings, sim: Simulator) -> None:
    sim.path_faults["/chat/completions"] = Fault(latency=2.0)
    fast = Settings(api_key=settings.api_key, base_url=settings.base_url, read_timeout=0.3)
    async with Client(build_server(fast)) as client:
        text = error_text(await call(client, "create_chat_completion", {"model": "openai/gpt-4o", "messages": HELLO}))
    assert "timeout" in text and "Retrying may succeed" in text


async def test_a_rejected_key_is_an_authentication_error(settings: Settings, sim: Simulator) -> None:
    wrong = Settings(api_key=SecretStr("sk-or-v1-wrong"), base_url=settings.base_url)
    async with Client(build_server(wrong)) as client:
        text = error_text(await call(client, "get_credits", {}))
    assert "authentication" in text and "HTTP 401" in text and "OPENROUTER_API_KEY" in text


async def test_without_a_key_paid_tools_say_how_to_set_one(settings: Settings, sim: Simulator) -> None:
    async with Client(build_server(Settings(base_url=settings.base_url))) as client:
        text = error_text(await call(client, "create_chat_completion", {"messages": HELLO}))
    assert "OPENROUTER_API_KEY" in text
    assert sim.count("/chat/completions") == 0


async def test_bad_arguments_are_rejected_before_any_upstream_call(client: Client, sim: Simulator) -> None:
    cases: list[dict[str, Any]] = [
        {"messages": HELLO, "temprature": 0.5},
        {"messages": []},
        {"messages": [{"role": "robot", "content": "hi"}]},
        {"messages": HELLO, "temperature": "hot"},
        {"messages": HELLO, "models": ["a/b", "c/d", "e/f", "g/h"]},
    ]
    for args in cases:
        text = error_text(await call(client, "create_chat_completion", args))
        assert "validation error" in text
    assert sim.count("/chat/completions") == 0


async def test_paid_results_built_as_dicts_are_exactly_what_their_output_models_dump(client: Client) -> None:
    """The paid tools build their result dict directly (hot path); it must be the output model's own dump."""
    streamed_tool_call = {"stream": True, "tools": WEATHER_TOOL, "tool_choice": "required"}
    cases: list[tuple[str, type[ToolOutput], dict[str, Any]]] = [
        ("create_chat_completion", ChatCompletionOutput, {"model": "openai/gpt-4o-mini", "messages": HELLO}),
        (
            "create_chat_completion",
            ChatCompletionOutput,
            {"model": "openai/gpt-4o", "messages": HELLO, **streamed_tool_call},
        ),
        ("create_message", MessageOutput, {"model": "anthropic/claude-sonnet-4", "messages": HELLO, "max_tokens": 50}),
    ]
    for tool, model, arguments in cases:
        result = await call(client, tool, arguments)
        out = result.structured_content
        assert out is not None and not result.is_error
        assert model.model_validate(out).model_dump(mode="json", by_alias=True, exclude_none=True) == out
        assert json.loads(result.content[0].text) == out  # type: ignore[union-attr]
        assert out["usage"]["cost"] > 0
        assert bool(out.get("tool_calls")) == ("tools" in arguments)


async def test_create_message_speaks_anthropic_format(client: Client, sim: Simulator) -> None:
    args = {"model": "anthropic/claude-sonnet-4", "messages": HELLO, "max_tokens": 100, "system": "Be brief."}
    result = await call(client, "create_message", args)
    out = result.structured_content
    assert out is not None and out["text"] and out["content"][0]["type"] == "text"
    assert out["model"] == "anthropic/claude-sonnet-4" and out["usage"]["cost"] > 0 and out["generation_id"]
    assert out["stop_reason"] == "end_turn"
    validate_request("post", "/messages", sim.requests[-1].body)


async def test_create_message_errors_use_the_anthropic_envelope(client: Client, sim: Simulator) -> None:
    sim.path_faults["/messages"] = Fault(status=429, retry_after=5)
    text = error_text(await call(client, "create_message", {"model": "anthropic/claude-sonnet-4", "messages": HELLO}))
    assert "HTTP 429" in text and "Retry after 5 s" in text


async def test_credits_key_and_generation_lookups(client: Client) -> None:
    credits = (await call(client, "get_credits", {})).structured_content
    assert credits is not None
    assert credits["remaining"] == pytest.approx(credits["total_credits"] - credits["total_usage"])
    key = (await call(client, "get_current_key", {})).structured_content
    assert key is not None and "label" in key and "usage" in key
    chat = (
        await call(client, "create_chat_completion", {"model": "openai/gpt-4o", "messages": HELLO})
    ).structured_content
    assert chat is not None
    generation = (await call(client, "get_generation", {"id": chat["generation_id"]})).structured_content
    assert generation is not None and generation["id"] == chat["generation_id"]
    assert generation["model"] == "openai/gpt-4o" and generation["total_cost"] == pytest.approx(chat["usage"]["cost"])


async def test_an_unknown_generation_is_not_found(client: Client) -> None:
    text = error_text(await call(client, "get_generation", {"id": "gen-does-not-exist"}))
    assert "not_found" in text and "HTTP 404" in text


async def test_the_retired_coinbase_charge_explains_how_to_buy_credits(client: Client, sim: Simulator) -> None:
    args = {"amount": 10, "sender": "0x" + "ab" * 20, "chain_id": 8453}
    text = error_text(await call(client, "create_coinbase_charge", args))
    assert "HTTP 410" in text and "retired" in text and "settings/credits" in text
    validate_request("post", "/credits/coinbase", sim.requests[-1].body)
    bad = error_text(await call(client, "create_coinbase_charge", {**args, "chain_id": 5}))
    assert "validation error" in bad


async def test_annotations_tell_hosts_what_each_tool_does(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("get_credits", "get_current_key", "get_generation"):
        hints = tools[name].annotations
        assert hints is not None and hints.read_only_hint and hints.idempotent_hint
    for name in ("create_chat_completion", "create_message"):
        hints = tools[name].annotations
        assert hints is not None and not hints.read_only_hint and hints.open_world_hint and not hints.idempotent_hint
    charge = tools["create_coinbase_charge"].annotations
    assert charge is not None and charge.destructive_hint and not charge.idempotent_hint
    for tool in tools.values():
        assert tool.output_schema is not None and tool.input_schema.get("additionalProperties") is False
