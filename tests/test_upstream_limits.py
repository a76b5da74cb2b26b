"""What an upstream answer may cost us is capped, and a request httpx refuses to build is a clear argument error."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult
from pydantic import SecretStr

from openrouter_mcp import errors
from openrouter_mcp.config import MIB, Settings
from openrouter_mcp.routing.decisions import Action, decide
from openrouter_mcp.routing.personas import FallbackPolicy
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Simulator
from openrouter_mcp.upstream.bounds import timed_lines
from openrouter_mcp.upstream.client import OpenRouterClient
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "Hello, size caps."}]


def error_payload(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    return dict(json.loads(text.split("\n", 1)[1]))


def mock_client(handler: Any, **changes: Any) -> OpenRouterClient:
    settings = Settings(api_key=SecretStr(TEST_KEY), base_url="http://upstream.test/api/v1", **changes)
    return OpenRouterClient(settings, httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))


async def test_an_answer_over_the_size_cap_is_a_clear_error_that_is_not_retried(
    settings: Settings, sim: Simulator
) -> None:
    # The simulated /models answer is a few hundred KiB: over a 64 KiB cap.
    async with Client(build_server(dataclasses.replace(settings, max_response_bytes=64 * 1024))) as client:
        payload = error_payload(await client.call_tool("list_available_models", {}))
    assert payload["error"] == "response_too_large" and payload["retryable"] is False
    assert payload["message"].startswith("OpenRouter's answer to GET /models exceeded 65536 bytes")
    assert "OPENROUTER_MAX_RESPONSE_MB" in payload["message"]


async def test_an_endless_body_without_a_length_is_read_only_up_to_the_cap() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:  # would never end: only the cap stops the reading
            sent += 1024
            yield b"x" * 1024

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=endless())

    client = mock_client(answer, max_response_bytes=MIB)
    with anyio.fail_after(10), pytest.raises(errors.ResponseTooLargeError) as caught:
        await client.get_credits()
    assert sent <= MIB + 2 * 1024
    assert "GET /credits exceeded 1 MiB" in caught.value.message


async def test_a_declared_length_over_the_cap_is_refused_before_reading_the_body() -> None:
    read = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        read = True
        yield b"{}"

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body(), headers={"content-length": str(3 * MIB)})

    with pytest.raises(errors.ResponseTooLargeError):
        await mock_client(answer, max_response_bytes=2 * MIB).list_providers()
    assert not read


async def test_an_answer_just_under_the_cap_is_read_whole() -> None:
    credits = {"data": {"total_credits": 5.0, "total_usage": 1.0}}
    body = json.dumps(credits).encode()

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body)

    result = await mock_client(answer, max_response_bytes=len(body)).get_credits()
    assert result.total_credits == 5.0


async def test_a_stream_over_the_size_cap_stops_with_the_same_error(settings: Settings, sim: Simulator) -> None:
    client = OpenRouterClient(dataclasses.replace(settings, max_response_bytes=2048))
    received = 0
    try:
        with pytest.raises(errors.ResponseTooLargeError) as caught:
            long_prompt = [{"role": "user", "content": "Please write a long story. " * 20}]
            async with client.stream_chat_completion({"messages": long_prompt, "model": "openai/gpt-4o"}) as chunks:
                async for _ in chunks:
                    received += 1
    finally:
        await client.aclose()
    assert received >= 1  # it streamed until the cap, then stopped
    assert "POST /chat/completions (streamed) exceeded 2048 bytes" in caught.value.message


@pytest.mark.slow
async def test_a_stream_line_that_never_ends_is_bounded_by_the_cap_too() -> None:
    async def one_endless_line() -> AsyncIterator[bytes]:
        yield b"data: "
        while True:
            yield b"y" * 4096

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=one_endless_line(), headers={"content-type": "text/event-stream"})

    client = mock_client(answer, max_response_bytes=MIB)
    with anyio.fail_after(10), pytest.raises(errors.ResponseTooLargeError):
        async with client.stream_chat_completion({"messages": HELLO}) as chunks:
            async for _ in chunks:
                pass


def test_a_too_large_answer_fails_the_chat_rather_than_paying_another_model_for_it() -> None:
    error = errors.ResponseTooLargeError("too large")
    assert decide(error, "a/1", FallbackPolicy()).action is Action.FAIL


# --- requests httpx refuses to build --------------------------------------------------------


async def test_a_base_url_httpx_refuses_is_an_invalid_arguments_error_and_nothing_is_sent(
    settings: Settings, sim: Simulator
) -> None:
    broken = dataclasses.replace(settings, base_url=settings.base_url + "/\x01")
    async with Client(build_server(broken)) as client:
        result = await client.call_tool("get_credits", {})
    payload = error_payload(result)
    assert payload["error"] == "invalid_arguments" and payload["retryable"] is False
    assert "refused to build the request for GET /credits" in payload["message"]
    assert "Nothing was sent" in payload["message"]
    assert TEST_KEY not in result.content[0].text  # type: ignore[union-attr]
    assert sim.requests == []


async def test_a_header_value_httpx_refuses_to_send_is_an_invalid_arguments_error(
    settings: Settings, sim: Simulator
) -> None:
    # A line break in the app title passes httpx's header model but not the HTTP/1.1 writer (h11).
    broken = dataclasses.replace(settings, app_title="my app\r\nX-Injected: 1")
    async with Client(build_server(broken)) as client:
        result = await client.call_tool("list_providers", {})
    payload = error_payload(result)
    assert payload["error"] == "invalid_arguments" and payload["retryable"] is False
    assert "refused to build the request for GET /api/v1/providers" in payload["message"]
    assert "Nothing was sent" in payload["message"]
    assert sim.requests == []


async def test_a_header_value_that_is_not_ascii_is_an_invalid_arguments_error(
    settings: Settings, sim: Simulator
) -> None:
    broken = dataclasses.replace(settings, app_title="café")
    async with Client(build_server(broken)) as client:
        result = await client.call_tool("get_models_count", {})
    payload = error_payload(result)
    assert payload["error"] == "invalid_arguments"
    assert "refused to build the request for GET /models/count" in payload["message"]
    assert sim.requests == []


async def test_a_refused_header_quoting_the_key_becomes_an_invalid_arguments_error_without_the_key() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.LocalProtocolError(f"Illegal header value b'Bearer {TEST_KEY}\\n'", request=request)

    with pytest.raises(errors.InvalidRequestError) as caught:
        await mock_client(refuse).get_current_key()
    assert TEST_KEY not in str(caught.value.payload()) and "[redacted]" in caught.value.message
    assert caught.value.kind == "invalid_arguments" and not caught.value.retryable
    assert isinstance(caught.value, ValueError)  # an argument error to every layer that checks for one


def test_the_deadlines_and_the_size_cap_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "OPENROUTER_LOOKUP_DEADLINE": "5",
            "OPENROUTER_CHAT_DEADLINE": "60",
            "OPENROUTER_STREAM_DEADLINE": "90.5",
            "OPENROUTER_MAX_RESPONSE_MB": "0.5",
        }
    )
    assert (settings.lookup_deadline, settings.chat_deadline, settings.stream_deadline) == (5.0, 60.0, 90.5)
    assert settings.max_response_bytes == MIB // 2
    defaults = Settings.from_env({})
    assert (defaults.lookup_deadline, defaults.chat_deadline, defaults.stream_deadline) == (30.0, 300.0, 600.0)
    assert defaults.max_response_bytes == 32 * MIB


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENROUTER_LOOKUP_DEADLINE", "0"),
        ("OPENROUTER_CHAT_DEADLINE", "soon"),
        ("OPENROUTER_STREAM_DEADLINE", "nan"),
        ("OPENROUTER_MAX_RESPONSE_MB", "-1"),
        ("OPENROUTER_MAX_RESPONSE_MB", "inf"),
        ("OPENROUTER_MAX_RESPONSE_MB", "nan"),
    ],
)
def test_a_deadline_or_cap_that_is_not_a_positive_number_is_refused_at_start_up(name: str, value: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=name):
        Settings.from_env({name: value})


async def test_the_drip_fault_delivers_the_whole_answer_a_byte_at_a_time(upstream_url: str, sim: Simulator) -> None:
    from openrouter_mcp.simulator import Fault

    sim.path_faults["/credits"] = Fault(drip=0.001)
    pieces: list[bytes] = []
    async with httpx2.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {TEST_KEY}"}
        async with http.stream("GET", f"{upstream_url}/credits", headers=headers) as response:
            async for piece in response.aiter_raw():
                pieces.append(piece)
    body = b"".join(pieces)
    assert json.loads(body)["data"]["total_credits"] == sim.total_credits
    assert len(pieces) > 1  # it came in small writes, not in one


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"data: a\r", b"\ndata: b\r\n\r\n"], ["data: a", "data: b", ""]),  # CRLF split between two chunks
        ([b"data: a\rdata: b\n\n"], ["data: a", "data: b", ""]),  # a lone CR ends a line too
        ([b"data: caf\xc3", b"\xa9\n", b"data: end"], ["data: café", "data: end"]),  # UTF-8 split; no final newline
    ],
)
async def test_stream_lines_are_split_as_sse_says_whatever_the_chunking(chunks: list[bytes], lines: list[str]) -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    ends = anyio.current_time() + 10
    got = [line async for line in timed_lines(body(), what="s", gap=10, ends=ends, deadline=10, cap=MIB)]
    assert got == lines
