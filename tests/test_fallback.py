"""Falling back across candidate groups, directly: no MCP, no HTTP, an upstream that answers at once."""

from __future__ import annotations

from typing import Any

import pytest

from openrouter_mcp import errors
from openrouter_mcp.routing.cooldowns import Cooldowns
from openrouter_mcp.routing.fallback import RoutingRecord, Upstream, group_body, run_with_fallback
from openrouter_mcp.routing.personas import FallbackPolicy, Persona
from openrouter_mcp.routing.plan import Candidate, Exclusion, Route

pytestmark = pytest.mark.anyio

PERSONA = Persona(name="p", rank_by=[], fallback=FallbackPolicy(cooldown_seconds=0))


def route(*models: str, default: bool = False, exclusions: list[Exclusion] | None = None) -> Route:
    return Route("p", "code", [Candidate(m, "test", 1.0, 2.0) for m in models], exclusions or [], {}, default)


class Upstream503:
    """Fails every group whose models are all `down` with a 503; else the first healthy model answers."""

    def __init__(self, *down: str, router_attempts: list[dict[str, Any]] | None = None) -> None:
        self.down = set(down)
        self.calls: list[list[str]] = []
        self.attempts = router_attempts or []

    async def call(self, models: list[str]) -> str:
        self.calls.append(models)
        healthy = [m for m in models if m not in self.down]
        if models and not healthy:
            raise errors.ServiceUnavailableError("down", status_code=503)
        return healthy[0] if healthy else "openrouter/default-choice"

    def upstream(self) -> Upstream[str]:
        return Upstream(call=self.call, served_model=lambda served: served, router_attempts=lambda _: self.attempts)


def test_a_body_is_aimed_at_a_group_through_model_and_the_native_models_array() -> None:
    body = {"model": "x/ignored", "models": ["y/ignored"], "messages": []}
    assert group_body(body, ["a/1", "b/2", "c/3"]) == {"messages": [], "model": "a/1", "models": ["b/2", "c/3"]}
    assert group_body(body, ["a/1"]) == {"messages": [], "model": "a/1"}


def test_a_body_aimed_at_no_group_names_no_model_so_openrouters_default_answers() -> None:
    assert group_body({"model": "x/y", "models": ["z/w"], "messages": []}, []) == {"messages": []}


def test_a_record_starts_with_the_routes_candidates_and_exclusions() -> None:
    record = RoutingRecord.for_route(route("a/1", "b/2", exclusions=[Exclusion("c/3", "no_tool_support", "no tools")]))
    assert record.as_dict() == {
        "persona": "p",
        "task": "code",
        "candidates": ["a/1", "b/2"],
        "exclusions": [{"model": "c/3", "reason": "no_tool_support", "detail": "no tools"}],
        "attempts": [],
        "upstream_calls": 0,
        "answered_by": None,
        "fallback_used": False,
    }


async def test_a_failed_group_switches_to_the_next_and_every_attempt_is_recorded() -> None:
    the_route = route("a/1", "b/2", "c/3", "d/4")
    fake = Upstream503("a/1", "b/2", "c/3")
    record = RoutingRecord.for_route(the_route)
    served = await run_with_fallback(the_route, PERSONA, Cooldowns(), fake.upstream(), record)
    assert served == "d/4" and fake.calls == [["a/1", "b/2", "c/3"], ["d/4"]]
    assert [(a.model, a.outcome, a.status, a.decision) for a in record.attempts] == [
        ("a/1", "failed", 503, "switch_model"),
        ("b/2", "failed", 503, "switch_model"),
        ("c/3", "failed", 503, "switch_model"),
        ("d/4", "answered", 200, None),
    ]
    assert record.upstream_calls == 2 and record.answered_by == "d/4" and record.fallback_used


async def test_a_model_openrouter_passed_over_within_its_group_is_recorded_as_failed() -> None:
    the_route = route("a/1", "b/2")
    fake = Upstream503("a/1", router_attempts=[{"model": "a/1", "status": 429}, {"model": "b/2", "status": 200}])
    record = RoutingRecord.for_route(the_route)
    assert await run_with_fallback(the_route, PERSONA, Cooldowns(), fake.upstream(), record) == "b/2"
    assert [(a.model, a.outcome, a.status) for a in record.attempts] == [
        ("a/1", "failed", 429),
        ("b/2", "answered", 200),
    ]


async def test_openrouters_default_answers_in_one_call_that_names_no_model() -> None:
    the_route = route(default=True)
    fake = Upstream503()
    record = RoutingRecord.for_route(the_route)
    assert await run_with_fallback(the_route, PERSONA, Cooldowns(), fake.upstream(), record) == (
        "openrouter/default-choice"
    )
    assert fake.calls == [[]] and record.upstream_calls == 1 and record.answered_by == "openrouter/default-choice"


async def test_with_no_candidate_nothing_is_sent_and_the_failure_points_at_the_exclusions() -> None:
    the_route = route(exclusions=[Exclusion("a/1", "over_price_ceiling", "too dear")])
    fake = Upstream503()
    with pytest.raises(errors.RoutingFailed) as caught:
        await run_with_fallback(the_route, PERSONA, Cooldowns(), fake.upstream(), RoutingRecord.for_route(the_route))
    assert fake.calls == []
    payload = caught.value.payload()
    assert payload["error"] == "no_model_fits" and payload["retryable"] is False
    assert "see routing.exclusions" in payload["message"]
    assert payload["routing"]["exclusions"] == [{"model": "a/1", "reason": "over_price_ceiling", "detail": "too dear"}]


async def test_a_request_error_fails_at_once_with_the_upstream_errors_kind() -> None:
    the_route = route("a/1", "b/2", "c/3", "d/4")

    async def bad_request(models: list[str]) -> str:
        raise errors.BadRequestError("messages must not be empty", status_code=400)

    upstream = Upstream(call=bad_request, served_model=lambda served: served, router_attempts=lambda _: [])
    record = RoutingRecord.for_route(the_route)
    with pytest.raises(errors.RoutingFailed) as caught:
        await run_with_fallback(the_route, PERSONA, Cooldowns(), upstream, record)
    assert caught.value.kind == "bad_request" and caught.value.payload()["status"] == 400
    assert record.upstream_calls == 1 and {a.decision for a in record.attempts} == {"fail"}
