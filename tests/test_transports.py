"""End to end through the real MCP client: stdio, streamable HTTP and SSE servers in subprocesses.

Every server here talks to the simulated OpenRouter on loopback (`upstream_url`), gets the key only
through its environment, and logs at DEBUG so that the leak scan at the end sees as much as possible.
Also covered: progress and client-side cancellation of a streamed chat (in memory and over real
transports), how the processes stop (stdin closing, SIGTERM, SIGINT), and the keyless `--demo`.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ResourceTemplateReference, TextContent, TextResourceContents

from openrouter_mcp.simulator import Fault, Simulator
from openrouter_mcp.state import AppState
from tests.conftest import TEST_KEY
from tests.processes import EXIT_TIMEOUT, SERVER, STARTUP_TIMEOUT, async_http_server, server_env, spawned

pytestmark = pytest.mark.anyio

#: The console script `pip install` puts beside the interpreter.
SCRIPT = str(Path(sys.executable).with_name("openrouter-mcp"))
SUBPROCESS_TRANSPORTS = ["stdio", "streamable-http", "sse"]


ALL_TOOLS = {
    "create_chat_completion",
    "create_message",
    "get_credits",
    "get_current_key",
    "get_generation",
    "create_coinbase_charge",
    "list_available_models",
    "list_user_models",
    "list_embedding_models",
    "list_model_endpoints",
    "list_zdr_endpoints",
    "list_providers",
    "get_models_count",
    "route_request",
    "get_usage",
}


# ------------------------------------------------------------------------------------------------
# The leak scan: everything any test here saw come out of a server
# ------------------------------------------------------------------------------------------------


def key_fragments() -> list[str]:
    """The whole key and both ends of its secret part, so a truncated or half-masked key is caught too."""
    secret = TEST_KEY.removeprefix("sk-or-v1-")
    return [TEST_KEY, secret[:12], secret[-12:]]


def leaks(texts: list[str]) -> list[int]:
    """Indexes (not contents: those would print the key) of the texts that hold any part of the key."""
    return [index for index, text in enumerate(texts) if any(fragment in text for fragment in key_fragments())]


@pytest.fixture(scope="module")
def seen() -> Iterator[list[str]]:
    """Result texts and structured content, errors, progress messages, resource contents, server stderr
    and command lines from every test in this module. Whatever the selection of tests, the key must
    appear in none of it once they have run."""
    collected: list[str] = []
    yield collected
    assert not leaks(collected)


def record(seen: list[str], result: CallToolResult) -> CallToolResult:
    seen.extend(block.text for block in result.content if isinstance(block, TextContent))
    if result.structured_content is not None:
        seen.append(json.dumps(result.structured_content))
    return result


async def call(client: Client, seen: list[str], name: str, arguments: dict[str, Any], **kwargs: Any) -> CallToolResult:
    """`client.call_tool`, with whatever comes back (a result or a protocol error) added to `seen`."""
    try:
        return record(seen, await client.call_tool(name, arguments, **kwargs))
    except MCPError as exc:
        seen.append(f"{exc} {exc.error!r}")
        raise


def chat(model: str, prompt: str, *, stream: bool = False) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream}


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


# ------------------------------------------------------------------------------------------------
# Servers in subprocesses
# ------------------------------------------------------------------------------------------------


@asynccontextmanager
async def http_server(transport: str, env: dict[str, str], seen: list[str]) -> AsyncIterator[str]:
    """`python -m openrouter_mcp --transport T --port P` on a free loopback port; yields its base URL.

    Ready means uvicorn logged "Uvicorn running on" (no timed polling). On exit the server gets SIGTERM and
    must stop within EXIT_TIMEOUT with no traceback. Its status is -SIGTERM: uvicorn shuts down gracefully
    (lifespan included), then re-raises the signal it caught, as a well-behaved process does; 0 is accepted too.
    """
    async with async_http_server(env=env, transport=transport, log_level="DEBUG", seen=seen) as served:
        yield served.url
    served.assert_exited_cleanly()


@asynccontextmanager
async def subprocess_client(
    transport: str, env: dict[str, str], seen: list[str], tmp_path: Path, command: list[str] = SERVER
) -> AsyncIterator[Client]:
    """The SDK's client connected to a server subprocess over `transport`."""
    if transport == "stdio":
        stderr_path = tmp_path / "stdio-server.stderr"
        params = StdioServerParameters(command=command[0], args=[*command[1:], "--log-level", "DEBUG"], env=env)
        try:
            with stderr_path.open("w") as errlog:
                async with Client(stdio_client(params, errlog=errlog)) as client:
                    yield client
        finally:
            seen.append(stderr_path.read_text(errors="replace"))
        assert "Traceback" not in seen[-1]
        return
    async with http_server(transport, env, seen) as base_url:
        target = f"{base_url}/mcp" if transport == "streamable-http" else sse_client(f"{base_url}/sse")
        async with Client(target) as client:
            yield client


