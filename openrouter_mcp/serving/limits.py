"""Per-client limits: how many upstream-calling tool calls one client may have running at once.

A team server shares one OpenRouter key, so one client looping on slow calls must not take every
connection and every credit. Who "one client" is (`limit_key`): the authenticated user over HTTP with
tokens; without tokens, the client's address (every session and every agent of one host together, so that
opening more sessions does not buy more calls); over stdio, the OS user.

A call over the limit waits up to `wait` seconds for one of the client's running calls to finish, first
come first served, then is refused: an agent host that starts a few more sub-agents than the limit gets
them all answered, while a client that keeps far more calls running learns it at once and can retry. The
refusal is `errors.TooBusyError` (`OpenRouterError > NotAllowedError > TooBusyError`), re-exported here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio

from openrouter_mcp.errors import TooBusyError
from openrouter_mcp.serving.auth import current_identity

__all__ = ["ClientLimits", "TooBusyError", "limit_key"]


def limit_key(request: object, user: str) -> str:
    """Whose limit the current call counts against: `user` (the caller) when authenticated; without tokens,
    `address IP` of the HTTP request (`request`, as the SDK hands it to a tool: a Starlette request, or None);
    with neither (stdio, in memory), `user`, the OS user.
    """
    if current_identity() is not None:
        return user
    host = getattr(getattr(request, "client", None), "host", None)
    return f"address {host}" if isinstance(host, str) and host else user


class ClientLimits:
    """At most `max_concurrent` calls running per client; the next waits up to `wait` seconds for a slot, then
    is refused with `TooBusyError` (at once with `wait=0`).

    Raises:
        ValueError: `max_concurrent` is less than 1, or `wait` is negative.
    """

    def __init__(self, max_concurrent: int, *, wait: float = 0.0) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        if wait < 0:
            raise ValueError(f"wait must not be negative, got {wait}")
        self.max_concurrent = max_concurrent
        self.wait = wait
        self._running: dict[str, int] = {}
        #: Calls waiting for a slot, per client, oldest first; a finishing call hands its slot to the first.
        self._waiting: dict[str, deque[anyio.Event]] = {}

    def running(self, client: str) -> int:
        """How many calls `client` has running now."""
        return self._running.get(client, 0)

    def waiting(self, client: str) -> int:
        """How many calls of `client` wait for a slot now."""
        return len(self._waiting.get(client, ()))

    def slot(self, client: str) -> AbstractAsyncContextManager[None]:
        """`async with limits.slot(client):` around one upstream-calling tool call.

        Raises:
            TooBusyError: on entry, when `client` still has `max_concurrent` calls running after `wait` seconds.
        """
        return self._slot(client)

    @asynccontextmanager
    async def _slot(self, client: str) -> AsyncIterator[None]:
        # No await between the check and the increment: on one event loop the two are atomic.
        running = self._running.get(client, 0)
        if running < self.max_concurrent and not self._waiting.get(client):
            self._running[client] = running + 1
        else:
            await self._wait_for_slot(client, running)
        try:
            yield
        finally:
            self._release(client)

    async def _wait_for_slot(self, client: str, running: int) -> None:
        """Wait for a finishing call to hand over its slot (`_release`). Raises: TooBusyError."""
        if self.wait <= 0:
            raise TooBusyError(client, running, self.max_concurrent)
        handed = anyio.Event()
        queue = self._waiting.setdefault(client, deque())
        queue.append(handed)
        try:
            with anyio.move_on_after(self.wait):
                await handed.wait()
        except BaseException:
            # Cancelled while waiting: a slot handed over meanwhile goes on to the next in line.
            self._give_up(client, handed)
            raise
        if not handed.is_set():
            self._give_up(client, handed)
            raise TooBusyError(client, self._running.get(client, 0), self.max_concurrent, waited=self.wait)

    def _give_up(self, client: str, handed: anyio.Event) -> None:
        if handed.is_set():
            self._release(client)
            return
        queue = self._waiting.get(client)
        if queue is not None:
            queue.remove(handed)
            if not queue:
                del self._waiting[client]

    def _release(self, client: str) -> None:
        queue = self._waiting.get(client)
        if queue:
            # The slot passes to the oldest waiting call: the running count stays as it is.
            queue.popleft().set()
            if not queue:
                del self._waiting[client]
            return
        if self._running[client] <= 1:
            del self._running[client]
        else:
            self._running[client] -= 1
