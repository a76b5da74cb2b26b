"""build_server: the MCPServer with every tool, resource and completion wired to shared state."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from openrouter_mcp import __version__
from openrouter_mcp.client_logging import ClientLogs
from openrouter_mcp.config import Settings
from openrouter_mcp.observability import tracing
from openrouter_mcp.resources import register_resources, tool_for_resource
from openrouter_mcp.routing.personas import PersonasConfig
from openrouter_mcp.serving.caching import CATALOG_FRESH, PrivateWhenScoped, cache_hints
from openrouter_mcp.serving.middleware import add_middleware
from openrouter_mcp.serving.scopes import SCOPED_METHODS, Scope, register_persona_prompts
from openrouter_mcp.spec_errors import PromptErrors
from openrouter_mcp.state import AppState
from openrouter_mcp.subscriptions import ResourceSubscriptions
from openrouter_mcp.tools import ALL_TOOLS
from openrouter_mcp.tools.recording import recording_refusals
from openrouter_mcp.tools.registry import build_tool, load_schemas

if TYPE_CHECKING:
    import httpx2
    from mcp.server.auth.provider import TokenVerifier
    from mcp.server.auth.settings import AuthSettings

    from openrouter_mcp.audit import AuditLog
    from openrouter_mcp.audit.ledger import Ledger
    from openrouter_mcp.observability.metrics import Metrics
    from openrouter_mcp.serving.limits import ClientLimits

INSTRUCTIONS = (
    "Tools for the OpenRouter API: chat with any of hundreds of models (create_chat_completion, "
    "create_message), browse the model catalog (list_available_models with filters, list_model_endpoints), "
    "and check account state (get_credits, get_current_key, get_generation). Chat runs under a persona "
    "(`persona` argument; the default one if omitted): it picks the models to try, bounds their price, "
    "enforces its budget, and falls back to the next model when one fails; each answer's `routing` says which "
    "model answered and why. route_request previews that choice without calling a model; get_usage reports calls "
    "and USD spent by persona, model and day. Catalog tools page their results: follow `next_offset`. "
    "Browse the catalog as resources under openrouter://models."
)


def build_server(
    settings: Settings,
    *,
    http_client: httpx2.AsyncClient | None = None,
    personas: PersonasConfig | None = None,
    bound_persona: str | None = None,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
    audit: AuditLog | Callable[[], AuditLog] | Ledger | None = None,
    limits: ClientLimits | None = None,
    transport: str = "memory",
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> MCPServer[AppState]:
    """The configured server. `http_client` is injected by tests, the demo and benchmarks.

    `bound_persona` binds every session to one persona: it sees only that persona's tools and prompt.
    `token_verifier` with `auth` turns on bearer-token authentication for the HTTP transports.
    `audit` records every call and counts budgets (a log, or a function opening it on first use);
    `limits` caps concurrent calls per client;
    `transport` names how clients connect, for the audit log; `clock` is wall time, injectable for tests.
    `metrics` counts calls, served at `GET /metrics` by the HTTP transports (behind the same tokens as `/mcp`);
    the HTTP transports get their own when none is given, stdio and in-memory servers count nothing.

    Raises:
        PersonaError: `bound_persona` is not defined in `personas`.
    """
    if metrics is None and transport in ("sse", "streamable-http"):
        from openrouter_mcp.observability.metrics import Metrics

        metrics = Metrics()
    state = AppState(
        settings,
        http_client=http_client,
        personas=personas,
        bound_persona=bound_persona,
        audit=audit,
        limits=limits,
        transport=transport,
        clock=clock,
        # The tokens file's per-user budgets (`HashedTokenVerifier.budgets`), where the verifier has them.
        user_budgets=budgets() if (budgets := getattr(token_verifier, "budgets", None)) else None,
        metrics=metrics,
    )
    if token_verifier is not None and hasattr(token_verifier, "on_failure"):
        # Every refused request gets its row, in whichever ledger this server's calls go to.
        token_verifier.on_failure = recording_refusals(state, token_verifier.on_failure)
    shipped = load_schemas()
    client_logs = ClientLogs(key=settings.api_key)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        try:
            async with state.running(), client_logs.running():
                yield state
        finally:
            if tracing.enabled():
                tracing.flush()

    # Our own bus, so the catalog's change notices can reach subscribers without the SDK's private attribute.
    bus = InMemorySubscriptionBus()
    server: MCPServer[AppState] = MCPServer(
        "openrouter",
        title="OpenRouter",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=[build_tool(spec, shipped.get(spec.name)) for spec in ALL_TOOLS],
        lifespan=lifespan,
        subscriptions=bus,
        cache_hints=cache_hints(settings.catalog_ttl),
        token_verifier=token_verifier,
        auth=auth,
    )
    add_middleware(server, Scope(tool_for_resource), methods=SCOPED_METHODS)
    add_middleware(server, PrivateWhenScoped(), methods=CATALOG_FRESH)
    subscriptions = ResourceSubscriptions(bus)
    register_resources(server, bus=bus, subscriptions=subscriptions)
    subscriptions.install(server)
    client_logs.install(server)
    add_middleware(server, PromptErrors(server), methods=["prompts/get"])
    register_persona_prompts(server, state.personas, state.bound_persona)
    if metrics is not None:
        _serve_metrics(server, state, metrics, authenticated=token_verifier is not None)
    return server


def _serve_metrics(server: MCPServer[AppState], state: AppState, metrics: Metrics, *, authenticated: bool) -> None:
    """`GET /metrics` on the HTTP app, behind the SDK's own bearer check (as `/mcp` is) when tokens are on."""
    from openrouter_mcp._sdk import authenticated_asgi_route
    from openrouter_mcp.observability.metrics import MetricsEndpoint, attach

    attach(server, metrics)
    authenticated_asgi_route(server, "/metrics", MetricsEndpoint(state, metrics), authenticated=authenticated)
