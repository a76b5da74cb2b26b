"""Budgets: refused once spent, with the reset time; periods are UTC days and months."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openrouter_mcp.errors import BudgetExceededError
from openrouter_mcp.routing.budgets import check_budget, day_start, month_start, next_month_start
from openrouter_mcp.routing.personas import Budget, Persona


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_periods_are_utc_days_and_months_including_the_december_rollover() -> None:
    assert day_start(at("2026-11-26T21:13:00")) == at("2026-11-26T00:00:00")
    assert month_start(at("2026-11-26T21:13:00")) == at("2026-11-01T00:00:00")
    assert next_month_start(at("2026-12-31T23:59:59")) == at("2027-01-01T00:00:00")


def test_a_call_under_budget_passes_and_one_over_is_refused_with_the_reset_time() -> None:
    persona = Persona(name="p", budget=Budget(daily=1.0))
    check_budget(persona, lambda since: 0.99, at("2026-11-26T12:00:00"))
    with pytest.raises(BudgetExceededError) as caught:
        check_budget(persona, lambda since: 1.0, at("2026-11-26T12:00:00"))
    message = str(caught.value)
    assert "daily budget of $1" in message and "$1.0000" in message and "2026-11-27 00:00 UTC" in message
    assert caught.value.hint


def test_spend_is_counted_from_the_start_of_the_period_so_the_reset_boundary_is_respected() -> None:
    spends = {at("2026-11-26T00:00:00"): 5.0, at("2026-11-27T00:00:00"): 0.0}
    persona = Persona(name="p", budget=Budget(daily=1.0))
    with pytest.raises(BudgetExceededError):
        check_budget(persona, spends.__getitem__, at("2026-11-26T23:59:59"))
    check_budget(persona, spends.__getitem__, at("2026-11-27T00:00:00"))


def test_the_monthly_budget_is_checked_from_the_first_of_the_month() -> None:
    seen: list[float] = []

    def spent(since: float) -> float:
        seen.append(since)
        return 30.0

    with pytest.raises(BudgetExceededError, match="monthly budget of \\$25.*2026-12-01 00:00 UTC"):
        check_budget(Persona(name="p", budget=Budget(monthly=25)), spent, at("2026-11-26T12:00:00"))
    assert seen == [at("2026-11-01T00:00:00")]


def test_no_budget_means_no_query() -> None:
    check_budget(Persona(name="p"), lambda since: pytest.fail("queried spend without a budget"), 0.0)


def test_without_a_spend_record_nothing_is_counted_against_the_budget() -> None:
    # The audit log is off: no spending is recorded, so no budget can be exhausted.
    check_budget(Persona(name="p", budget=Budget(daily=0.0)), None, at("2026-11-26T12:00:00"))


def test_a_persona_without_a_budget_never_queries_its_spending() -> None:
    def spent_since(start: float) -> float:
        raise AssertionError("queried the spend of a persona that has no budget")

    check_budget(Persona(name="p"), spent_since, at("2026-11-26T12:00:00"))


def test_only_the_budgeted_periods_are_queried() -> None:
    asked: list[float] = []

    def spent_since(start: float) -> float:
        asked.append(start)
        return 0.0

    check_budget(Persona(name="p", budget=Budget(monthly=5.0)), spent_since, at("2026-11-26T12:00:00"))
    assert asked == [at("2026-11-01T00:00:00")]