Connect = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def connect(server: MCPServer[AppState], upstream_url: str, seen: list[str], tmp_path: Path) -> Connect:
    """`async with connect(transport, **env) as client:` where transport is "memory" (the `client` fixture's
    in-process connection, to the `server` fixture) or a subprocess transport, with `env` added to its
    environment."""

    def open_client(transport: str, **env: str) -> AbstractAsyncContextManager[Client]:
        if transport == "memory":
            return Client(server)
        return subprocess_client(transport, server_env(upstream_url, **env), seen, tmp_path)

    return open_client


@pytest.fixture
def slow_stream(sim: Simulator) -> Iterator[Callable[[float], None]]:
    """Set the simulator's delay between SSE events; restored afterwards (`sim.reset()` leaves it alone)."""
    before = sim.stream_chunk_delay

    def set_delay(seconds: float) -> None:
        sim.stream_chunk_delay = seconds

    yield set_delay
    sim.stream_chunk_delay = before


# ------------------------------------------------------------------------------------------------
# One session, the same over every transport
# ------------------------------------------------------------------------------------------------


async def exercise(client: Client, sim: Simulator, seen: list[str]) -> None:
    """List the tools; chat plainly and streamed; read credits; provoke a 429; list and read a resource;
    read a template and complete its argument; then call every other tool once.

    Runs the same against any connected client, so every transport is held to the same behaviour.
    """
    listed = await client.list_tools()
    assert {tool.name for tool in listed.tools} == ALL_TOOLS

    plain = structured(await call(client, seen, "create_chat_completion", chat("openai/gpt-4o", "Say hello")))
    assert plain["model"] == "openai/gpt-4o"
    assert plain["text"]
    assert plain["usage"]["total_tokens"] > 0
    assert "streamed" not in plain or plain["streamed"] is False

    args = chat("openai/gpt-4o", "Say hello", stream=True)
    streamed = structured(await call(client, seen, "create_chat_completion", args))
    assert streamed["streamed"] is True
    # The simulator answers a prompt deterministically: the aggregated stream is the same answer.
    assert streamed["text"] == plain["text"]
    assert streamed["generation_id"] != plain["generation_id"]

    credits = structured(await call(client, seen, "get_credits", {}))
    assert credits["total_credits"] == 100.0
    assert credits["total_usage"] > 0

    async def ignore_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    # A rate-limited model is replaced by a fallback, and the result says so.
    sim.model_faults["anthropic/claude-sonnet-4"] = Fault(status=429, retry_after=30)
    rescued = structured(await call(client, seen, "create_chat_completion", chat("anthropic/claude-sonnet-4", "Hi")))
    assert rescued["model"] != "anthropic/claude-sonnet-4" and rescued["routing"]["fallback_used"] is True

    sim.path_faults["/chat/completions"] = Fault(status=429, retry_after=5)
    args = chat("anthropic/claude-sonnet-4", "Hello?")
    # With progress requested, as hosts do: the error must still reach the model as a readable result.
    limited = await call(client, seen, "create_chat_completion", args, progress_callback=ignore_progress)
    assert limited.is_error
    assert "HTTP 429" in text_of(limited)
    assert "Retry after 5 s" in text_of(limited)
    del sim.path_faults["/chat/completions"]

    resources = await client.list_resources()
    assert "openrouter://models" in {str(resource.uri) for resource in resources.resources}
    read = await client.read_resource("openrouter://models")
    texts = [content.text for content in read.contents if isinstance(content, TextResourceContents)]
    seen.extend(texts)
    assert "openai/gpt-4o" in {model["id"] for model in json.loads(texts[0])["models"]}

    # A template and argument completion: the catalog's model card and an author by prefix.
    card = await client.read_resource("openrouter://models/openai/gpt-4o")
    card_texts = [content.text for content in card.contents if isinstance(content, TextResourceContents)]
    assert json.loads(card_texts[0])["id"] == "openai/gpt-4o"
    reference = ResourceTemplateReference(type="ref/resource", uri="openrouter://models/{author}/{slug}")
    authors = await client.complete(reference, {"name": "author", "value": "open"})
    assert "openai" in authors.completion.values

    await every_other_tool(client, sim, seen, generation_id=plain["generation_id"])

    # The key came from the server's environment, and went where it belongs: to OpenRouter.
    authorizations = {r.headers.get("authorization") for r in sim.requests if r.path == "/credits"}
    assert authorizations == {f"Bearer {TEST_KEY}"}


