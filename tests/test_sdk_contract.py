"""The SDK's behaviour that `openrouter_mcp._sdk` relies on beyond its public surface: one test per assumption.

If one of these fails after an SDK upgrade, the assumption it names (in `_sdk`'s docstring) no longer
holds: change `_sdk.py`, and only it, to whatever the new SDK offers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, stdio_server
from mcp.server import CacheHint, NotificationOptions, ServerRequestContext
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.caching import CacheableMethod
from mcp.server.connection import Connection
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.types import (
    CallToolResult,
    EmptyResult,
    JSONRPCNotification,
    JSONRPCRequest,
    SetLevelRequestParams,
    TextContent,
    ToolAnnotations,
    jsonrpc_message_adapter,
)
from pydantic import AnyHttpUrl, ConfigDict, Field
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from openrouter_mcp._sdk import (
    CallNext,
    HandlerResult,
    SessionMessage,
    ToolInputBase,
    add_request_handler,
    allowed_log_levels,
    as_stdin,
    authenticated_asgi_route,
    connection_of,
    declare_list_changed,
    open_session_ids,
    serve_streams,
    whole_arguments_tool,
)

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "contract", "version": "0"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def wire(message: dict[str, Any]) -> SessionMessage:
    return SessionMessage(jsonrpc_message_adapter.validate_python(message, by_name=False))


def unwire(message: SessionMessage | Exception) -> dict[str, Any]:
    assert isinstance(message, SessionMessage), message
    return dict(message.message.model_dump(by_alias=True, mode="json", exclude_none=True))


class ProtocolOnly:
    """A stream with nothing but the methods of the SDK's `ReadStream` and `WriteStream` protocols, passed through
    to an anyio memory stream: what `serving/stdio.py` hands the server (its `_Requests` and `_Replies`)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def receive(self) -> Any:
        return await self._inner.receive()

    async def send(self, item: Any, /) -> None:
        await self._inner.send(item)

    def __aiter__(self) -> ProtocolOnly:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> ProtocolOnly:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@pytest.mark.parametrize("streams", ["memory streams", "protocol only"])
async def test_an_mcp_server_serves_a_connection_with_its_lifespan_on_any_pair_of_streams(streams: str) -> None:
    lifespan_states: list[str] = []

    @asynccontextmanager
    async def lifespan(server: MCPServer[str]) -> AsyncIterator[str]:
        lifespan_states.append("entered")
        yield "the lifespan state"
        lifespan_states.append("exited")

    server = MCPServer("contract", lifespan=lifespan)

    @server.tool()
    def state(ctx: Context) -> str:
        return str(ctx.request_context.lifespan_context)

    to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](4)
    server_writes, from_server = anyio.create_memory_object_stream[SessionMessage](4)
    with anyio.fail_after(10):
        async with to_server, server_reads, server_writes, from_server, anyio.create_task_group() as group:
            if streams == "memory streams":
                group.start_soon(serve_streams, server, server_reads, server_writes)
            else:
                group.start_soon(serve_streams, server, ProtocolOnly(server_reads), ProtocolOnly(server_writes))
            await to_server.send(wire(INITIALIZE))
            initialized = unwire(await from_server.receive())
            await to_server.send(wire(INITIALIZED))
            call = {"name": "state", "arguments": {}}
            await to_server.send(wire({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}))
            called = unwire(await from_server.receive())
            await to_server.aclose()  # the read side closes: the server stops by itself
    assert initialized["result"]["serverInfo"]["name"] == "contract"
    assert called["id"] == 2 and called["result"]["structuredContent"] == {"result": "the lifespan state"}
    assert lifespan_states == ["entered", "exited"]


