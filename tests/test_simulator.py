"""Tests for the simulated OpenRouter API: behaviour, and its contract with the official OpenAPI spec."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest

from openrouter_mcp.simulator import Fault, Simulator, serve_in_thread
from openrouter_mcp.simulator.oauth import s256
from tests import openapi_contract
from tests.openapi_contract import (
    ContractError,
    SpecNotFoundError,
    spec_path,
    validate_query,
    validate_request,
    validate_response,
    validate_stream_chunk,
)

KEY = "sk-or-v1-" + "0123456789abcdef" * 4
AUTH = {"Authorization": f"Bearer {KEY}"}
BASE_URL = "http://sim/api/v1"
FIXED_IDS = (
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude-sonnet-4",
    "google/gemini-2.5-flash",
    "meta-llama/llama-3.3-70b-instruct:free",
    "openai/text-embedding-3-small",
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim() -> Simulator:
    return Simulator(api_key=KEY)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=sim), base_url=BASE_URL, headers=AUTH) as c:
        yield c


@pytest.fixture
async def anonymous(sim: Simulator) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=sim), base_url=BASE_URL) as c:
        yield c


def chat_body(
    text: str = "What is the capital of France?", model: str = "openai/gpt-4o", **extra: Any
) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def sse_events(text: str) -> list[str]:
    """The stream's events in order: comments verbatim, data payloads without the ``data: `` prefix."""
    events = []
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if block:
            events.append(block[len("data: ") :] if block.startswith("data: ") else block)
    return events


def data_chunks(text: str) -> list[dict[str, Any]]:
    return [json.loads(e) for e in sse_events(text) if not e.startswith(":") and e != "[DONE]"]


# --------------------------------------------------------------------------------------------------
# Contract: every operation's bodies validate against the official spec
# --------------------------------------------------------------------------------------------------


@dataclass
class Case:
    method: str
    url: str
    template: str
    status: int
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    authenticated: bool = True
    model_faults: dict[str, Fault] = field(default_factory=dict)
    path_faults: dict[str, Fault] = field(default_factory=dict)
    undocumented: bool = False


CONTRACT_CASES: dict[str, Case] = {
    "models": Case("GET", "/models", "/models", 200, params={"output_modalities": "all"}),
    "models-page": Case("GET", "/models", "/models", 200, params={"offset": "10", "limit": "25"}),
    "models-bad-limit": Case("GET", "/models", "/models", 400, params={"limit": "0"}),
    "models-count": Case("GET", "/models/count", "/models/count", 200),
    "models-user": Case("GET", "/models/user", "/models/user", 200),
    "models-user-401": Case("GET", "/models/user", "/models/user", 401, authenticated=False),
    "embeddings-models": Case("GET", "/embeddings/models", "/embeddings/models", 200),
    "endpoints": Case("GET", "/models/openai/gpt-4o/endpoints", "/models/{author}/{slug}/endpoints", 200),
    "endpoints-anonymous": Case(
        "GET", "/models/meta-llama/llama-3.3-70b-instruct:free/endpoints", "/models/{author}/{slug}/endpoints", 200,
        authenticated=False,
    ),
    "endpoints-404": Case("GET", "/models/acme/nope/endpoints", "/models/{author}/{slug}/endpoints", 404),
    "endpoints-zdr": Case("GET", "/endpoints/zdr", "/endpoints/zdr", 200),
    "providers": Case("GET", "/providers", "/providers", 200),
    "credits": Case("GET", "/credits", "/credits", 200),
    "credits-401": Case("GET", "/credits", "/credits", 401, authenticated=False),
    "credits-500": Case("GET", "/credits", "/credits", 500, path_faults={"/credits": Fault(status=500)}),
    "key": Case("GET", "/key", "/key", 200),
    "key-401": Case("GET", "/key", "/key", 401, authenticated=False),
    "generation-404": Case("GET", "/generation", "/generation", 404, params={"id": "gen-unknown"}),
    "generation-400": Case("GET", "/generation", "/generation", 400, undocumented=True),
    "generation-429": Case(
        "GET", "/generation", "/generation", 429, params={"id": "gen-x"},
        path_faults={"/generation": Fault(status=429, retry_after=1)},
    ),
    "coinbase-410": Case(
        "POST", "/credits/coinbase", "/credits/coinbase", 410,
        body={"amount": 10, "sender": "0x9a85CB3bfd494Ea3a8C9E50aA6a3c1a7E8BACE11", "chain_id": 8453},
    ),
    "coinbase-400": Case(
        "POST", "/credits/coinbase", "/credits/coinbase", 400, body={"amount": "ten"}, undocumented=True
    ),
    "chat": Case("POST", "/chat/completions", "/chat/completions", 200, body=chat_body()),
    "chat-tools": Case(
        "POST", "/chat/completions", "/chat/completions", 200,
        body=chat_body("Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="required"),
    ),
    "chat-reasoning": Case(
        "POST", "/chat/completions", "/chat/completions", 200,
        body=chat_body(model="anthropic/claude-sonnet-4", reasoning={"effort": "high"}),
    ),
    "chat-error-in-200": Case(
        "POST", "/chat/completions", "/chat/completions", 200, body=chat_body(),
        model_faults={"openai/gpt-4o": Fault(error_in_200=True)},
    ),
    "chat-400": Case("POST", "/chat/completions", "/chat/completions", 400, body=chat_body(model="acme/fake-1.0")),
    "chat-401": Case("POST", "/chat/completions", "/chat/completions", 401, body=chat_body(), authenticated=False),
    **{
        f"chat-{status}": Case(
            "POST", "/chat/completions", "/chat/completions", status, body=chat_body(),
            model_faults={"openai/gpt-4o": Fault(status=status, provider_code=status if status >= 500 else None)},
        )
        for status in (402, 404, 408, 429, 500, 502, 503, 524, 529)
    },
    "messages": Case(
        "POST", "/messages", "/messages", 200,
        body={"model": "anthropic/claude-sonnet-4", "max_tokens": 256, "messages": [{"role": "user", "content": "Hi"}]},
    ),
    "messages-tool-use": Case(
        "POST", "/messages", "/messages", 200,
        body={
            "model": "anthropic/claude-sonnet-4", "max_tokens": 256,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "Use get_weather for Paris"}],
            "tools": [{"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}],  # type: ignore[index]
        },
    ),
    "messages-400": Case("POST", "/messages", "/messages", 400, body={"model": "anthropic/claude-sonnet-4"}),
    "messages-401": Case(
        "POST", "/messages", "/messages", 401, authenticated=False,
        body={"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": "Hi"}]},
    ),
    **{
        f"messages-{status}": Case(
            "POST", "/messages", "/messages", status,
            body={"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": "Hi"}]},
            model_faults={"anthropic/claude-sonnet-4": Fault(status=status)},
        )
        for status in (429, 500, 503, 529)
    },
}  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize("case", CONTRACT_CASES.values(), ids=CONTRACT_CASES.keys())
async def test_response_matches_the_openapi_contract(sim: Simulator, case: Case) -> None:
    sim.model_faults.update(case.model_faults)
    sim.path_faults.update(case.path_faults)
    headers = AUTH if case.authenticated else {}
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=sim), base_url=BASE_URL) as c:
        response = await c.request(case.method, case.url, params=case.params, json=case.body, headers=headers)
    assert response.status_code == case.status, response.text
    validate_response(
        case.method, case.template, case.status, response.json(), allow_undocumented_status=case.undocumented
    )
    assert KEY not in response.text


