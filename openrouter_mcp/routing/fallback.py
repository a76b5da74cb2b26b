"""Running one request across its candidate models until one answers, and recording what happened.

Candidates go upstream in groups of up to three through OpenRouter's native `models` array
(`native_groups`, `group_body`), so OpenRouter fails over within a group in a single round trip (the
cheap path); `run_with_fallback` falls back across groups itself. After each failure
`decisions.decide` says whether to retry the same group, switch to the next one or stop, and failed
models cool down so later requests skip them. Bounded by the persona's attempt budget and deadline.
No mcp or httpx here: the upstream call is passed in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import anyio

from openrouter_mcp.errors import (
    ConfigurationError,
    DeadlineExceededError,
    InvalidRequestError,
    OpenRouterError,
    RoutingFailed,
    UpstreamConnectionError,
    status_error_class,
)
from openrouter_mcp.routing.cooldowns import Cooldowns
from openrouter_mcp.routing.decisions import Action, Decision, decide
from openrouter_mcp.routing.personas import Persona
from openrouter_mcp.routing.plan import Candidate, Route

__all__ = [
    "NATIVE_GROUP",
    "Attempt",
    "AttemptWatch",
    "RoutingFailed",
    "RoutingRecord",
    "Upstream",
    "group_body",
    "native_groups",
    "run_with_fallback",
]

T = TypeVar("T")

#: Errors raised before a request leaves the process (no key, a request the HTTP client cannot build): they
#: are not upstream calls, and no model failed.
_NOTHING_SENT = (ConfigurationError, InvalidRequestError)

#: OpenRouter's cap on the native `models` fallback array.
NATIVE_GROUP = 3


def native_groups(candidates: list[Candidate]) -> list[list[Candidate]]:
    """Candidates in groups OpenRouter can fail over within, via its native `models` array (≤ 3)."""
    return [candidates[i : i + NATIVE_GROUP] for i in range(0, len(candidates), NATIVE_GROUP)]


def group_body(body: Mapping[str, Any], models: list[str]) -> dict[str, Any]:
    """`body` aimed at one group: the first model as `model`, the rest as OpenRouter's native `models`.

    With no models, neither is sent: OpenRouter's account default model answers.
    """
    aimed = {key: value for key, value in body.items() if key not in ("model", "models")}
    if models:
        aimed["model"] = models[0]
    if len(models) > 1:
        aimed["models"] = models[1:]
    return aimed


@dataclass
class Attempt:
    """One model's part in one upstream call."""

    model: str
    #: "failed" also for a model OpenRouter passed over within its group before another answered
    #: (with the status OpenRouter reported for it, when it did).
    outcome: Literal["answered", "failed"]
    status: int | None = None
    error_type: str | None = None
    latency_ms: float | None = None
    #: After a failure, the `decisions.Action` value: "retry_same_model", "switch_model" or "fail".
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

    @classmethod
    def for_route(cls, route: Route) -> RoutingRecord:
        """An empty record of `route`: its candidates and exclusions, no attempts yet."""
        return cls(
            persona=route.persona,
            task=route.task,
            candidates=[c.model_id for c in route.candidates],
            exclusions=[{"model": x.model_id, "reason": x.reason, "detail": x.detail} for x in route.exclusions],
        )

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


class AttemptWatch(Protocol):
    """Told what one upstream request came to (metrics and trace spans watch through it; see `Upstream.watch`)."""

    def finish(self, attempts: list[Attempt], *, error: OpenRouterError | None = None, result: object = None) -> None:
        """The request is over: `attempts` are its models' parts in it, `error` or `result` what it returned."""


class _Unwatched:
    def finish(self, attempts: list[Attempt], *, error: OpenRouterError | None = None, result: object = None) -> None:
        pass


_UNWATCHED = _Unwatched()


def unwatched(models: list[str]) -> AbstractContextManager[AttemptWatch]:
    """The default `Upstream.watch`: nothing watches."""
    return nullcontext(_UNWATCHED)


@dataclass
class Upstream(Generic[T]):
    """How to make the call and read its answer, supplied by the tool."""

    #: Sends the request to one group of models (`group_body`); an empty list means OpenRouter's default model.
    call: Callable[[list[str]], Awaitable[T]]
    served_model: Callable[[T], str]
    #: Per-model attempts OpenRouter reports in `openrouter_metadata.attempts` (model, status), if any.
    router_attempts: Callable[[T], list[dict[str, Any]]]
    #: Entered around each upstream request to the group `models`, and told (`finish`) what came of it, once the
    #: routing decision is made; a request cut short (the deadline) leaves without `finish`.
    watch: Callable[[list[str]], AbstractContextManager[AttemptWatch]] = unwatched


