"""Budget periods are UTC days and months (refusals, reservations and windows: tests/test_reservations.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from openrouter_mcp.routing.budgets import day_start, month_start, next_month_start


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_periods_are_utc_days_and_months_including_the_december_rollover() -> None:
    assert day_start(at("2026-11-26T21:13:00")) == at("2026-11-26T00:00:00")
    assert month_start(at("2026-11-26T21:13:00")) == at("2026-11-01T00:00:00")
    assert next_month_start(at("2026-12-31T23:59:59")) == at("2027-01-01T00:00:00")
