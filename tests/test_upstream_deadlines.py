"""An upstream that drips its answer a byte at a time gets a timeout error within the call's deadline, from every tool.

The simulator's `drip` fault sends each byte well within the read timeout, so only the overall deadline per
kind of call (or, in a stream, the read timeout between two events) can end the wait. Each test is bounded by
`anyio.fail_after(deadline + MARGIN)`; the dripped answers would take many times longer.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from openrouter_mcp.config import Settings
from openrouter_mcp.errors import UpstreamTimeout
from openrouter_mcp.routing import personas
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator
from openrouter_mcp.upstream.client import OpenRouterClient
from tests.conftest import TEST_KEY
from tests.upstream_tools import HELLO, UPSTREAM_TOOLS

# slow: each test waits out a deadline on purpose.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

#: The deadlines these tests configure, and the slack allowed on top (a loaded machine, the MCP round trip).
DEADLINE = 0.5
MARGIN = 3.0
#: Seconds between dripped bytes: every answer here is over 40 bytes, so it would take at least 8 s whole.
DRIP = 0.2


@pytest.fixture
def hurried(settings: Settings) -> Settings:
    """Short deadlines for every kind of call; the read timeout stays long, as a drip never trips it."""
    return dataclasses.replace(
        settings, lookup_deadline=DEADLINE, chat_deadline=DEADLINE, stream_deadline=DEADLINE, read_timeout=10.0
    )


@pytest.fixture
async def hurried_client(hurried: Settings, sim: Simulator) -> AsyncIterator[Client]:
    async with Client(build_server(hurried)) as connected:
        yield connected


def error_payload(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    return dict(json.loads(text.split("\n", 1)[1]))


@pytest.mark.parametrize(("tool", "arguments", "path"), UPSTREAM_TOOLS, ids=[f"{t[0]}:{t[2]}" for t in UPSTREAM_TOOLS])
async def test_every_upstream_tool_answers_a_dripping_upstream_with_a_timeout_within_its_deadline(
    hurried_client: Client, sim: Simulator, tool: str, arguments: dict[str, Any], path: str
) -> None:
    sim.path_faults[path] = Fault(drip=DRIP)
    with anyio.fail_after(DEADLINE + MARGIN):
        result = await hurried_client.call_tool(tool, arguments)
    payload = error_payload(result)
    assert payload["error"] == "timeout" and payload["retryable"] is True
    assert "did not finish answering" in payload["message"] and f"within {DEADLINE:g} s" in payload["message"]
    assert sim.count(path) >= 1  # the request was sent, and its answer was what dripped
    assert TEST_KEY not in json.dumps(payload)


async def test_the_timeout_message_names_the_call_and_the_deadline(hurried: Settings, sim: Simulator) -> None:
    sim.path_faults["/credits"] = Fault(drip=DRIP)
    client = OpenRouterClient(hurried)
    try:
        with anyio.fail_after(DEADLINE + MARGIN), pytest.raises(UpstreamTimeout) as caught:
            await client.get_credits()
    finally:
        await client.aclose()
    assert caught.value.message.startswith(f"OpenRouter did not finish answering GET /credits within {DEADLINE:g} s")
    assert "OPENROUTER_LOOKUP_DEADLINE" in caught.value.message


async def test_a_stream_whose_events_drip_slower_than_the_read_timeout_times_out_between_events(
    settings: Settings, sim: Simulator
) -> None:
    # Each byte comes 25 times sooner than the read timeout, but no line of the stream is whole within it.
    patient = dataclasses.replace(settings, read_timeout=DEADLINE, stream_deadline=60.0)
    sim.path_faults["/chat/completions"] = Fault(drip=DEADLINE / 25)
    client = OpenRouterClient(patient)
    try:
        with anyio.fail_after(DEADLINE * 4 + MARGIN), pytest.raises(UpstreamTimeout) as caught:
            async with client.stream_chat_completion({"messages": HELLO, "model": "openai/gpt-4o"}) as chunks:
                async for _ in chunks:
                    pass
    finally:
        await client.aclose()
    assert "without a complete event" in caught.value.message
    assert "OPENROUTER_READ_TIMEOUT" in caught.value.message


async def test_a_stream_that_keeps_sending_still_ends_at_its_overall_deadline(
    settings: Settings, sim: Simulator
) -> None:
    # Events arrive well within the read timeout, one after another, for longer than the stream may last.
    sim.stream_chunk_delay = DEADLINE / 5
    client = OpenRouterClient(dataclasses.replace(settings, stream_deadline=DEADLINE))
    received = 0
    try:
        with anyio.fail_after(DEADLINE + MARGIN), pytest.raises(UpstreamTimeout) as caught:
            long_prompt = [{"role": "user", "content": "Please write a long story. " * 20}]
            async with client.stream_chat_completion({"messages": long_prompt, "model": "openai/gpt-4o"}) as chunks:
                async for _ in chunks:
                    received += 1
    finally:
        sim.stream_chunk_delay = 0.0
        await client.aclose()
    assert received >= 1  # it was streaming, not stuck
    assert "did not finish answering POST /chat/completions (streamed) within" in caught.value.message


ROUTED = personas.parse(
    {
        "default": "hasty",
        "personas": {
            "hasty": {"models": ["openai/gpt-4o"], "rank_by": [], "fallback": {"deadline_seconds": DEADLINE}},
            # Two groups of OpenRouter's native fallback (at most three models each): gpt-4o first, then claude.
            "two_groups": {
                "models": [
                    "openai/gpt-4o",
                    "openai/gpt-4o-mini",
                    "meta-llama/llama-3.3-70b-instruct",
                    "anthropic/claude-sonnet-4",
                ],
                "rank_by": [],
            },
        },
    }
)


async def test_a_chat_that_runs_out_of_its_persona_deadline_says_so_and_may_be_retried(
    settings: Settings, sim: Simulator
) -> None:
    sim.path_faults["/chat/completions"] = Fault(drip=DRIP)
    async with Client(build_server(settings, personas=ROUTED)) as client:
        with anyio.fail_after(DEADLINE + MARGIN):
            result = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "hasty"})
    payload = error_payload(result)
    assert payload["error"] == "deadline_exceeded" and payload["retryable"] is True
    assert f"deadline of {DEADLINE:g} s ran out, after 1 upstream call(s)" in payload["message"]
    assert "openai/gpt-4o had not answered yet" in payload["message"]
    routing = payload["routing"]
    assert routing["upstream_calls"] == 1
    assert routing["attempts"] == [
        {
            "model": "openai/gpt-4o",
            "outcome": "failed",
            "error_type": "deadline_exceeded",
            "latency_ms": routing["attempts"][0]["latency_ms"],
            "decision": "fail",
        }
    ]


async def test_a_model_that_drips_past_the_chat_deadline_is_left_for_the_next_candidate(
    hurried: Settings, sim: Simulator
) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(drip=DRIP)
    async with Client(build_server(dataclasses.replace(hurried, lookup_deadline=30.0), personas=ROUTED)) as client:
        with anyio.fail_after(DEADLINE + MARGIN):
            result = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "two_groups"})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    routing = result.structured_content["routing"]
    assert routing["answered_by"] == "anthropic/claude-sonnet-4"
    assert routing["upstream_calls"] == 2
    assert [(a["model"], a["error_type"]) for a in routing["attempts"][:3]] == [
        ("openai/gpt-4o", "timeout"),
        ("openai/gpt-4o-mini", "timeout"),
        ("meta-llama/llama-3.3-70b-instruct", "timeout"),
    ]


async def test_a_stream_cut_by_its_deadline_after_text_arrived_reports_that_text_instead_of_restarting(
    settings: Settings, sim: Simulator
) -> None:
    sim.stream_chunk_delay = DEADLINE / 5
    long_prompt = [{"role": "user", "content": "Please write a long story. " * 20}]
    try:
        async with Client(build_server(dataclasses.replace(settings, stream_deadline=DEADLINE))) as client:
            with anyio.fail_after(DEADLINE + MARGIN):
                result = await client.call_tool(
                    "create_chat_completion", {"messages": long_prompt, "model": "openai/gpt-4o", "stream": True}
                )
    finally:
        sim.stream_chunk_delay = 0.0
    payload = error_payload(result)
    assert payload["error"] == "mid_stream_error" and payload["error_type"] == "timeout"
    assert payload["partial_text"]
    assert "did not finish answering" in payload["message"] and "incomplete" in payload["message"]
    assert payload["routing"]["upstream_calls"] == 1 and sim.count("/chat/completions") == 1


async def dripping_chat_within(
    settings: Settings, sim: Simulator, seconds: float
) -> tuple[anyio.CancelScope, UpstreamTimeout | None, float]:
    """A chat call to a dripping upstream inside an enclosing `move_on_after(seconds)`: that scope, the
    `UpstreamTimeout` the call raised (None if it raised nothing), and how long it all took."""
    sim.path_faults["/chat/completions"] = Fault(drip=DRIP)
    client = OpenRouterClient(settings)
    timeout: UpstreamTimeout | None = None
    try:
        with anyio.fail_after(DEADLINE + MARGIN):
            started = anyio.current_time()
            with anyio.move_on_after(seconds) as enclosing:
                try:
                    await client.create_chat_completion({"messages": HELLO, "model": "openai/gpt-4o"})
                except UpstreamTimeout as exc:
                    timeout = exc
            return enclosing, timeout, anyio.current_time() - started
    finally:
        await client.aclose()


async def test_a_chat_call_inside_a_deadline_that_ends_sooner_is_ended_by_that_deadline(
    hurried: Settings, sim: Simulator
) -> None:
    # As a persona's deadline (120 s) ends before the chat deadline (300 s): the sooner one ends the call, quietly.
    enclosing, timeout, took = await dripping_chat_within(hurried, sim, DEADLINE / 5)
    assert enclosing.cancelled_caught and timeout is None
    assert took < DEADLINE
    assert sim.count("/chat/completions") == 1


async def test_a_chat_call_inside_a_deadline_that_ends_later_times_out_at_its_own(
    hurried: Settings, sim: Simulator
) -> None:
    enclosing, timeout, _ = await dripping_chat_within(hurried, sim, DEADLINE + MARGIN / 2)
    assert not enclosing.cancelled_caught
    assert timeout is not None and f"within {DEADLINE:g} s" in timeout.message
