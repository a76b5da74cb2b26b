"""Catalog resources, templates, completions and change notices, end to end against the simulator."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import ResourceListChangedNotification, ResourceTemplateReference, TextResourceContents

from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator
from openrouter_mcp.state import AppState

pytestmark = pytest.mark.anyio

MODEL_TEMPLATE = "openrouter://models/{author}/{slug}"
ENDPOINTS_TEMPLATE = "openrouter://models/{author}/{slug}/endpoints"


async def read_json(client: Client, uri: str) -> Any:
    result = await client.read_resource(uri)
    (content,) = result.contents
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == "application/json"
    return json.loads(content.text)


def template(uri: str) -> ResourceTemplateReference:
    return ResourceTemplateReference(type="ref/resource", uri=uri)


async def test_the_catalog_resources_are_listed_as_json(client: Client) -> None:
    resources = {str(r.uri): r for r in (await client.list_resources()).resources}

    assert set(resources) == {
        "openrouter://models",
        "openrouter://providers",
        "openrouter://embedding-models",
        "openrouter://usage",
    }
    assert all(r.mime_type == "application/json" and r.description for r in resources.values())


async def test_the_model_templates_are_listed_as_json(client: Client) -> None:
    templates = {t.uri_template: t for t in (await client.list_resource_templates()).resource_templates}

    assert set(templates) == {MODEL_TEMPLATE, ENDPOINTS_TEMPLATE}
    assert all(t.mime_type == "application/json" for t in templates.values())


async def test_the_models_resource_is_the_whole_catalog_compact(client: Client, sim: Simulator) -> None:
    body = await read_json(client, "openrouter://models")

    assert body["count"] == len(sim.catalog) == len(body["models"])
    assert [m["id"] for m in body["models"]] == [m["id"] for m in sim.catalog]
    assert {"id", "name", "prompt_per_m", "input", "output", "supports"} <= set(body["models"][0])
    assert sim.requests[0].query == {"output_modalities": "all"}


async def test_the_embedding_models_resource_holds_only_embedding_models(client: Client, sim: Simulator) -> None:
    body = await read_json(client, "openrouter://embedding-models")

    expected = [m["id"] for m in sim.catalog if "embeddings" in m["architecture"]["output_modalities"]]
    assert [m["id"] for m in body["models"]] == expected
    assert "openai/text-embedding-3-small" in expected


async def test_the_providers_resource_lists_every_provider(client: Client, sim: Simulator) -> None:
    body = await read_json(client, "openrouter://providers")

    assert [p["slug"] for p in body["providers"]] == [p["slug"] for p in sim.providers]
    assert body["providers"][0]["privacy_policy_url"]


async def test_a_model_card_is_the_full_catalog_entry(client: Client, sim: Simulator) -> None:
    card = await read_json(client, "openrouter://models/meta-llama/llama-3.3-70b-instruct:free")

    wire = next(m for m in sim.catalog if m["id"] == "meta-llama/llama-3.3-70b-instruct:free")
    assert card["id"] == wire["id"] and card["description"] == wire["description"]
    assert card["pricing"]["prompt"] == "0"
    assert card["supported_parameters"] == wire["supported_parameters"]


async def test_a_models_endpoints_resource_is_fetched_with_an_unencoded_slash(client: Client, sim: Simulator) -> None:
    body = await read_json(client, "openrouter://models/openai/gpt-4o/endpoints")

    assert sim.requests[-1].path == "/models/openai/gpt-4o/endpoints"
    assert body["id"] == "openai/gpt-4o"
    assert [e["tag"] for e in body["endpoints"]] == [e["tag"] for e in sim.endpoints["openai/gpt-4o"]]


@pytest.mark.parametrize(
    "uri",
    [
        "openrouter://models/openai/gpt-404",
        "openrouter://models/openai/gpt-404/endpoints",
        "openrouter://models/openai/gpt-4o%2Fmini",
    ],
)
async def test_an_unknown_model_is_a_resource_error_naming_it_and_the_way_to_find_ids(client: Client, uri: str) -> None:
    with pytest.raises(MCPError) as caught:
        await client.read_resource(uri)

    message = str(caught.value)
    assert "openai/gpt-4" in message and "list_available_models" in message


async def test_an_unreachable_catalog_is_a_resource_error_that_says_so(client: Client, sim: Simulator) -> None:
    sim.path_faults["/models"] = Fault(status=503)

    with pytest.raises(MCPError) as caught:
        await client.read_resource("openrouter://models")

    assert "model catalog" in str(caught.value) and "unavailable" in str(caught.value)


async def test_resources_and_tools_read_the_same_cached_catalog(client: Client, sim: Simulator) -> None:
    await read_json(client, "openrouter://models")
    await read_json(client, "openrouter://models/openai/gpt-4o")
    await read_json(client, "openrouter://embedding-models")
    result = await client.call_tool("list_available_models", {})

    assert not result.is_error
    assert sim.count("/models") == 1


# --- completion ------------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", [MODEL_TEMPLATE, ENDPOINTS_TEMPLATE])
async def test_author_completion_offers_catalog_authors_by_prefix(client: Client, sim: Simulator, uri: str) -> None:
    result = await client.complete(template(uri), {"name": "author", "value": "meta"})

    authors = sorted({m["id"].split("/")[0] for m in sim.catalog if m["id"].startswith("meta")})
    assert result.completion.values == authors
    assert "meta-llama" in authors


async def test_slug_completion_uses_the_chosen_author(client: Client, sim: Simulator) -> None:
    result = await client.complete(
        template(MODEL_TEMPLATE), {"name": "slug", "value": "gpt-4o"}, context_arguments={"author": "openai"}
    )

    expected = sorted(m["id"].split("/")[1] for m in sim.catalog if m["id"].startswith("openai/gpt-4o"))
    assert result.completion.values == expected
    assert {"gpt-4o", "gpt-4o-mini"} <= set(expected)
    assert result.completion.total == len(expected) and result.completion.has_more is False


async def test_slug_completion_for_an_unknown_author_offers_nothing(client: Client) -> None:
    result = await client.complete(
        template(MODEL_TEMPLATE), {"name": "slug", "value": ""}, context_arguments={"author": "nobody"}
    )
    assert result.completion.values == []


async def test_completion_without_an_author_caps_its_answer_at_100(client: Client, sim: Simulator) -> None:
    result = await client.complete(template(MODEL_TEMPLATE), {"name": "slug", "value": ""})

    slugs = {m["id"].split("/", 1)[1] for m in sim.catalog}
    assert len(result.completion.values) == 100
    assert result.completion.total == len(slugs) and result.completion.has_more is True


async def test_completion_for_another_template_offers_nothing(client: Client) -> None:
    result = await client.complete(template("openrouter://other/{author}"), {"name": "author", "value": "o"})
    assert result.completion.values == []


async def test_completion_with_an_unreachable_catalog_is_an_error_that_says_so(client: Client, sim: Simulator) -> None:
    sim.path_faults["/models"] = Fault(status=500)

    with pytest.raises(MCPError) as caught:
        await client.complete(template(MODEL_TEMPLATE), {"name": "author", "value": "o"})

    assert "model catalog is unavailable" in str(caught.value)


# --- change notices --------------------------------------------------------------------------------


@pytest.fixture
def short_ttl_server(settings: Settings, sim: Simulator) -> MCPServer[AppState]:
    """A server whose catalog is stale at once, so every read refreshes it."""
    return build_server(dataclasses.replace(settings, catalog_ttl=1e-9))


@pytest.fixture
def gpt_4o_price(sim: Simulator) -> Iterator[dict[str, Any]]:
    """The simulator's gpt-4o pricing, to edit; restored afterwards (the simulator is shared)."""
    pricing = next(m for m in sim.catalog if m["id"] == "openai/gpt-4o")["pricing"]
    saved = dict(pricing)
    yield pricing
    pricing.clear()
    pricing.update(saved)