async def every_other_tool(client: Client, sim: Simulator, seen: list[str], *, generation_id: str) -> None:
    """The tools `exercise` has not called yet, one call each, checked for the part of the answer that matters."""
    message = structured(
        await call(
            client,
            seen,
            "create_message",
            {"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20},
        )
    )
    assert message["text"] and message["usage"]["cost"] > 0
    assert structured(await call(client, seen, "get_current_key", {}))["label"]
    assert structured(await call(client, seen, "get_generation", {"id": generation_id}))["id"] == generation_id
    assert structured(await call(client, seen, "get_models_count", {}))["count"] > 100
    listings: list[tuple[str, dict[str, Any], str]] = [
        ("list_available_models", {"limit": 3}, "models"),
        ("list_user_models", {"limit": 3}, "models"),
        ("list_embedding_models", {}, "models"),
        ("list_model_endpoints", {"model": "openai/gpt-4o"}, "endpoints"),
        ("list_providers", {"limit": 3}, "providers"),
        ("list_zdr_endpoints", {"limit": 3}, "endpoints"),
    ]
    for tool, arguments, listed in listings:
        assert structured(await call(client, seen, tool, arguments))[listed], tool
    route = structured(await call(client, seen, "route_request", {"model": "openai/gpt-4o"}))
    assert route["candidates"][0]["model"] == "openai/gpt-4o"
    assert structured(await call(client, seen, "get_usage", {}))["calls"] > 0  # this session's calls, audited
    charge = await call(
        client, seen, "create_coinbase_charge", {"amount": 10, "sender": "0x" + "ab" * 20, "chain_id": 8453}
    )
    assert charge.is_error and "410" in text_of(charge)  # retired upstream: said so, with what to do instead


@pytest.mark.slow
@pytest.mark.parametrize("transport", SUBPROCESS_TRANSPORTS)
async def test_a_session_over_a_real_transport_chats_streams_reads_credits_and_resources_and_reports_errors(
    transport: str, connect: Connect, sim: Simulator, seen: list[str]
) -> None:
    """`exercise` against a server subprocess; the HTTP servers must then stop cleanly on SIGTERM."""
    with anyio.fail_after(30):
        async with connect(transport) as client:
            await exercise(client, sim, seen)


# ------------------------------------------------------------------------------------------------
# Progress and cancellation of a streamed chat
# ------------------------------------------------------------------------------------------------


def progress_token(transport: str) -> dict[str, Any]:
    """What a call adds to ask for progress beyond its callback: over a wire the SDK's client sends a token
    itself; the in-memory `Client` calls the callback directly and sends none unless the call passes one."""
    return {"meta": {"progress_token": "progress-1"}} if transport == "memory" else {}


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["memory", "stdio", "streamable-http"])
async def test_a_streamed_chat_sends_progress_with_rising_values_heartbeats_and_the_streamed_text(
    transport: str, connect: Connect, sim: Simulator, slow_stream: Callable[[float], None], seen: list[str]
) -> None:
    slow_stream(0.05)
    events: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append((progress, message))
        seen.append(message or "")

    with anyio.fail_after(30):
        # The `settings` fixture behind "memory" has the same 0.05 s heartbeat.
        async with connect(transport, OPENROUTER_HEARTBEAT_INTERVAL="0.05") as client:
            args = chat("openai/gpt-4o", "Tell me a story", stream=True)
            asking = {"progress_callback": on_progress, **progress_token(transport)}
            answer = structured(await call(client, seen, "create_chat_completion", args, **asking))

    values = [progress for progress, _ in events]
    assert len(values) >= 3
    assert values == sorted(set(values)), "progress must increase with every notification"
    messages = [message for _, message in events if message]
    heartbeats = [message for message in messages if message.startswith("waiting for openai/gpt-4o")]
    streamed_text = [message for message in messages if message not in heartbeats]
    assert heartbeats
    assert streamed_text
    assert all(piece in answer["text"] for piece in streamed_text)


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["memory", *SUBPROCESS_TRANSPORTS])
async def test_cancelling_a_streamed_chat_from_the_client_closes_the_upstream_stream(
    transport: str, connect: Connect, sim: Simulator, slow_stream: Callable[[float], None], seen: list[str]
) -> None:
    slow_stream(0.2)  # about 3 s for the whole answer; cancelled after the first text, about 0.6 s in
    streaming = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")
        if message and not message.startswith("waiting for"):
            streaming.set()

    with anyio.fail_after(30):
        async with connect(transport) as client:
            args = chat("openai/gpt-4o", "Tell me a long story", stream=True)
            async with anyio.create_task_group() as group:
                asking = {"progress_callback": on_progress, **progress_token(transport)}
                group.start_soon(lambda: call(client, seen, "create_chat_completion", args, **asking))
                await streaming.wait()
                assert sim.cancelled_streams == 0
                group.cancel_scope.cancel()

            # The simulator counts a stream whose client went away before its end; it waits on a condition
            # in a worker thread, bounded by its own timeout.
            assert await anyio.to_thread.run_sync(sim.wait_for_cancelled_streams, 1, 10.0)
            # The session survives the cancellation.
            assert structured(await call(client, seen, "get_credits", {}))["total_credits"] == 100.0
    assert sim.count("/chat/completions") == 1


