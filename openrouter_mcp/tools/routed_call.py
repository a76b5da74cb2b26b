"""Glue from the session's state to the pure routing layer, for the tools that call a model.

The decisions live in `routing/` (pure): which candidates (`plan.plan_candidates`), at what price
(`pricing.provider_preferences`), within what budget (`budgets`, `reservations`: reserved in the
ledger before the call), and how to fall back
(`fallback.run_with_fallback`). This module gathers what they need from `AppState` (the cached catalog,
ZDR endpoints when the persona asks for them, the process's cooldowns, the ledger, the clock).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from pydantic import Field

from openrouter_mcp.audit.ledger import Cooldown, Ledger, Reservation, ReservationRequest, new_id
from openrouter_mcp.errors import AuditError, BudgetExceededError, LedgerUnavailableError, MissingApiKeyError
from openrouter_mcp.observability import tracing
from openrouter_mcp.routing.budgets import BudgetLimit, budget_limits
from openrouter_mcp.routing.fallback import RoutingRecord, Upstream, group_body, run_with_fallback, unwatched
from openrouter_mcp.routing.personas import Persona
from openrouter_mcp.routing.plan import Route, RouteRequest, plan_candidates
from openrouter_mcp.routing.reservations import (
    DEFAULT_MAX_TOKENS,
    Prices,
    bounding_prices,
    capped_provider,
    lease_seconds,
    per_token,
    worst_case,
)
from openrouter_mcp.serving.scopes import caller
from openrouter_mcp.state import AppState

if TYPE_CHECKING:
    from openrouter_mcp.observability.attempts import AttemptObserver

T = TypeVar("T")
logger = logging.getLogger(__name__)

#: How often a process reads the cooldowns other processes shared (a model cooled down elsewhere is skipped
#: here within this many seconds).
COOLDOWN_PULL_SECONDS = 1.0

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


@dataclass(frozen=True)
class Hold:
    """The budget reservation the current call holds, settled by `recording.record_call` when it ends."""

    reservation: Reservation
    max_tokens: int | None  # what the reservation covers; None: not bounded by tokens (no reservation)


#: Set by `reserve_for` in the tool's task, read (and cleared) by `record_call` in the same task.
current_hold: ContextVar[Hold | None] = ContextVar("openrouter_mcp_current_hold", default=None)


def limits_for(state: AppState, persona: Persona, user: str) -> list[BudgetLimit]:
    """Every budget window a call by `user` under `persona` must fit: the server's, the persona's, the user's."""
    now = state.clock()
    return [
        *budget_limits("server", "", state.personas.budget, now),
        *budget_limits("persona", persona.name, persona.budget, now),
        *budget_limits("user", user, state.user_budgets.get(user), now),
    ]


async def reserve_for(
    state: AppState, persona: Persona, route: Route, request: RouteRequest, body: dict[str, Any], *, images: int
) -> None:
    """Reserve the call's worst-case cost against every budget that applies, before anything is sent.

    With no budget this does nothing. Otherwise it bounds the cost (`routing.reservations`), reserves it
    atomically in the ledger, and makes OpenRouter enforce the bound: `max_tokens` (when the caller set
    none: `DEFAULT_MAX_TOKENS`, or what still fits the budget) and `provider.max_price` go into `body`.

    Raises:
        BudgetExceededError: the call does not fit a budget, or its cost cannot be bounded.
        LedgerUnavailableError: the ledger cannot be read or written (fail closed: nothing is sent).
    """
    ledger = state.ledger
    if ledger is None:
        return  # no audit log, so no budget (`AppState` refuses budgets without one)
    user = caller(state)
    limits = limits_for(state, persona, user)
    if not limits or (not route.candidates and not route.openrouter_default):
        return  # no budget; or no model fits, so nothing will be sent and routing says why
    bound = await _bounding_prices(state, route)
    worst = worst_case(bound, prompt_tokens=request.prompt_tokens, images=images)
    cap = request.max_tokens
    amount, minimum = (worst.cost(DEFAULT_MAX_TOKENS), worst.cost(1)) if cap is None else (worst.cost(cap),) * 2
    now = state.clock()
    wanted = ReservationRequest(
        id=new_id(),
        user=user,
        persona=persona.name,
        limits=limits,
        amount=amount,
        minimum=minimum,
        now=now,
        expires=now + lease_seconds(persona),
    )
    try:
        reservation = await ledger.reserve(wanted)
    except BudgetExceededError:
        raise
    except AuditError as exc:
        raise LedgerUnavailableError(
            f"the spend ledger cannot be used ({exc.message}), so this budgeted call was not sent"
        ) from None
    if cap is None:
        cap = worst.tokens_within(reservation.amount, DEFAULT_MAX_TOKENS)
        body["max_tokens"] = cap
    body["provider"] = capped_provider(body.get("provider"), bound)
    current_hold.set(Hold(reservation, cap))


