"""Caching hints (protocol revision 2026-07-28): how long a listing or a catalog read stays fresh, and for whom.

`tools/list`, `prompts/list` and `resources/read` (every resource is a view of the model catalog) carry
`ttlMs` equal to the catalog's TTL: the catalog is refetched no sooner, and a change to it, or to the lists,
is announced by a `list_changed`/`resources/updated` notification, which evicts a client's copy anyway.

The scope is `public` (a shared cache may hand the answer to anyone) when every caller gets the same answer,
and `private` when the answer depends on the caller's personas: a process bound to one persona (`--persona`)
or a client whose token names personas sees only their tools and prompts and may read only the resources
their tools serve. Handshake-era clients get no hints; the SDK leaves them out of their results.
"""

from __future__ import annotations

from typing import Any

from mcp.server import CacheHint, ServerRequestContext
from mcp.server.caching import CacheableMethod

from openrouter_mcp._sdk import CallNext, HandlerResult
from openrouter_mcp.serving.scopes import allowed_personas
from openrouter_mcp.state import AppState

#: The methods whose answers last as long as the catalog does.
CATALOG_FRESH: tuple[CacheableMethod, ...] = ("tools/list", "prompts/list", "resources/read")


def cache_hints(catalog_ttl: float) -> dict[CacheableMethod, CacheHint]:
    """The server-wide hints: fresh for `catalog_ttl` seconds, shareable until a caller proves scoped."""
    hint = CacheHint(ttl_ms=max(0, round(catalog_ttl * 1000)), scope="public")
    return dict.fromkeys(CATALOG_FRESH, hint)


class PrivateWhenScoped:
    """Middleware: a scoped caller's hinted answers are `private`, so no shared cache serves them to another."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        state = ctx.lifespan_context
        # Results arrive shaped for the wire, hints applied (`_sdk` contract 10): only those the SDK hinted carry
        # `cacheScope`, and only on 2026-07-28.
        if isinstance(result, dict) and "cacheScope" in result and isinstance(state, AppState):
            if allowed_personas(state) is not None:
                return {**result, "cacheScope": "private"}
        return result