@pytest.mark.anyio
async def test_stored_generation_matches_the_openapi_contract(client: httpx2.AsyncClient) -> None:
    created = await client.post("/chat/completions", json=chat_body())
    response = await client.get("/generation", params={"id": created.headers["x-generation-id"]})
    assert response.status_code == 200
    validate_response("GET", "/generation", 200, response.json())


@pytest.mark.anyio
async def test_every_stream_chunk_matches_the_openapi_contract(client: httpx2.AsyncClient, sim: Simulator) -> None:
    bodies = [
        chat_body(stream=True),
        chat_body("Use get_weather and get_time", stream=True, tools=[WEATHER_TOOL, TIME_TOOL]),
        chat_body(model="anthropic/claude-sonnet-4", stream=True, reasoning={"effort": "low"}),
    ]
    sim.model_faults["openai/gpt-4o-mini"] = Fault(mid_stream_error=True, provider_code=502)
    bodies.append(chat_body("Tell me a long story about streams", model="openai/gpt-4o-mini", stream=True))
    for body in bodies:
        validate_request("POST", "/chat/completions", body)
        response = await client.post("/chat/completions", json=body)
        assert response.status_code == 200
        chunks = data_chunks(response.text)
        assert chunks
        for chunk in chunks:
            validate_stream_chunk(chunk)


def test_contract_helper_rejects_a_body_that_breaks_the_spec() -> None:
    with pytest.raises(ContractError, match="total_count"):
        validate_response("GET", "/models", 200, {"data": [], "links": {"next": None}})
    with pytest.raises(ContractError, match="not documented"):
        validate_response("GET", "/credits", 429, {"error": {"code": 429, "message": "slow down"}})
    with pytest.raises(ContractError):
        validate_stream_chunk({"id": "gen-1", "object": "chat.completion", "choices": []})


def test_contract_helper_validates_requests_and_queries() -> None:
    validate_request("POST", "/messages", {"model": "anthropic/claude-sonnet-4", "messages": []})
    validate_request("POST", "/credits/coinbase", {"amount": 10, "sender": "0xabc", "chain_id": 8453})
    validate_query("GET", "/models", {"limit": "10", "offset": 0, "sort": "newest"})
    with pytest.raises(ContractError):
        validate_request("POST", "/chat/completions", {"model": "openai/gpt-4o"})
    with pytest.raises(ContractError):
        validate_request("POST", "/credits/coinbase", {"amount": 10, "sender": "0xabc", "chain_id": 5})
    with pytest.raises(ContractError):
        validate_query("GET", "/models", {"sort": "cheapest"})
    with pytest.raises(ContractError, match="not a documented"):
        validate_query("GET", "/models/count", {"limit": "5"})