class Notices:
    def __init__(self) -> None:
        self.list_changed = 0
        self.arrived = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, ResourceListChangedNotification):
            self.list_changed += 1
            self.arrived.set()


@pytest.fixture
async def legacy_client(short_ttl_server: MCPServer[AppState]) -> AsyncIterator[tuple[Client, Notices]]:
    notices = Notices()
    async with Client(short_ttl_server, mode="legacy", message_handler=notices) as connected:
        yield connected, notices


@pytest.mark.slow
async def test_a_catalog_change_sends_resources_list_changed_to_the_session(
    legacy_client: tuple[Client, Notices], sim: Simulator, gpt_4o_price: dict[str, Any]
) -> None:
    client, notices = legacy_client
    await read_json(client, "openrouter://models")
    await read_json(client, "openrouter://models")
    assert sim.count("/models") == 2 and notices.list_changed == 0, "an unchanged catalog is no change"

    gpt_4o_price["prompt"] = "0.000001"
    body = await read_json(client, "openrouter://models")

    assert next(m for m in body["models"] if m["id"] == "openai/gpt-4o")["prompt_per_m"] == 1.0
    with anyio.fail_after(5):
        await notices.arrived.wait()
    assert notices.list_changed == 1


async def test_a_catalog_change_noticed_by_a_tool_call_is_announced_too(
    legacy_client: tuple[Client, Notices], gpt_4o_price: dict[str, Any]
) -> None:
    client, notices = legacy_client
    assert not (await client.call_tool("list_available_models", {"limit": 1})).is_error

    gpt_4o_price["completion"] = "0.00002"
    assert not (await client.call_tool("list_available_models", {"limit": 1})).is_error

    with anyio.fail_after(5):
        await notices.arrived.wait()
    assert notices.list_changed == 1


async def test_a_catalog_change_is_published_to_subscription_listeners(
    short_ttl_server: MCPServer[AppState], gpt_4o_price: dict[str, Any]
) -> None:
    async with Client(short_ttl_server) as client:
        await read_json(client, "openrouter://models")
        async with client.listen(resources_list_changed=True) as subscription:
            gpt_4o_price["prompt"] = "0.000009"
            await read_json(client, "openrouter://models")
            with anyio.fail_after(5):
                event = await anext(aiter(subscription))

    assert type(event).__name__ == "ResourcesListChanged"
