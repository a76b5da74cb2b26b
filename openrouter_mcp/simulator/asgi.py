"""ASGI plumbing: the wire types, the request and reply records, and reading a request off the wire."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

JSON = dict[str, Any]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v1"


@dataclass
class Incoming:
    method: str
    path: str  # without the /api/v1 prefix (the full path when the request is outside the API)
    in_api: bool
    raw_path: bytes
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    body_invalid: bool

    @property
    def encoded_slash(self) -> bool:
        return b"%2f" in self.raw_path.lower()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    #: Seconds between bytes: > 0 sends the body one byte at a time (``Fault.drip``).
    drip: float = 0.0


@dataclass
class Event:
    delay: float
    data: bytes
    tokens: int = 0


@dataclass
class StreamReply:
    headers: list[tuple[str, str]]
    events: list[Event]
    on_done: Callable[[bool, int], None]
    #: Seconds between bytes: > 0 sends every event one byte at a time (``Fault.drip``).
    drip: float = 0.0


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_reply(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, dumps(obj), headers or [])


async def read_request(scope: Scope, receive: Receive) -> Incoming:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            break
    raw = b"".join(chunks)
    body: Any = None
    invalid = False
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            invalid = True
    full_path: str = scope.get("path", "")
    raw_path = (scope.get("raw_path") or full_path.encode()).split(b"?")[0]
    in_api = full_path.startswith(API_PREFIX + "/")
    path = full_path[len(API_PREFIX) :] if in_api else full_path
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Incoming(scope.get("method", "GET"), path, in_api, raw_path, query, headers, body, invalid)
