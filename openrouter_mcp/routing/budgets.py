"""Spend guardrails: a persona's daily and monthly budgets, checked before each paid call.

Spending is what the audit log recorded (OpenRouter's own `usage.cost` of each answered call), so a
budget counts real charges, not estimates. Periods are UTC calendar days and months, the same
periods OpenRouter's `/key` usage figures use. Pure: the clock and the spend query are passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from openrouter_mcp.errors import BudgetExceededError
from openrouter_mcp.routing.personas import Persona


def day_start(now: float) -> float:
    """Unix time of the start of the UTC day containing `now`."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def month_start(now: float) -> float:
    """Unix time of the start of the UTC month containing `now`."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def next_month_start(now: float) -> float:
    moment = datetime.fromtimestamp(month_start(now), UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month).timestamp()


def check_budget(persona: Persona, spent_since: Callable[[float], float] | None, now: float) -> None:
    """Refuse the call when the persona's daily or monthly budget is already spent.

    `spent_since(start)` is the USD recorded since `start`; None when nothing records spending (the audit
    log is off), so there is nothing to count against. It is asked only for the periods the persona
    budgets, so a persona without a budget costs no query.

    Raises:
        BudgetExceededError: naming the budget, what was spent, and when it resets.
    """
    budget = persona.budget
    if spent_since is None or (budget.daily is None and budget.monthly is None):
        return
    periods = (
        ("daily", budget.daily, day_start(now), day_start(now) + 86_400),
        ("monthly", budget.monthly, month_start(now), next_month_start(now)),
    )
    for name, limit, start, reset in periods:
        if limit is None:
            continue
        spent = spent_since(start)
        if spent >= limit:
            resets = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%d %H:%M UTC")
            error = BudgetExceededError(
                f"persona {persona.name!r} has spent ${spent:.4f} of its {name} budget of ${limit:g}; "
                f"it resets at {resets}"
            )
            error.hint = "Wait for the reset, use another persona, or raise the budget in the personas file."
            raise error
