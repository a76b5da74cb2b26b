"""The catalog cache on its own: TTL, single flight, stale-while-refresh, failures, generations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from openrouter_mcp.errors import OpenRouterError, ServiceUnavailableError
from openrouter_mcp.upstream.catalog import Catalog, ModelEntry, per_million
from openrouter_mcp.upstream.models import Model, ModelsPage, Provider

pytestmark = pytest.mark.anyio


def model(model_id: str, prompt: str = "0.000001", completion: str = "0.000002", **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "name": model_id.upper(), "pricing": {"prompt": prompt, "completion": completion}, **extra}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeClient:
    """Serves `self.models`; `gate`, when set, holds every fetch until released; `error` fails fetches."""

    def __init__(self, models: list[dict[str, Any]] | None = None) -> None:
        self.models = models if models is not None else [model("openai/gpt-4o"), model("anthropic/claude-sonnet-4")]
        self.providers = [Provider(slug="openai", name="OpenAI")]
        self.model_calls: list[Mapping[str, Any] | None] = []
        self.provider_calls = 0
        self.gate: anyio.Event | None = None
        self.error: OpenRouterError | None = None

    async def list_models(self, params: Mapping[str, Any] | None = None) -> ModelsPage:
        self.model_calls.append(params)
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return ModelsPage.model_validate({"data": self.models})

    async def list_providers(self) -> list[Provider]:
        self.provider_calls += 1
        if self.error is not None:
            raise self.error
        return list(self.providers)

    async def list_zdr_endpoints(self) -> list[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        return []


def unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError("no provider available", status_code=503)


async def test_reads_within_the_ttl_are_served_from_memory_and_the_next_read_after_it_refetches() -> None:
    client, clock = FakeClient(), FakeClock()
    catalog = Catalog(client, ttl=60, clock=clock)

    first = await catalog.models()
    clock.now += 59.9
    assert await catalog.models() == first
    assert catalog.fetches == 1

    clock.now += 0.2
    await catalog.models()
    assert catalog.fetches == 2
    assert client.model_calls == [{"output_modalities": "all"}] * 2


async def test_fifty_concurrent_first_reads_make_exactly_one_upstream_fetch() -> None:
    client = FakeClient()
    client.gate = anyio.Event()
    catalog = Catalog(client, ttl=60)
    results: list[list[Model]] = []

    async def read() -> None:
        results.append(await catalog.models())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            client.gate.set()

    assert len(client.model_calls) == 1
    assert catalog.fetches == 1
    assert len(results) == 50
    assert all(r == results[0] for r in results)


async def test_callers_arriving_during_a_refresh_get_the_stale_catalog_without_waiting() -> None:
    client, clock = FakeClient(), FakeClock()
    catalog = Catalog(client, ttl=60, clock=clock)
    stale = await catalog.models()
    client.models = [model("openai/gpt-5")]
    client.gate = anyio.Event()
    clock.now += 61
    refreshed: list[list[Model]] = []

    async def refresh() -> None:
        refreshed.append(await catalog.models())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(refresh)
            await anyio.wait_all_tasks_blocked()
            # The refresh is parked upstream; these reads must not join it.
            for _ in range(10):
                assert await catalog.models() == stale
            client.gate.set()

    assert [m.id for m in refreshed[0]] == ["openai/gpt-5"]
    assert [m.id for m in await catalog.models()] == ["openai/gpt-5"]
    assert catalog.fetches == 2


async def test_a_failed_first_fetch_raises_to_every_waiter_after_one_upstream_call() -> None:
    client = FakeClient()
    client.gate = anyio.Event()
    client.error = unavailable()
    catalog = Catalog(client, ttl=60)
    errors: list[BaseException] = []

    async def read() -> None:
        try:
            await catalog.models()
        except OpenRouterError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            client.gate.set()

    assert len(errors) == 5
    assert all(isinstance(e, ServiceUnavailableError) for e in errors)
    assert len(client.model_calls) == 1


async def test_the_next_read_after_a_failed_first_fetch_tries_again() -> None:
    client = FakeClient()
    client.error = unavailable()
    catalog = Catalog(client, ttl=60)
    with pytest.raises(ServiceUnavailableError):
        await catalog.models()

    client.error = None
    assert len(await catalog.models()) == 2
    assert catalog.fetches == 2


async def test_a_failed_refresh_keeps_serving_the_stale_catalog_and_backs_off_before_retrying() -> None:
    client, clock = FakeClient(), FakeClock()
    catalog = Catalog(client, ttl=60, clock=clock, retry_after_failure=10)
    stale = await catalog.models()
    client.error = unavailable()
    clock.now += 61

    assert await catalog.models() == stale
    assert catalog.fetches == 2
    clock.now += 9
    assert await catalog.models() == stale
    assert catalog.fetches == 2, "retried before the back-off ran out"

    client.error = None
    client.models = [model("openai/gpt-5")]
    clock.now += 2
    assert [m.id for m in await catalog.models()] == ["openai/gpt-5"]
    assert catalog.fetches == 3


async def test_generation_changes_only_when_ids_or_prices_change() -> None:
    client, clock = FakeClient(), FakeClock()
    catalog = Catalog(client, ttl=1, clock=clock)
    assert catalog.generation == 0
    await catalog.models()
    assert catalog.generation == 1

    async def refetch() -> int:
        clock.now += 2
        await catalog.models()
        return catalog.generation

    assert await refetch() == 1, "an identical catalog is no change"

    client.models = [model("openai/gpt-4o", description="new words"), model("anthropic/claude-sonnet-4")]
    assert await refetch() == 1, "a description is not part of the fingerprint"
    updated = await catalog.get("openai/gpt-4o")
    assert updated is not None and updated.description == "new words"

    client.models = [model("openai/gpt-4o", prompt="0.000003"), model("anthropic/claude-sonnet-4")]
    assert await refetch() == 2, "a price change is a change"

    client.models = [model("openai/gpt-4o", prompt="0.000003")]
    assert await refetch() == 3, "a removed model is a change"
    assert catalog.changed_since(2)
    assert not catalog.changed_since(3)


async def test_a_cancelled_fetch_hands_over_to_a_waiting_caller() -> None:
    client = FakeClient()
    client.gate = anyio.Event()
    catalog = Catalog(client, ttl=60)
    got: list[list[Model]] = []

    async def first() -> None:
        await catalog.models()

    async def second() -> None:
        got.append(await catalog.models())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(first)
                    await anyio.wait_all_tasks_blocked()
                    tg.start_soon(second)
                    await anyio.wait_all_tasks_blocked()
                    scope.cancel()
            client.gate.set()

    assert len(got[0]) == 2
    assert len(client.model_calls) == 2


async def test_get_finds_a_model_by_id_or_canonical_slug_and_returns_none_for_an_unknown_id() -> None:
    client = FakeClient([model("openai/gpt-4o", canonical_slug="openai/gpt-4o-2024-05-13")])
    catalog = Catalog(client, ttl=60)

    found = await catalog.get("openai/gpt-4o")
    assert found is not None and found.id == "openai/gpt-4o"
    assert await catalog.get("openai/gpt-4o-2024-05-13") == found
    assert await catalog.get("openai/nope") is None


async def test_providers_are_cached_with_the_same_ttl() -> None:
    client, clock = FakeClient(), FakeClock()
    catalog = Catalog(client, ttl=60, clock=clock)

    assert [p.slug for p in await catalog.providers()] == ["openai"]
    await catalog.providers()
    assert client.provider_calls == 1
    clock.now += 61
    await catalog.providers()
    assert client.provider_calls == 2


async def test_expire_makes_the_next_read_refetch() -> None:
    client = FakeClient()
    catalog = Catalog(client, ttl=3600)
    await catalog.models()
    catalog.expire()
    await catalog.models()
    assert catalog.fetches == 2


async def test_snapshot_groups_slugs_by_author_for_completion() -> None:
    client = FakeClient([model("openai/gpt-4o"), model("openai/gpt-4o-mini"), model("meta-llama/llama-3:free")])
    snapshot = await Catalog(client, ttl=60).snapshot()

    assert dict(snapshot.slugs_by_author) == {"meta-llama": ("llama-3:free",), "openai": ("gpt-4o", "gpt-4o-mini")}


def test_prices_are_converted_to_usd_per_million_tokens() -> None:
    assert per_million("0.0000025") == 2.5
    assert per_million("0") == 0.0
    assert per_million("-1") is None
    assert per_million("n/a") is None
    assert per_million(None) is None


def test_the_compact_projection_carries_prices_modalities_and_key_capabilities() -> None:
    entry = ModelEntry.from_model(
        Model.model_validate(
            {
                **model("openai/gpt-4o", prompt="0.0000025", completion="0.00001"),
                "context_length": 128000,
                "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
                "supported_parameters": ["tools", "temperature", "structured_outputs"],
            }
        )
    )

    assert dict(entry.compact) == {
        "id": "openai/gpt-4o",
        "name": "OPENAI/GPT-4O",
        "context_length": 128000,
        "prompt_per_m": 2.5,
        "completion_per_m": 10.0,
        "input": ["text", "image"],
        "output": ["text"],
        "supports": ["tools", "structured_outputs"],
    }
    assert (entry.author, entry.slug) == ("openai", "gpt-4o")
