"""Catalog tools end to end: real mcp.Client -> our server -> HTTP -> simulated OpenRouter."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator
from openrouter_mcp.tools.catalog import CATALOG_TOOLS

pytestmark = pytest.mark.anyio

JSONDict = dict[str, Any]

#: Every list tool with the arguments it needs, for the checks they all share.
LIST_TOOLS: list[tuple[str, JSONDict, str]] = [
    ("list_available_models", {}, "models"),
    ("list_user_models", {}, "models"),
    ("list_embedding_models", {}, "models"),
    ("list_zdr_endpoints", {}, "endpoints"),
    ("list_providers", {}, "providers"),
    ("list_model_endpoints", {"model": "openai/gpt-4o"}, "endpoints"),
]

#: A cap on any default (compact, first page) answer.
MAX_DEFAULT_RESULT_BYTES = 20_000


async def ok(client: Client, tool: str, args: JSONDict) -> JSONDict:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    out = result.structured_content
    assert isinstance(out, dict)
    return out


def error_text(result: CallToolResult) -> str:
    assert result.is_error, f"expected an error result, got {result.structured_content}"
    return " ".join(block.text for block in result.content if block.type == "text")


def per_m(price: str) -> float:
    return float(Decimal(price) * 1_000_000)


async def all_pages(client: Client, tool: str, args: JSONDict, items: str) -> list[JSONDict]:
    """Every item of a paged tool, following next_offset; checks the paging fields on the way."""
    found: list[JSONDict] = []
    offset: int | None = 0
    while offset is not None:
        page = await ok(client, tool, {**args, "offset": offset, "limit": 100})
        assert page["offset"] == offset and page["returned"] == len(page[items])
        found.extend(page[items])
        offset = page.get("next_offset")
        assert offset is None or offset == len(found)
    assert page["total"] == len(found)
    return found


# --- the listing ---------------------------------------------------------------------------------


async def test_the_seven_catalog_tools_are_listed_read_only_with_strict_inputs(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    names = [spec.name for spec in CATALOG_TOOLS]
    assert sorted(names) == sorted(
        [
            "list_available_models",
            "list_user_models",
            "list_embedding_models",
            "list_model_endpoints",
            "list_zdr_endpoints",
            "list_providers",
            "get_models_count",
        ]
    )
    for name in names:
        tool = tools[name]
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert not tool.annotations.destructive_hint  # meaningful only when not read-only, so left out
        assert tool.input_schema.get("additionalProperties") is False
        assert "$defs" not in json.dumps(tool.input_schema)
        assert tool.description and tool.output_schema


async def test_the_catalog_tools_take_a_small_share_of_tools_list(client: Client) -> None:
    names = {spec.name for spec in CATALOG_TOOLS}
    tools = [t for t in (await client.list_tools()).tools if t.name in names]
    size = len(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]))
    assert size < 7_000, f"the catalog tools' schemas take {size} bytes"


# --- list_available_models -------------------------------------------------------------------------


async def test_paging_list_available_models_to_the_end_returns_the_whole_catalog_from_one_fetch(
    client: Client, sim: Simulator
) -> None:
    models = await all_pages(client, "list_available_models", {}, "models")

    assert [m["id"] for m in models] == [m["id"] for m in sim.catalog]
    assert sim.count("/models") == 1
    assert sim.requests[0].query == {"output_modalities": "all"}


async def test_the_default_page_is_25_compact_models_with_prices_per_million_tokens(
    client: Client, sim: Simulator
) -> None:
    page = await ok(client, "list_available_models", {"query": "openai/gpt-4o-mini"})
    gpt = next(m for m in page["models"] if m["id"] == "openai/gpt-4o-mini")
    wire = next(m for m in sim.catalog if m["id"] == "openai/gpt-4o-mini")

    assert gpt["prompt_per_m"] == per_m(wire["pricing"]["prompt"])
    assert gpt["completion_per_m"] == per_m(wire["pricing"]["completion"])
    assert gpt["context_length"] == wire["context_length"]
    assert gpt["input"] == wire["architecture"]["input_modalities"]
    assert "tools" in gpt["supports"]
    assert "description" not in gpt and "pricing" not in gpt

    first = await ok(client, "list_available_models", {})
    assert first["returned"] == 25 and first["next_offset"] == 25 and first["total"] == len(sim.catalog)


async def test_repeated_calls_are_served_from_the_shared_cache(client: Client, sim: Simulator) -> None:
    for args in ({}, {"query": "claude"}, {"offset": 50}, {"detail": "full"}):
        await ok(client, "list_available_models", args)
    assert sim.count("/models") == 1


@pytest.mark.slow
async def test_fifty_concurrent_calls_make_one_upstream_catalog_fetch(client: Client, sim: Simulator) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(ok, client, "list_available_models", {"limit": 1})
    assert sim.count("/models") == 1


def _price(model: JSONDict, key: str) -> float:
    return per_m(model["pricing"][key])


def _text(model: JSONDict) -> str:
    return f"{model['id']} {model['name']} {model.get('description', '')}".lower()


FILTERS: list[tuple[JSONDict, Callable[[JSONDict], bool]]] = [
    ({"query": "GPT 4o"}, lambda m: all(w in _text(m) for w in ("gpt", "4o"))),
    ({"input_modalities": "image,file"}, lambda m: {"image", "file"} <= set(m["architecture"]["input_modalities"])),
    ({"output_modalities": "image"}, lambda m: "image" in m["architecture"]["output_modalities"]),
    ({"supported_parameters": "tools, reasoning"}, lambda m: {"tools", "reasoning"} <= set(m["supported_parameters"])),
    ({"min_context": 200_000}, lambda m: (m.get("context_length") or 0) >= 200_000),
    ({"max_prompt_price": 0}, lambda m: _price(m, "prompt") == 0),
    ({"max_prompt_price": 0.5}, lambda m: _price(m, "prompt") <= 0.5),
    ({"max_completion_price": 1}, lambda m: _price(m, "completion") <= 1),
    (
        {"supported_parameters": "tools", "max_prompt_price": 1, "min_context": 100_000},
        lambda m: "tools" in m["supported_parameters"]
        and _price(m, "prompt") <= 1
        and (m.get("context_length") or 0) >= 100_000,
    ),
]  # fmt: skip


@pytest.mark.parametrize(("args", "wanted"), FILTERS, ids=[json.dumps(a) for a, _ in FILTERS])
async def test_each_filter_keeps_exactly_the_matching_models(
    client: Client, sim: Simulator, args: JSONDict, wanted: Callable[[JSONDict], bool]
) -> None:
    found = await all_pages(client, "list_available_models", args, "models")

    expected = [m["id"] for m in sim.catalog if wanted(m)]
    assert expected, "the filter matches nothing in the simulated catalog: the test would prove little"
    assert [m["id"] for m in found] == expected
    assert sim.count("/models") == 1


async def test_category_and_sort_are_passed_to_openrouter_and_its_order_is_kept(client: Client, sim: Simulator) -> None:
    page = await ok(client, "list_available_models", {"sort": "newest", "limit": 5, "max_prompt_price": 2})
    request = sim.requests[-1]
    assert request.path == "/models"
    assert request.query == {"sort": "newest", "output_modalities": "all"}
    newest = sorted(sim.catalog, key=lambda m: -m["created"])
    assert [m["id"] for m in page["models"]] == [m["id"] for m in newest if _price(m, "prompt") <= 2][:5]

    await ok(client, "list_available_models", {"category": "programming"})
    assert sim.requests[-1].query == {"category": "programming", "output_modalities": "all"}
    assert sim.count("/models") == 2


async def test_an_invalid_sort_comes_back_as_openrouters_bad_request(client: Client, sim: Simulator) -> None:
    text = error_text(await client.call_tool("list_available_models", {"sort": "cheapest"}))
    assert "HTTP 400" in text and "sort" in text


async def test_full_detail_returns_openrouters_model_objects(client: Client, sim: Simulator) -> None:
    page = await ok(client, "list_available_models", {"query": "openai/gpt-4o-mini", "detail": "full", "limit": 1})
    model = page["models"][0]
    wire = next(m for m in sim.catalog if m["id"] == model["id"])

    assert model["pricing"] == {k: v for k, v in wire["pricing"].items() if v is not None}
    assert model["description"] == wire["description"]
    assert model["architecture"]["input_modalities"] == wire["architecture"]["input_modalities"]


@pytest.mark.parametrize(("tool", "args", "items"), LIST_TOOLS, ids=[t for t, _, _ in LIST_TOOLS])
async def test_no_default_answer_exceeds_20_kb(
    client: Client, sim: Simulator, tool: str, args: JSONDict, items: str
) -> None:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    (block,) = result.content
    assert block.type == "text"
    size = len(block.text.encode())
    assert result.structured_content and result.structured_content[items]
    assert size <= MAX_DEFAULT_RESULT_BYTES, f"{tool} answered {size} bytes"


# --- the other model lists ---------------------------------------------------------------------------


async def test_user_models_are_fetched_with_the_key_and_filtered_locally(client: Client, sim: Simulator) -> None:
    found = await all_pages(client, "list_user_models", {"supported_parameters": "tools"}, "models")

    assert found and all("tools" in m["supports"] for m in found)
    request = sim.requests[-1]
    assert request.path == "/models/user" and request.headers["authorization"].startswith("Bearer ")


async def test_user_models_without_a_key_is_an_error_saying_how_to_set_one(upstream_url: str, sim: Simulator) -> None:
    async with Client(build_server(Settings(base_url=upstream_url))) as keyless:
        text = error_text(await keyless.call_tool("list_user_models", {}))
        available = await keyless.call_tool("list_available_models", {"limit": 1})

    assert "OPENROUTER_API_KEY" in text and "missing_api_key" in text
    assert sim.count("/models/user") == 0
    assert not available.is_error, "public tools should work without a key"


async def test_embedding_models_lists_only_embedding_models(client: Client, sim: Simulator) -> None:
    found = await all_pages(client, "list_embedding_models", {}, "models")
    ids = [m["id"] for m in found]

    assert "openai/text-embedding-3-small" in ids
    assert ids == [m["id"] for m in sim.catalog if "embeddings" in m["architecture"]["output_modalities"]]
    assert sim.requests[-1].path == "/embeddings/models"

    small = await ok(client, "list_embedding_models", {"query": "text-embedding-3-small"})
    assert [m["id"] for m in small["models"]] == ["openai/text-embedding-3-small"]


# --- endpoints -------------------------------------------------------------------------------------


async def test_model_endpoints_asks_for_the_path_with_an_unencoded_slash(client: Client, sim: Simulator) -> None:
    out = await ok(client, "list_model_endpoints", {"model": "meta-llama/llama-3.3-70b-instruct:free"})

    assert sim.requests[-1].path == "/models/meta-llama/llama-3.3-70b-instruct:free/endpoints"
    assert out["id"] == "meta-llama/llama-3.3-70b-instruct:free"
    assert out["endpoints"] and all(e["prompt_per_m"] == 0 for e in out["endpoints"])


async def test_model_endpoints_compact_and_full(client: Client, sim: Simulator) -> None:
    compact = await ok(client, "list_model_endpoints", {"model": "openai/gpt-4o"})
    full = await ok(client, "list_model_endpoints", {"model": "openai/gpt-4o", "detail": "full"})
    wire = sim.endpoints["openai/gpt-4o"]

    assert [e["tag"] for e in compact["endpoints"]] == [e["tag"] for e in wire]
    first = compact["endpoints"][0]
    assert first["provider"] == wire[0]["provider_name"]
    assert first["prompt_per_m"] == per_m(wire[0]["pricing"]["prompt"])
    assert {"uptime_30m", "latency_p50_ms", "context_length"} <= set(first)
    assert full["endpoints"][0]["pricing"] == {k: v for k, v in wire[0]["pricing"].items() if v is not None}


@pytest.mark.parametrize("model", ["gpt-4o", "openai/gpt-4o/extra", "/gpt-4o", "openai/", "open ai/gpt-4o"])
async def test_a_model_that_is_not_author_slash_slug_is_rejected_before_any_request(
    client: Client, sim: Simulator, model: str
) -> None:
    text = error_text(await client.call_tool("list_model_endpoints", {"model": model}))

    assert "author/slug" in text
    assert sim.requests == []


async def test_endpoints_of_an_unknown_model_is_a_not_found_error_pointing_to_the_catalog(client: Client) -> None:
    text = error_text(await client.call_tool("list_model_endpoints", {"model": "openai/gpt-404"}))

    assert "HTTP 404" in text and "list_available_models" in text


async def test_zdr_endpoints_page_to_the_end_and_filter_by_query(client: Client, sim: Simulator) -> None:
    everything = await all_pages(client, "list_zdr_endpoints", {}, "endpoints")
    upstream = sim.count("/endpoints/zdr")
    anthropic = await all_pages(client, "list_zdr_endpoints", {"query": "anthropic"}, "endpoints")

    assert len(everything) > 100
    assert {"model", "provider", "tag"} <= set(everything[0])
    assert anthropic and len(anthropic) < len(everything)
    assert all("anthropic" in f"{e['model']} {e['provider']} {e['tag']}".lower() for e in anthropic)
    assert upstream >= 1 and sim.requests[-1].path == "/endpoints/zdr"

    full = await ok(client, "list_zdr_endpoints", {"limit": 1, "detail": "full"})
    assert "supported_parameters" in full["endpoints"][0]


# --- providers and counts ----------------------------------------------------------------------------


async def test_providers_page_filter_and_come_from_the_cache(client: Client, sim: Simulator) -> None:
    everything = await all_pages(client, "list_providers", {}, "providers")
    openai = await ok(client, "list_providers", {"query": "openai"})

    assert [p["slug"] for p in everything] == [p["slug"] for p in sim.providers]
    assert [p["slug"] for p in openai["providers"]] == ["openai"]
    assert sim.count("/providers") == 1


@pytest.mark.parametrize("modalities", [None, "all", "embeddings", "text,image"])
async def test_models_count_counts_what_openrouter_counts(
    client: Client, sim: Simulator, modalities: str | None
) -> None:
    args = {} if modalities is None else {"output_modalities": modalities}
    out = await ok(client, "get_models_count", args)

    wanted = {"text"} if modalities is None else set(modalities.split(","))
    expected = sum(1 for m in sim.catalog if "all" in wanted or wanted & set(m["architecture"]["output_modalities"]))
    assert out == {"count": expected}
    assert sim.requests[-1].path == "/models/count"
    assert sim.requests[-1].query == ({} if modalities is None else {"output_modalities": modalities})


# --- errors ----------------------------------------------------------------------------------------

UPSTREAM_PATHS = [
    ("list_available_models", {}, "/models"),
    ("list_user_models", {}, "/models/user"),
    ("list_embedding_models", {}, "/embeddings/models"),
    ("list_model_endpoints", {"model": "openai/gpt-4o"}, "/models/openai/gpt-4o/endpoints"),
    ("list_zdr_endpoints", {}, "/endpoints/zdr"),
    ("list_providers", {}, "/providers"),
    ("get_models_count", {}, "/models/count"),
]


@pytest.mark.parametrize(("tool", "args", "path"), UPSTREAM_PATHS, ids=[t for t, _, _ in UPSTREAM_PATHS])
async def test_an_upstream_error_becomes_an_error_result_with_status_and_retry_advice(
    client: Client, sim: Simulator, tool: str, args: JSONDict, path: str
) -> None:
    sim.path_faults[path] = Fault(status=503, retry_after=7)
    text = error_text(await client.call_tool(tool, args))

    assert "HTTP 503" in text and "Retry after 7 s" in text
    assert tool in text


async def test_a_malformed_catalog_answer_is_an_error_result(client: Client, sim: Simulator) -> None:
    sim.path_faults["/models"] = Fault(malformed=True)
    text = error_text(await client.call_tool("list_available_models", {}))
    assert "malformed_response" in text


async def test_an_unknown_argument_is_rejected_with_its_name(client: Client, sim: Simulator) -> None:
    text = error_text(await client.call_tool("list_available_models", {"serach": "gpt"}))

    assert "serach" in text and "Extra inputs are not permitted" in text
    assert sim.requests == []


@pytest.mark.parametrize("args", [{"limit": 101}, {"limit": 0}, {"offset": -1}, {"detail": "everything"}])
async def test_paging_arguments_out_of_range_are_rejected(client: Client, args: JSONDict) -> None:
    text = error_text(await client.call_tool("list_providers" if "detail" not in args else "list_zdr_endpoints", args))
    assert next(iter(args)) in text
