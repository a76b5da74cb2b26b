"""Concurrent calls per client over streamable HTTP without tokens: counted per client address, across sessions;
with default flags one host runs 8 parallel chats unrefused; past the limit a call waits, then is refused clearly."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from openrouter_mcp.simulator import Simulator
from openrouter_mcp.simulator.faults import Fault
from tests.processes import async_http_server, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HELLO = [{"role": "user", "content": "Work on one part of the plan."}]


async def parallel_chats(url: str, *, sessions: int, per_session: int) -> list[CallToolResult]:
    """`sessions` clients of one host (one address), each running `per_session` chats at once."""
    results: list[CallToolResult] = []

    async def chat(client: Client) -> None:
        results.append(await client.call_tool("create_chat_completion", {"messages": HELLO}))

    async def session() -> None:
        async with Client(url) as client, anyio.create_task_group() as group:
            for _ in range(per_session):
                group.start_soon(chat, client)

    async with anyio.create_task_group() as group:
        for _ in range(sessions):
            group.start_soon(session)
    return results


def texts(results: list[CallToolResult]) -> list[str]:
    return [str(getattr(result.content[0], "text", "")) for result in results if result.is_error]


def slow_upstream(sim: Simulator, seconds: float) -> None:
    for model in ("openai/gpt-4o", "openai/gpt-4o-mini"):
        sim.model_faults[model] = Fault(latency=seconds)


async def test_one_host_runs_8_parallel_chats_with_default_flags_and_none_is_refused(
    upstream_url: str, sim: Simulator
) -> None:
    slow_upstream(sim, 1.0)  # long enough that all 8 are running at once
    async with async_http_server(env=server_env(upstream_url)) as served:
        with anyio.fail_after(60):
            results = await parallel_chats(f"{served.url}/mcp", sessions=1, per_session=8)
    assert len(results) == 8 and texts(results) == []
    assert sim.count("/chat/completions") == 8


async def test_a_call_over_the_limit_waits_for_a_running_one_to_finish_and_is_answered(
    upstream_url: str, sim: Simulator
) -> None:
    slow_upstream(sim, 0.5)
    flags = ("--max-concurrent-per-client", "2", "--concurrency-wait", "30")
    async with async_http_server(*flags, env=server_env(upstream_url)) as served:
        with anyio.fail_after(60):
            results = await parallel_chats(f"{served.url}/mcp", sessions=1, per_session=5)
    assert len(results) == 5 and texts(results) == []


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
async def test_calls_past_the_limit_and_the_wait_are_refused_clearly_counting_every_session_of_the_address(
    upstream_url: str, sim: Simulator, stateless: bool
) -> None:
    slow_upstream(sim, 3.0)  # the first two hold their slots far longer than the others wait
    flags = ("--max-concurrent-per-client", "2", "--concurrency-wait", "0.2", *(["--stateless"] if stateless else []))
    async with async_http_server(*flags, env=server_env(upstream_url)) as served:
        with anyio.fail_after(60):
            results = await parallel_chats(f"{served.url}/mcp", sessions=2, per_session=2)
    refused = texts(results)
    assert len(results) == 4 and len(refused) == 2, refused
    for text in refused:
        assert "too_busy" in text
        assert "Too many calls at once for 'address 127.0.0.1': 2 running, the limit is 2 per client" in text
        assert "none finished within 0.2 s" in text and "retry when one of the running calls finishes" in text
    assert sim.count("/chat/completions") == 2
