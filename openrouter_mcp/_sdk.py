"""What we rely on in the `mcp` SDK beyond its public surface, in one place.

Everything else the package takes from `mcp` is public: exported in an `__all__` (`mcp`, `mcp.server`,
`mcp.server.mcpserver`, `mcp.server.mcpserver.prompts`, `mcp.server.mcpserver.tools`,
`mcp.server.subscriptions`, `mcp.types`), or documented: the auth types `TokenVerifier`, `AccessToken`,
`AuthSettings` and `get_access_token()` on the SDK's Authorization page; `MCPServer(middleware=...)`, each
an `async (ctx, call_next)`, on its Middleware page (marked provisional there); `ResourceError` and
`ResourceNotFoundError`, which their docstrings and `MCPServer.read_resource`'s tell handlers to raise;
`TransportSecuritySettings`, the type of the public `transport_security=` of `MCPServer.streamable_http_app()`.
Each assumption below is pinned by one test in `tests/test_sdk_contract.py`, so that an SDK upgrade that
breaks it fails there, by name, rather than somewhere in a transport or a tool:

1. `serve_streams`: an `MCPServer` serves one connection on a pair of streams, lifespan included, through
   its private `_lowlevel_server.run(read, write, _lowlevel_server.create_initialization_options())`, as
   `MCPServer.run_stdio_async()` itself does. We need it to serve `stdio_server(stdin=...)`'s streams,
   whose stdin we read ourselves (see `serving/stdio.py`). The streams need only the methods of the SDK's
   `ReadStream` and `WriteStream` protocols (`mcp.shared._stream_protocols`, the types `run` declares): stdio
   hands it thin wrappers of the transport's streams.
   Guarded by `test_an_mcp_server_serves_a_connection_with_its_lifespan_on_any_pair_of_streams`.
2. `stdio_server(stdin=...)` takes any async iterable of lines, though typed `anyio.AsyncFile[str]`: it only
   iterates it. Its streams carry `SessionMessage`s (from `mcp.shared.message`, not exported) whose `message`
   is the JSON-RPC message as `mcp.types` models it (`JSONRPCRequest`, `JSONRPCResponse`, ...).
   Guarded by `test_stdio_server_reads_messages_from_any_async_iterable_of_lines`.
3. `whole_arguments_tool`: a `Tool` built directly (`fn_metadata=`, `context_kwarg=`, `parameters=`), and
   handed to `MCPServer(tools=...)`, is run by calling `fn_metadata.validate_arguments(arguments)` and passing
   the dict it returns, plus the context under `context_kwarg`, as keyword arguments to `fn`; so a
   `FuncMetadata` subclass can hand the tool its validated input model whole. `FuncMetadata.pre_parse_json`
   (lists and objects sent as JSON strings) and `ArgModelBase` (the base `arg_model` must have, here
   `ToolInputBase`) exist. Guarded by `test_a_whole_arguments_tool_gets_its_validated_input_model_and_the_context`
   and `test_a_whole_arguments_tool_publishes_its_schemas_and_reports_invalid_arguments_as_a_tool_error`.
   Our subclass's cheaper `pre_parse_json` returns what the SDK's does for the same arguments. Guarded by
   `test_whole_arguments_pre_parse_json_agrees_with_the_sdk_on_every_kind_of_string`.
4. `CallNext` and `HandlerResult`, the middleware types, live in `mcp.server.context` (not exported), and
   a middleware sees `tools/list`'s result already shaped for the wire: a dict whose `tools` are dicts.
   Guarded by `test_middleware_sees_the_method_and_a_tools_list_result_shaped_for_the_wire`.
5. `add_request_handler`: the low-level server (`MCPServer._lowlevel_server`) serves a method we register
   (`logging/setLevel`, `resources/subscribe`, `resources/unsubscribe`) with `add_request_handler(method,
   params_model, handler)`, and declares the capability that follows from it. Guarded by
   `test_a_request_handler_added_to_the_low_level_server_is_served_and_declares_its_capability`.
6. `connection_of`: the per-client `Connection` (one per client, with `state` and an `exit_stack` unwound when
   the client goes) is what a request's `ServerRequestContext.session` keeps in `_connection`; the public
   `Context.connection` is not what the runner hands handlers and middleware. Guarded by
   `test_every_request_of_one_client_reaches_the_same_connection`.
7. `declare_list_changed`: the transports ask the low-level server for `create_initialization_options()` with
   no `NotificationOptions`, which declares every `listChanged` false; replacing that method on the instance
   gives it ours as the default. Guarded by `test_declared_list_changed_reaches_the_handshake`.
8. `open_session_ids`: the streamable-HTTP session manager keeps its open sessions in `_server_instances`
   (session id -> transport), and drops one the moment the SDK discards it, whatever ended it; it has no
   public view of them. Guarded by `test_the_session_manager_keeps_its_open_sessions_by_id`.
9. `allowed_log_levels(protocol_version, meta)`, the log levels a 2026-07-28 request's `_meta` opts into, lives
   in `mcp.server.connection` (not exported). Guarded by `test_a_request_opts_into_log_levels_through_its_meta`.
10. The caching hints of `MCPServer(cache_hints=...)` (public) are applied inside the middleware chain: a
   middleware sees a 2026-07-28 result's `ttlMs`/`cacheScope` already set, and may change them; a handshake-era
   result carries neither. `serving/caching.py` narrows the scope for scoped callers that way. Guarded by
   `test_middleware_sees_cache_hints_applied_to_a_modern_result_and_none_on_a_handshake_era_one`.
11. `authenticated_asgi_route`: `MCPServer.custom_route` (typed for a request handler) hands its endpoint to a
   Starlette `Route`, which serves an endpoint that is not a function as an ASGI app; the HTTP apps serve those
   routes inside the SDK's authentication middleware, and `RequireAuthMiddleware`
   (`mcp.server.auth.middleware.bearer_auth`, not exported) answers 401 where it found no valid bearer token,
   as it does for `/mcp`. Guarded by `test_an_asgi_route_behind_the_sdk_bearer_check_needs_a_valid_token`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Awaitable, Callable, Container
from typing import TYPE_CHECKING, Any, cast

from mcp.server import ServerRequestContext
from mcp.server.connection import Connection, allowed_log_levels
from mcp.server.context import CallNext, HandlerResult
from mcp.server.lowlevel import NotificationOptions
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.shared.message import SessionMessage
from mcp.types import ToolAnnotations
from pydantic import BaseModel
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    import anyio
    from mcp.server.mcpserver import MCPServer
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

__all__ = [
    "CallNext",
    "HandlerResult",
    "SessionMessage",
    "ToolInputBase",
    "add_request_handler",
    "allowed_log_levels",
    "as_stdin",
    "authenticated_asgi_route",
    "connection_of",
    "declare_list_changed",
    "open_session_ids",
    "serve_streams",
    "whole_arguments_tool",
]


def authenticated_asgi_route(server: MCPServer[Any], path: str, app: Any, *, authenticated: bool) -> None:
    """Serve the ASGI `app` (an object, not a function) at `GET path` on the server's HTTP apps; with
    `authenticated`, only to requests with a valid bearer token."""
    from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware

    endpoint = RequireAuthMiddleware(app, required_scopes=[]) if authenticated else app
    server.custom_route(path, methods=["GET"], include_in_schema=False)(endpoint)


#: The base every tool input model must have for the SDK to accept it as a tool's argument model.
ToolInputBase = ArgModelBase


async def serve_streams(server: MCPServer[Any], read_stream: Any, write_stream: Any) -> None:
    """Serve one connection on `read_stream`/`write_stream` until the read side closes, lifespan included."""
    lowlevel = server._lowlevel_server
    await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def add_request_handler(server: MCPServer[Any], method: str, params: type[BaseModel], handler: Any) -> None:
    """Serve `method` on `server` with `handler(ctx, params)`; the SDK declares the capability it implies."""
    server._lowlevel_server.add_request_handler(method, params, handler)


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The connection of the client that sent the request `ctx` belongs to: where per-client state lives.

    Raises:
        RuntimeError: the SDK no longer keeps the connection where this looks for it.
    """
    connection = getattr(ctx.session, "_connection", None)
    if not isinstance(connection, Connection):
        raise RuntimeError("this version of the mcp SDK keeps no Connection on ServerSession._connection")
    return connection


