"""The model catalog as MCP resources, argument completion for their templates, and change notices.

| URI                                             | content (application/json)                  |
|-------------------------------------------------|---------------------------------------------|
| `openrouter://models`                           | every model, compact (as the catalog tools) |
| `openrouter://models/{author}/{slug}`           | one model card, OpenRouter's full object    |
| `openrouter://models/{author}/{slug}/endpoints` | the providers serving that model            |
| `openrouter://providers`                        | every provider                              |
| `openrouter://embedding-models`                 | the embedding models, compact               |

Everything reads through the one shared `Catalog` in `AppState`, except a model's endpoints, which
are not part of the catalog and are fetched when read.

The SDK hands a `Context` to template functions, but not to static resources or completion
handlers. So `register_resources` installs one middleware, `_CatalogRequests`, that binds each
request's context for those handlers, and that, once a request is answered, tells the client when a
catalog refresh changed the catalog: `notifications/resources/list_changed` to the requesting session
(clients before 2026-07-28), and a `ResourcesListChanged` event on the server's subscription bus
(`subscriptions/listen` streams, 2026-07-28 on). Refreshes happen inside requests that read the
catalog (tool calls, resource reads, completions), so the notice follows the request that noticed the
change, once per change. The SDK builds a new session object per request and exposes no connection
identity, so with several older-protocol connections (streamable HTTP) only the one whose request
noticed the change gets the session notice; listeners on the bus all get the event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from mcp import MCPError
from mcp.server import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.subscriptions import ResourcesListChanged, SubscriptionBus
from mcp.types import (
    INTERNAL_ERROR,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)

from openrouter_mcp._sdk import CallNext, HandlerResult
from openrouter_mcp.errors import NotFoundError, OpenRouterError
from openrouter_mcp.serving.middleware import add_middleware
from openrouter_mcp.serving.scopes import allowed_personas
from openrouter_mcp.state import AppState
from openrouter_mcp.upstream import url_parts
from openrouter_mcp.upstream.catalog import ModelEntry

if TYPE_CHECKING:
    from openrouter_mcp.subscriptions import ResourceSubscriptions
    from openrouter_mcp.upstream.models import Provider

logger = logging.getLogger(__name__)

JSON_MIME = "application/json"
MODELS_URI = "openrouter://models"
MODEL_TEMPLATE = "openrouter://models/{author}/{slug}"
ENDPOINTS_TEMPLATE = "openrouter://models/{author}/{slug}/endpoints"
PROVIDERS_URI = "openrouter://providers"
EMBEDDING_MODELS_URI = "openrouter://embedding-models"
USAGE_URI = "openrouter://usage"

#: The tool that serves the same data as each resource: a caller scoped to personas that may not use the tool
#: may not read the resource either (`serving.scopes.Scope`).
TOOL_FOR_RESOURCE = {
    MODELS_URI: "list_available_models",
    MODEL_TEMPLATE: "list_available_models",
    ENDPOINTS_TEMPLATE: "list_model_endpoints",
    PROVIDERS_URI: "list_providers",
    EMBEDDING_MODELS_URI: "list_embedding_models",
    USAGE_URI: "get_usage",
}

#: The spec's cap on completion values per answer.
MAX_COMPLETIONS = 100

#: Requests whose handlers may read (and so refresh) the catalog.
_CATALOG_METHODS = frozenset({"tools/call", "resources/read", "completion/complete"})

_request: ContextVar[ServerRequestContext[Any, Any] | None] = ContextVar("openrouter_mcp_request", default=None)


def register_resources(
    server: MCPServer[Any],
    *,
    bus: SubscriptionBus | None = None,
    subscriptions: ResourceSubscriptions | None = None,
) -> None:
    """Add the catalog resources, templates and completions to `server`, and the middleware they rely on.

    `bus` is the subscription bus the server was built with (`MCPServer(subscriptions=bus)`), on which
    catalog changes are published for `subscriptions/listen` clients; without it only sessions are told.
    `subscriptions`, if given, is told after each catalog-reading request, to send `resources/updated`.
    """
    add_middleware(server, _CatalogRequests(bus, subscriptions), methods=_CATALOG_METHODS)
    rendered = _Rendered()

    @server.resource(
        USAGE_URI,
        name="usage",
        title="Usage and spend (last 30 days)",
        description="Calls, errors, tokens and USD spent through this server, by persona, model and UTC day.",
        mime_type=JSON_MIME,
    )
    async def usage() -> str:
        from openrouter_mcp.audit.usage import usage_summary  # the audit package loads SQLite: not at start-up

        state = _state()
        try:
            allowed = allowed_personas(state)
            return _dumps(await usage_summary(state.ledger, days=30, persona=None, allowed=allowed, now=state.clock()))
        except OpenRouterError as exc:
            raise ResourceError(f"Could not read usage: {exc.message}") from exc

    @server.resource(
        MODELS_URI,
        name="models",
        title="OpenRouter model catalog",
        description="Every model, compact: id, name, context, prices in USD per 1M tokens, modalities, supports.",
        mime_type=JSON_MIME,
    )
    async def models() -> str:
        with _upstream("the model catalog"):
            snapshot = await _state().catalog.snapshot()
        return rendered(MODELS_URI, snapshot, lambda: _models_json(e for e in snapshot.entries))

    @server.resource(
        EMBEDDING_MODELS_URI,
        name="embedding-models",
        title="OpenRouter embedding models",
        description="The models that create embeddings, compact.",
        mime_type=JSON_MIME,
    )
    async def embedding_models() -> str:
        with _upstream("the model catalog"):
            snapshot = await _state().catalog.snapshot()
        return rendered(
            EMBEDDING_MODELS_URI,
            snapshot,
            lambda: _models_json(e for e in snapshot.entries if "embeddings" in e.output_modalities),
        )

    @server.resource(
        PROVIDERS_URI,
        name="providers",
        title="OpenRouter providers",
        description="Every provider OpenRouter routes to: slug, name, headquarters, policies.",
        mime_type=JSON_MIME,
    )
    async def providers() -> str:
        with _upstream("the provider list"):
            found = await _state().catalog.providers()
        return rendered(PROVIDERS_URI, found, lambda: _providers_json(found))

    @server.resource(
        ENDPOINTS_TEMPLATE,
        name="model-endpoints",
        title="Providers of a model",
        description="The provider endpoints serving one model: prices, context, quantization, uptime, latency.",
        mime_type=JSON_MIME,
    )
    async def model_endpoints(author: str, slug: str, ctx: Context) -> str:
        model_id = _model_id(author, slug)
        state = cast(AppState, ctx.request_context.lifespan_context)
        try:
            with _upstream(f"the endpoints of {model_id}"):
                found = await state.client.list_model_endpoints(author, slug)
        except ResourceError as exc:
            if isinstance(exc.__cause__, NotFoundError):
                raise _unknown_model(model_id) from None
            raise
        return _dumps(found.model_dump(mode="json", exclude_none=True))

    @server.resource(
        MODEL_TEMPLATE,
        name="model",
        title="Model card",
        description="One model's full catalog entry: description, pricing, limits, parameters, architecture.",
        mime_type=JSON_MIME,
    )
    async def model_card(author: str, slug: str, ctx: Context) -> str:
        model_id = _model_id(author, slug)
        state = cast(AppState, ctx.request_context.lifespan_context)
        with _upstream("the model catalog"):
            model = await state.catalog.get(model_id)
        if model is None:
            raise _unknown_model(model_id)
        return _dumps(model.model_dump(mode="json", exclude_none=True))

    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if not isinstance(ref, ResourceTemplateReference) or ref.uri not in (MODEL_TEMPLATE, ENDPOINTS_TEMPLATE):
            return None
        try:
            snapshot = await _state().catalog.snapshot()
        except OpenRouterError as exc:
            raise MCPError(INTERNAL_ERROR, f"The model catalog is unavailable: {exc.message}") from None
        prefix = argument.value.strip().lower()
        candidates: Iterable[str]
        if argument.name == "author":
            candidates = snapshot.slugs_by_author
        elif argument.name == "slug":
            # The author chosen so far narrows the slugs; without one, every author's slugs qualify.
            author = ((context.arguments if context else None) or {}).get("author")
            if author:
                candidates = snapshot.slugs_by_author.get(author, ())
            else:
                candidates = sorted({s for slugs in snapshot.slugs_by_author.values() for s in slugs})
        else:
            return None
        values = [c for c in candidates if c.lower().startswith(prefix)]
        return Completion(values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS)

    server.completion()(complete)  # type: ignore[no-untyped-call]  # the SDK leaves `completion()` unannotated


class _CatalogRequests:
    """Middleware: binds the request context for handlers the SDK gives none, and announces catalog changes."""

    def __init__(self, bus: SubscriptionBus | None, subscriptions: ResourceSubscriptions | None = None) -> None:
        self._bus = bus
        self._subscriptions = subscriptions
        self._announced = 0

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method not in _CATALOG_METHODS or not isinstance(ctx.lifespan_context, AppState):
            return await call_next(ctx)
        token = _request.set(ctx)
        try:
            result = await call_next(ctx)
        finally:
            _request.reset(token)
        await self._announce(ctx)
        if self._subscriptions is not None:
            await self._subscriptions.catalog_read(ctx.lifespan_context.catalog)
        return result

    async def _announce(self, ctx: ServerRequestContext[Any, Any]) -> None:
        generation = cast(AppState, ctx.lifespan_context).catalog.generation
        # Read and write with no await between, so concurrent requests announce one change once.
        announced, self._announced = self._announced, generation
        if not announced or not generation or announced == generation:
            return
        logger.info("model catalog changed (generation %d): announcing resources/list_changed", generation)
        try:
            await ctx.session.send_resource_list_changed()
            if self._bus is not None:
                await self._bus.publish(ResourcesListChanged())
        except Exception:
            # A notice is advisory: losing one must not turn the answered request into a failure.
            logger.warning("could not announce the catalog change", exc_info=True)


class _Rendered:
    """The last text of each catalog resource, reused while the cache serves the same object.

    The catalog resource is tens of kilobytes: rendering it once per refresh rather than once per read
    saves the time, and many concurrent readers share one string instead of holding a copy each.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[object, str]] = {}

    def __call__(self, uri: str, source: object, render: Callable[[], str]) -> str:
        last = self._last.get(uri)
        if last is not None and last[0] is source:
            return last[1]
        text = render()
        self._last[uri] = (source, text)
        return text


