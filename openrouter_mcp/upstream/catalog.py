"""The model catalog cache shared by every tool and resource: TTL, one upstream fetch at a time, a change signal.

How a read behaves:

| state of the cache        | the caller                                                        |
|---------------------------|-------------------------------------------------------------------|
| fresh                     | gets the cached snapshot                                          |
| expired, nobody fetching  | fetches (and waits); a failure leaves the stale snapshot in place |
| expired, a fetch running  | gets the stale snapshot at once, without waiting                  |
| empty, a fetch running    | waits for that fetch, and gets its result or its error            |
| empty, nobody fetching    | fetches; an `OpenRouterError` is raised to every waiter           |

So however many callers arrive together, at most one request per list is in flight upstream. A failed
refresh is retried no sooner than `retry_after_failure` seconds later, so an outage does not turn
every read into a doomed upstream call.

`generation` counts the distinct catalogs seen: it goes up when a fetch changes any model id or
price, and only then. The MCP layer compares generations to tell its clients the catalog changed.
Nothing here imports mcp; per-model values the tools filter on are computed once per fetch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import anyio

from openrouter_mcp.errors import OpenRouterError

if TYPE_CHECKING:
    # Type-only: the wire models are the heaviest import of the package, and start-up never needs them.
    from openrouter_mcp.upstream.models import Model, ModelsPage, Provider

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Capabilities worth a flag in the compact projection: what callers most often select models by.
KEY_CAPABILITIES = ("tools", "structured_outputs", "reasoning")

#: Longest wait before retrying a failed refresh (shorter when the TTL itself is shorter).
MAX_RETRY_AFTER_FAILURE = 30.0


class CatalogSource(Protocol):
    """What the catalog needs from `OpenRouterClient` (tests pass a fake)."""

    async def list_models(self, params: Mapping[str, Any] | None = None) -> ModelsPage: ...

    async def list_providers(self) -> list[Provider]: ...

    async def list_zdr_endpoints(self) -> list[dict[str, Any]]: ...


def per_million(price: str | None) -> float | None:
    """USD per token as OpenRouter sends it ("0.0000025") -> USD per million tokens (2.5).

    None for a missing, unparsable or negative price (OpenRouter marks variable-price routers with -1).
    """
    if price is None:
        return None
    try:
        value = Decimal(price)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    return float(value * 1_000_000)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model with everything filters and projections need, computed once per fetch."""

    model: Model
    #: `model.id` and `model.context_length`, copied: routing reads them for many models on every call.
    id: str
    context_length: int | None
    author: str
    slug: str
    prompt_per_m: float | None
    completion_per_m: float | None
    input_modalities: frozenset[str]
    output_modalities: frozenset[str]
    parameters: frozenset[str]
    search_text: str
    #: The compact JSON projection (read-only: it is shared by every caller).
    compact: Mapping[str, Any]

    @classmethod
    def from_model(cls, model: Model) -> ModelEntry:
        author, _, slug = model.id.partition("/")
        prompt = per_million(model.pricing.prompt)
        completion = per_million(model.pricing.completion)
        inputs = model.architecture.input_modalities
        outputs = model.architecture.output_modalities
        parameters = frozenset(model.supported_parameters)
        compact: dict[str, Any] = {"id": model.id, "name": model.name}
        if model.context_length is not None:
            compact["context_length"] = model.context_length
        if prompt is not None:
            compact["prompt_per_m"] = prompt
        if completion is not None:
            compact["completion_per_m"] = completion
        compact["input"] = list(inputs)
        compact["output"] = list(outputs)
        compact["supports"] = [name for name in KEY_CAPABILITIES if name in parameters]
        return cls(
            model=model,
            id=model.id,
            context_length=model.context_length,
            author=author if slug else "",
            slug=slug,
            prompt_per_m=prompt,
            completion_per_m=completion,
            input_modalities=frozenset(inputs),
            output_modalities=frozenset(outputs),
            parameters=parameters,
            search_text=" ".join((model.id, model.name, model.description or "")).lower(),
            compact=MappingProxyType(compact),
        )


def _fingerprint(entries: Iterable[ModelEntry]) -> frozenset[tuple[str, str, str, str | None, str | None]]:
    return frozenset(
        (e.id, e.model.pricing.prompt, e.model.pricing.completion, e.model.pricing.request, e.model.pricing.image)
        for e in entries
    )


