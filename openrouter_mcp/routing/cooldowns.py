"""Models (and limits several models share) that failed recently, and when they may be tried again.

One `Cooldowns` per process: rate limits and outages are per account, whoever is calling, so a
model that failed for one request is skipped by the next until it recovers. Pure: the clock is
passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from openrouter_mcp.routing.personas import FallbackPolicy

#: A limit shared by every `:free` model (OpenRouter's free-tier request caps).
FREE_TIER = "limit:free-tier"
#: OpenRouter's own account-wide limit on a paid model: every model shares it.
ACCOUNT = "limit:account"


class Cooldowns:
    """Failed models (and shared limits) with the time they may be tried again.

    A repeat failure doubles the cooldown, up to the policy's cap; `Retry-After` wins when longer.
    A success clears the record.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}
        self._strikes: dict[str, int] = {}
        #: Keys that failed since `take_failures` last ran: what this process has to share.
        self._failed: set[str] = set()

    def now(self) -> float:
        return self._clock()

    def fail(self, key: str, policy: FallbackPolicy, retry_after: float | None = None) -> float:
        """Record a failure of `key`; returns the seconds it now cools down for."""
        strikes = self._strikes.get(key, 0) + 1
        self._strikes[key] = strikes
        # The exponent is capped: 2**30 already exceeds any sane cap, and 2.0**1024 overflows.
        backoff: float = min(policy.cooldown_seconds * 2.0 ** min(strikes - 1, 30), policy.max_cooldown_seconds)
        seconds = max(backoff, retry_after or 0.0)
        self._until[key] = self._clock() + seconds
        self._failed.add(key)
        return seconds

    def take_failures(self) -> list[tuple[str, float, int]]:
        """The keys that failed since the last call, as (key, seconds left, strikes), to share with other processes."""
        if not self._failed:
            return []  # the common case: asked after every call
        failed = [(key, self.remaining(key), self._strikes.get(key, 0)) for key in sorted(self._failed)]
        self._failed.clear()
        return [item for item in failed if item[1] > 0]

    def adopt(self, key: str, seconds: float, strikes: int) -> None:
        """Take on a cooldown another process recorded: `key` waits `seconds` more, unless it already waits longer."""
        if seconds <= 0:
            return
        until = self._clock() + seconds
        if until > self._until.get(key, float("-inf")):
            self._until[key] = until
        self._strikes[key] = max(self._strikes.get(key, 0), strikes)

    def succeed(self, key: str) -> None:
        self._until.pop(key, None)
        self._strikes.pop(key, None)

    def remaining(self, key: str) -> float:
        """Seconds left in `key`'s cooldown (0 when it may be used)."""
        until = self._until.get(key)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            # Expired: forget the deadline but keep the strikes, so a relapse backs off further.
            del self._until[key]
            return 0.0
        return left

    def cooling(self) -> list[str]:
        """The keys (models and shared limits) cooling down now."""
        return [key for key in list(self._until) if self.remaining(key) > 0]

    def blocking(self, model_id: str) -> tuple[str, float] | None:
        """The cooldown (key, seconds left) that keeps `model_id` from being tried, if any."""
        if not self._until:
            return None  # the common case, checked for every catalog model while ranking
        for key in shared_limits(model_id) + [model_id]:
            left = self.remaining(key)
            if left > 0:
                return key, left
        return None


def shared_limits(model_id: str) -> list[str]:
    """The limits a model shares with others (checked before its own cooldown)."""
    return [ACCOUNT, FREE_TIER] if model_id.endswith(":free") else [ACCOUNT]