def _models_json(entries: Iterable[ModelEntry]) -> str:
    found = [dict(e.compact) for e in entries]
    return _dumps({"count": len(found), "models": found})


def _providers_json(providers: list[Provider]) -> str:
    found = [p.model_dump(mode="json", exclude_none=True) for p in providers]
    return _dumps({"count": len(found), "providers": found})


def tool_for_resource(uri: str) -> str | None:
    """The tool whose data the resource at `uri` (or the template `uri`) serves; None for no resource of ours."""
    if uri in TOOL_FOR_RESOURCE:
        return TOOL_FOR_RESOURCE[uri]
    if uri.startswith(MODELS_URI + "/"):
        return TOOL_FOR_RESOURCE[ENDPOINTS_TEMPLATE if uri.endswith("/endpoints") else MODEL_TEMPLATE]
    return None


def _state() -> AppState:
    ctx = _request.get()
    if ctx is None:
        raise RuntimeError("no MCP request is being handled: was register_resources' middleware bypassed?")
    return cast(AppState, ctx.lifespan_context)


def _model_id(author: str, slug: str) -> str:
    """`author/slug`, once both are known to be safe path segments.

    The URI template decodes `%2F`, `%2e` and the like, so anything can arrive inside one segment.

    Raises:
        ResourceNotFoundError: either part cannot be a segment of an OpenRouter model id.
    """
    model_id = f"{author}/{slug}"
    try:
        url_parts.model_path(model_id)
    except url_parts.UnsafeUrlValueError as exc:
        raise _unknown_model(model_id, because=str(exc)) from None
    return model_id


def _unknown_model(model_id: str, *, because: str | None = None) -> ResourceNotFoundError:
    reason = f" ({because})" if because else ""
    return ResourceNotFoundError(
        f"OpenRouter has no model {model_id!r}{reason}. Find model ids with the list_available_models tool "
        f"or the {MODELS_URI} resource."
    )


@contextmanager
def _upstream(what: str) -> Iterator[None]:
    """Turn an `OpenRouterError` into a `ResourceError` whose message the client sees (the SDK hides others)."""
    try:
        yield
    except OpenRouterError as exc:
        advice = "Retrying later may succeed." if exc.retryable else "Do not retry unchanged."
        raise ResourceError(f"Could not read {what}: OpenRouter {exc.kind} error: {exc.message} {advice}") from exc


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
