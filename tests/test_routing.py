"""The routing table: every filter, every error-class decision, cooldowns on an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from openrouter_mcp import errors
from openrouter_mcp.routing.cooldowns import ACCOUNT, FREE_TIER, Cooldowns
from openrouter_mcp.routing.decisions import Action, decide
from openrouter_mcp.routing.fallback import native_groups
from openrouter_mcp.routing.personas import FallbackPolicy, Persona, PriceCeiling, ProviderSettings, Requirements
from openrouter_mcp.routing.plan import RouteRequest, plan_candidates
from openrouter_mcp.upstream.catalog import ModelEntry
from openrouter_mcp.upstream.models import Model
from tests.processes import fresh_interpreter


def entry(
    model_id: str,
    *,
    prompt: str = "0.000001",
    completion: str = "0.000002",
    context: int = 128_000,
    params: tuple[str, ...] = ("tools", "response_format"),
    inputs: tuple[str, ...] = ("text",),
    intelligence: float | None = None,
) -> ModelEntry:
    raw: dict[str, Any] = {
        "id": model_id,
        "pricing": {"prompt": prompt, "completion": completion},
        "context_length": context,
        "supported_parameters": list(params),
        "architecture": {"input_modalities": list(inputs), "output_modalities": ["text"]},
    }
    if intelligence is not None:
        raw["benchmarks"] = {
            "artificial_analysis": {"intelligence_index": intelligence, "coding_index": 1, "agentic_index": 1}
        }
    return ModelEntry.from_model(Model.model_validate(raw))


def catalog(*entries: ModelEntry) -> dict[str, ModelEntry]:
    return {e.id: e for e in entries}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CATALOG = catalog(
    entry("a/cheap", prompt="0.0000001", completion="0.0000002", intelligence=30),
    entry("b/smart", prompt="0.000003", completion="0.000015", intelligence=70),
    entry("c/mid", intelligence=50),
    entry("d/notools", params=("temperature",), intelligence=60),
    entry("e/vision", inputs=("text", "image"), intelligence=40),
    entry("f/tiny", context=4096, intelligence=20),
    entry("g/free:free", prompt="0", completion="0", intelligence=35),
)


def ids(route: Any) -> list[str]:
    return [c.model_id for c in route.candidates]


def test_requested_model_then_task_then_general_preferences() -> None:
    persona = Persona(name="p", models=["c/mid", "a/cheap"], tasks={"code": ["b/smart"]})
    route = plan_candidates(persona, RouteRequest(requested_model="e/vision", task="code"), CATALOG)
    assert ids(route)[:4] == ["e/vision", "b/smart", "c/mid", "a/cheap"]
    assert route.candidates[0].why == "requested"
    assert route.candidates[1].why == "persona preference #1 for task 'code'"


def test_the_callers_own_fallbacks_follow_the_requested_model() -> None:
    route = plan_candidates(Persona(), RouteRequest(requested_model="c/mid", fallback_models=("a/cheap",)), CATALOG)
    assert ids(route)[:2] == ["c/mid", "a/cheap"] and route.candidates[1].why == "caller fallback #1"


def test_ranked_extras_are_never_pricier_than_the_first_candidate() -> None:
    route = plan_candidates(Persona(rank_by=["intelligence"]), RouteRequest(requested_model="c/mid"), CATALOG)
    assert ids(route)[0] == "c/mid" and len(route.candidates) > 1
    primary = route.candidates[0]
    for extra in route.candidates[1:]:
        assert extra.why == "ranked by intelligence"
        assert (extra.prompt_per_m or 0) <= (primary.prompt_per_m or 0)
        assert (extra.completion_per_m or 0) <= (primary.completion_per_m or 0)
    assert "b/smart" not in ids(route) and route.ranked_out["pricier_than_primary"] >= 1


def test_with_no_model_named_and_no_price_bound_openrouters_default_answers() -> None:
    route = plan_candidates(Persona(rank_by=["intelligence"]), RouteRequest(), CATALOG)
    assert route.openrouter_default and route.candidates == []


@pytest.mark.parametrize(
    ("request_", "persona", "model", "reason"),
    [
        (RouteRequest(), Persona(models=["x/missing"]), "x/missing", "not_in_catalog"),
        (RouteRequest(needs_tools=True), Persona(models=["d/notools"]), "d/notools", "no_tool_support"),
        (
            RouteRequest(),
            Persona(models=["d/notools"], requires=Requirements(tools=True)),
            "d/notools",
            "no_tool_support",
        ),
        (
            RouteRequest(needs_structured_output=True),
            Persona(models=["d/notools"]),
            "d/notools",
            "no_structured_output",
        ),
        (RouteRequest(has_images=True), Persona(models=["c/mid"]), "c/mid", "no_image_input"),
        (RouteRequest(prompt_tokens=4000, max_tokens=500), Persona(models=["f/tiny"]), "f/tiny", "context_too_small"),
        (
            RouteRequest(),
            Persona(models=["f/tiny"], requires=Requirements(min_context=8000)),
            "f/tiny",
            "context_too_small",
        ),
        (
            RouteRequest(),
            Persona(models=["b/smart"], max_price=PriceCeiling(completion=10)),
            "b/smart",
            "over_price_ceiling",
        ),
        (
            RouteRequest(),
            Persona(models=["b/smart"], provider=ProviderSettings(zdr=True)),
            "b/smart",
            "excluded_by_privacy",
        ),
    ],
)
def test_each_filter_excludes_with_its_reason(
    request_: RouteRequest, persona: Persona, model: str, reason: str
) -> None:
    route = plan_candidates(persona, request_, CATALOG, zdr_models=frozenset({"a/cheap"}))
    assert model not in ids(route)
    assert [(x.model_id, x.reason) for x in route.exclusions] == [(model, reason)]
    assert route.exclusions[0].detail


def test_when_no_preference_fits_the_catalog_is_ranked_by_strengths() -> None:
    persona = Persona(models=["d/notools"], rank_by=["intelligence"])
    route = plan_candidates(persona, RouteRequest(needs_tools=True), CATALOG)
    assert ids(route)[:3] == ["b/smart", "c/mid", "e/vision"]
    assert all(c.why == "ranked by intelligence" for c in route.candidates)
    cheap_first = plan_candidates(
        Persona(rank_by=["cheap"], max_price=PriceCeiling(prompt=100)), RouteRequest(), CATALOG
    )
    assert ids(cheap_first)[0] == "g/free:free"


def test_the_price_ceiling_holds_for_every_ranked_fallback() -> None:
    persona = Persona(max_price=PriceCeiling(prompt=1.0, completion=2.0), rank_by=["intelligence"])
    route = plan_candidates(persona, RouteRequest(), CATALOG)
    assert "b/smart" not in ids(route) and route.candidates
    assert all((c.prompt_per_m or 0) <= 1.0 and (c.completion_per_m or 0) <= 2.0 for c in route.candidates)
    assert route.ranked_out["over_price_ceiling"] == 1


def test_a_requested_model_over_the_ceiling_is_refused_not_silently_used() -> None:
    persona = Persona(models=["a/cheap"], max_price=PriceCeiling(prompt=1.0))
    route = plan_candidates(persona, RouteRequest(requested_model="b/smart"), CATALOG)
    assert ids(route)[0] == "a/cheap" and "b/smart" not in ids(route)
    assert route.exclusions[0].model_id == "b/smart" and route.exclusions[0].reason == "over_price_ceiling"


def test_unknown_prices_are_excluded_when_a_ceiling_is_set() -> None:
    router = entry("openrouter/auto", prompt="-1", completion="-1")
    route = plan_candidates(
        Persona(models=["openrouter/auto"], max_price=PriceCeiling(prompt=5)), RouteRequest(), catalog(router)
    )
    assert route.exclusions[0].reason == "price_unknown"


def test_cooling_models_are_skipped_until_the_cooldown_expires() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock)
    policy = FallbackPolicy(cooldown_seconds=30)
    persona = Persona(models=["b/smart", "c/mid"], rank_by=[])
    assert cooldowns.fail("b/smart", policy, retry_after=10) == 30
    route = plan_candidates(persona, RouteRequest(), CATALOG, cooldowns=cooldowns)
    assert ids(route) == ["c/mid"] and route.exclusions[0].reason == "cooling_down"
    clock.now += 29
    assert ids(plan_candidates(persona, RouteRequest(), CATALOG, cooldowns=cooldowns)) == ["c/mid"]
    clock.now += 2
    assert ids(plan_candidates(persona, RouteRequest(), CATALOG, cooldowns=cooldowns)) == ["b/smart", "c/mid"]


def test_repeat_failures_back_off_and_a_long_retry_after_wins() -> None:
    cooldowns = Cooldowns(Clock())
    policy = FallbackPolicy(cooldown_seconds=10, max_cooldown_seconds=35)
    assert [cooldowns.fail("m/x", policy) for _ in range(4)] == [10, 20, 35, 35]
    assert cooldowns.fail("m/y", policy, retry_after=300) == 300
    cooldowns.succeed("m/x")
    assert cooldowns.fail("m/x", policy) == 10


def test_a_model_that_never_recovers_keeps_the_capped_cooldown_without_overflowing() -> None:
    cooldowns = Cooldowns(Clock())
    policy = FallbackPolicy(cooldown_seconds=30, max_cooldown_seconds=900)
    assert [cooldowns.fail("m/x", policy) for _ in range(2000)][-1] == 900


def test_a_free_tier_limit_cools_every_free_model_but_no_paid_one() -> None:
    cooldowns = Cooldowns(Clock())
    cooldowns.fail(FREE_TIER, FallbackPolicy(), retry_after=3600)
    assert cooldowns.blocking("g/free:free") is not None
    assert cooldowns.blocking("a/cheap") is None
    cooldowns.fail(ACCOUNT, FallbackPolicy())
    assert cooldowns.blocking("a/cheap") is not None


def test_candidates_are_grouped_by_three_for_openrouters_native_fallbacks() -> None:
    route = plan_candidates(
        Persona(rank_by=["intelligence"], max_price=PriceCeiling(prompt=100)), RouteRequest(), CATALOG
    )
    groups = native_groups(route.candidates)
    assert [len(g) for g in groups] == [3, 3]


POLICY = FallbackPolicy(retry_same_model_within=2.0)


def status_error(cls: type[errors.APIStatusError], **kwargs: Any) -> errors.APIStatusError:
    return cls("boom", status_code=cls.status_code, **kwargs)


@pytest.mark.parametrize(
    ("error", "model", "action", "cool"),
    [
        (status_error(errors.RateLimitError, retry_after=1.0, provider_code=429), "m/x", Action.RETRY_SAME, ()),
        (status_error(errors.RateLimitError, retry_after=30.0, provider_code=429), "m/x", Action.SWITCH, ("m/x",)),
        (status_error(errors.RateLimitError), "m/x", Action.SWITCH, ("m/x",)),
        (status_error(errors.RateLimitError, rate_limit={"limit": "20"}), "m/x:free", Action.SWITCH, (FREE_TIER,)),
        (status_error(errors.RateLimitError, rate_limit={"limit": "20"}), "m/x", Action.FAIL, (ACCOUNT,)),
        (status_error(errors.ServiceUnavailableError), "m/x", Action.SWITCH, ("m/x",)),
        (status_error(errors.BadGatewayError), "m/x", Action.SWITCH, ("m/x",)),
        (status_error(errors.ProviderOverloadedError), "m/x", Action.SWITCH, ("m/x",)),
        (status_error(errors.EdgeTimeoutError), "m/x", Action.SWITCH, ("m/x",)),
        (status_error(errors.RequestTimeoutError), "m/x", Action.SWITCH, ("m/x",)),
        (errors.UpstreamTimeout("slow"), "m/x", Action.SWITCH, ("m/x",)),
        (errors.UpstreamConnectionError("reset"), "m/x", Action.SWITCH, ("m/x",)),
        (errors.MalformedResponseError("junk"), "m/x", Action.SWITCH, ("m/x",)),
        (errors.MidStreamError("cut", status_code=502), "m/x", Action.SWITCH, ("m/x",)),
        (errors.MidStreamError("cut", status_code=502, partial_text="Hel"), "m/x", Action.FAIL, ("m/x",)),
        (status_error(errors.NotFoundError, availability={"code": "no_endpoints"}), "m/x", Action.SWITCH, ("m/x",)),
        (status_error(errors.BadRequestError, error_type="context_length_exceeded"), "m/x", Action.SWITCH, ("m/x",)),
        (
            status_error(errors.BadRequestError, availability={"code": "model_not_found"}),
            "m/x",
            Action.SWITCH,
            ("m/x",),
        ),
        (status_error(errors.BadRequestError, error_type="invalid_request"), "m/x", Action.FAIL, ()),
        (status_error(errors.BadRequestError, error_type="content_policy_violation"), "m/x", Action.FAIL, ()),
        (status_error(errors.PermissionDeniedError, metadata={"reasons": ["violence"]}), "m/x", Action.FAIL, ()),
        (
            status_error(errors.PermissionDeniedError, availability={"code": "region_restricted"}),
            "m/x",
            Action.SWITCH,
            ("m/x",),
        ),
        (status_error(errors.AuthenticationError), "m/x", Action.FAIL, ()),
        (status_error(errors.PaymentRequiredError), "m/x", Action.FAIL, ()),
        (status_error(errors.PayloadTooLargeError), "m/x", Action.FAIL, ()),
        (status_error(errors.UnprocessableEntityError), "m/x", Action.FAIL, ()),
        (errors.MissingApiKeyError(), "m/x", Action.FAIL, ()),
    ],
)
def test_each_error_class_gets_its_decision(
    error: errors.OpenRouterError, model: str, action: Action, cool: tuple[str, ...]
) -> None:
    decision = decide(error, model, POLICY)
    assert (decision.action, decision.cool) == (action, cool)
    assert decision.why


def test_a_short_retry_after_is_honoured_once_then_the_model_is_switched() -> None:
    error = status_error(errors.RateLimitError, retry_after=1.5, provider_code=429)
    first = decide(error, "m/x", POLICY)
    assert first.action is Action.RETRY_SAME and first.wait == 1.5
    assert decide(error, "m/x", POLICY, retried=True).action is Action.SWITCH


def test_the_routing_layer_imports_neither_mcp_nor_httpx() -> None:
    modules = ["budgets", "cooldowns", "decisions", "fallback", "personas", "plan", "pricing", "reservations"]
    code = (
        "import sys\n"
        + "".join(f"import openrouter_mcp.routing.{name}\n" for name in modules)
        + "stacks = {'mcp', 'httpx', 'httpx2', 'httpcore', 'httpcore2', 'sqlite3'}\n"
        + "print(sorted({m.split('.')[0] for m in sys.modules} & stacks))"
    )
    assert fresh_interpreter(code) == "[]"