async def _bounding_prices(state: AppState, route: Route) -> Prices:
    """The highest prices among the models that may answer.

    Raises:
        BudgetExceededError: no model is named (OpenRouter's default may be any price), or one has no fixed price.
    """
    if route.openrouter_default:
        raise BudgetExceededError(
            "a budget applies, but no model is chosen, so the cost cannot be bounded: name a model, or give "
            "the persona models or a max_price"
        )
    snapshot = await state.catalog.snapshot()
    prices: list[Prices] = []
    for candidate in route.candidates:
        entry = snapshot.by_id.get(candidate.model_id)
        pricing = entry.model.pricing if entry is not None else None
        found = (
            None
            if pricing is None
            else [per_token(pricing.prompt), per_token(pricing.completion), per_token(pricing.request)]
            + [per_token(pricing.image)]
        )
        if found is None or any(price is None for price in found):
            raise BudgetExceededError(
                f"a budget applies, but {candidate.model_id} has no fixed price in the catalog, so the cost of "
                "this call cannot be bounded: choose a model with a listed price"
            )
        prompt, completion, per_request, image = (float(price or 0.0) for price in found)
        prices.append(Prices(prompt, completion, per_request, image))
    return bounding_prices(prices)


async def plan_for(state: AppState, persona: Persona, request: RouteRequest) -> Route:
    """Candidates for `request`, from the shared catalog cache and the process's cooldowns.

    Raises:
        OpenRouterError: the catalog (or the ZDR list a ZDR persona needs) could not be fetched.
    """
    await pull_cooldowns(state)
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
    observer = _observer(state, persona, body)
    upstream = Upstream(
        call=lambda models: call(group_body(body, models)),
        served_model=served_model,
        router_attempts=router_attempts,
        watch=observer.watch if observer is not None else unwatched,
    )
    try:
        return await run_with_fallback(route, persona, state.cooldowns, upstream, record), record
    finally:
        await push_cooldowns(state)


def _observer(state: AppState, persona: Persona, body: Mapping[str, Any]) -> AttemptObserver | None:
    """What watches this call's upstream attempts (metrics, trace spans); None when nothing would."""
    tracer = tracing.tracer()
    if state.metrics is None and tracer is None:
        return None
    from openrouter_mcp.observability.attempts import AttemptObserver

    content = None
    if (
        tracer is not None
        and state.settings.trace_content
        and (persona.audit or state.settings.audit_privacy) == "full"
    ):
        system = body.get("system")
        messages = ([{"role": "system", "content": system}] if system else []) + list(body.get("messages") or [])
        content = json.dumps(messages, ensure_ascii=False, default=str)
    snapshot = state.catalog.cached
    return AttemptObserver(
        state.metrics,
        tracer,
        known=snapshot.by_id if snapshot is not None else (),
        persona=persona.name,
        content=content,
    )


async def pull_cooldowns(state: AppState) -> None:
    """Adopt the cooldowns other processes shared through the ledger, so the copy a call plans with is never
    older than `COOLDOWN_PULL_SECONDS`.

    A copy younger than half of that is used as it is. One between half and the whole is still used, and read
    again in the background for the calls that follow: a steady stream of calls never waits on the ledger for
    this. Only a call finding an older copy (the first after an idle second) waits for the read. Best effort: a
    ledger that cannot be read leaves the local cooldowns as they are.
    """
    ledger = state.ledger
    if ledger is None:
        return
    now = state.cooldowns.now()
    age = now - state.cooldowns_pulled
    if age < COOLDOWN_PULL_SECONDS / 2:
        return
    state.cooldowns_pulled = now  # concurrent calls neither wait for this read nor start another
    if age < COOLDOWN_PULL_SECONDS:
        state.in_background(_adopt_shared_cooldowns(state, ledger))
        return
    await _adopt_shared_cooldowns(state, ledger)


async def _adopt_shared_cooldowns(state: AppState, ledger: Ledger) -> None:
    try:
        shared = await ledger.cooldowns(now=time.time())
    except AuditError as exc:
        logger.warning("could not read the shared cooldowns: %s", exc.message)
        return
    wall = time.time()  # wall time: comparable across processes and machines, unlike the monotonic clock
    for cooldown in shared:
        state.cooldowns.adopt(cooldown.key, cooldown.until - wall, cooldown.strikes)


async def push_cooldowns(state: AppState) -> None:
    """Share the models (and limits) that failed during this call; nothing to do, and no I/O, when none did."""
    failures = state.cooldowns.take_failures()
    ledger = state.ledger
    if not failures or ledger is None:
        return
    wall = time.time()
    with anyio.CancelScope(shield=True):
        for key, seconds, strikes in failures:
            try:
                await ledger.put_cooldown(Cooldown(key, wall + seconds, strikes))
            except AuditError as exc:
                logger.warning("could not share the cooldown of %s: %s", key, exc.message)
                return
