"""2026-07-28 caching hints: listings and catalog reads stay fresh for the catalog TTL, private when scoped.

Driven by the real `mcp` client pinned to protocol 2026-07-28 (in memory, and over the streamable HTTP app
with bearer tokens for the scoped cases); the upstream is the simulator on loopback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import ServerRequestContext
from mcp.server.auth.settings import AuthSettings

from openrouter_mcp._sdk import CallNext, HandlerResult
from openrouter_mcp.config import Settings
from openrouter_mcp.routing import personas
from openrouter_mcp.server import build_server
from openrouter_mcp.serving.auth import HashedTokenVerifier, TokenEntry, new_token
from openrouter_mcp.simulator import Simulator

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
TTL_SECONDS = 123.0
TTL_MS = 123_000

PERSONAS = personas.parse(
    {
        "personas": {
            "alpha": {"models": ["openai/gpt-4o"], "tools": ["create_chat_completion", "list_available_models"]},
            "beta": {"models": ["openai/gpt-4o"]},
        }
    }
)
SCOPED_TOKEN, SCOPED_HASH = new_token()
UNSCOPED_TOKEN, UNSCOPED_HASH = new_token()
TOKENS = [TokenEntry("ann", SCOPED_HASH, frozenset({"alpha"})), TokenEntry("root", UNSCOPED_HASH, None)]


@pytest.fixture
def ttl_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, catalog_ttl=TTL_SECONDS)


async def hints_of_every_cacheable_answer(client: Client) -> list[tuple[str, int, str]]:
    """(what, ttl_ms, cache_scope) for tools/list, prompts/list and a read of the catalog, bypassing the cache."""
    tools = await client.list_tools(cache_mode="bypass")
    prompts = await client.list_prompts(cache_mode="bypass")
    read = await client.read_resource("openrouter://models")
    return [
        ("tools/list", tools.ttl_ms, tools.cache_scope),
        ("prompts/list", prompts.ttl_ms, prompts.cache_scope),
        ("resources/read", read.ttl_ms, read.cache_scope),
    ]


async def test_listings_and_catalog_reads_stay_fresh_for_the_catalog_ttl_and_are_public_when_unscoped(
    ttl_settings: Settings, sim: Simulator
) -> None:
    async with Client(build_server(ttl_settings, personas=PERSONAS), mode=MODERN, cache=None) as client:
        hints = await hints_of_every_cacheable_answer(client)

    assert hints == [(what, TTL_MS, "public") for what in ("tools/list", "prompts/list", "resources/read")]


async def test_a_process_bound_to_one_persona_marks_its_answers_private(ttl_settings: Settings, sim: Simulator) -> None:
    server = build_server(ttl_settings, personas=PERSONAS, bound_persona="alpha")
    async with Client(server, mode=MODERN, cache=None) as client:
        hints = await hints_of_every_cacheable_answer(client)

    assert hints == [(what, TTL_MS, "private") for what in ("tools/list", "prompts/list", "resources/read")]


@asynccontextmanager
async def connected_as(token: str, settings: Settings) -> AsyncIterator[Client]:
    server = build_server(
        settings,
        personas=PERSONAS,
        token_verifier=HashedTokenVerifier(TOKENS),
        auth=AuthSettings(issuer_url="http://127.0.0.1:8000", resource_server_url=None),
    )
    app = server.streamable_http_app()
    base = "http://127.0.0.1:8000"
    with anyio.fail_after(20):
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx2.AsyncClient(transport=transport, base_url=base, headers=headers) as http:
                async with Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=MODERN) as client:
                    yield client


async def test_a_token_scoped_to_personas_gets_private_answers_and_an_unscoped_token_public_ones(
    ttl_settings: Settings, sim: Simulator
) -> None:
    async with connected_as(SCOPED_TOKEN, ttl_settings) as ann:
        scoped = await hints_of_every_cacheable_answer(ann)
    async with connected_as(UNSCOPED_TOKEN, ttl_settings) as root:
        unscoped = await hints_of_every_cacheable_answer(root)

    assert scoped == [(what, TTL_MS, "private") for what in ("tools/list", "prompts/list", "resources/read")]
    assert unscoped == [(what, TTL_MS, "public") for what in ("tools/list", "prompts/list", "resources/read")]


async def test_a_handshake_era_client_gets_no_hints(ttl_settings: Settings, sim: Simulator) -> None:
    async with Client(build_server(ttl_settings), mode="legacy", cache=None) as client:
        tools = await client.list_tools()

    assert tools.tools
    assert {"ttl_ms", "cache_scope"}.isdisjoint(tools.model_fields_set)


class CountedListings:
    """Middleware counting the `tools/list` requests that reach the server."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/list":
            self.count += 1
        return await call_next(ctx)


async def test_the_real_client_serves_a_second_listing_within_the_ttl_from_its_cache(
    ttl_settings: Settings, sim: Simulator
) -> None:
    server = build_server(ttl_settings)
    counted = CountedListings()
    server.middleware.append(counted)
    async with Client(server, mode=MODERN) as client:
        first = await client.list_tools()
        second = await client.list_tools()

    assert [tool.name for tool in second.tools] == [tool.name for tool in first.tools]
    assert counted.count == 1, "the second listing must come from the client's cache"


async def test_without_hints_the_real_client_asks_again(settings: Settings, sim: Simulator) -> None:
    server = build_server(dataclasses.replace(settings, catalog_ttl=0.0))
    counted = CountedListings()
    server.middleware.append(counted)
    async with Client(server, mode=MODERN) as client:
        await client.list_tools()
        await client.list_tools()

    assert counted.count == 2
