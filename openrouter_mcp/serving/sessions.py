"""Open sessions per client: one user cannot hold so many that nobody else can open one.

The SDK caps the sessions of the whole process (`max_sessions`, 10,000) and answers 503 past it, so a
single token holder that opens sessions in a loop locks everyone else out. `SessionLimits` counts
sessions per client instead: the authenticated user over HTTP with tokens, else the client's address.
A request that would open the client's next session past the cap is refused with 429, `Retry-After`
and a JSON-RPC error saying the limit and how to free a session; other clients are not affected.

`SessionCap`, ASGI middleware inside the authentication middleware (so that it knows the user), counts:

- streamable HTTP: a request without `Mcp-Session-Id` holds a place while it is served; if it is
  answered with a session id, the place stays with that session until the session is gone. Sessions
  end inside the SDK (DELETE, idle timeout, crash), which announces none of it, so a client's
  sessions are checked against the SDK's live ones (`live`) whenever it asks for another.
- SSE: a session lasts as long as its GET stream, which holds the place while it is open.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.types import INVALID_REQUEST
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openrouter_mcp._sdk import open_session_ids
from openrouter_mcp.serving.auth import current_identity

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

__all__ = ["SessionCap", "SessionLimits", "client_key", "live_sessions"]

logger = logging.getLogger("openrouter_mcp")

_SESSION_ID_HEADER = b"mcp-session-id"  # the streamable HTTP transport's header, as ASGI gives it (lower case)
_VERSION_HEADER = MCP_PROTOCOL_VERSION_HEADER.lower().encode("latin-1")


def live_sessions(manager: StreamableHTTPSessionManager) -> Callable[[str], bool]:
    """Whether a session id is still open in the SDK's session manager.

    The manager has no public view of its sessions (`_sdk.open_session_ids` reaches them); a session is gone
    from that view the moment the SDK discards it, whatever ended it.
    """
    return open_session_ids(manager).__contains__


class SessionLimits:
    """At most `max_per_client` open sessions (and session-opening requests in flight) per client.

    `live` says whether a session id is still open; without it (SSE) places are only ever given back.

    Raises:
        ValueError: `max_per_client` is less than 1.
    """

    def __init__(self, max_per_client: int, *, retry_after: float, live: Callable[[str], bool] | None = None) -> None:
        if max_per_client < 1:
            raise ValueError(f"max_per_client must be at least 1, got {max_per_client}")
        self.max_per_client = max_per_client
        #: What `Retry-After` says: the idle timeout, within which an unused session is closed.
        self.retry_after = retry_after
        self.live = live
        self._opening: dict[str, int] = {}
        self._sessions: dict[str, set[str]] = {}

    def held(self, client: str) -> int:
        """How many sessions `client` holds now, counting those being opened."""
        sessions = self._sessions.get(client)
        if sessions is not None and self.live is not None:
            live = self.live
            sessions.intersection_update({session for session in sessions if live(session)})
            if not sessions:
                del self._sessions[client]
        return self._opening.get(client, 0) + len(self._sessions.get(client, ()))

    def open_count(self) -> int:
        """Sessions open (and being opened) across every client."""
        return sum(self.held(client) for client in set(self._opening) | set(self._sessions))

    def try_open(self, client: str) -> bool:
        """Take a place for a session `client` is opening; False when it already holds `max_per_client`.

        Every True is followed by exactly one `opened` (a session came of it) or `abandoned` (none did).
        """
        if self.held(client) >= self.max_per_client:
            return False
        self._opening[client] = self._opening.get(client, 0) + 1
        return True

    def opened(self, client: str, session_id: str) -> None:
        """The place taken by `try_open` now belongs to session `session_id`, until it is gone."""
        self._sessions.setdefault(client, set()).add(session_id)
        self._done_opening(client)

    def abandoned(self, client: str) -> None:
        """The place taken by `try_open` is free again: no session came of it."""
        self._done_opening(client)

    def _done_opening(self, client: str) -> None:
        if self._opening.get(client, 0) <= 1:
            self._opening.pop(client, None)
        else:
            self._opening[client] -= 1

    def refusal(self, client: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The 429 answer to a request that would open one session too many: status, headers, body."""
        message = (
            f"Too many open sessions: {client} holds {self.held(client)}, the limit per client is "
            f"{self.max_per_client}. Close sessions you no longer use (close the client"
            + (
                ", or send HTTP DELETE with the session's Mcp-Session-Id header); an idle session closes by "
                f"itself after {self.retry_after:g} s."
                if self.live is not None
                else "; a session ends when its event stream is closed)."
            )
        )
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}})
        headers = [
            (b"content-type", b"application/json"),
            (b"retry-after", str(max(1, round(self.retry_after))).encode("ascii")),
        ]
        return 429, headers, body.encode("utf-8")


def client_key(scope: Scope) -> str | None:
    """Whom a request's sessions count against: `user NAME` when authenticated, else `address IP`.

    None for a request with no identity and no address (nothing to count it against).
    """
    identity = current_identity()
    if identity is not None:
        return f"user {identity.user}"
    client = scope.get("client")
    return f"address {client[0]}" if client else None


class SessionCap:
    """ASGI middleware: refuses a client's request to open a session past its cap with 429.

    `transport` says what opens a session at `path`: for streamable HTTP a request without
    `Mcp-Session-Id` (and of a handshake-era protocol version; later versions keep no session); for
    SSE a GET. `authenticated`: requests without an identity are passed on uncounted, for the SDK
    to refuse with 401.
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: SessionLimits,
        *,
        transport: str,
        path: str,
        authenticated: bool = False,
        key: Callable[[Scope], str | None] = client_key,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.transport = transport
        self.path = path
        self.authenticated = authenticated
        self.key = key
        #: Told of every refusal (the `too_many_sessions` refusals metric).
        self.on_refused = on_refused

    def _opens_session(self, scope: Scope) -> bool:
        if scope["path"] != self.path:
            return False
        if self.transport == "sse":
            return bool(scope["method"] == "GET")
        headers = dict(scope["headers"])
        if _SESSION_ID_HEADER in headers:
            return False
        version = headers.get(_VERSION_HEADER)
        return version is None or version.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._opens_session(scope):
            await self.app(scope, receive, send)
            return
        client = self.key(scope)
        if client is None or (self.authenticated and current_identity() is None):
            await self.app(scope, receive, send)
            return
        if not self.limits.try_open(client):
            logger.warning(
                "refused a new session for %s: it holds %d (--max-sessions-per-client)",
                client,
                self.limits.max_per_client,
            )
            if self.on_refused is not None:
                self.on_refused()
            status, headers, body = self.limits.refusal(client)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if self.transport == "sse":
            try:
                await self.app(scope, receive, send)
            finally:
                self.limits.abandoned(client)
            return
        session_id: str | None = None

        async def watch(message: Message) -> None:
            nonlocal session_id
            if message["type"] == "http.response.start" and message["status"] < 400:
                session_id = next(
                    (
                        value.decode("latin-1")
                        for name, value in message.get("headers", ())
                        if name.lower() == _SESSION_ID_HEADER
                    ),
                    None,
                )
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if session_id is None:
                self.limits.abandoned(client)
            else:
                self.limits.opened(client, session_id)