def declare_list_changed(server: MCPServer[Any], options: NotificationOptions) -> None:
    """Make every handshake of `server` declare `options`' `listChanged` flags."""
    lowlevel = server._lowlevel_server
    default = lowlevel.create_initialization_options

    def create_initialization_options(
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> Any:
        return default(notification_options or options, experimental_capabilities, extensions)

    lowlevel.create_initialization_options = create_initialization_options  # type: ignore[method-assign]


def open_session_ids(manager: StreamableHTTPSessionManager) -> Container[str]:
    """The ids of the sessions the streamable-HTTP session manager has open, as a live view."""
    instances: dict[str, Any] = manager._server_instances
    return instances.keys()


def as_stdin(lines: AsyncIterable[str]) -> anyio.AsyncFile[str]:
    """`lines` typed as what `stdio_server(stdin=...)` declares; it only iterates it."""
    return cast("anyio.AsyncFile[str]", lines)


def whole_arguments_tool(
    fn: Callable[..., Awaitable[Any]],
    *,
    name: str,
    title: str,
    description: str,
    input_model: type[ArgModelBase],
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    annotations: ToolAnnotations,
    validate: Callable[[type[ArgModelBase], Any], Any] | None = None,
) -> Tool:
    """A tool whose `fn(ctx=..., args=...)` gets the context and its validated `input_model` instance whole.

    The SDK would pass the model's fields as keyword arguments; rebuilding the model from them would
    validate every call twice. `input_schema` and `output_schema` are published as given. No output model:
    `fn` returns a validated result already, and the SDK would validate its dump a second time.
    `validate(input_model, arguments)`, when given, replaces `input_model.model_validate`.
    """
    return Tool(
        fn=fn,
        name=name,
        title=title,
        description=description,
        parameters=input_schema,
        fn_metadata=_WholeArguments(arg_model=input_model, output_schema=output_schema, argument_check=validate),
        is_async=True,
        context_kwarg="ctx",
        annotations=annotations,
    )


class _WholeArguments(FuncMetadata):
    """Validated arguments as one keyword argument, `args=`, holding the input model itself.

    `argument_check(arg_model, arguments)` (the tool's `validate`), when given, replaces
    `arg_model.model_validate`: the registry's returns a readable refusal instead of raising pydantic's dump.
    """

    argument_check: Callable[[type[ArgModelBase], Any], Any] | None = None

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        # pre_parse_json: as the SDK does, accept a list or object sent as a JSON string (some hosts do).
        arguments = self.pre_parse_json(arguments_to_validate)
        if self.argument_check is not None:
            return {"args": self.argument_check(self.arg_model, arguments)}
        return {"args": self.arg_model.model_validate(arguments)}

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        """What the SDK's `FuncMetadata.pre_parse_json` returns for `data`, for a fraction of its cost per call.

        The SDK rebuilds its table of fields on every call and tries `json.loads` on every string argument not
        typed plain `str` (a model id, a persona name), paying for a `JSONDecodeError` each time. Here the table
        is built once, and only a string that can decode to something the SDK keeps (a list, an object, `null`:
        its first character past JSON whitespace is `[`, `{` or `n`) is decoded. Any other string decodes to a
        string or a number, which the SDK leaves as it was, or fails to decode. `data` itself is returned when
        nothing changes (the SDK returns a copy; nothing writes to either).
        """
        keys = _JSON_KEYS.get(self.arg_model)
        if keys is None:
            # The SDK's table: each field under its name and its alias, a later field winning a name clash.
            fields: dict[str, FieldInfo] = {}
            for name, info in self.arg_model.model_fields.items():
                fields[name] = info
                if info.alias:
                    fields[info.alias] = info
            keys = _JSON_KEYS[self.arg_model] = frozenset(k for k, info in fields.items() if info.annotation is not str)
        parsed: dict[str, Any] | None = None
        for key, value in data.items():
            if not isinstance(value, str) or key not in keys:
                continue
            if value.lstrip(_JSON_WHITESPACE)[:1] not in _DECODED_KEPT:
                continue
            try:
                decoded = json.loads(value)
            except (ValueError, RecursionError):
                continue  # not JSON, or JSON the parser refuses: validation accepts or rejects the string
            if isinstance(decoded, str | int | float):
                continue
            if parsed is None:
                parsed = dict(data)
            parsed[key] = decoded
        return data if parsed is None else parsed


#: By input model: the argument names (field names and aliases) whose string value `pre_parse_json` may decode.
_JSON_KEYS: dict[type[ArgModelBase], frozenset[str]] = {}
#: What `json.loads` skips before a value, and the first characters of the values that decode to neither a
#: string nor a number (`true`/`false` decode to bools, which are ints).
_JSON_WHITESPACE = " \t\n\r"
_DECODED_KEPT = frozenset("[{n")