def test_missing_spec_fails_loudly_instead_of_skipping(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(openapi_contract, "SPEC_FILE", tmp_path / "absent.json")
    with pytest.raises(SpecNotFoundError, match="tests.data.refresh"):
        spec_path()


# --------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------


def test_catalog_is_deterministic_for_a_seed_and_differs_across_seeds() -> None:
    first, again, other = Simulator(seed=7), Simulator(seed=7), Simulator(seed=8)
    assert first.catalog == again.catalog
    assert first.endpoints == again.endpoints
    assert [m["id"] for m in first.catalog] != [m["id"] for m in other.catalog]
    assert len(first.catalog) == 320
    assert len(Simulator(model_count=50).catalog) == 50


def test_catalog_holds_the_well_known_models_with_realistic_fields(sim: Simulator) -> None:
    by_id = {m["id"]: m for m in sim.catalog}
    for model_id in FIXED_IDS:
        assert model_id in by_id
    assert by_id["openai/gpt-4o"]["pricing"]["prompt"] == "0.0000025"
    assert by_id["openai/gpt-4o"]["pricing"]["completion"] == "0.00001"
    assert by_id["meta-llama/llama-3.3-70b-instruct:free"]["pricing"]["prompt"] == "0"
    assert by_id["openai/text-embedding-3-small"]["architecture"]["output_modalities"] == ["embeddings"]
    assert "reasoning" in by_id["anthropic/claude-sonnet-4"]["supported_parameters"]
    assert by_id["google/gemini-2.5-flash"]["context_length"] == 1048576
    authors = {m["id"].split("/")[0] for m in sim.catalog}
    assert {"openai", "anthropic", "google", "meta-llama", "mistralai", "deepseek", "qwen", "x-ai"} <= authors
    assert any(m["id"].endswith(":free") for m in sim.catalog if m["id"] not in FIXED_IDS)
    assert sum("benchmarks" in m for m in sim.catalog) > 50
    for model in sim.catalog:
        for price in model["pricing"].values():
            assert "e" not in str(price).lower()
            Decimal(str(price))
        assert model["links"]["details"] == f"/api/v1/models/{model['id']}/endpoints"


def test_every_endpoint_is_hosted_by_a_listed_provider(sim: Simulator) -> None:
    names = {p["name"] for p in sim.providers}
    assert len(sim.providers) >= 60
    for model in sim.catalog:
        endpoints = sim.endpoints[model["id"]]
        assert 1 <= len(endpoints) <= 4
        assert {e["provider_name"] for e in endpoints} <= names
        assert endpoints[0]["pricing"] == model["pricing"]


# --------------------------------------------------------------------------------------------------
# Models, endpoints, providers
# --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_models_without_offset_or_limit_returns_every_text_model(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    body = (await client.get("/models")).json()
    text_models = [m for m in sim.catalog if "text" in m["architecture"]["output_modalities"]]
    assert len(body["data"]) == body["total_count"] == len(text_models)
    assert body["links"]["next"] is None
    everything = (await client.get("/models", params={"output_modalities": "all"})).json()
    assert everything["total_count"] == len(sim.catalog)


@pytest.mark.anyio
async def test_models_pagination_walks_every_page_through_links_next(client: httpx2.AsyncClient) -> None:
    seen: list[str] = []
    url: str | None = "/models?limit=100&supported_parameters=tools"
    pages = 0
    while url is not None:
        body = (await client.get(url.removeprefix("/api/v1"))).json()
        seen += [m["id"] for m in body["data"]]
        url = body["links"]["next"]
        pages += 1
    assert pages >= 2
    assert len(seen) == len(set(seen)) == body["total_count"]


@pytest.mark.anyio
async def test_models_filters_narrow_the_list(client: httpx2.AsyncClient) -> None:
    async def ids(**params: str) -> list[str]:
        return [m["id"] for m in (await client.get("/models", params=params)).json()["data"]]

    both = await ids(supported_parameters="tools,structured_outputs")
    assert both and "openai/gpt-4o" in both and "meta-llama/llama-3.3-70b-instruct:free" not in both
    vision = (await client.get("/models", params={"input_modalities": "image,file"})).json()["data"]
    assert vision and all({"image", "file"} <= set(m["architecture"]["input_modalities"]) for m in vision)
    assert "openai/text-embedding-3-small" in await ids(output_modalities="embeddings")
    assert "openai/text-embedding-3-small" not in await ids()
    assert "openai/gpt-4o" in await ids(q="gpt-4o")
    assert all(m.startswith("anthropic/") for m in await ids(model_authors="anthropic"))
    big = (await client.get("/models", params={"context": "1000000"})).json()["data"]
    assert big and all(m["context_length"] >= 1_000_000 for m in big)
    cheap = (await client.get("/models", params={"max_price": "0.5"})).json()["data"]
    assert cheap and all(float(m["pricing"]["prompt"]) * 1e6 <= 0.5 for m in cheap)
    assert await ids(category="programming")


@pytest.mark.anyio
async def test_models_sort_orders_by_price_context_and_age(client: httpx2.AsyncClient) -> None:
    async def listed(sort: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = (await client.get("/models", params={"sort": sort})).json()["data"]
        return data

    by_price = [
        Decimal(m["pricing"]["prompt"]) + Decimal(m["pricing"]["completion"])
        for m in await listed("pricing-low-to-high")
    ]
    assert by_price == sorted(by_price)
    by_context = [m["context_length"] for m in await listed("context-high-to-low")]
    assert by_context == sorted(by_context, reverse=True)
    by_age = [m["created"] for m in await listed("newest")]
    assert by_age == sorted(by_age, reverse=True)
    smart = [m.get("benchmarks") for m in await listed("intelligence-high-to-low")]
    assert smart[0] is not None and smart[-1] is None


@pytest.mark.anyio
async def test_models_count_agrees_with_the_list(client: httpx2.AsyncClient) -> None:
    for modality in ("text", "embeddings", "all"):
        count = (await client.get("/models/count", params={"output_modalities": modality})).json()["data"]["count"]
        total = (await client.get("/models", params={"output_modalities": modality})).json()["total_count"]
        assert count == total


@pytest.mark.anyio
async def test_invalid_models_query_answers_400_with_the_error_envelope(client: httpx2.AsyncClient) -> None:
    for params in ({"limit": "1001"}, {"offset": "-1"}, {"sort": "cheapest"}, {"context": "many"}):
        response = await client.get("/models", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == 400


@pytest.mark.anyio
async def test_public_endpoints_answer_without_a_key_and_private_ones_do_not(anonymous: httpx2.AsyncClient) -> None:
    for path in ("/models", "/models/count", "/providers", "/embeddings/models", "/endpoints/zdr"):
        assert (await anonymous.get(path)).status_code == 200, path
    assert (await anonymous.get("/models/openai/gpt-4o/endpoints")).status_code == 200
    for path in ("/credits", "/key", "/models/user", "/generation?id=gen-1"):
        response = await anonymous.get(path)
        assert response.status_code == 401, path
        assert response.json() == {
            "error": {"code": 401, "message": "No auth credentials found", "metadata": None},
            "user_id": None,
        }


@pytest.mark.anyio
async def test_wrong_key_answers_401_and_never_echoes_any_key(sim: Simulator) -> None:
    wrong = "sk-or-v1-" + "f" * 64
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=sim), base_url=BASE_URL) as c:
        response = await c.post("/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {wrong}"})
    assert response.status_code == 401
    assert wrong not in response.text and KEY not in response.text


