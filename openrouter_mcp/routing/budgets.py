"""Spend guardrails: the budgets a paid call must fit (the server's, its persona's, its user's), each per
UTC day and month, and the refusal that names the one it does not fit.

Spending is what the ledger recorded (OpenRouter's own `usage.cost` of each answered call) plus what calls
in flight have reserved (`routing.reservations` bounds a call's worst case; the ledger admits it atomically).
Periods are UTC calendar days and months, the same periods OpenRouter's `/key` usage figures use. Pure: the
clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from openrouter_mcp.errors import BudgetExceededError
from openrouter_mcp.routing.personas import Budget


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


#: USD a reservation may overrun a limit by: sums of float prices drift by far less, and a budget that is
#: exactly N times a call's cost must admit N calls, not N - 1.
FIT_TOLERANCE = 1e-9

#: Whose spending a budget bounds: the whole server, one persona, or one user (the caller).
ScopeKind = Literal["server", "persona", "user"]
Period = Literal["daily", "monthly"]


@dataclass(frozen=True)
class BudgetLimit:
    """One budget that applies to a call: a scope, a period, its limit in USD and its current window.

    `name` is the persona's or the user's name (empty for the server). The window is `[since, resets)`,
    a UTC day or month.
    """

    scope: ScopeKind
    name: str
    period: Period
    limit: float
    since: float
    resets: float


def budget_limits(scope: ScopeKind, name: str, budget: Budget | None, now: float) -> list[BudgetLimit]:
    """The windows of `budget` (daily, monthly; those it sets) around `now`, for one scope."""
    if budget is None:
        return []
    limits: list[BudgetLimit] = []
    if budget.daily is not None:
        start = day_start(now)
        limits.append(BudgetLimit(scope, name, "daily", budget.daily, start, start + 86_400))
    if budget.monthly is not None:
        limits.append(BudgetLimit(scope, name, "monthly", budget.monthly, month_start(now), next_month_start(now)))
    return limits


def budget_refusal(limit: BudgetLimit, *, spent: float, reserved: float, needed: float) -> BudgetExceededError:
    """The error a call gets when `needed` USD does not fit `limit` (what a ledger's `reserve` raises)."""
    resets = datetime.fromtimestamp(limit.resets, UTC).strftime("%Y-%m-%d %H:%M UTC")
    who = "the server" if limit.scope == "server" else f"{limit.scope} {limit.name!r}"
    error = BudgetExceededError(
        f"{who} has spent ${spent:.4f} of its {limit.period} budget of ${limit.limit:g}, with ${reserved:.4f} "
        f"more reserved by calls in flight; this call may cost up to ${needed:.6f}; it resets at {resets}"
    )
    error.hint = (
        "Wait for calls in flight to finish or for the reset, lower max_tokens, use another persona, "
        "or raise the budget."
    )
    return error
