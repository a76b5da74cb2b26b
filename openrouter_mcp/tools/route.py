"""Persona-driven model choice for the chat tools, and the read-only `route_request` tool.

The decisions live in `routing.py` (pure); this module gathers what they need (the persona this
session may use, the cached catalog, ZDR endpoints when the persona asks for them) and runs the
upstream call through `fallback.run`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from mcp.server.mcpserver import Context
from pydantic import Field

from openrouter_mcp.routing import fallback
from openrouter_mcp.routing.budgets import check_budget
from openrouter_mcp.routing.personas import Persona
from openrouter_mcp.routing.plan import Route, RouteRequest, plan_route
from openrouter_mcp.serving.scopes import persona_for
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.registry import READ_ONLY, ToolInput, ToolOutput, ToolSpec, one_line_schema

T = TypeVar("T")

PERSONA_FIELD = Field(None, description="Picks and bounds the model (default persona if unset)")
TASK_FIELD = Field(None, description="e.g. code, summarize, vision")


def enforce_budget(state: AppState, persona: Persona) -> None:
    """Refuse a paid call once the persona's budget for the day or month is spent.

    Raises:
        BudgetExceededError: naming the budget, the spend and the reset time.
    """
    audit = state.audit
    if audit is not None and (persona.budget.daily is not None or persona.budget.monthly is not None):
        check_budget(persona, lambda since: audit.spent(persona=persona.name, since=since), state.clock())


async def plan(state: AppState, persona: Persona, request: RouteRequest) -> Route:
    """Candidates for `request`, from the shared catalog cache and the process's cooldowns.

    Raises:
        OpenRouterError: the catalog (or the ZDR list a ZDR persona needs) could not be fetched.
    """
    snapshot = await state.catalog.snapshot()
    zdr = await state.catalog.zdr_model_ids() if persona.provider.zdr else None
    return plan_route(persona, request, snapshot.by_id, cooldowns=state.cooldowns, zdr_models=zdr)


def provider_preferences(persona: Persona, caller: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The `provider` object to send: the caller's, over the persona's defaults, under the persona's ceiling.

    The ceiling goes upstream as `max_price` too, so OpenRouter itself never routes to a pricier
    endpoint of an allowed model; a caller's own `max_price` can only lower it.
    """
    merged = {**persona.provider.model_dump(exclude_none=True), **(caller or {})}
    ceiling = persona.max_price.model_dump(exclude_none=True)
    if ceiling:
        prices = dict(merged.get("max_price") or {})
        for kind, limit in ceiling.items():
            prices[kind] = f"{min(float(prices.get(kind, limit)), limit):g}"
        merged["max_price"] = prices
    return merged or None


def group_body(body: Mapping[str, Any], models: list[str]) -> dict[str, Any]:
    """`body` aimed at one group: the first model as `model`, the rest as OpenRouter's native `models`."""
    aimed = {key: value for key, value in body.items() if key not in ("model", "models")}
    aimed["model"] = models[0]
    if len(models) > 1:
        aimed["models"] = models[1:]
    return aimed


async def run_routed(
    state: AppState,
    persona: Persona,
    route: Route,
    body: Mapping[str, Any],
    call: Callable[[dict[str, Any]], Awaitable[T]],
    served_model: Callable[[T], str],
    router_attempts: Callable[[T], list[dict[str, Any]]],
) -> tuple[T, fallback.RoutingRecord]:
    """Send `body` to `route`'s candidates with fallback; the result and the routing record.

    Raises:
        RoutingFailed: no candidate answered (the record lists every attempt).
    """
    record = fallback.RoutingRecord(
        persona=persona.name,
        task=route.task,
        candidates=[c.model_id for c in route.candidates],
        exclusions=[{"model": x.model_id, "reason": x.reason, "detail": x.detail} for x in route.exclusions],
    )
    if route.openrouter_default:
        # Nothing named a model and nothing bounds its price: OpenRouter's account default answers.
        result = await call({key: value for key, value in body.items() if key not in ("model", "models")})
        record.upstream_calls = 1
        record.answered_by = served_model(result)
        return result, record
    if not route.candidates:
        raise fallback.RoutingFailed("no candidate model fits this request; see routing.exclusions", record)
    upstream = fallback.Upstream(
        call=lambda models: call(group_body(body, models)),
        served_model=served_model,
        router_attempts=router_attempts,
    )
    return await fallback.run(route, persona, state.cooldowns, upstream, record), record


class RouteInput(ToolInput):
    persona: str | None = PERSONA_FIELD
    task: str | None = TASK_FIELD
    model: str | None = None
    needs_tools: bool = False
    needs_structured_output: bool = False
    has_images: bool = False
    prompt_tokens: int = Field(0, ge=0)
    max_tokens: int | None = Field(None, ge=1)


class RouteOutput(ToolOutput):
    model_config = one_line_schema(
        "candidates in try order (model, why, prices per 1M), exclusions (model, reason, detail), ranked_out"
    )

    persona: str
    task: str | None = None
    candidates: list[dict[str, Any]]
    exclusions: list[dict[str, Any]]
    ranked_out: dict[str, int] | None = None
    openrouter_default: bool = False


async def route_request(args: RouteInput, state: AppState, ctx: Context) -> RouteOutput:
    persona = persona_for(state, args.persona, "create_chat_completion")
    request = RouteRequest(
        requested_model=args.model,
        task=args.task,
        needs_tools=args.needs_tools,
        needs_structured_output=args.needs_structured_output,
        has_images=args.has_images,
        prompt_tokens=args.prompt_tokens,
        max_tokens=args.max_tokens,
    )
    route = await plan(state, persona, request)
    return RouteOutput(
        persona=route.persona,
        task=route.task,
        candidates=[
            {"model": c.model_id, "why": c.why, "prompt_per_m": c.prompt_per_m, "completion_per_m": c.completion_per_m}
            for c in route.candidates
        ],
        exclusions=[{"model": x.model_id, "reason": x.reason, "detail": x.detail} for x in route.exclusions],
        ranked_out=route.ranked_out or None,
        openrouter_default=route.openrouter_default,
    )


ROUTING_TOOLS: list[ToolSpec[Any, Any]] = [
    ToolSpec(
        name="route_request",
        title="Which model would answer",
        description="Which models a chat request would try, in order and why, and what is excluded. Calls no model.",
        input_model=RouteInput,
        output_model=RouteOutput,
        annotations=READ_ONLY,
        handler=route_request,
    )
]
