"""Frames that are not JSON-RPC messages get JSON-RPC's answer: `-32700` or `-32600`, on stdio and streamable HTTP.

A frame is one line on stdio, one POST body over streamable HTTP. The SDK's transports parse each with
`mcp.types.jsonrpc_message_adapter`; what fails, the stdio transport hands to the server, which drops it
unanswered, and the HTTP transport answers with `-32602` (invalid params). A request whose id is no string
or integer (`true`, `1.5`, `{}`, `null`) even passes, as a notification, and is served without an answer.

`frame_error` says what answers a frame, before the SDK sees it: a parse error (`-32700`) for what is no
JSON text the SDK can read (invalid JSON, a leading byte order mark, nesting deeper than its parser's limit,
which is well under 1,000 levels), an invalid request (`-32600`) for JSON that is no JSON-RPC message
(`jsonrpc` not "2.0", an id that is no string or integer, params that are no object, a batch, which MCP
does not use). The error carries the frame's id when one can be read, else `id: null`, as JSON-RPC requires.
A frame that is a message goes on to the SDK untouched. `serving/stdio.py` answers on stdout itself;
`GarbageFrames` answers over HTTP.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from mcp.types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    RequestId,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

from openrouter_mcp.serving.auth import current_identity

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["GarbageFrames", "frame_error"]

logger = logging.getLogger("openrouter_mcp")

_BOM = "\ufeff"


def frame_error(frame: str | bytes) -> JSONRPCError | None:
    """The JSON-RPC error that answers `frame`, or None when `frame` is a message for the SDK to serve."""
    try:
        message = jsonrpc_message_adapter.validate_json(frame, by_name=False)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            return _error(PARSE_ERROR, f"Parse error: {_unparsable(frame)}", None)
        parsed = _parsed(frame)
        return _error(INVALID_REQUEST, f"Invalid Request: {_invalid(parsed)}", _readable_id(parsed))
    if isinstance(message, JSONRPCNotification):
        # A notification has no id; one that has an id the models refused (they ignore unknown keys) was
        # meant as a request, and would go unanswered.
        parsed = _parsed(frame)
        if isinstance(parsed, dict) and "id" in parsed:
            return _error(INVALID_REQUEST, "Invalid Request: id must be a string or an integer", None)
    return None


def _error(code: int, message: str, request_id: RequestId | None) -> JSONRPCError:
    logger.info("answered a frame that is no JSON-RPC message: %s", message)
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


def _text(frame: str | bytes) -> str:
    return frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame


def _parsed(frame: str | bytes) -> Any:
    """`frame` as JSON; only called on frames the SDK's parser read, so it parses (None if it somehow does not)."""
    try:
        return json.loads(_text(frame))
    except (ValueError, RecursionError):
        return None


def _unparsable(frame: str | bytes) -> str:
    text = _text(frame).lstrip(" \t\r\n")
    if text.startswith(_BOM):
        return "a byte order mark before the JSON text"
    try:
        json.loads(text)
    except RecursionError:
        return "nested too deeply"
    except ValueError:
        return "not a JSON text"
    return "nested too deeply"  # valid JSON the SDK's parser refuses: past its nesting limit


def _invalid(parsed: Any) -> str:
    """What makes `parsed`, a JSON value, no JSON-RPC message."""
    if isinstance(parsed, list):
        return "batches are not supported; send one message per frame"
    if not isinstance(parsed, dict):
        return "a message must be a JSON object"
    if parsed.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if "id" in parsed and _readable_id(parsed) is None:
        return "id must be a string or an integer"
    if "method" in parsed and not isinstance(parsed["method"], str):
        return "method must be a string"
    if "params" in parsed and not isinstance(parsed["params"], dict):
        return "params must be an object"
    return "not a request, notification or response"


def _readable_id(parsed: Any) -> RequestId | None:
    request_id = parsed.get("id") if isinstance(parsed, dict) else None
    return request_id if isinstance(request_id, str | int) and not isinstance(request_id, bool) else None


class GarbageFrames:
    """ASGI middleware: a POST to `path` (streamable HTTP's endpoint, or SSE's message endpoint) whose body is no
    JSON-RPC message gets 400 and the JSON-RPC error `frame_error` gives; any other request goes on to `app` as it
    came.

    It reads at most `max_bytes` of a body: a longer one goes on untouched, for the SDK to refuse with 413.
    `authenticated`: a request without an identity goes on unread, for the SDK to refuse with 401.
    """

    def __init__(self, app: ASGIApp, *, path: str, max_bytes: int, authenticated: bool = False) -> None:
        self.app = app
        self.path = path
        self.max_bytes = max_bytes
        self.authenticated = authenticated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or (self.authenticated and current_identity() is None)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and size <= self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete: nobody to answer
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
        body = b"".join(chunks)
        error = None if more or size > self.max_bytes else frame_error(body)
        if error is not None:
            answer = error.model_dump_json(by_alias=True, exclude_unset=True).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}

        await self.app(scope, replay, send)
