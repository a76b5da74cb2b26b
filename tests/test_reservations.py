"""The worst case a budget reserves, the caps that make OpenRouter hold it, and the budget windows (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openrouter_mcp.routing.budgets import BudgetLimit, budget_limits, budget_refusal
from openrouter_mcp.routing.personas import Budget, FallbackPolicy, Persona
from openrouter_mcp.routing.reservations import (
    LEASE_MARGIN_SECONDS,
    Prices,
    bounding_prices,
    capped_provider,
    lease_seconds,
    padded_prompt_tokens,
    per_token,
    worst_case,
)


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def test_the_prompt_estimate_is_padded_by_a_quarter_plus_sixteen_tokens() -> None:
    assert padded_prompt_tokens(0) == 16
    assert padded_prompt_tokens(100) == 141
    assert padded_prompt_tokens(3) == 20  # 3.75 rounds up


def test_the_worst_case_takes_the_highest_price_of_each_kind_among_the_candidates() -> None:
    cheap = Prices(prompt=1e-6, completion=2e-6, request=0.0, image=0.01)
    pricey = Prices(prompt=3e-6, completion=1e-6, request=0.002, image=0.0)
    bound = bounding_prices([cheap, pricey])
    assert bound == Prices(prompt=3e-6, completion=2e-6, request=0.002, image=0.01)
    worst = worst_case(bound, prompt_tokens=100, images=2)
    # 141 padded prompt tokens, the request fee and two images whatever the answer; then 2e-6 a token.
    assert worst.fixed == pytest.approx(141 * 3e-6 + 0.002 + 2 * 0.01)
    assert worst.cost(500) == pytest.approx(worst.fixed + 500 * 2e-6)


def test_no_candidate_prices_cannot_be_bounded() -> None:
    with pytest.raises(ValueError, match="no candidate prices"):
        bounding_prices([])


def test_the_tokens_that_fit_an_amount_are_rounded_down_and_capped() -> None:
    worst = worst_case(Prices(prompt=1e-6, completion=1e-6), prompt_tokens=0)  # fixed: 16 tokens
    assert worst.tokens_within(worst.fixed + 10.5e-6, cap=4096) == 10
    assert worst.tokens_within(worst.fixed + 1.0, cap=4096) == 4096
    assert worst.tokens_within(worst.fixed - 1e-9, cap=4096) == 0
    assert worst.tokens_within(worst.cost(7), cap=4096) == 7  # exactly what was reserved for 7


def test_a_free_completion_fits_the_cap_once_the_fixed_part_fits() -> None:
    worst = worst_case(Prices(prompt=1e-6, completion=0.0), prompt_tokens=10)
    assert worst.tokens_within(worst.fixed, cap=300) == 300
    assert worst.tokens_within(worst.fixed / 2, cap=300) == 0


def test_max_price_is_capped_at_the_bound_and_a_lower_ceiling_is_kept() -> None:
    bound = Prices(prompt=2.5e-6, completion=1e-5, request=0.0, image=0.001)
    capped = capped_provider({"order": ["OpenAI"], "max_price": {"prompt": "1", "completion": "50"}}, bound)
    assert capped["order"] == ["OpenAI"]
    assert capped["max_price"] == {"prompt": "1", "completion": "10", "request": "0", "image": "0.001"}
    assert capped_provider(None, bound)["max_price"]["prompt"] == "2.5"


def test_catalog_prices_unknown_or_variable_are_none_and_absent_ones_free() -> None:
    assert per_token("0.000001") == pytest.approx(1e-6)
    assert per_token(None) == 0.0
    assert per_token("-1") is None and per_token("n/a") is None and per_token("inf") is None


def test_a_lease_lasts_the_personas_deadline_plus_a_margin() -> None:
    persona = Persona(name="p", fallback=FallbackPolicy(deadline_seconds=30))
    assert lease_seconds(persona) == 30 + LEASE_MARGIN_SECONDS


def test_budget_windows_are_the_utc_day_and_month_of_now_for_the_periods_set() -> None:
    now = at("2026-12-31T23:00:00")
    daily, monthly = budget_limits("user", "ann", Budget(daily=1.0, monthly=20.0), now)
    assert (daily.scope, daily.name, daily.period, daily.limit) == ("user", "ann", "daily", 1.0)
    assert (daily.since, daily.resets) == (at("2026-12-31T00:00:00"), at("2027-01-01T00:00:00"))
    assert (monthly.since, monthly.resets) == (at("2026-12-01T00:00:00"), at("2027-01-01T00:00:00"))
    assert budget_limits("server", "", Budget(monthly=5.0), now)[0].period == "monthly"
    assert budget_limits("persona", "p", Budget(), now) == [] and budget_limits("user", "x", None, now) == []


def test_a_refusal_names_the_budget_spend_in_flight_limit_and_reset() -> None:
    limit = BudgetLimit("server", "", "daily", 2.0, at("2026-11-26T00:00:00"), at("2026-11-27T00:00:00"))
    error = budget_refusal(limit, spent=1.5, reserved=0.25, needed=0.3)
    assert error.kind == "budget_exceeded" and error.hint
    assert error.message == (
        "the server has spent $1.5000 of its daily budget of $2, with $0.2500 more reserved by calls in "
        "flight; this call may cost up to $0.300000; it resets at 2026-11-27 00:00 UTC"
    )
    assert (
        "persona 'p'"
        in budget_refusal(BudgetLimit("persona", "p", "monthly", 1.0, 0.0, 1.0), spent=0, reserved=0, needed=2).message
    )