@pytest.mark.anyio
async def test_key_endpoint_masks_the_label(client: httpx2.AsyncClient) -> None:
    response = await client.get("/key")
    label = response.json()["data"]["label"]
    assert label == f"{KEY[:12]}...{KEY[-3:]}"
    assert KEY not in response.text


@pytest.mark.anyio
async def test_model_path_with_encoded_slash_is_404_like_the_live_api(client: httpx2.AsyncClient) -> None:
    assert (await client.get("/models/openai/gpt-4o/endpoints")).status_code == 200
    assert (await client.get("/models/openai%2Fgpt-4o/endpoints")).status_code == 404


@pytest.mark.anyio
async def test_unknown_model_endpoints_answer_404_envelope(client: httpx2.AsyncClient) -> None:
    response = await client.get("/models/acme/nope/endpoints")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404


@pytest.mark.anyio
async def test_endpoint_stats_are_null_for_unauthenticated_requests(
    client: httpx2.AsyncClient, anonymous: httpx2.AsyncClient
) -> None:
    signed = (await client.get("/models/openai/gpt-4o/endpoints")).json()["data"]["endpoints"]
    unsigned = (await anonymous.get("/models/openai/gpt-4o/endpoints")).json()["data"]["endpoints"]
    assert all(e["latency_last_30m"] is not None and e["throughput_last_30m"] is not None for e in signed)
    assert all(e["latency_last_30m"] is None and e["throughput_last_30m"] is None for e in unsigned)
    assert 0 <= signed[0]["uptime_last_30m"] <= 100


@pytest.mark.anyio
async def test_zdr_endpoints_are_a_strict_subset_of_all_endpoints(client: httpx2.AsyncClient, sim: Simulator) -> None:
    zdr = (await client.get("/endpoints/zdr")).json()["data"]
    total = sum(len(e) for e in sim.endpoints.values())
    assert 0 < len(zdr) < total


@pytest.mark.anyio
async def test_unknown_route_is_404_and_wrong_method_is_405(client: httpx2.AsyncClient) -> None:
    assert (await client.get("/nope")).status_code == 404
    assert (await client.get("http://sim/models")).status_code == 404  # outside /api/v1
    response = await client.post("/models")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


# --------------------------------------------------------------------------------------------------
# Chat completions
# --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_chat_completion_is_deterministic_and_prices_usage_from_the_catalog(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    first = await client.post("/chat/completions", json=chat_body())
    second = await client.post("/chat/completions", json=chat_body())
    body = first.json()
    assert first.status_code == 200
    assert body["id"].startswith("gen-") and first.headers["x-generation-id"] == body["id"]
    assert body["id"] != second.json()["id"]
    assert body["model"] == "openai/gpt-4o" and body["provider"] == "OpenAI"
    text = body["choices"][0]["message"]["content"]
    assert text == second.json()["choices"][0]["message"]["content"]
    assert "What is the capital of France?" in text
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    expected = Decimal("0.0000025") * usage["prompt_tokens"] + Decimal("0.00001") * usage["completion_tokens"]
    assert usage["cost"] == pytest.approx(float(expected))
    assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_generation_is_stored_and_costs_add_up_in_credits(client: httpx2.AsyncClient) -> None:
    costs = []
    for _ in range(2):
        created = await client.post("/chat/completions", json=chat_body())
        costs.append(created.json()["usage"]["cost"])
        generation = (await client.get("/generation", params={"id": created.headers["x-generation-id"]})).json()
        assert generation["data"]["model"] == "openai/gpt-4o"
        assert generation["data"]["total_cost"] == pytest.approx(costs[-1])
        assert generation["data"]["streamed"] is False
    credits = (await client.get("/credits")).json()["data"]
    assert credits["total_usage"] == pytest.approx(sum(costs))


@pytest.mark.anyio
async def test_generation_lookup_errors_match_the_live_api(client: httpx2.AsyncClient) -> None:
    missing = await client.get("/generation")
    assert missing.status_code == 400
    unknown = await client.get("/generation", params={"id": "gen-nope"})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"message": "Generation gen-nope not found", "code": 404}}


