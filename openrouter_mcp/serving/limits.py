"""Per-client limits: how many upstream-calling tool calls one user may have running at once.

A team server shares one OpenRouter key, so one client looping on slow calls must not take every
connection and every credit. Over the limit a call is refused at once, not queued: a queued call
would hold its HTTP request open and hide the overload from the caller, who can retry.

The refusal is `errors.TooBusyError` (`OpenRouterError > NotAllowedError > TooBusyError`), re-exported here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from openrouter_mcp.errors import TooBusyError

__all__ = ["ClientLimits", "TooBusyError"]


class ClientLimits:
    """At most `max_concurrent` calls running per user; the next one is refused with `TooBusyError`.

    Raises:
        ValueError: `max_concurrent` is less than 1.
    """

    def __init__(self, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self._running: dict[str, int] = {}

    def running(self, user: str) -> int:
        """How many calls `user` has running now."""
        return self._running.get(user, 0)

    def slot(self, user: str) -> AbstractAsyncContextManager[None]:
        """`async with limits.slot(user):` around one upstream-calling tool call.

        Raises:
            TooBusyError: on entry, when `user` already has `max_concurrent` calls running.
        """
        return self._slot(user)

    @asynccontextmanager
    async def _slot(self, user: str) -> AsyncIterator[None]:
        # No await between the check and the increment: on one event loop the two are atomic.
        running = self._running.get(user, 0)
        if running >= self.max_concurrent:
            raise TooBusyError(user, running, self.max_concurrent)
        self._running[user] = running + 1
        try:
            yield
        finally:
            if self._running[user] <= 1:
                del self._running[user]
            else:
                self._running[user] -= 1