# ------------------------------------------------------------------------------------------------
# Process behaviour
# ------------------------------------------------------------------------------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["stdin closes", "SIGTERM", "SIGINT"])
async def test_a_serving_stdio_server_exits_with_status_0_and_no_traceback_within_5_s_when(
    stop: str, upstream_url: str, seen: list[str]
) -> None:
    """Hosts stop stdio servers by closing stdin, then SIGTERM; a terminal sends SIGINT. Each must end the
    process promptly and cleanly, even though stdin is still open for the two signals."""
    async with spawned([*SERVER, "--log-level", "DEBUG"], env=server_env(upstream_url)) as process:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        with anyio.fail_after(STARTUP_TIMEOUT):
            await process.stdin.send(json.dumps(INITIALIZE).encode() + b"\n")
            reply = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 1 << 20)
        assert json.loads(reply)["result"]["serverInfo"]["name"] == "openrouter"
        with anyio.fail_after(EXIT_TIMEOUT):
            if stop == "stdin closes":
                await process.stdin.aclose()
            else:
                process.send_signal(signal.SIGTERM if stop == "SIGTERM" else signal.SIGINT)
            status = await process.wait()
            stderr = b"".join([chunk async for chunk in process.stderr]).decode(errors="replace")
    seen.append(stderr)
    assert status == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
async def test_an_sse_server_stopped_while_a_client_is_connected_exits_without_a_traceback(
    upstream_url: str, seen: list[str]
) -> None:
    """SIGTERM with an SSE stream open: the SDK's endpoint would answer twice on the way out (a traceback)."""
    async with async_http_server(env=server_env(upstream_url), transport="sse") as served:
        async with httpx2.AsyncClient() as http, http.stream("GET", f"{served.url}/sse") as stream:
            lines = stream.aiter_lines()
            with anyio.fail_after(STARTUP_TIMEOUT):
                assert await anext(lines) == "event: endpoint"
            served.process.send_signal(signal.SIGTERM)  # the stream is still open
            # Waited for in a worker thread, bounded by the wait's own timeout (TimeoutExpired fails the test).
            status = await anyio.to_thread.run_sync(served.process.wait, EXIT_TIMEOUT)
    stderr = served.log()
    seen.append(stderr)
    assert status in (0, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr and "Exception in ASGI application" not in stderr


@pytest.mark.slow
async def test_the_demo_answers_chat_and_catalog_calls_over_stdio_with_no_key_and_no_upstream(
    sim: Simulator, seen: list[str], tmp_path: Path
) -> None:
    """`openrouter-mcp --demo` (the installed console script) serves from its in-process simulator."""
    with anyio.fail_after(30):
        async with subprocess_client("stdio", server_env(None), seen, tmp_path, command=[SCRIPT, "--demo"]) as client:
            answer = structured(await call(client, seen, "create_chat_completion", chat("openai/gpt-4o-mini", "Hi")))
            page = structured(await call(client, seen, "list_available_models", {"limit": 5}))
    assert answer["model"] == "openai/gpt-4o-mini"
    assert answer["text"]
    assert page["returned"] == 5
    assert page["total"] > 5
    assert "DEMO MODE" in seen[-1]  # the stdio server's stderr: the demo says what it is
    assert sim.requests == []  # the loopback simulator was not asked anything


def test_the_api_key_appears_in_no_result_error_progress_message_resource_or_server_log(seen: list[str]) -> None:
    """Runs last in this module, over everything the tests before it collected (the `seen` fixture checks
    again on teardown, whatever tests were selected)."""
    assert not leaks(seen)
