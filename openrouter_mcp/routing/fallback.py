"""Running one request across its candidate models until one answers, and recording what happened.

Candidates go upstream in groups of up to three through OpenRouter's native `models` array, so
OpenRouter fails over within a group in a single round trip (the cheap path); we fall back across
groups ourselves. After each failure `routing.decide` says whether to retry the same group, switch
to the next one or stop, and failed models cool down so later requests skip them. Bounded by the
persona's attempt budget and deadline. No mcp or httpx here: the upstream call is passed in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio

from openrouter_mcp.errors import OpenRouterError, UpstreamConnectionError, status_error_class
from openrouter_mcp.routing.personas import Persona
from openrouter_mcp.routing.plan import Action, Cooldowns, Decision, Route, decide, native_groups

T = TypeVar("T")


@dataclass
class Attempt:
    """One model's part in one upstream call."""

    model: str
    outcome: str  # "answered", "failed", or "skipped by OpenRouter" when another model in its group answered
    status: int | None = None
    error_type: str | None = None
    latency_ms: float | None = None
    decision: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass
class RoutingRecord:
    """What routing decided and what each attempt did; returned with every chat/messages result."""

    persona: str
    task: str | None
    candidates: list[str]
    exclusions: list[dict[str, str]]
    attempts: list[Attempt] = field(default_factory=list)
    upstream_calls: int = 0
    answered_by: str | None = None

    @property
    def fallback_used(self) -> bool:
        return bool(self.answered_by) and bool(self.candidates) and self.answered_by != self.candidates[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "task": self.task,
            "candidates": self.candidates,
            "exclusions": self.exclusions,
            "attempts": [attempt.as_dict() for attempt in self.attempts],
            "upstream_calls": self.upstream_calls,
            "answered_by": self.answered_by,
            "fallback_used": self.fallback_used,
        }


class RoutingFailed(OpenRouterError):
    """No candidate answered: carries the last upstream error and the full record of attempts."""

    def __init__(self, message: str, record: RoutingRecord, last: OpenRouterError | None = None) -> None:
        super().__init__(message)
        self.record = record
        self.last = last
        self.kind = last.kind if last is not None else "no_model_fits"
        self.retryable = last.retryable if last is not None else False
        self.hint = last.hint if last is not None else None

    @property
    def retry_after(self) -> float | None:
        return self.last.retry_after if self.last is not None else None

    def payload(self) -> dict[str, Any]:
        data = self.last.payload() if self.last is not None else super().payload()
        data["message"] = self.message
        data["routing"] = self.record.as_dict()
        return data


@dataclass
class Upstream(Generic[T]):
    """How to make the call and read its answer, supplied by the tool."""

    call: Callable[[list[str]], Awaitable[T]]
    served_model: Callable[[T], str]
    #: Per-model attempts OpenRouter reports in `openrouter_metadata.attempts` (model, status), if any.
    router_attempts: Callable[[T], list[dict[str, Any]]]


async def run(
    route: Route,
    persona: Persona,
    cooldowns: Cooldowns,
    upstream: Upstream[T],
    record: RoutingRecord,
) -> T:
    """Try `route`'s candidates in groups until one answers.

    Raises:
        RoutingFailed: every candidate failed, a request error made trying others pointless, or the
            attempt budget or deadline ran out; `record` lists every attempt either way.
    """
    policy = persona.fallback
    last: OpenRouterError | None = None
    queue = [c.model_id for c in route.candidates]
    with anyio.move_on_after(policy.deadline_seconds) as deadline:
        retried = False
        while queue and record.upstream_calls < policy.max_attempts:
            models = [c.model_id for c in native_groups([c for c in route.candidates if c.model_id in queue])[0]]
            started = time.monotonic()
            record.upstream_calls += 1
            try:
                result = await upstream.call(models)
            except OpenRouterError as error:
                last = error
                decision = _decide_for_group(error, models, persona, cooldowns, record, started, retried)
                if decision.action is Action.RETRY_SAME:
                    # Asked to wait briefly: cheaper than a model switch, and the deadline still bounds it.
                    retried = True
                    await anyio.sleep(decision.wait)
                    continue
                retried = False
                if decision.action is Action.FAIL:
                    break
                queue = [m for m in queue if m not in models and cooldowns.blocking(m) is None]
                continue
            served = upstream.served_model(result)
            _record_success(result, upstream, served, models, persona, cooldowns, record, started)
            return result
    if deadline.cancel_called:
        message = f"gave up after {policy.deadline_seconds:g} s (the persona's deadline)"
    elif last is None:
        message = "no candidate model fits this request"
    elif queue and record.upstream_calls >= policy.max_attempts:
        message = f"gave up after {record.upstream_calls} upstream calls (the persona's max_attempts)"
    else:
        message = f"every candidate failed; last error: {last.message}"
    raise RoutingFailed(f"{message}; see routing.attempts", record, last)


def _decide_for_group(
    error: OpenRouterError,
    models: list[str],
    persona: Persona,
    cooldowns: Cooldowns,
    record: RoutingRecord,
    started: float,
    retried: bool,
) -> Decision:
    # OpenRouter tried the group in order and returned the last model's error: all of them failed.
    decision = decide(error, models[-1], persona.fallback, retried=retried)
    latency = (time.monotonic() - started) * 1000
    status = getattr(error, "status_code", None)
    error_type = getattr(error, "error_type", None) or error.kind
    for model in models:
        record.attempts.append(Attempt(model, "failed", status, error_type, round(latency, 1), decision.action.value))
    for key in decision.cool:
        # A model-scoped decision covers the whole group; shared limits (free tier, account) stand alone.
        targets = models if key == models[-1] else [key]
        for target in targets:
            cooldowns.fail(target, persona.fallback, error.retry_after)
    return decision


def _passed_over(model: str, status: int | None, persona: Persona) -> Decision:
    """The decision for a group member OpenRouter skipped: as if it had failed alone with that status.

    Without a status (OpenRouter did not say) it is treated as an outage: cooled down, not blamed further.
    """
    error: OpenRouterError
    if status is None:
        error = UpstreamConnectionError("passed over by OpenRouter's fallback")
    else:
        error = status_error_class(status)("passed over by OpenRouter's fallback", status_code=status)
    return decide(error, model, persona.fallback, retried=True)


def _record_success(
    result: T,
    upstream: Upstream[T],
    served: str,
    models: list[str],
    persona: Persona,
    cooldowns: Cooldowns,
    record: RoutingRecord,
    started: float,
) -> None:
    latency = round((time.monotonic() - started) * 1000, 1)
    failed = {str(a.get("model")): a.get("status") for a in upstream.router_attempts(result) if a.get("status") != 200}
    for model in models:
        if model == served:
            break
        # Passed over within the group: OpenRouter saw it fail, and says how when asked for its metadata.
        status = failed.get(model)
        status = status if isinstance(status, int) else None
        decision = _passed_over(model, status, persona)
        record.attempts.append(Attempt(model, "failed", status, None, None, decision.action.value))
        for key in decision.cool:
            cooldowns.fail(key, persona.fallback)
    record.attempts.append(Attempt(served, "answered", 200, None, latency))
    cooldowns.succeed(served)
    record.answered_by = served
