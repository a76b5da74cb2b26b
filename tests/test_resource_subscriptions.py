"""Resource subscriptions and truthful capabilities, through the real `mcp.Client` against the simulator.

A catalog change is made in the simulator (a price, a provider's name) and noticed by the next read:
the server's catalog is stale at once here, so every read refreshes it. `resources/subscribe` is a
handshake-era method (the client marks it deprecated for 2026-07-28, hence the filter); 2026-07-28
clients get the same updates on `subscriptions/listen`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ResourceUpdatedNotification

from openrouter_mcp.config import Settings
from openrouter_mcp.routing.personas import Persona, PersonasConfig
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Simulator
from openrouter_mcp.state import AppState

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]

CARD = "openrouter://models/openai/gpt-4o"
OTHER_CARD = "openrouter://models/meta-llama/llama-3.3-70b-instruct:free"
MODELS = "openrouter://models"
EMBEDDINGS = "openrouter://embedding-models"
PROVIDERS = "openrouter://providers"


class Updates:
    """The `notifications/resources/updated` URIs a client received, and a bounded wait for one."""

    def __init__(self) -> None:
        self.uris: list[str] = []
        self._changed = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.uris.append(str(message.params.uri))
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_for(self, found: Callable[[], bool]) -> None:
        with anyio.fail_after(10):
            while not found():
                await self._changed.wait()


@pytest.fixture
def short_ttl_server(settings: Settings, sim: Simulator) -> MCPServer[AppState]:
    return build_server(dataclasses.replace(settings, catalog_ttl=1e-9))


@pytest.fixture
def sim_catalog(sim: Simulator) -> Iterator[Simulator]:
    """The simulator, its gpt-4o price and first provider restored afterwards (it is shared)."""
    pricing = next(m for m in sim.catalog if m["id"] == "openai/gpt-4o")["pricing"]
    saved_pricing, saved_provider = dict(pricing), dict(sim.providers[0])
    yield sim
    pricing.clear()
    pricing.update(saved_pricing)
    sim.providers[0].clear()
    sim.providers[0].update(saved_provider)


def change_gpt_4o_price(sim: Simulator, prompt: str) -> None:
    next(m for m in sim.catalog if m["id"] == "openai/gpt-4o")["pricing"]["prompt"] = prompt


@pytest.fixture
async def subscriber(short_ttl_server: MCPServer[AppState]) -> AsyncIterator[tuple[Client, Updates]]:
    updates = Updates()
    async with Client(short_ttl_server, mode="legacy", message_handler=updates) as client:
        yield client, updates


async def test_capabilities_declare_subscribe_and_list_changed_for_resources_only(
    subscriber: tuple[Client, Updates],
) -> None:
    capabilities = subscriber[0].server_capabilities

    assert capabilities.resources is not None
    assert capabilities.resources.subscribe is True and capabilities.resources.list_changed is True
    assert capabilities.tools is not None and not capabilities.tools.list_changed
    assert capabilities.prompts is not None and not capabilities.prompts.list_changed


async def test_a_price_change_updates_the_subscribed_card_only(
    subscriber: tuple[Client, Updates], sim_catalog: Simulator
) -> None:
    client, updates = subscriber
    for uri in (EMBEDDINGS, OTHER_CARD, CARD):
        await client.subscribe_resource(uri)
    await client.read_resource(MODELS)
    await client.read_resource(MODELS)
    assert updates.uris == [], "a refresh that changed nothing updates nothing"

    change_gpt_4o_price(sim_catalog, "0.000001")
    await client.read_resource(MODELS)
    await updates.wait_for(lambda: CARD in updates.uris)

    assert updates.uris == [CARD]


async def test_the_models_list_is_updated_for_its_subscribers(
    subscriber: tuple[Client, Updates], sim_catalog: Simulator
) -> None:
    client, updates = subscriber
    await client.subscribe_resource(MODELS)
    await client.call_tool("list_available_models", {"limit": 1})

    change_gpt_4o_price(sim_catalog, "0.000002")
    await client.call_tool("list_available_models", {"limit": 1})
    await updates.wait_for(lambda: bool(updates.uris))

    assert updates.uris == [MODELS]


async def test_after_unsubscribing_no_more_updates_arrive(
    subscriber: tuple[Client, Updates], sim_catalog: Simulator
) -> None:
    client, updates = subscriber
    await client.subscribe_resource(CARD)
    await client.subscribe_resource(PROVIDERS)
    await client.read_resource(MODELS)
    await client.read_resource(PROVIDERS)
    await client.unsubscribe_resource(CARD)

    change_gpt_4o_price(sim_catalog, "0.000003")
    await client.read_resource(MODELS)
    sim_catalog.providers[0]["name"] = "Renamed Provider"
    await client.read_resource(PROVIDERS)
    # The providers notice comes after the card's would have: once it is here, the card's is not coming.
    await updates.wait_for(lambda: PROVIDERS in updates.uris)

    assert updates.uris == [PROVIDERS]


async def test_a_change_noticed_by_another_session_reaches_the_subscriber(
    short_ttl_server: MCPServer[AppState], sim_catalog: Simulator
) -> None:
    updates, bystander = Updates(), Updates()
    async with (
        Client(short_ttl_server, mode="legacy", message_handler=updates) as client,
        Client(short_ttl_server, mode="legacy", message_handler=bystander) as other,
    ):
        await client.subscribe_resource(CARD)
        await other.read_resource(MODELS)
        change_gpt_4o_price(sim_catalog, "0.000004")
        await other.read_resource(MODELS)
        await updates.wait_for(lambda: bool(updates.uris))

    assert updates.uris == [CARD] and bystander.uris == []


@pytest.mark.parametrize(
    "uri",
    [
        "openrouter://usage",
        "openrouter://models/openai/gpt-4o/endpoints",
        "openrouter://models/..%2Fkey/x",
        "openrouter://models/just-one-segment",
        "https://example.com/",
    ],
)
async def test_only_catalog_resources_can_be_subscribed_to(subscriber: tuple[Client, Updates], uri: str) -> None:
    with pytest.raises(MCPError) as caught:
        await subscriber[0].subscribe_resource(uri)

    assert caught.value.error.code == INVALID_PARAMS


async def test_a_scoped_session_cannot_subscribe_to_what_it_cannot_read(settings: Settings, sim: Simulator) -> None:
    personas = PersonasConfig(default="chat", personas={"chat": Persona(name="chat", tools=["create_chat_completion"])})
    server = build_server(settings, personas=personas, bound_persona="chat")
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as caught:
            await client.subscribe_resource(MODELS)

    assert caught.value.error.code == INVALID_PARAMS and "Unknown resource" in caught.value.error.message


async def test_a_listen_stream_gets_the_update_for_the_card_it_asked_for(
    short_ttl_server: MCPServer[AppState], sim_catalog: Simulator
) -> None:
    async with Client(short_ttl_server) as client:
        await client.read_resource(MODELS)
        async with client.listen(resource_subscriptions=[CARD]) as subscription:
            change_gpt_4o_price(sim_catalog, "0.000005")
            await client.read_resource(MODELS)
            with anyio.fail_after(5):
                event: Any = await anext(aiter(subscription))

    assert type(event).__name__ == "ResourceUpdated" and event.uri == CARD
