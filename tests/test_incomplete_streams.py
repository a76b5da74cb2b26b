"""A stream that ends before it is complete is an error that carries what arrived, never a success.

Complete means OpenRouter said so: a `finish_reason`, or the `[DONE]` terminator. An empty 200, a
stream of keep-alive comments only, or one cut between events has neither.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from mcp import Client
from pydantic import SecretStr

from openrouter_mcp.audit import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.errors import MalformedResponseError, MidStreamError
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator
from openrouter_mcp.upstream.client import OpenRouterClient
from openrouter_mcp.upstream.streaming import ChatStreamAggregator

pytestmark = pytest.mark.anyio

KEEPALIVE = ": OPENROUTER PROCESSING\n\n"


def event(content: str | None = None, finish: str | None = None) -> str:
    delta: dict[str, Any] = {"role": "assistant", "content": content or ""}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    chunk = {"id": "gen-cut-1", "object": "chat.completion.chunk", "created": 1, "model": "m/x", "choices": [choice]}
    return "data: " + json.dumps(chunk) + "\n\n"


async def streamed(body: str) -> ChatStreamAggregator:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})

    settings = Settings(api_key=SecretStr("sk-or-v1-x"), base_url="http://upstream.test/api/v1")
    client = OpenRouterClient(settings, httpx2.AsyncClient(transport=httpx2.MockTransport(answer)))
    aggregator = ChatStreamAggregator()
    async with client.stream_chat_completion({"messages": []}) as chunks:
        async for chunk in chunks:
            aggregator.add(chunk)
    return aggregator


@pytest.mark.parametrize(
    "body",
    [
        "",
        KEEPALIVE * 3,
        event("Hel") + event("lo, wor"),
    ],
    ids=["empty-200", "comments-only", "cut-between-events"],
)
async def test_a_stream_without_finish_reason_or_done_is_an_incomplete_stream_error(body: str) -> None:
    with pytest.raises(MidStreamError) as caught:
        await streamed(body)

    assert caught.value.error_type == "incomplete_stream" and caught.value.retryable


async def test_a_stream_torn_inside_an_event_is_a_malformed_response_not_a_success() -> None:
    with pytest.raises(MalformedResponseError):
        await streamed(KEEPALIVE + event("partial") + 'data: {"id":"gen-cut-1","choi')


async def test_a_stream_with_a_finish_reason_but_no_done_is_complete() -> None:
    aggregator = await streamed(event("Hi") + event("", finish="stop"))

    assert aggregator.text == "Hi" and aggregator.finish_reason == "stop"


async def test_a_stream_ended_by_done_is_complete() -> None:
    aggregator = await streamed(event("Hi") + event(" there") + "data: [DONE]\n\n")

    assert aggregator.text == "Hi there"


async def test_a_cut_stream_is_an_error_result_with_the_partial_text_and_is_audited_as_an_error(
    settings: Settings, sim: Simulator, tmp_path: Any
) -> None:
    database = tmp_path / "audit.sqlite3"
    server = build_server(settings, audit=AuditLog(database))
    sim.model_faults["openai/gpt-4o"] = Fault(cut_stream=True)
    messages = [{"role": "user", "content": "Tell me a long story."}]

    async with Client(server) as client:
        result = await client.call_tool(
            "create_chat_completion", {"model": "openai/gpt-4o", "messages": messages, "stream": True}
        )

    assert result.is_error
    text = "\n".join(block.text for block in result.content if block.type == "text")
    assert "incomplete_stream" in text and "mid_stream_error" in text
    payload = json.loads(text.split("\n", 1)[1])
    assert payload["partial_text"]
    with AuditLog(database) as log:
        rows = [row for row in log.export() if row["tool"] == "create_chat_completion"]
    assert [row["outcome"] for row in rows] == ["error"]
    assert "incomplete" in (rows[0]["error"] or "")