async def run_with_fallback(
    route: Route,
    persona: Persona,
    cooldowns: Cooldowns,
    upstream: Upstream[T],
    record: RoutingRecord,
) -> T:
    """Try `route`'s candidates in groups until one answers; `record` tells every attempt.

    A route to OpenRouter's default model (nothing named a model and nothing bounds its price) is one
    call with no model at all.

    Raises:
        RoutingFailed: no candidate fits, every candidate failed, a request error made trying others
            pointless, or the attempt budget or deadline ran out (then of kind `deadline_exceeded`, retryable);
            `record` lists every attempt either way, and counts only requests that were sent.
        OpenRouterError: the one call to OpenRouter's default model failed.
    """
    if route.openrouter_default:
        with upstream.watch([]) as watch:
            try:
                result = await upstream.call([])
            except OpenRouterError as error:
                watch.finish([], error=error)
                raise
            record.upstream_calls = 1
            record.answered_by = upstream.served_model(result)
            watch.finish([Attempt(record.answered_by, "answered", 200)], result=result)
        return result
    if not route.candidates:
        raise RoutingFailed("no candidate model fits this request; see routing.exclusions", record)
    policy = persona.fallback
    last: OpenRouterError | None = None
    queue = [c.model_id for c in route.candidates]
    in_flight: list[str] = []  # the group whose call is under way, for the record if the deadline cuts it
    started = time.monotonic()
    with anyio.move_on_after(policy.deadline_seconds) as deadline:
        retried = False
        while queue and record.upstream_calls < policy.max_attempts:
            models = [c.model_id for c in native_groups([c for c in route.candidates if c.model_id in queue])[0]]
            started = time.monotonic()
            record.upstream_calls += 1
            in_flight = models
            first = len(record.attempts)
            wait: float | None = None
            with upstream.watch(models) as watch:
                try:
                    result = await upstream.call(models)
                except _NOTHING_SENT as error:
                    record.upstream_calls -= 1
                    watch.finish([], error=error)
                    raise RoutingFailed(f"nothing was sent: {error.message}", record, error) from None
                except OpenRouterError as error:
                    in_flight = []
                    last = error
                    decision = _decide_for_group(error, models, persona, cooldowns, record, started, retried)
                    watch.finish(record.attempts[first:], error=error)
                    if decision.action is Action.RETRY_SAME:
                        retried, wait = True, decision.wait
                    else:
                        retried = False
                        if decision.action is Action.FAIL:
                            break
                        queue = [m for m in queue if m not in models and cooldowns.blocking(m) is None]
                        continue
                else:
                    in_flight = []
                    served = upstream.served_model(result)
                    _record_success(result, upstream, served, models, persona, cooldowns, record, started)
                    watch.finish(record.attempts[first:], result=result)
                    return result
            # Asked to wait briefly: cheaper than a model switch, and the deadline still bounds it.
            await anyio.sleep(wait or 0.0)
    if deadline.cancel_called:
        # The group cut off by the deadline failed too (nothing in flight if it struck between attempts).
        latency = round((time.monotonic() - started) * 1000, 1)
        for model in in_flight:
            record.attempts.append(Attempt(model, "failed", None, DeadlineExceededError.kind, latency, "fail"))
        waiting = f"; {in_flight[0]} had not answered yet" if in_flight else ""
        last = DeadlineExceededError(
            f"the persona's deadline of {policy.deadline_seconds:g} s ran out after "
            f"{record.upstream_calls} upstream call(s){waiting}"
        )
        message = (
            f"gave up when the persona's deadline of {policy.deadline_seconds:g} s ran out, after "
            f"{record.upstream_calls} upstream call(s){waiting}"
        )
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
    # The common case, the group's first model answered, passed none over: no need to read OpenRouter's attempts.
    passed_over = models[: models.index(served)] if served in models else models
    failed = (
        {str(a.get("model")): a.get("status") for a in upstream.router_attempts(result) if a.get("status") != 200}
        if passed_over
        else {}
    )
    for model in passed_over:
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