async def test_stdio_server_reads_messages_from_any_async_iterable_of_lines() -> None:
    async def lines() -> AsyncIterator[str]:
        yield json.dumps(INITIALIZE)
        yield json.dumps(INITIALIZED)

    class Stdout:
        def __init__(self) -> None:
            self.written: list[str] = []

        async def write(self, text: str) -> None:
            self.written.append(text)

        async def flush(self) -> None:
            pass

    stdout = Stdout()
    with anyio.fail_after(10):
        async with stdio_server(stdin=as_stdin(lines()), stdout=stdout) as (read_stream, write_stream):  # type: ignore[arg-type]
            async with read_stream, write_stream:
                items = [item async for item in read_stream]
                assert all(isinstance(item, SessionMessage) for item in items)
                assert isinstance(items[0].message, JSONRPCRequest) and isinstance(
                    items[1].message, JSONRPCNotification
                )
                received = [unwire(item) for item in items]
                await write_stream.send(wire({"jsonrpc": "2.0", "id": 1, "result": {}}))
    assert received == [INITIALIZE, INITIALIZED]
    assert [json.loads(line) for line in "".join(stdout.written).splitlines()] == [
        {"jsonrpc": "2.0", "id": 1, "result": {}}
    ]


class Tags(ToolInputBase):
    model_config = ConfigDict(extra="forbid")
    tags: list[str]
    times: int = 1


INPUT_SCHEMA = {"type": "object", "properties": {"tags": {"type": "array"}, "times": {"type": "integer"}}}
OUTPUT_SCHEMA = {"type": "object", "description": "the tags, joined"}


def tags_server(calls: list[tuple[Any, Any]]) -> MCPServer[Any]:
    async def join(ctx: Context, args: Tags) -> CallToolResult:
        calls.append((ctx, args))
        text = ",".join(args.tags * args.times)
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content={"joined": text})

    tool = whole_arguments_tool(
        join,
        name="join",
        title="Join",
        description="Joins tags.",
        input_model=Tags,
        input_schema=INPUT_SCHEMA,
        output_schema=OUTPUT_SCHEMA,
        annotations=ToolAnnotations(read_only_hint=True),
    )
    return MCPServer("contract", tools=[tool])


async def test_a_whole_arguments_tool_gets_its_validated_input_model_and_the_context() -> None:
    calls: list[tuple[Any, Any]] = []
    async with Client(tags_server(calls)) as client:
        # A list sent as a JSON string, as some hosts do: pre_parse_json turns it back into a list.
        result = await client.call_tool("join", {"tags": '["a", "b"]', "times": 2})
    assert not result.is_error, result.content
    assert result.structured_content == {"joined": "a,b,a,b"}
    [(ctx, args)] = calls
    assert isinstance(ctx, Context)
    assert type(args) is Tags and args == Tags(tags=["a", "b"], times=2)


async def test_a_whole_arguments_tool_publishes_its_schemas_and_reports_invalid_arguments_as_a_tool_error() -> None:
    calls: list[tuple[Any, Any]] = []
    async with Client(tags_server(calls)) as client:
        [listed] = (await client.list_tools()).tools
        refused = await client.call_tool("join", {"tags": ["a"], "colour": "red"})
    assert (listed.input_schema, listed.output_schema) == (INPUT_SCHEMA, OUTPUT_SCHEMA)
    assert listed.annotations == ToolAnnotations(read_only_hint=True)
    assert refused.is_error
    text = " ".join(block.text for block in refused.content if isinstance(block, TextContent))
    assert "colour" in text and "Extra inputs are not permitted" in text
    assert calls == []


class Mixed(ToolInputBase):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    tags: list[str] | None = None
    label: str = ""
    model: str | None = None
    count: int | None = None
    options: dict[str, Any] | None = Field(None, alias="opts")


#: Strings of every kind `json.loads` may meet: lists and objects (kept), `null` (kept), scalars (left as sent),
#: not JSON at all, JSON the parser refuses (too deep), a BOM, and JSON whitespace around each.
TRICKY_STRINGS = [
    '["a", "b"]', ' \n\t["a"] ', '{"k": 1}', "\r{}", "[]", "null", " null\n", "nullish", "nan", "NaN", "Infinity",
    "-Infinity", "true", " false", "1", "-2.5e3", '"quoted"', "openai/gpt-4o", "", "   ", "[unclosed", "{bad}",
    "\ufeff[1]", "\u00a0[1]", "[" * 5000 + "]" * 5000, "n", "[1] trailing",
]  # fmt: skip