@dataclass(frozen=True, eq=False)
class CatalogSnapshot:
    """One fetched catalog, immutable: callers may hold it while a newer one replaces it.

    Compared by identity: a refresh always makes a new snapshot, and `fingerprint` says whether it differs.
    """

    entries: tuple[ModelEntry, ...]
    generation: int
    fingerprint: frozenset[tuple[str, str, str, str | None, str | None]] = field(repr=False)
    by_id: Mapping[str, ModelEntry] = field(init=False, repr=False)
    #: Model slugs by author, sorted, for argument completion.
    slugs_by_author: Mapping[str, tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_id: dict[str, ModelEntry] = {}
        for entry in self.entries:
            by_id.setdefault(entry.id, entry)
        for entry in self.entries:
            # A permanent (often dated) slug finds its model too, unless it is some other model's id.
            if entry.model.canonical_slug:
                by_id.setdefault(entry.model.canonical_slug, entry)
        slugs: dict[str, set[str]] = {}
        for entry in self.entries:
            if entry.author:
                slugs.setdefault(entry.author, set()).add(entry.slug)
        object.__setattr__(self, "by_id", MappingProxyType(by_id))
        object.__setattr__(
            self, "slugs_by_author", MappingProxyType({a: tuple(sorted(s)) for a, s in sorted(slugs.items())})
        )

    @property
    def models(self) -> list[Model]:
        return [entry.model for entry in self.entries]


class _Flight:
    """One upstream fetch in progress; waiters learn its outcome from here."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.error: OpenRouterError | None = None


class _Cached(Generic[_T]):
    """A single value with TTL, single flight and stale-while-refresh (see the module docstring)."""

    def __init__(
        self, fetch: Callable[[], Awaitable[_T]], *, ttl: float, retry_after_failure: float, clock: Callable[[], float]
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._retry_after_failure = retry_after_failure
        self._clock = clock
        self.value: _T | None = None
        self._expires_at = -math.inf
        self._flight: _Flight | None = None

    def expire(self) -> None:
        self._expires_at = -math.inf

    async def get(self) -> _T:
        while True:
            if self.value is not None and (self._flight is not None or self._clock() < self._expires_at):
                return self.value
            flight = self._flight
            if flight is None:
                return await self._refresh()
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            # Otherwise the value is there now, or the fetcher was cancelled and one of us takes over.

    async def _refresh(self) -> _T:
        flight = self._flight = _Flight()
        try:
            value = await self._fetch()
        except OpenRouterError as exc:
            self._expires_at = self._clock() + self._retry_after_failure
            if self.value is None:
                flight.error = exc
                raise
            logger.warning("catalog refresh failed, serving the previous catalog: %s", exc.message)
            return self.value
        finally:
            self._flight = None
            flight.done.set()
        self.value = value
        self._expires_at = self._clock() + self._ttl
        return value


class Catalog:
    """The one model-catalog cache of a process, shared by tools and resources.

    `clock` is injectable so tests control time; `fetches` counts upstream requests (for benchmarks).
    """

    def __init__(
        self,
        client: CatalogSource,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        retry_after_failure: float | None = None,
    ) -> None:
        if retry_after_failure is None:
            retry_after_failure = min(ttl, MAX_RETRY_AFTER_FAILURE)
        self._client = client
        self.ttl = ttl
        self.fetches = 0
        self.generation = 0
        self._models = _Cached(self._fetch_models, ttl=ttl, retry_after_failure=retry_after_failure, clock=clock)
        self._providers = _Cached(self._fetch_providers, ttl=ttl, retry_after_failure=retry_after_failure, clock=clock)
        self._zdr = _Cached(self._fetch_zdr, ttl=ttl, retry_after_failure=retry_after_failure, clock=clock)

    async def snapshot(self) -> CatalogSnapshot:
        """The current catalog with its precomputed entries.

        Raises:
            OpenRouterError: nothing is cached yet and the fetch failed.
        """
        return await self._models.get()

    async def models(self) -> list[Model]:
        """Every model OpenRouter lists, of every output modality.

        Raises:
            OpenRouterError: nothing is cached yet and the fetch failed.
        """
        return (await self.snapshot()).models

    async def get(self, model_id: str) -> Model | None:
        """One model by id (or canonical slug); None if the catalog does not have it.

        Raises:
            OpenRouterError: nothing is cached yet and the fetch failed.
        """
        entry = (await self.snapshot()).by_id.get(model_id)
        return entry.model if entry else None

    async def providers(self) -> list[Provider]:
        """Every provider OpenRouter routes to, cached with the same TTL as the models.

        Raises:
            OpenRouterError: nothing is cached yet and the fetch failed.
        """
        return await self._providers.get()

    async def zdr_model_ids(self) -> frozenset[str]:
        """Ids of the models with at least one Zero-Data-Retention endpoint (cached like the catalog).

        Raises:
            OpenRouterError: nothing is cached yet and the fetch failed.
        """
        return await self._zdr.get()

    @property
    def cached(self) -> CatalogSnapshot | None:
        """The snapshot in memory, however old, without fetching."""
        return self._models.value

    @property
    def cached_providers(self) -> list[Provider] | None:
        """The provider list in memory, however old, without fetching."""
        return self._providers.value

    def changed_since(self, generation: int) -> bool:
        """Whether a fetch changed the catalog after the caller saw `generation`."""
        return self.generation > generation

    def expire(self) -> None:
        """Mark everything stale: the next read refreshes (others keep getting the stale data meanwhile)."""
        self._models.expire()
        self._providers.expire()
        self._zdr.expire()

    async def _fetch_models(self) -> CatalogSnapshot:
        self.fetches += 1
        # `all`, because OpenRouter's default lists text-output models only; no offset/limit, because
        # pagination is opt-in and omitting both returns the whole list.
        page = await self._client.list_models({"output_modalities": "all"})
        entries = tuple(ModelEntry.from_model(model) for model in page.data)
        fingerprint = _fingerprint(entries)
        previous = self._models.value
        # Descriptions and the like may change without a new generation: only ids and prices count.
        if previous is None or previous.fingerprint != fingerprint:
            self.generation += 1
            logger.info("model catalog generation %d: %d models", self.generation, len(entries))
        return CatalogSnapshot(entries=entries, generation=self.generation, fingerprint=fingerprint)

    async def _fetch_providers(self) -> list[Provider]:
        self.fetches += 1
        return await self._client.list_providers()

    async def _fetch_zdr(self) -> frozenset[str]:
        self.fetches += 1
        endpoints = await self._client.list_zdr_endpoints()
        return frozenset(str(e["model_id"]) for e in endpoints if isinstance(e.get("model_id"), str))
