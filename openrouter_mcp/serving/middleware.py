"""Our middlewares as one entry of the SDK's chain, each run only for the methods it acts on.

The SDK wraps every message in every middleware of `MCPServer.middleware` (two coroutine frames a layer, built
anew for each message). Ours mostly act on a few methods: a `tools/call` went through five layers to reach the
two that concern it, at several microseconds each after an idle wait. `Middlewares` is one layer that runs, for
each message, only those of its own that declared its method (or every method), in the order they were added.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from mcp.server import ServerRequestContext

from openrouter_mcp._sdk import CallNext, HandlerResult

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

#: A middleware as the SDK takes it: `await middleware(ctx, call_next)`.
Middleware = Callable[[ServerRequestContext[Any, Any], CallNext], Awaitable[HandlerResult]]


class Middlewares:
    """`await middlewares(ctx, call_next)`: the middlewares added for `ctx.method`, outermost first."""

    def __init__(self) -> None:
        self._layers: list[tuple[frozenset[str] | None, Middleware]] = []

    def add(self, middleware: Middleware, *, methods: Iterable[str] | None = None) -> None:
        """Run `middleware` for the messages of `methods` (None: every message), inside those added before."""
        self._layers.append((None if methods is None else frozenset(methods), middleware))

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        # Chosen per message, not cached by method: a method name is whatever a client sends.
        chain = tuple(layer for methods, layer in self._layers if methods is None or ctx.method in methods)
        return await _through(chain, 0, call_next, ctx)


async def _through(
    chain: tuple[Middleware, ...], index: int, call_next: CallNext, ctx: ServerRequestContext[Any, Any]
) -> HandlerResult:
    if index == len(chain):
        return await call_next(ctx)
    return await chain[index](ctx, partial(_through, chain, index + 1, call_next))


def add_middleware(server: MCPServer[Any], middleware: Middleware, *, methods: Iterable[str] | None = None) -> None:
    """Add `middleware` to `server`'s `Middlewares` (added to its chain, innermost, the first time)."""
    ours = next((entry for entry in server.middleware if isinstance(entry, Middlewares)), None)
    if ours is None:
        ours = Middlewares()
        server.middleware.append(ours)
    ours.add(middleware, methods=methods)