@pytest.mark.anyio
async def test_unknown_model_answers_400_with_model_not_found_availability(client: httpx2.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat_body(model="acme/fake-1.0"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["availability"]["code"] == "model_not_found"
    assert error["availability"]["requested_models"] == ["acme/fake-1.0"]


@pytest.mark.anyio
async def test_malformed_chat_requests_answer_400(client: httpx2.AsyncClient) -> None:
    for body in ({"model": "openai/gpt-4o"}, {"messages": "hi"}, {"messages": [{"role": "robot", "content": "x"}]}):
        assert (await client.post("/chat/completions", json=body)).status_code == 400
    bad_json = await client.post(
        "/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    too_many = chat_body(models=["openai/gpt-4o-mini", "google/gemini-2.5-flash", "x-ai/grok-4", "openai/gpt-4o"])
    response = await client.post("/chat/completions", json=too_many)
    assert response.status_code == 400
    assert "3 items or fewer" in response.json()["error"]["message"]


@pytest.mark.anyio
async def test_rate_limited_model_answers_429_with_retry_after(client: httpx2.AsyncClient, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=429, retry_after=7, rate_limit_headers=True)
    response = await client.post("/chat/completions", json=chat_body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert int(response.headers["x-ratelimit-reset"]) > 0
    error = response.json()["error"]
    assert error["code"] == 429
    assert error["metadata"]["error_type"] == "rate_limit_exceeded"
    assert "provider_code" not in error["metadata"]


@pytest.mark.anyio
async def test_provider_fault_carries_provider_code_and_availability(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    availability = {
        "code": "temporarily_unavailable",
        "retryable": True,
        "retry_after": 3,
        "requested_models": ["openai/gpt-4o"],
        "docs_url": "https://openrouter.ai/docs/errors#temporarily_unavailable",
    }
    sim.model_faults["openai/gpt-4o"] = Fault(status=503, provider_code="overloaded", availability=availability)
    response = await client.post("/chat/completions", json=chat_body())
    error = response.json()["error"]
    assert response.status_code == 503
    assert error["metadata"] == {
        "error_type": "provider_overloaded",
        "provider_code": "overloaded",
        "provider_name": "OpenAI",
    }
    assert error["availability"] == availability
    assert "retry-after" not in response.headers


@pytest.mark.anyio
async def test_fault_applies_the_given_number_of_times_then_recovers(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=502, times=2)
    statuses = [(await client.post("/chat/completions", json=chat_body())).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]


@pytest.mark.anyio
async def test_fallback_skips_a_failing_model_and_reports_the_one_that_served(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=503)
    sim.model_faults["openai/gpt-4o-mini"] = Fault(status=429)
    body = chat_body(models=["openai/gpt-4o-mini", "google/gemini-2.5-flash"])
    response = await client.post("/chat/completions", json=body, headers={"X-OpenRouter-Metadata": "enabled"})
    assert response.status_code == 200
    result = response.json()
    assert result["model"] == "google/gemini-2.5-flash"
    assert result["openrouter_metadata"]["strategy"] == "fallback"
    assert [a["status"] for a in result["openrouter_metadata"]["attempts"]] == [503, 429, 200]
    generation = (await client.get("/generation", params={"id": result["id"]})).json()["data"]
    assert [r["status"] for r in generation["provider_responses"]] == [503, 429, 200]


@pytest.mark.anyio
async def test_fallback_returns_the_last_error_when_every_model_fails(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=503)
    sim.model_faults["openai/gpt-4o-mini"] = Fault(status=429, retry_after=2)
    response = await client.post("/chat/completions", json=chat_body(models=["openai/gpt-4o-mini"]))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"


@pytest.mark.anyio
async def test_provider_preferences_choose_the_endpoint(client: httpx2.AsyncClient) -> None:
    azure = await client.post("/chat/completions", json=chat_body(provider={"order": ["azure"]}))
    assert azure.json()["provider"] == "Azure"
    excluded = await client.post("/chat/completions", json=chat_body(provider={"only": ["groq"]}))
    assert excluded.status_code == 404
    assert excluded.json()["error"]["availability"]["code"] == "constraint_filtered"


@pytest.mark.anyio
async def test_tool_choice_required_returns_tool_calls_with_schema_shaped_arguments(client: httpx2.AsyncClient) -> None:
    body = chat_body("Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="required")
    validate_request("POST", "/chat/completions", body)
    choice = (await client.post("/chat/completions", json=body)).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    assert set(arguments) == {"city", "unit"} and arguments["unit"] == "c"


@pytest.mark.anyio
async def test_tools_are_called_only_when_the_prompt_asks_for_them(client: httpx2.AsyncClient) -> None:
    plain = await client.post("/chat/completions", json=chat_body("Say hello", tools=[WEATHER_TOOL]))
    assert plain.json()["choices"][0]["finish_reason"] == "stop"
    asked = await client.post(
        "/chat/completions", json=chat_body("Call get_time please", tools=[WEATHER_TOOL, TIME_TOOL])
    )
    assert [c["function"]["name"] for c in asked.json()["choices"][0]["message"]["tool_calls"]] == ["get_time"]
    named = chat_body(
        "Hi", tools=[WEATHER_TOOL, TIME_TOOL], tool_choice={"type": "function", "function": {"name": "get_time"}}
    )
    forced = await client.post("/chat/completions", json=named)
    assert forced.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"
    none = await client.post("/chat/completions", json=chat_body("Use get_time", tools=[TIME_TOOL], tool_choice="none"))
    assert none.json()["choices"][0]["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_tool_result_gets_a_text_answer(client: httpx2.AsyncClient) -> None:
    messages = [
        {"role": "user", "content": "Use get_time"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00 UTC"},
    ]  # fmt: skip
    body = {"model": "openai/gpt-4o", "messages": messages, "tools": [TIME_TOOL]}
    validate_request("POST", "/chat/completions", body)
    choice = (await client.post("/chat/completions", json=body)).json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "12:00 UTC" in choice["message"]["content"]


@pytest.mark.anyio
async def test_reasoning_is_returned_only_when_requested_and_supported(client: httpx2.AsyncClient) -> None:
    asked = await client.post(
        "/chat/completions", json=chat_body(model="anthropic/claude-sonnet-4", reasoning={"effort": "high"})
    )
    result = asked.json()
    assert result["choices"][0]["message"]["reasoning"]
    assert result["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    hidden = await client.post(
        "/chat/completions", json=chat_body(model="anthropic/claude-sonnet-4", reasoning={"exclude": True})
    )
    assert "reasoning" not in hidden.json()["choices"][0]["message"]
    assert hidden.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    unsupported = await client.post("/chat/completions", json=chat_body(reasoning={"effort": "high"}))
    assert "reasoning" not in unsupported.json()["choices"][0]["message"]


@pytest.mark.anyio
async def test_max_tokens_truncates_with_finish_reason_length(client: httpx2.AsyncClient) -> None:
    result = (await client.post("/chat/completions", json=chat_body(max_tokens=5))).json()
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] <= 5


@pytest.mark.anyio
async def test_json_schema_response_format_yields_matching_json(client: httpx2.AsyncClient) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}
    result = (await client.post("/chat/completions", json=chat_body(response_format=response_format))).json()
    parsed = json.loads(result["choices"][0]["message"]["content"])
    assert set(parsed) == {"city", "population"} and isinstance(parsed["population"], int)


@pytest.mark.anyio
async def test_error_in_200_fault_reports_a_partial_failure_inside_the_choice(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(error_in_200=True)
    response = await client.post("/chat/completions", json=chat_body())
    choice = response.json()["choices"][0]
    assert response.status_code == 200
    assert choice["finish_reason"] == "error"
    assert choice["error"]["code"] == 502 and choice["error"]["metadata"]["error_type"] == "provider_unavailable"
    assert choice["message"]["content"]


@pytest.mark.anyio
async def test_malformed_fault_answers_200_with_invalid_json(client: httpx2.AsyncClient, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(malformed=True)
    sim.path_faults["/models"] = Fault(malformed=True)
    for response in (await client.post("/chat/completions", json=chat_body()), await client.get("/models")):
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            response.json()


@pytest.mark.anyio
async def test_path_fault_applies_to_any_endpoint(client: httpx2.AsyncClient, sim: Simulator) -> None:
    sim.path_faults["/credits"] = Fault(status=500)
    sim.path_faults["/providers"] = Fault(status=503, retry_after=1.5)
    credits = await client.get("/credits")
    assert credits.status_code == 500 and credits.json()["error"]["metadata"]["error_type"] == "server"
    providers = await client.get("/providers")
    assert providers.status_code == 503 and providers.headers["retry-after"] == "1.5"
    assert (await client.get("/key")).status_code == 200


@pytest.mark.anyio
async def test_injected_latency_delays_the_answer(client: httpx2.AsyncClient, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(latency=0.05)
    sim.latency = 0.02
    with anyio.fail_after(5):
        started = anyio.current_time()
        response = await client.post("/chat/completions", json=chat_body())
        elapsed = anyio.current_time() - started
    assert response.status_code == 200
    assert elapsed >= 0.07


# --------------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_stream_follows_openrouter_wire_format(client: httpx2.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[:2] == [": OPENROUTER PROCESSING"] * 2
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[2:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["id"] for c in chunks} == {response.headers["x-generation-id"]}
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "What is the capital of France?" in content
    assert sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")) >= 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["cost"] > 0


@pytest.mark.anyio
async def test_streamed_tool_calls_arrive_as_indexed_argument_fragments(client: httpx2.AsyncClient) -> None:
    body = chat_body("Use get_weather and get_time", stream=True, tools=[WEATHER_TOOL, TIME_TOOL])
    chunks = data_chunks((await client.post("/chat/completions", json=body)).text)
    calls: dict[int, dict[str, str]] = {}
    fragments = 0
    for chunk in chunks:
        for delta_call in (chunk["choices"][0]["delta"].get("tool_calls") or []) if chunk["choices"] else []:
            call = calls.setdefault(delta_call["index"], {"name": "", "arguments": ""})
            call["name"] += delta_call.get("function", {}).get("name", "")
            call["arguments"] += delta_call.get("function", {}).get("arguments", "")
            fragments += 1
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert set(json.loads(calls[0]["arguments"])) == {"city", "unit"}
    assert fragments > len(calls)
    assert [c for c in chunks if c["choices"]][-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.anyio
async def test_mid_stream_error_ends_the_stream_with_an_error_chunk(client: httpx2.AsyncClient, sim: Simulator) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(mid_stream_error=True)
    response = await client.post("/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[-1] != "[DONE]"
    chunks = [json.loads(e) for e in events if not e.startswith(":")]
    contents = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(contents) == 2
    last = chunks[-1]
    assert last["error"] == {
        "code": 502,
        "message": "Provider disconnected unexpectedly",
        "metadata": {"error_type": "provider_unavailable"},
    }
    assert last["choices"][0]["finish_reason"] == "error"


@pytest.mark.anyio
async def test_streaming_errors_before_the_first_token_are_plain_json(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    sim.model_faults["openai/gpt-4o"] = Fault(status=429, retry_after=1)
    response = await client.post("/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"


# --------------------------------------------------------------------------------------------------
# Anthropic Messages
# --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_messages_answers_an_anthropic_message_with_openrouter_cost(client: httpx2.AsyncClient) -> None:
    body = {"model": "anthropic/claude-sonnet-4", "max_tokens": 100, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hello Claude"}]}  # fmt: skip
    validate_request("POST", "/messages", body)
    response = await client.post("/messages", json=body)
    result = response.json()
    assert response.status_code == 200
    assert result["type"] == "message" and result["role"] == "assistant"
    assert result["content"][0]["type"] == "text" and "Hello Claude" in result["content"][0]["text"]
    assert result["stop_reason"] == "end_turn" and result["stop_sequence"] is None
    assert result["usage"]["input_tokens"] > 0 and result["usage"]["cost"] > 0
    assert result["provider"] == "Anthropic"
    assert response.headers["x-generation-id"] == result["id"]


@pytest.mark.anyio
async def test_messages_tool_choice_any_returns_tool_use(client: httpx2.AsyncClient) -> None:
    body = {
        "model": "anthropic/claude-sonnet-4",
        "messages": [{"role": "user", "content": "Paris"}],
        "tools": [{"name": "get_time", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any"},
    }
    result = (await client.post("/messages", json=body)).json()
    assert result["stop_reason"] == "tool_use"
    assert result["content"][-1]["type"] == "tool_use" and result["content"][-1]["name"] == "get_time"


@pytest.mark.anyio
async def test_messages_errors_use_the_anthropic_envelope(client: httpx2.AsyncClient, sim: Simulator) -> None:
    sim.model_faults["anthropic/claude-sonnet-4"] = Fault(status=429, retry_after=4)
    body = {"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": "Hi"}]}
    response = await client.post("/messages", json=body)
    assert response.status_code == 429 and response.headers["retry-after"] == "4"
    result = response.json()
    assert result["type"] == "error"
    assert result["error"]["type"] == "rate_limit_error" and result["error"]["error_type"] == "rate_limit_exceeded"
    assert result["request_id"].startswith("gen-")
    streaming = await client.post("/messages", json={**body, "model": "openai/gpt-4o", "stream": True})
    assert streaming.status_code == 400
    assert streaming.json()["error"]["message"] == "streaming not supported by the simulator"


@pytest.mark.anyio
async def test_messages_fallbacks_route_to_the_next_model(client: httpx2.AsyncClient, sim: Simulator) -> None:
    sim.model_faults["anthropic/claude-sonnet-4"] = Fault(status=529)
    body = {"model": "anthropic/claude-sonnet-4", "fallbacks": [{"model": "openai/gpt-4o"}],
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    result = (await client.post("/messages", json=body)).json()
    assert result["model"] == "openai/gpt-4o"


# --------------------------------------------------------------------------------------------------
# Coinbase, request log
# --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_coinbase_validates_the_body_then_answers_410_gone(client: httpx2.AsyncClient) -> None:
    bad = await client.post("/credits/coinbase", json={"amount": 10, "sender": "0xabc", "chain_id": 5})
    assert bad.status_code == 400
    good = await client.post("/credits/coinbase", json={"amount": 10, "sender": "0xabc", "chain_id": 8453})
    assert good.status_code == 410
    assert good.json()["error"]["code"] == 410
    assert "Coinbase Commerce credits API has been removed" in good.json()["error"]["message"]


# --------------------------------------------------------------------------------------------------
# Sign-in with OpenRouter: the consent page outside the API, the PKCE exchange inside it
# --------------------------------------------------------------------------------------------------

CONSENT_URL = "http://sim/auth"
VERIFIER = "v" * 43 + "-_~." + "9" * 10


async def consented_code(
    client: httpx2.AsyncClient, callback: str = "http://127.0.0.1:8765/callback/s1", **extra: str
) -> str:
    """The code the consent page sends back to `callback` for the S256 challenge of VERIFIER."""
    params = {"callback_url": callback, "code_challenge": s256(VERIFIER), "code_challenge_method": "S256", **extra}
    page = await client.get(CONSENT_URL, params=params)
    assert page.status_code == 302, page.text
    return parse_qs(urlsplit(page.headers["location"]).query)["code"][0]


@pytest.mark.anyio
async def test_sign_in_exchange_matches_the_openapi_contract(anonymous: httpx2.AsyncClient) -> None:
    body = {"code": await consented_code(anonymous), "code_verifier": VERIFIER, "code_challenge_method": "S256"}
    validate_request("POST", "/auth/keys", body)

    exchanged = await anonymous.post("/auth/keys", json=body)
    spent = await anonymous.post("/auth/keys", json=body)  # a code buys one key
    malformed = await anonymous.post("/auth/keys", json={"code_verifier": VERIFIER})

    assert exchanged.status_code == 200, exchanged.text
    validate_response("POST", "/auth/keys", 200, exchanged.json())
    assert exchanged.json()["key"].startswith("sk-or-v1-")
    assert spent.status_code == 403
    validate_response("POST", "/auth/keys", 403, spent.json())
    assert malformed.status_code == 400
    validate_response("POST", "/auth/keys", 400, malformed.json())


@pytest.mark.anyio
async def test_the_exchange_refuses_a_verifier_that_does_not_match_the_s256_challenge(
    anonymous: httpx2.AsyncClient, sim: Simulator
) -> None:
    code = await consented_code(anonymous)
    body = {"code": code, "code_verifier": VERIFIER + "x", "code_challenge_method": "S256"}

    refused = await anonymous.post("/auth/keys", json=body)

    assert refused.status_code == 403 and refused.json()["error"]["message"] == "Invalid code_verifier"
    validate_response("POST", "/auth/keys", 403, refused.json())
    assert sim.issued_keys == {} and code not in sim.auth_codes  # spent by the failed attempt too


@pytest.mark.anyio
async def test_the_consent_page_redirects_with_the_code_alone_keeping_the_callbacks_path_and_query(
    anonymous: httpx2.AsyncClient,
) -> None:
    params = {"callback_url": "https://app.example/cb/path?x=1", "state": "abc", "code_challenge": "c"}

    page = await anonymous.get(CONSENT_URL, params=params)

    location = urlsplit(page.headers["location"])
    assert page.status_code == 302 and (location.scheme, location.netloc, location.path) == (
        "https", "app.example", "/cb/path",
    )  # fmt: skip
    assert set(parse_qs(location.query)) == {"x", "code"}  # OpenRouter documents no state: none comes back


@pytest.mark.anyio
@pytest.mark.parametrize("callback", ["http://example.com/cb", "ftp://127.0.0.1/cb", "", "http://127.0.0.2:80/cb"])
async def test_the_consent_page_refuses_a_callback_neither_https_nor_on_localhost(
    anonymous: httpx2.AsyncClient, callback: str
) -> None:
    page = await anonymous.get(CONSENT_URL, params={"callback_url": callback})
    assert page.status_code == 400 and "callback_url" in page.text


@pytest.mark.anyio
async def test_a_key_the_exchange_created_is_accepted_with_its_limit_recorded(
    anonymous: httpx2.AsyncClient, sim: Simulator
) -> None:
    code = await consented_code(anonymous, "http://localhost:1/callback/s", limit="2.5")
    body = {"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"}
    key = (await anonymous.post("/auth/keys", json=body)).json()["key"]

    credits = await anonymous.get("/credits", headers={"Authorization": f"Bearer {key}"})
    stranger = await anonymous.get("/credits", headers={"Authorization": "Bearer sk-or-v1-" + "0" * 64})

    assert credits.status_code == 200 and stranger.status_code == 401
    assert sim.issued_keys == {key: 2.5}


@pytest.mark.anyio
async def test_requests_are_recorded_counted_and_reset(client: httpx2.AsyncClient, sim: Simulator) -> None:
    sim.path_faults["/credits"] = Fault(status=500)
    await client.get("/models", params={"limit": "5"})
    await client.get("/models")
    await client.post("/chat/completions", json=chat_body(), headers={"X-Title": "tests"})
    assert sim.count("/models") == 2 and sim.count("/models", "POST") == 0
    recorded = sim.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/chat/completions")
    assert recorded.body["model"] == "openai/gpt-4o"
    assert recorded.headers["x-title"] == "tests"
    assert sim.requests[0].query == {"limit": "5"}
    sim.reset()
    assert sim.requests == [] and sim.path_faults == {} and sim.count("/models") == 0


# --------------------------------------------------------------------------------------------------
# A real server on loopback
# --------------------------------------------------------------------------------------------------


def _long_prompt() -> str:
    return " ".join(f"word{i}" for i in range(60))


@pytest.mark.slow
@pytest.mark.anyio
async def test_real_server_streams_events_incrementally() -> None:
    delay = 0.02
    sim = Simulator(api_key=KEY, model_count=20, stream_chunk_delay=delay)
    arrivals: list[tuple[float, str]] = []
    with serve_in_thread(sim) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1")
        async with httpx2.AsyncClient(base_url=base_url, headers=AUTH) as c:
            with anyio.fail_after(10):
                assert (await c.get("/models/count")).json()["data"]["count"] > 0
                body = chat_body(_long_prompt(), stream=True)
                async with c.stream("POST", "/chat/completions", json=body) as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        if line:
                            arrivals.append((anyio.current_time(), line))
    assert arrivals[0][1] == ": OPENROUTER PROCESSING"
    assert arrivals[-1][1] == "data: [DONE]"
    # Events arrive spread over time (the server sleeps `delay` between them), not in one buffered burst.
    assert len(arrivals) >= 8
    assert arrivals[-1][0] - arrivals[0][0] >= 0.5 * delay * (len(arrivals) - 1)
    for _, line in arrivals:
        if line.startswith("data: {"):
            validate_stream_chunk(json.loads(line[len("data: ") :]))


@pytest.mark.anyio
async def test_client_disconnect_stops_the_stream_and_is_counted() -> None:
    sim = Simulator(api_key=KEY, model_count=20, stream_chunk_delay=0.02)
    with serve_in_thread(sim) as base_url:
        async with httpx2.AsyncClient(base_url=base_url, headers=AUTH) as c:
            with anyio.fail_after(10):
                async with c.stream("POST", "/chat/completions", json=chat_body(_long_prompt(), stream=True)) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data: {"):
                            generation_id = json.loads(line[len("data: ") :])["id"]
                            break
                assert await anyio.to_thread.run_sync(sim.wait_for_cancelled_streams, 1, 5.0)
    assert sim.cancelled_streams == 1
    generation = sim.generations[generation_id]
    assert generation["cancelled"] is True and generation["streamed"] is True


@pytest.mark.slow
def test_module_runs_as_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openrouter_mcp.simulator", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "--port" in result.stdout and "--stream-chunk-delay" in result.stdout
