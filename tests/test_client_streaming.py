"""The SSE reader and the aggregator against real captured OpenRouter streams and documented error chunks."""

from __future__ import annotations

import httpx2
import pytest
from pydantic import SecretStr

from openrouter_mcp import errors
from openrouter_mcp.config import Settings
from openrouter_mcp.upstream.client import OpenRouterClient
from openrouter_mcp.upstream.streaming import ChatStreamAggregator
from tests.data import OPENROUTER_DATA


def _wire_lines(sample: str) -> bytes:
    """A sample file as it was on the wire: without its `#` header and the author's `...` elision."""
    text = (OPENROUTER_DATA / "samples" / sample).read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if not line.startswith("#") and line.strip() != "..."]
    return ("\n".join(kept) + "\n").encode()


def _streaming_client(body: bytes) -> OpenRouterClient:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    settings = Settings(api_key=SecretStr("sk-or-v1-x"), base_url="http://upstream.test/api/v1")
    return OpenRouterClient(settings, httpx2.AsyncClient(transport=httpx2.MockTransport(answer)))


async def _aggregate(body: bytes) -> ChatStreamAggregator:
    aggregator = ChatStreamAggregator()
    async with _streaming_client(body).stream_chat_completion({"messages": []}) as chunks:
        async for chunk in chunks:
            aggregator.add(chunk)
    return aggregator


@pytest.mark.anyio
async def test_keepalive_comments_are_skipped_and_text_is_joined() -> None:
    aggregator = await _aggregate(_wire_lines("sse_chat_real_capture_igerman_2025-09-30.txt"))
    assert aggregator.text.startswith("I am a helpful AI")
    assert aggregator.provider == "Venice"
    assert aggregator.id == "gen-1759187999-DLF0yPmniXJ2Z2AYtgzN"


@pytest.mark.anyio
async def test_usage_chunk_with_non_empty_choices_is_read_once() -> None:
    aggregator = await _aggregate(_wire_lines("sse_chat_real_capture_goose_2026-01.txt"))
    result = aggregator.result()
    assert result.choices[0].message.content == aggregator.text and "47" in aggregator.text
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None and result.usage.total_tokens
    assert result.model == "openai/gpt-oss-120b:free"


@pytest.mark.anyio
@pytest.mark.parametrize(("label", "status"), [("(a)", 429), ("(b)", 200), ("(c)", 429)])
async def test_documented_mid_stream_error_chunks_raise_mid_stream_error(label: str, status: int) -> None:
    text = (OPENROUTER_DATA / "samples" / "sse_chat_errors_from_docs.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    event = next(lines[i + 1] for i, line in enumerate(lines) if line.startswith(f"## {label}"))
    good = b'data: {"id":"gen-1","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    with pytest.raises(errors.MidStreamError) as caught:
        await _aggregate(good + event.encode() + b"\n\n")
    assert caught.value.status_code == status
    assert caught.value.retryable


@pytest.mark.anyio
async def test_tool_call_fragments_are_reassembled_by_index() -> None:
    chunks = [
        '{"id":"gen-2","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a",'
        '"type":"function","function":{"name":"get_weather","arguments":""}}]}}]}',
        '{"id":"gen-2","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\":"}}]}}]}',
        '{"id":"gen-2","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function",'
        '"function":{"name":"get_time","arguments":"{}"}}]}}]}',
        '{"id":"gen-2","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"Oslo\\"}"}}]},'
        '"finish_reason":"tool_calls"}]}',
        '{"id":"gen-2","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"cost":0.0001}}',
        "[DONE]",
    ]
    body = "".join(f"data: {chunk}\n\n" for chunk in chunks).encode()
    result = (await _aggregate(body)).result()
    calls = result.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city":"Oslo"}'),
        ("call_b", "get_time", "{}"),
    ]
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.usage is not None and result.usage.cost == 0.0001


@pytest.mark.anyio
async def test_an_unparseable_event_is_a_malformed_response() -> None:
    with pytest.raises(errors.MalformedResponseError):
        await _aggregate(b"data: {not json\n\n")


@pytest.mark.anyio
async def test_a_pre_stream_error_status_is_raised_before_any_chunk() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(402, json={"error": {"code": 402, "message": "no credits"}})

    settings = Settings(api_key=SecretStr("sk-or-v1-x"), base_url="http://upstream.test/api/v1")
    client = OpenRouterClient(settings, httpx2.AsyncClient(transport=httpx2.MockTransport(answer)))
    with pytest.raises(errors.PaymentRequiredError):
        async with client.stream_chat_completion({"messages": []}):
            pass
