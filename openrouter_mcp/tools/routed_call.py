"""Glue from the session's state to the pure routing layer, for the tools that call a model.

The decisions live in `routing/` (pure): which candidates (`plan.plan_candidates`), at what price
(`pricing.provider_preferences`), within what budget (`budgets.check_budget`), and how to fall back
(`fallback.run_with_fallback`). This module gathers what they need from `AppState` (the cached catalog,
ZDR endpoints when the persona asks for them, the process's cooldowns, the audit log's spend, the clock).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import Field

from openrouter_mcp.errors import MissingApiKeyError
from openrouter_mcp.routing.budgets import check_budget
from openrouter_mcp.routing.fallback import RoutingRecord, Upstream, group_body, run_with_fallback
from openrouter_mcp.routing.personas import Persona
from openrouter_mcp.routing.plan import Route, RouteRequest, plan_candidates
from openrouter_mcp.state import AppState

T = TypeVar("T")

PERSONA_FIELD = Field(None, description="Picks and bounds the model (default persona if unset)")
TASK_FIELD = Field(None, description="e.g. code, summarize, vision")


def require_key(state: AppState, tool: str) -> None:
    """Refuse a paid call without a key before any upstream work: the catalog fetch routing needs would
    otherwise fail first (offline, say) with an error that hides the real problem.

    Raises:
        MissingApiKeyError: no API key is configured.
    """
    if state.settings.api_key is None:
        raise MissingApiKeyError(f"`{tool}`")


def check_budget_for(state: AppState, persona: Persona) -> None:
    """Refuse a paid call once the persona's budget for the day or month is spent (as the audit log counts).

    Raises:
        BudgetExceededError: naming the budget, the spend and the reset time.
        AuditError: the audit log cannot be read.
    """
    audit = state.audit
    spent = None if audit is None else (lambda since: audit.spent(persona=persona.name, since=since))
    check_budget(persona, spent, state.clock())


async def plan_for(state: AppState, persona: Persona, request: RouteRequest) -> Route:
    """Candidates for `request`, from the shared catalog cache and the process's cooldowns.

    Raises:
        OpenRouterError: the catalog (or the ZDR list a ZDR persona needs) could not be fetched.
    """
    snapshot = await state.catalog.snapshot()
    zdr = await state.catalog.zdr_model_ids() if persona.provider.zdr else None
    return plan_candidates(persona, request, snapshot.by_id, cooldowns=state.cooldowns, zdr_models=zdr)


async def call_routed(
    state: AppState,
    persona: Persona,
    route: Route,
    body: Mapping[str, Any],
    call: Callable[[dict[str, Any]], Awaitable[T]],
    served_model: Callable[[T], str],
    router_attempts: Callable[[T], list[dict[str, Any]]],
) -> tuple[T, RoutingRecord]:
    """Send `body` to `route`'s candidates with fallback; the result and the routing record.

    Raises:
        RoutingFailed: no candidate answered (the record lists every attempt).
        OpenRouterError: the one call to OpenRouter's default model failed.
    """
    record = RoutingRecord.for_route(route)
    upstream = Upstream(
        call=lambda models: call(group_body(body, models)),
        served_model=served_model,
        router_attempts=router_attempts,
    )
    return await run_with_fallback(route, persona, state.cooldowns, upstream, record), record
