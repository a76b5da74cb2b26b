"""Catalog tools: models, user models, embedding models, a model's endpoints, ZDR endpoints, providers, counts.

Every list tool pages (`limit`/`offset`, answering `total`, `returned`, `offset`, `next_offset`, the
last absent on the last page), and the long ones return a compact projection unless asked for
`detail: "full"`, so no default answer grows with the catalog.

Where the filtering happens:
- `list_available_models` reads the shared `Catalog` cache (the whole catalog, every modality) and
  filters it here, so repeated calls cost no upstream request. OpenRouter's own filters that the
  model objects can answer (`supported_parameters`, `input_modalities`, `output_modalities`) are
  evaluated here on the cache too; only `category` and `sort` need OpenRouter's own data (rankings,
  usage), so with either the call goes to GET /models, and the local filters apply to its answer.
- `list_user_models` (which depends on the key's settings, changeable at any time) and
  `list_embedding_models` fetch their whole list on every call, then filter and page it here.
- `list_providers` reads the cached providers; the endpoint tools and the count go upstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from mcp.server.mcpserver import Context
from pydantic import Field, ValidationError, field_validator

from openrouter_mcp.errors import MalformedResponseError, NotFoundError
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.registry import READ_ONLY, ToolInput, ToolOutput, ToolSpec, one_line_schema
from openrouter_mcp.upstream import url_parts
from openrouter_mcp.upstream.catalog import ModelEntry, per_million

if TYPE_CHECKING:
    from openrouter_mcp.upstream.models import Endpoint, Model

_T = TypeVar("_T")

FIND_IDS_HINT = "Find valid model ids with list_available_models (the `id` field)."

#: The fields of a ZDR endpoint that `query` searches.
_ZDR_TEXT = ("model_id", "model_name", "provider_name", "tag")

# --- inputs ------------------------------------------------------------------------------------


class PageInput(ToolInput):
    # Paging needs no prose: the names and the answer's `next_offset` say it all, and every byte of
    # schema is sent to the calling model on every turn.
    limit: int = Field(25, ge=1, le=100)
    offset: int = Field(0, ge=0)


class DetailInput(PageInput):
    detail: Literal["compact", "full"] = "compact"


QUERY = "Words to match in id, name, description"
PARAMETERS = "e.g. tools,reasoning (all required)"
IN_PRICE = "USD per 1M input tokens; 0 = free."


class UserModelsInput(DetailInput):
    query: str | None = Field(None, description=QUERY)
    supported_parameters: str | None = Field(None, description=PARAMETERS)
    max_prompt_price: float | None = Field(None, ge=0, description=IN_PRICE)


class ListModelsInput(UserModelsInput):
    input_modalities: str | None = Field(None, description="e.g. image,file (all required)")
    output_modalities: str | None = Field(None, description="e.g. image or embeddings (all required)")
    min_context: int | None = Field(None, ge=1)
    max_completion_price: float | None = Field(None, ge=0, description="USD per 1M output tokens.")
    category: str | None = Field(None, description="Upstream: programming, roleplay, finance, ...")
    sort: str | None = Field(None, description="Upstream: newest, most-popular, pricing-low-to-high, ...")


class EmbeddingModelsInput(DetailInput):
    query: str | None = Field(None, description=QUERY)


class ModelEndpointsInput(ToolInput):
    model: str = Field(description="Model id 'author/slug', e.g. 'openai/gpt-4o'.")
    detail: Literal["compact", "full"] = "compact"

    @field_validator("model")
    @classmethod
    def _author_and_slug(cls, value: str) -> str:
        # Refused here, before any request: the id becomes two segments of an upstream path.
        url_parts.model_path(value.strip())
        return value.strip()


class ZdrEndpointsInput(DetailInput):
    query: str | None = Field(None, description="Words all found in model id or provider.")


class ProvidersInput(PageInput):
    query: str | None = Field(None, description="Words all found in slug or name.")


class ModelsCountInput(ToolInput):
    output_modalities: str | None = Field(None, description="e.g. text,image or all; default text")


# --- outputs -----------------------------------------------------------------------------------


class PageOutput(ToolOutput):
    total: int
    returned: int
    offset: int
    next_offset: int | None = None


PAGE = "total, returned, offset, next_offset (absent on the last page) and the page's {}"


class ModelsOutput(PageOutput):
    model_config = one_line_schema(PAGE.format("models"))
    models: list[dict[str, Any]]


class EndpointsOutput(PageOutput):
    model_config = one_line_schema(PAGE.format("endpoints"))
    endpoints: list[dict[str, Any]]


class ProvidersOutput(PageOutput):
    model_config = one_line_schema(PAGE.format("providers"))
    providers: list[dict[str, Any]]


class ModelEndpointsOutput(ToolOutput):
    id: str
    name: str
    endpoints: list[dict[str, Any]]


class ModelsCountOutput(ToolOutput):
    count: int


# --- filtering and paging ----------------------------------------------------------------------


def _csv(value: str | None) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in (value or "").split(",") if part.strip())


def _words(query: str | None) -> list[str]:
    return (query or "").lower().split()


def _filter_models(entries: Iterable[ModelEntry], args: DetailInput) -> list[ModelEntry]:
    """The entries passing every filter `args` carries (fields absent from its tool are no filter)."""
    words = _words(getattr(args, "query", None))
    inputs = _csv(getattr(args, "input_modalities", None))
    outputs = _csv(getattr(args, "output_modalities", None))
    parameters = _csv(getattr(args, "supported_parameters", None))
    min_context: int | None = getattr(args, "min_context", None)
    max_prompt: float | None = getattr(args, "max_prompt_price", None)
    max_completion: float | None = getattr(args, "max_completion_price", None)

    def keep(e: ModelEntry) -> bool:
        if any(word not in e.search_text for word in words):
            return False
        if not inputs <= e.input_modalities or not outputs <= e.output_modalities or not parameters <= e.parameters:
            return False
        if min_context is not None and (e.context_length or 0) < min_context:
            return False
        # An unknown (variable) price never passes a price ceiling.
        if max_prompt is not None and (e.prompt_per_m is None or e.prompt_per_m > max_prompt):
            return False
        return max_completion is None or (e.completion_per_m is not None and e.completion_per_m <= max_completion)

    return [e for e in entries if keep(e)]


def _page(items: Sequence[_T], args: PageInput) -> tuple[list[_T], dict[str, Any]]:
    chunk = list(items[args.offset : args.offset + args.limit])
    end = args.offset + len(chunk)
    fields = {
        "total": len(items),
        "returned": len(chunk),
        "offset": args.offset,
        "next_offset": end if end < len(items) else None,
    }
    return chunk, fields


def _full(model: Model | Endpoint) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def _models_output(entries: Sequence[ModelEntry], args: DetailInput) -> ModelsOutput:
    chunk, fields = _page(entries, args)
    if args.detail == "full":
        return ModelsOutput(models=[_full(e.model) for e in chunk], **fields)
    return ModelsOutput(models=[dict(e.compact) for e in chunk], **fields)


def _compact_endpoint(endpoint: Endpoint, *, with_model: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"model": endpoint.model_id} if with_model else {}
    out["provider"] = endpoint.provider_name
    out["tag"] = endpoint.tag
    out["context_length"] = endpoint.context_length
    out["max_completion_tokens"] = endpoint.max_completion_tokens
    out["prompt_per_m"] = per_million(endpoint.pricing.prompt)
    out["completion_per_m"] = per_million(endpoint.pricing.completion)
    out["quantization"] = endpoint.quantization
    if not with_model:
        out["status"] = endpoint.status
        out["uptime_30m"] = endpoint.uptime_last_30m
        out["latency_p50_ms"] = (endpoint.latency_last_30m or {}).get("p50")
        out["throughput_p50"] = (endpoint.throughput_last_30m or {}).get("p50")
    return {key: value for key, value in out.items() if value is not None}


# --- handlers ----------------------------------------------------------------------------------


async def list_available_models(args: ListModelsInput, state: AppState, ctx: Context) -> ModelsOutput:
    if args.category or args.sort:
        # Rankings and orderings only OpenRouter knows: ask it, keeping its order.
        params = {"category": args.category, "sort": args.sort, "output_modalities": "all"}
        page = await state.client.list_models(params)
        entries: Sequence[ModelEntry] = [ModelEntry.from_model(m) for m in page.data]
    else:
        entries = (await state.catalog.snapshot()).entries
    return _models_output(_filter_models(entries, args), args)


async def list_user_models(args: UserModelsInput, state: AppState, ctx: Context) -> ModelsOutput:
    page = await state.client.list_user_models()
    return _models_output(_filter_models(map(ModelEntry.from_model, page.data), args), args)


async def list_embedding_models(args: EmbeddingModelsInput, state: AppState, ctx: Context) -> ModelsOutput:
    page = await state.client.list_embedding_models()
    return _models_output(_filter_models(map(ModelEntry.from_model, page.data), args), args)


async def list_model_endpoints(args: ModelEndpointsInput, state: AppState, ctx: Context) -> ModelEndpointsOutput:
    author, _, slug = args.model.partition("/")
    try:
        found = await state.client.list_model_endpoints(author, slug)
    except NotFoundError as exc:
        exc.hint = f"No model {args.model!r}. {FIND_IDS_HINT}"
        raise
    if args.detail == "full":
        endpoints = [_full(e) for e in found.endpoints]
    else:
        endpoints = [_compact_endpoint(e, with_model=False) for e in found.endpoints]
    return ModelEndpointsOutput(id=found.id, name=found.name, endpoints=endpoints)


async def list_zdr_endpoints(args: ZdrEndpointsInput, state: AppState, ctx: Context) -> EndpointsOutput:
    words = _words(args.query)
    # Hundreds of raw endpoints: match on their text, and parse only the page being returned.
    matched = [
        item
        for item in await state.client.list_zdr_endpoints()
        if all(word in " ".join(str(item.get(key) or "") for key in _ZDR_TEXT).lower() for word in words)
    ]
    chunk, fields = _page(matched, args)
    if args.detail == "full":
        return EndpointsOutput(endpoints=chunk, **fields)
    try:
        from openrouter_mcp.upstream.models import Endpoint

        endpoints = [_compact_endpoint(Endpoint.model_validate(item), with_model=True) for item in chunk]
    except ValidationError as exc:
        raise MalformedResponseError(f"OpenRouter's /endpoints/zdr answer has an unexpected shape: {exc}") from None
    return EndpointsOutput(endpoints=endpoints, **fields)


async def list_providers(args: ProvidersInput, state: AppState, ctx: Context) -> ProvidersOutput:
    words = _words(args.query)
    providers = [p for p in await state.catalog.providers() if all(w in f"{p.slug} {p.name}".lower() for w in words)]
    chunk, fields = _page(providers, args)
    # Provider objects are small (slug, name, policy links, locations): always whole, no `detail`.
    return ProvidersOutput(providers=[p.model_dump(mode="json", exclude_none=True) for p in chunk], **fields)


async def get_models_count(args: ModelsCountInput, state: AppState, ctx: Context) -> ModelsCountOutput:
    counted = await state.client.get_models_count({"output_modalities": args.output_modalities})
    return ModelsCountOutput(count=counted.count)


CATALOG_TOOLS: list[ToolSpec[Any, Any]] = [
    ToolSpec(
        name="list_available_models",
        title="Search models",
        description=(
            "Search OpenRouter's models, all modalities; paged. Prices are USD per 1M tokens. "
            "Cached, unless category or sort is set."
        ),
        input_model=ListModelsInput,
        output_model=ModelsOutput,
        annotations=READ_ONLY,
        handler=list_available_models,
    ),
    ToolSpec(
        name="list_user_models",
        title="Models for this key",
        description="Models this API key may use, its provider and privacy settings applied; paged.",
        input_model=UserModelsInput,
        output_model=ModelsOutput,
        annotations=READ_ONLY,
        handler=list_user_models,
    ),
    ToolSpec(
        name="list_embedding_models",
        title="Embedding models",
        description="Embedding models; paged.",
        input_model=EmbeddingModelsInput,
        output_model=ModelsOutput,
        annotations=READ_ONLY,
        handler=list_embedding_models,
    ),
    ToolSpec(
        name="list_model_endpoints",
        title="Providers of a model",
        description="Providers serving a model: prices (USD per 1M tokens), uptime, latency; `tag` routes to one.",
        input_model=ModelEndpointsInput,
        output_model=ModelEndpointsOutput,
        annotations=READ_ONLY,
        handler=list_model_endpoints,
    ),
    ToolSpec(
        name="list_zdr_endpoints",
        title="ZDR endpoints",
        description="Endpoints allowed under Zero Data Retention; paged.",
        input_model=ZdrEndpointsInput,
        output_model=EndpointsOutput,
        annotations=READ_ONLY,
        handler=list_zdr_endpoints,
    ),
    ToolSpec(
        name="list_providers",
        title="Providers",
        description="Providers OpenRouter routes to; paged.",
        input_model=ProvidersInput,
        output_model=ProvidersOutput,
        annotations=READ_ONLY,
        handler=list_providers,
    ),
    ToolSpec(
        name="get_models_count",
        title="Count models",
        description="How many models OpenRouter lists.",
        input_model=ModelsCountInput,
        output_model=ModelsCountOutput,
        annotations=READ_ONLY,
        handler=get_models_count,
    ),
]