def test_whole_arguments_pre_parse_json_agrees_with_the_sdk_on_every_kind_of_string() -> None:
    meta = whole_arguments_tool(
        lambda ctx, args: None,  # type: ignore[arg-type,return-value]
        name="mixed",
        title="Mixed",
        description="Mixed fields.",
        input_model=Mixed,
        input_schema={"type": "object"},
        output_schema={"type": "object"},
        annotations=ToolAnnotations(),
    ).fn_metadata
    assert type(meta).pre_parse_json is not FuncMetadata.pre_parse_json  # ours: else this test proves nothing
    for value in TRICKY_STRINGS:
        for key in ("tags", "label", "model", "count", "options", "opts", "unknown"):
            arguments = {key: value, "label": "[1]", "count": 3}
            assert meta.pre_parse_json(arguments) == FuncMetadata.pre_parse_json(meta, arguments), (key, value[:20])
    kept = meta.pre_parse_json({"tags": '["a"]', "opts": "null", "model": "null", "label": "[1]"})
    assert kept == {"tags": ["a"], "opts": None, "model": None, "label": "[1]"}


async def test_middleware_sees_the_method_and_a_tools_list_result_shaped_for_the_wire() -> None:
    seen: list[tuple[str, Any]] = []

    async def only_first(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        seen.append((ctx.method, result))
        if ctx.method == "tools/list" and isinstance(result, dict):
            return {**result, "tools": [tool for tool in result["tools"] if tool.get("name") == "first"]}
        return result

    server = MCPServer("contract", middleware=[only_first])

    @server.tool()
    def first() -> str:
        return "1"

    @server.tool()
    def second() -> str:
        return "2"

    async with Client(server) as client:
        listed = await client.list_tools()
    [wire_result] = [result for method, result in seen if method == "tools/list"]
    assert isinstance(wire_result, dict)
    assert all(isinstance(tool, dict) for tool in wire_result["tools"])
    assert {tool["name"] for tool in wire_result["tools"]} == {"first", "second"}
    assert [tool.name for tool in listed.tools] == ["first"]


async def test_middleware_sees_cache_hints_applied_to_a_modern_result_and_none_on_a_handshake_era_one() -> None:
    seen: dict[str, dict[str, Any]] = {}

    async def private(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "tools/list" and isinstance(result, dict):
            seen[ctx.protocol_version or ""] = result
            if "cacheScope" in result:
                return {**result, "cacheScope": "private"}
        return result

    hints: dict[CacheableMethod, CacheHint] = {"tools/list": CacheHint(ttl_ms=5000, scope="public")}
    server = MCPServer("contract", middleware=[private], cache_hints=hints)

    async with Client(server, mode="2026-07-28", cache=None) as client:
        modern = await client.list_tools()
    async with Client(server, mode="legacy", cache=None) as client:
        await client.list_tools()
    assert (seen["2026-07-28"]["ttlMs"], seen["2026-07-28"]["cacheScope"]) == (5000, "public")
    assert (modern.ttl_ms, modern.cache_scope) == (5000, "private")
    [legacy] = [result for version, result in seen.items() if version != "2026-07-28"]
    assert "ttlMs" not in legacy and "cacheScope" not in legacy


@asynccontextmanager
async def handshake_session(server: MCPServer[Any]) -> AsyncIterator[tuple[dict[str, Any], Any]]:
    """A 2025-06-18 (handshake-era) session with `server` over `serve_streams`: the initialize result, and an
    `ask(method, params)` that returns each response's `result` (or `error`)."""
    to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](4)
    server_writes, from_server = anyio.create_memory_object_stream[SessionMessage](4)
    ids = iter(range(2, 1000))

    async def ask(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": next(ids), "method": method}
        if params is not None:
            request["params"] = params
        await to_server.send(wire(request))
        while "id" not in (answer := unwire(await from_server.receive())):
            pass  # a notification
        return dict(answer.get("result", answer.get("error", {})))

    with anyio.fail_after(10):
        async with to_server, server_reads, server_writes, from_server, anyio.create_task_group() as group:
            group.start_soon(serve_streams, server, server_reads, server_writes)
            await to_server.send(wire(INITIALIZE))
            initialized = unwire(await from_server.receive())["result"]
            await to_server.send(wire(INITIALIZED))
            yield initialized, ask
            group.cancel_scope.cancel()


async def test_a_request_handler_added_to_the_low_level_server_is_served_and_declares_its_capability() -> None:
    levels: list[str] = []

    async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        levels.append(params.level)
        return EmptyResult()

    server = MCPServer("contract")
    add_request_handler(server, "logging/setLevel", SetLevelRequestParams, set_level)

    async with handshake_session(server) as (initialized, ask):
        assert "logging" in initialized["capabilities"]
        assert await ask("logging/setLevel", {"level": "warning"}) == {}
    assert levels == ["warning"]


async def test_every_request_of_one_client_reaches_the_same_connection() -> None:
    seen: list[Connection] = []

    async def record(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/list":
            seen.append(connection_of(ctx))
        return await call_next(ctx)

    server = MCPServer("contract", middleware=[record])
    for _ in range(2):  # two clients, two requests each
        async with handshake_session(server) as (_, ask):
            await ask("tools/list")
            await ask("tools/list")
    first, second = seen[:2], seen[2:]
    assert len(seen) == 4 and first[0] is first[1] and second[0] is second[1] and second[0] is not first[0]


async def test_declared_list_changed_reaches_the_handshake() -> None:
    server = MCPServer("contract")

    @server.resource("contract://one")
    def one() -> str:
        return "1"

    async with handshake_session(server) as (initialized, _):
        assert not initialized["capabilities"]["resources"].get("listChanged")
    declare_list_changed(server, NotificationOptions(resources_changed=True))
    async with handshake_session(server) as (initialized, _):
        assert initialized["capabilities"]["resources"]["listChanged"] is True
        assert not initialized["capabilities"].get("tools", {}).get("listChanged")


async def test_the_session_manager_keeps_its_open_sessions_by_id() -> None:
    server = MCPServer("contract")
    app = server.streamable_http_app()
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with anyio.fail_after(10):
        async with server.session_manager.run():
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
                opened = await http.post("/mcp", json=INITIALIZE, headers=headers)
                session_id = opened.headers["mcp-session-id"]
                assert session_id in open_session_ids(server.session_manager)
                await http.delete("/mcp", headers=headers | {"mcp-session-id": session_id})
                assert session_id not in open_session_ids(server.session_manager)


def test_a_request_opts_into_log_levels_through_its_meta() -> None:
    assert allowed_log_levels("2026-07-28", {"io.modelcontextprotocol/logLevel": "error"}) == {
        "error",
        "critical",
        "alert",
        "emergency",
    }
    assert allowed_log_levels("2026-07-28", None) == frozenset()
    assert "debug" in allowed_log_levels("2025-06-18", None)


class _Verifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        return AccessToken(token=token, client_id="alice", scopes=[]) if token == "good" else None


class _Hello:
    """An ASGI app that is an object, not a function (a function would be taken for a request handler)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"hello {scope['method']}")(scope, receive, send)


async def test_an_asgi_route_behind_the_sdk_bearer_check_needs_a_valid_token() -> None:
    hello = _Hello()
    server = MCPServer(
        "contract",
        token_verifier=_Verifier(),
        auth=AuthSettings(issuer_url=AnyHttpUrl("http://127.0.0.1:8000"), resource_server_url=None),
    )
    authenticated_asgi_route(server, "/hello", hello, authenticated=True)
    open_server = MCPServer("contract")
    authenticated_asgi_route(open_server, "/hello", hello, authenticated=False)
    with anyio.fail_after(10):
        for app, token, status in (
            (server.streamable_http_app(), None, 401),
            (server.streamable_http_app(), "bad", 401),
            (server.sse_app(), None, 401),
            (server.streamable_http_app(), "good", 200),
            (server.sse_app(), "good", 200),
            (open_server.streamable_http_app(), None, 200),
        ):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
                response = await http.get("/hello", headers=headers)
            assert response.status_code == status, (token, response.text)
            assert (response.text == "hello GET") is (status == 200)
