"""Resource subscriptions: `resources/subscribe`, `resources/unsubscribe`, `notifications/resources/updated`.

A client may subscribe to the catalog resources: `openrouter://models`, `openrouter://embedding-models`,
`openrouter://providers` and any model card `openrouter://models/{author}/{slug}`. When a catalog
refresh changes what one of them reads, each connection subscribed to it gets
`notifications/resources/updated` for that URI (clients before 2026-07-28), and a `ResourceUpdated`
event goes on the server's subscription bus (`subscriptions/listen` streams, 2026-07-28 on, each of
which filters by its own URIs). A resource counts as changed when its content would differ: a price
change updates the models list and that model's card, not other cards nor the embedding list.

Refreshes happen inside requests that read the catalog, so `catalog_read` runs after each such
request (`resources._CatalogRequests`), comparing the catalog in memory with the one it last saw.
Subscriptions belong to the connection and end with it; a connection holds at most
`MAX_PER_CONNECTION` of them. Endpoints (`.../endpoints`) and `openrouter://usage` are not catalog
data and cannot be subscribed to.

`declare_list_changed` (in `_sdk`) makes the handshake's capabilities say what the server sends: resources with
`subscribe` and `listChanged` (resources.py sends list-changed notices); tools and prompts never change,
so their `listChanged` stays false.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.lowlevel import NotificationOptions
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from openrouter_mcp._sdk import add_request_handler, connection_of, declare_list_changed
from openrouter_mcp.resources import EMBEDDING_MODELS_URI, MODELS_URI, PROVIDERS_URI, USAGE_URI, tool_for_resource
from openrouter_mcp.serving.scopes import visible_tools
from openrouter_mcp.state import AppState
from openrouter_mcp.upstream import url_parts

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from mcp.server.connection import Connection
    from mcp.server.mcpserver import MCPServer

    from openrouter_mcp.upstream.catalog import Catalog, CatalogSnapshot
    from openrouter_mcp.upstream.models import Provider

logger = logging.getLogger(__name__)

MAX_PER_CONNECTION = 100
#: The longest one notice may wait on a client that does not read.
SEND_TIMEOUT = 2.0


def card_uri(model_id: str) -> str:
    return f"{MODELS_URI}/{model_id}"


class ResourceSubscriptions:
    """Who subscribed to which catalog resource, and the notices when a refresh changes them."""

    def __init__(self, bus: SubscriptionBus | None = None) -> None:
        self._bus = bus
        self._by_connection: dict[Connection, set[str]] = {}
        self._seen_snapshot: CatalogSnapshot | None = None
        self._seen_providers: list[Provider] | None = None

    def install(self, server: MCPServer[Any]) -> None:
        """Serve `resources/subscribe` and `resources/unsubscribe` on `server`, and declare what it sends."""
        add_request_handler(server, "resources/subscribe", SubscribeRequestParams, self._subscribe)
        add_request_handler(server, "resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe)
        # Resources `listChanged` (resources.py sends it); tools and prompts stay false. (`subscribe` follows from
        # the handler above; 2026-07-28 connections derive theirs from `subscriptions/listen`.)
        declare_list_changed(server, NotificationOptions(resources_changed=True))

    async def _subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        uri = str(params.uri)
        _check_subscribable(ctx, uri)
        connection = connection_of(ctx)
        uris = self._by_connection.get(connection)
        if uris is None:
            uris = self._by_connection[connection] = set()
            connection.exit_stack.callback(self._by_connection.pop, connection, None)
        if uri not in uris and len(uris) >= MAX_PER_CONNECTION:
            raise MCPError(
                INVALID_PARAMS, f"at most {MAX_PER_CONNECTION} subscriptions per session: unsubscribe from one first"
            )
        uris.add(uri)
        return EmptyResult()

    async def _unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        # Unsubscribing from what one never subscribed to is harmless, and answered as done.
        self._by_connection.get(connection_of(ctx), set()).discard(str(params.uri))
        return EmptyResult()

    async def catalog_read(self, catalog: Catalog) -> None:
        """Tell subscribers which catalog resources the last refresh changed, if any. Never raises."""
        snapshot, providers = catalog.cached, catalog.cached_providers
        old_snapshot, self._seen_snapshot = self._seen_snapshot, snapshot
        old_providers, self._seen_providers = self._seen_providers, providers
        wanted = set().union(*self._by_connection.values()) if self._by_connection else set()
        if not wanted and self._bus is None:
            return
        changed: list[str] = []
        if snapshot is not None and old_snapshot is not None and snapshot is not old_snapshot:
            changed += _snapshot_changes(old_snapshot, snapshot, wanted, every_card=self._bus is not None)
        if providers is not None and old_providers is not None and providers is not old_providers:
            if providers != old_providers:
                changed.append(PROVIDERS_URI)
        if not changed:
            return
        logger.info("catalog resources changed: %s", ", ".join(sorted(changed)[:10]))
        try:
            await self._notify(sorted(changed))
        except Exception:
            # A notice is advisory: losing one must not turn the answered request into a failure.
            logger.warning("could not announce catalog resource updates", exc_info=True)

    async def _notify(self, changed: list[str]) -> None:
        for connection, uris in list(self._by_connection.items()):
            for uri in changed:
                if uri in uris:
                    with anyio.move_on_after(SEND_TIMEOUT):
                        await connection.notify("notifications/resources/updated", {"uri": uri})
        if self._bus is not None:
            for uri in changed:
                await self._bus.publish(ResourceUpdated(uri=uri))


def _snapshot_changes(old: CatalogSnapshot, new: CatalogSnapshot, wanted: set[str], *, every_card: bool) -> list[str]:
    """The catalog URIs whose content differs between two snapshots (cards: those `wanted`, or all of them)."""
    changed: list[str] = []
    if [dict(e.compact) for e in old.entries] != [dict(e.compact) for e in new.entries]:
        changed.append(MODELS_URI)
    if _embedding(old.entries) != _embedding(new.entries):
        changed.append(EMBEDDING_MODELS_URI)
    if every_card:
        ids: Iterable[str] = set(old.by_id) | set(new.by_id)
    else:
        ids = {uri[len(MODELS_URI) + 1 :] for uri in wanted if uri.startswith(MODELS_URI + "/")}
    for model_id in ids:
        before, after = old.by_id.get(model_id), new.by_id.get(model_id)
        if (before.model if before else None) != (after.model if after else None):
            changed.append(card_uri(model_id))
    return changed


def _embedding(entries: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(e.compact) for e in entries if "embeddings" in e.output_modalities]


def _check_subscribable(ctx: ServerRequestContext[Any, Any], uri: str) -> None:
    """Raises:
    MCPError: INVALID_PARAMS: `uri` is no catalog resource, or the caller may not read it.
    """
    subscribable = uri in (MODELS_URI, EMBEDDING_MODELS_URI, PROVIDERS_URI)
    if uri.startswith(MODELS_URI + "/") and not uri.endswith("/endpoints"):
        model_id = uri[len(MODELS_URI) + 1 :]
        try:
            url_parts.model_path(model_id)
        except url_parts.UnsafeUrlValueError:
            pass
        else:
            subscribable = model_id.count("/") == 1
    tool = tool_for_resource(uri)
    if not subscribable or tool is None or uri == USAGE_URI:
        raise MCPError(
            INVALID_PARAMS,
            f"cannot subscribe to {uri!r}: updates are sent for {MODELS_URI}, {EMBEDDING_MODELS_URI}, "
            f"{PROVIDERS_URI} and model cards {MODELS_URI}/{{author}}/{{slug}}",
            {"uri": uri},
        )
    state = ctx.lifespan_context
    visible = visible_tools(state) if isinstance(state, AppState) else None
    if visible is not None and tool not in visible:
        # Refused as unknown, exactly as reading it is (`serving.scopes.Scope`).
        raise MCPError(INVALID_PARAMS, f"Unknown resource: {uri}", {"uri": uri})
