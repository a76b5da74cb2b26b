"""No tool argument or resource URI can steer an upstream request to another path or query.

Every tool and resource template that puts a caller's value into an upstream URL is walked with
values that would walk the path (`../key#`), inject a query, smuggle encoded separators or control
characters, or blow up the URL; the simulator's request log must then hold only the intended
paths and query keys, and the caller gets a clear invalid-argument error before anything is sent.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError

from openrouter_mcp.simulator import Simulator
from openrouter_mcp.upstream import url_parts

pytestmark = pytest.mark.anyio

HOSTILE = [
    "../key#",
    "../credits#",
    "../generation?id=gen-1#",
    "x/../../key",
    "test/m-1?x=1&y=",
    "openai/%2e%2e",
    "openai/gpt-4o%2Fmini",
    "openai/..",
    "openai/.",
    "./gpt-4o",
    "openai/gpt-4o#frag",
    "openai/gpt 4o",
    "openai/gpt-\n4o",
    "openai/gpt\x00-4o",
    "openai/gpt-4o\r\nX-Injected: 1",
    "openai\\gpt-4o",
    "openai/" + "a" * 200,
    "openai/gpt-4o/extra",
    "/gpt-4o",
    "openai/",
]

#: What each tool may request upstream, whatever its arguments: a path pattern and the query keys allowed.
INTENDED: dict[str, tuple[str, set[str]]] = {
    "list_model_endpoints": (r"/models/[A-Za-z0-9~][A-Za-z0-9._~:+-]*/[A-Za-z0-9~][A-Za-z0-9._~:+-]*/endpoints", set()),
    "get_generation": (r"/generation", {"id"}),
    "list_available_models": (r"/models", {"category", "sort", "output_modalities"}),
    "get_models_count": (r"/models/count", {"output_modalities"}),
}


def only_intended_requests(sim: Simulator, tool: str) -> None:
    pattern, keys = INTENDED[tool]
    for request in sim.requests:
        if request.path == "/models" and tool != "list_available_models":
            continue  # the catalog cache's own fetch, with fixed parameters
        assert re.fullmatch(pattern, request.path), f"{tool} requested {request.path!r}"
        assert set(request.query) <= keys, f"{tool} sent query keys {sorted(request.query)}"
        for value in request.query.values():
            assert not any(ord(c) < 0x20 for c in value)


def error_text(result: Any) -> str:
    assert result.is_error, result
    return "\n".join(block.text for block in result.content if hasattr(block, "text"))


@pytest.mark.parametrize("model", HOSTILE)
async def test_list_model_endpoints_refuses_a_model_id_that_would_leave_its_path(
    client: Client, sim: Simulator, model: str
) -> None:
    text = error_text(await client.call_tool("list_model_endpoints", {"model": model}))

    assert "author/slug" in text
    assert sim.count("/key") == 0 and sim.count("/credits") == 0 and sim.count("/generation") == 0
    only_intended_requests(sim, "list_model_endpoints")
    assert not any(r.path.endswith("/endpoints") for r in sim.requests)


@pytest.mark.parametrize(
    "generation_id", ["../key#", "gen-1&id=gen-2", "gen-1#x", "gen 1", "gen-1\n", "gen\x00", "a" * 300, "gen/1"]
)
async def test_get_generation_refuses_an_id_that_is_not_a_generation_id(
    client: Client, sim: Simulator, generation_id: str
) -> None:
    text = error_text(await client.call_tool("get_generation", {"id": generation_id}))

    assert "generation id" in text and "invalid arguments" in text
    assert sim.count("/generation") == 0
    only_intended_requests(sim, "get_generation")


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("list_available_models", {"category": "programming&sort=x"}),
        ("list_available_models", {"sort": "newest#frag"}),
        ("list_available_models", {"category": "a" * 100_000}),
        ("list_available_models", {"category": "pro\x00gramming"}),
        ("get_models_count", {"output_modalities": "text\r\nX: 1"}),
        ("get_models_count", {"output_modalities": "x" * 1_000_000}),
    ],
)
async def test_catalog_filters_never_add_query_keys_or_send_control_characters_or_huge_urls(
    client: Client, sim: Simulator, tool: str, arguments: dict[str, Any]
) -> None:
    result = await client.call_tool(tool, arguments)

    only_intended_requests(sim, tool)
    value = next(iter(arguments.values()))
    if len(value) > url_parts.MAX_QUERY_VALUE or any(ord(c) < 0x20 for c in value):
        assert "invalid arguments" in error_text(result)
    else:
        # A harmless oddity is sent encoded, as one value of its own key.
        sent = [r for r in sim.requests if set(arguments) <= set(r.query)]
        assert sent and all(r.query[key] == value for r in sent for key in arguments)


@pytest.mark.parametrize(
    "uri",
    [
        "openrouter://models/..%2Fkey%23/x/endpoints",
        "openrouter://models/openai/%2e%2e/endpoints",
        "openrouter://models/openai/gpt-4o%3Fx%3D1/endpoints",
        "openrouter://models/openai/gpt-4o%2Fmini/endpoints",
        "openrouter://models/%2E%2E/key/endpoints",
        "openrouter://models/openai/gpt-4o%0A/endpoints",
    ],
)
async def test_the_endpoints_resource_refuses_an_encoded_path_walk(client: Client, sim: Simulator, uri: str) -> None:
    with pytest.raises(MCPError) as caught:
        await client.read_resource(uri)

    # Either the SDK finds no template that matches, or ours refuses the segment, naming how to find ids.
    message = str(caught.value)
    assert "Unknown resource" in message or "list_available_models" in message
    assert not any(r.path.endswith("/endpoints") for r in sim.requests)
    assert sim.count("/key") == 0


async def test_a_real_model_id_still_reaches_its_endpoints(client: Client, sim: Simulator) -> None:
    result = await client.call_tool("list_model_endpoints", {"model": "openai/gpt-4o"})

    assert not result.is_error
    assert [r.path for r in sim.requests if r.path.endswith("/endpoints")] == ["/models/openai/gpt-4o/endpoints"]


@given(st.text(max_size=40))
def test_an_accepted_path_segment_can_only_ever_be_one_plain_segment(value: str) -> None:
    try:
        encoded = url_parts.path_segment("slug", value)
    except url_parts.UnsafeUrlValueError as exc:
        assert "slug" in str(exc)
        return
    assert encoded == value
    assert value not in (".", "..")
    assert not set(value) & set("/?#%\\ \t\r\n\x00")
    assert all(0x20 < ord(c) < 0x7F for c in value)


@given(st.text(max_size=40), st.text(max_size=40))
def test_model_path_accepts_exactly_two_safe_segments(author: str, slug: str) -> None:
    model_id = f"{author}/{slug}"
    try:
        path = url_parts.model_path(model_id)
    except url_parts.UnsafeUrlValueError:
        assert not (url_parts.SEGMENT.fullmatch(author) and url_parts.SEGMENT.fullmatch(slug))
        return
    assert path == model_id and path.count("/") == 1


@given(st.one_of(st.text(max_size=3000), st.booleans(), st.lists(st.text(max_size=20), max_size=5)))
def test_a_query_value_is_text_without_control_characters_and_bounded(value: Any) -> None:
    try:
        text = url_parts.query_value("q", value)
    except url_parts.UnsafeUrlValueError:
        return
    assert isinstance(text, str) and len(text) <= url_parts.MAX_QUERY_VALUE
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)
