"""Serving MCP over streamable HTTP or SSE: exposure rules, DNS-rebinding protection, tokens, size, session and
connection limits."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import uvicorn
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from openrouter_mcp.serving.auth import HashedTokenVerifier

logger = logging.getLogger("openrouter_mcp")

Transport = Literal["stdio", "sse", "streamable-http"]
TRANSPORTS: tuple[Transport, ...] = ("stdio", "sse", "streamable-http")
#: Where each HTTP transport answers (the SDK's defaults): streamable HTTP at one URL, SSE's event stream at one.
HTTP_PATHS: dict[Transport, str] = {"streamable-http": "/mcp", "sse": "/sse"}
#: Where SSE clients post their messages (the SDK's default, which the server keeps).
SSE_MESSAGE_PATH = "/messages/"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
#: Upstream-calling tool calls one client may run at once: one person's agent host running 8 parallel chats (or
#: sub-agents) from one address is not refused.
DEFAULT_MAX_CONCURRENT_PER_CLIENT = 8
#: Seconds a call over that limit waits for one of the client's calls to finish before it is refused.
DEFAULT_CONCURRENCY_WAIT = 15.0
#: Open sessions per client: a person running several hosts and agents at once holds a handful, and at about
#: 40 KB per idle session, 32 of them cost about 1.3 MB, so even a hundred users stay far from the SDK's cap.
DEFAULT_MAX_SESSIONS_PER_CLIENT = 32
#: Seconds without any request in flight after which a session is closed (the SDK's default is 30 minutes).
DEFAULT_SESSION_IDLE_TIMEOUT = 300.0
#: Seconds a client may take to send a request's line and headers: one packet for any real client.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Connections (and requests in flight) at once: well under the common soft limit of 1,024 open files.
DEFAULT_MAX_CONNECTIONS = 512


@dataclass(frozen=True)
class HttpOptions:
    """How to serve, as the command line chose: the transport and, for the HTTP ones, where and with what limits."""

    transport: Transport = "stdio"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Extra Host header values and browser Origins to accept on top of the loopback ones.
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_concurrent_per_client: int = DEFAULT_MAX_CONCURRENT_PER_CLIENT
    concurrency_wait: float = DEFAULT_CONCURRENCY_WAIT
    max_sessions_per_client: int = DEFAULT_MAX_SESSIONS_PER_CLIENT
    session_idle_timeout: float = DEFAULT_SESSION_IDLE_TIMEOUT
    #: Seconds a client may take to send a request's line and headers, and then its body, before its connection
    #: is closed.
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    #: Connections (and requests in flight) uvicorn serves at once; past it a request gets 503.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Streamable HTTP keeps no session between requests.
    stateless: bool = False
    #: A non-loopback host may serve without tokens (a proxy in front authenticates).
    insecure_no_auth: bool = False
    log_level: str = "WARNING"

    @property
    def is_http(self) -> bool:
        return self.transport != "stdio"


def exposure_problem(options: HttpOptions, *, authenticated: bool) -> str | None:
    """Why serving as `options` ask would let the network spend the key's credits unchecked; None if it would not."""
    if not options.is_http or authenticated or options.insecure_no_auth or is_loopback(options.host):
        return None
    return (
        f"refusing to listen on {options.host} without authentication: anyone who can reach it could spend your "
        "OpenRouter credits. Give --auth-tokens PATH (tokens from `openrouter-mcp hash-token`), or "
        "--insecure-no-auth if a proxy in front authenticates every request."
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def log_refusal(reason: str) -> None:
    """Log a refused HTTP request, once (never with the token); `build_server` adds its audit row."""
    logger.warning("refused an HTTP request: %s", reason)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def own_url(options: HttpOptions) -> str:
    return f"http://{url_host(options.host)}:{options.port}"


async def serve_http(server: MCPServer[Any], options: HttpOptions, verifier: HashedTokenVerifier | None = None) -> None:
    """Serve streamable HTTP or SSE with uvicorn; `verifier` (also given to `build_server`) means tokens are on."""
    import uvicorn

    if not is_loopback(options.host) and verifier is None:
        logger.warning(
            "listening on %s WITHOUT authentication (--insecure-no-auth): anyone who can reach this address "
            "can spend your OpenRouter credits",
            options.host,
        )
    app = http_app(server, options, verifier)
    # uvicorn handles SIGTERM/SIGINT itself: it stops accepting, finishes in-flight requests, runs shutdown.
    await uvicorn.Server(uvicorn_config(app, options)).serve()


def http_app(server: MCPServer[Any], options: HttpOptions, verifier: HashedTokenVerifier | None = None) -> ASGIApp:
    """The ASGI app `serve_http` serves: the SDK's app for the transport, with our limits and reporting around it.

    Its lifespan (run by uvicorn) runs the SDK's session manager for streamable HTTP.
    """
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from openrouter_mcp.observability.metrics import metrics_of
    from openrouter_mcp.serving.auth import AuthFailureReporter
    from openrouter_mcp.serving.sessions import SessionCap, SessionLimits, live_sessions

    loopback = [f"{h}:*" for h in ("127.0.0.1", "localhost", "[::1]")]
    hosts = [*loopback, f"{url_host(options.host)}:*", *options.allowed_hosts]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts] + list(options.allowed_origins),
    )
    inner: Starlette
    if options.transport == "sse":
        inner = server.sse_app(
            transport_security=security,
            host=options.host,
            max_request_body_size=options.max_request_bytes,
            sse_path=HTTP_PATHS["sse"],
            message_path=SSE_MESSAGE_PATH,
        )
    else:
        # Stateless: every POST gets a fresh transport and no session id, so any process behind a load
        # balancer can answer any request. Responses stay SSE streams (not json_response) so that progress
        # and heartbeats still reach the caller during a long chat.
        inner = server.streamable_http_app(
            transport_security=security,
            host=options.host,
            max_request_body_size=options.max_request_bytes,
            stateless_http=options.stateless,
            streamable_http_path=HTTP_PATHS["streamable-http"],
            session_idle_timeout=options.session_idle_timeout,
        )
    metrics = metrics_of(server)
    if not options.stateless:
        live = live_sessions(server.session_manager) if options.transport == "streamable-http" else None
        sessions = SessionLimits(options.max_sessions_per_client, retry_after=options.session_idle_timeout, live=live)
        if metrics is not None:
            metrics.count_sessions(sessions.open_count)
        # Innermost of the app's middleware, after authentication, so that it knows who is calling.
        inner.user_middleware.append(
            Middleware(
                SessionCap,
                sessions,
                transport=options.transport,
                path=HTTP_PATHS[options.transport],
                authenticated=verifier is not None,
                on_refused=(lambda: metrics.refused("too_many_sessions")) if metrics is not None else None,
            )
        )
    from openrouter_mcp.serving.frames import GarbageFrames

    # Innermost, after authentication: a body that is no JSON-RPC message gets JSON-RPC's answer, on the path
    # messages are posted to (streamable HTTP's endpoint; SSE's message endpoint).
    inner.user_middleware.append(
        Middleware(
            GarbageFrames,
            path=HTTP_PATHS["streamable-http"] if options.transport == "streamable-http" else SSE_MESSAGE_PATH,
            max_bytes=options.max_request_bytes,
            authenticated=verifier is not None,
        )
    )
    app: ASGIApp = OneResponsePerRequest(inner) if options.transport == "sse" else inner
    if verifier is not None:
        if metrics is not None:
            verifier.on_failure = metrics.counting_auth_failures(verifier.on_failure)
        # Outside the SDK's middleware, to see the 401s it sends without asking the verifier.
        app = AuthFailureReporter(app, verifier.on_failure)
    return app


def uvicorn_config(app: ASGIApp, options: HttpOptions) -> uvicorn.Config:
    """uvicorn's settings for `options`: where to listen, and the bounds that keep slow clients from hoarding."""
    import uvicorn

    from openrouter_mcp.serving.connections import KEEP_ALIVE_TIMEOUT, MAX_HEAD_BYTES, RequestDeadlineH11Protocol

    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level=options.log_level.lower(),
        lifespan="on",
        http=RequestDeadlineH11Protocol.with_timeout(options.header_timeout),
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        limit_concurrency=options.max_connections,
    )


class OneResponsePerRequest:
    """ASGI middleware: drops whatever an app sends after its response to a request is started and ended.

    The SDK's SSE endpoint returns an empty `Response()` once its event stream ends. When the stream
    ends because the server is shutting down with a client still connected, that second response
    reaches uvicorn, which logs a RuntimeError traceback for every open connection. The stream itself
    is complete by then, so nothing the client would see is lost.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = ended = False

        async def send_once(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                if started:
                    return
                started = True
            elif message["type"] == "http.response.body":
                if ended:
                    return
                ended = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, send_once)
