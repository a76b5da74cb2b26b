"""A token scoped to personas sees only their prompts, and only the resources and completions their tools serve.

Driven through the real server's streamable HTTP app in process, with bearer tokens on, by the real
`mcp` client: what a scoped client cannot see it cannot get either, and it is told "unknown", exactly
as if the prompt or resource did not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.settings import AuthSettings
from mcp.shared.exceptions import MCPError
from mcp.types import ResourceTemplateReference

from openrouter_mcp.config import Settings
from openrouter_mcp.resources import TOOL_FOR_RESOURCE
from openrouter_mcp.routing import personas
from openrouter_mcp.server import build_server
from openrouter_mcp.serving.auth import HashedTokenVerifier, TokenEntry, new_token
from openrouter_mcp.simulator import Simulator

pytestmark = pytest.mark.anyio

ALPHA_SECRET = "ALPHA-SYSTEM-PROMPT-7f3a"
BETA_SECRET = "BETA-SYSTEM-PROMPT-91c2"

PERSONAS = personas.parse(
    {
        "personas": {
            "alpha": {
                "system_prompt": ALPHA_SECRET,
                "models": ["openai/gpt-4o"],
                "tools": ["create_chat_completion", "route_request"],
            },
            "beta": {"system_prompt": BETA_SECRET, "models": ["openai/gpt-4o"]},
        }
    }
)

ALPHA_TOKEN, ALPHA_HASH = new_token()
BETA_TOKEN, BETA_HASH = new_token()
ANY_TOKEN, ANY_HASH = new_token()
TOKENS = [
    TokenEntry("ann", ALPHA_HASH, frozenset({"alpha"})),
    TokenEntry("bea", BETA_HASH, frozenset({"beta"})),
    TokenEntry("root", ANY_HASH, None),
]
ENDPOINTS_TEMPLATE = "openrouter://models/{author}/{slug}/endpoints"


@asynccontextmanager
async def connected_as(token: str, upstream_url: str) -> AsyncIterator[Client]:
    settings = Settings(base_url=upstream_url)
    server = build_server(
        settings,
        personas=PERSONAS,
        token_verifier=HashedTokenVerifier(TOKENS),
        auth=AuthSettings(issuer_url="http://127.0.0.1:8000", resource_server_url=None),
    )
    app = server.streamable_http_app()
    base = "http://127.0.0.1:8000"
    headers = {"Authorization": f"Bearer {token}"}
    with anyio.fail_after(20):
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url=base, headers=headers) as http:
                async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
                    yield client


async def test_a_token_for_one_persona_lists_and_gets_only_that_personas_prompt(
    upstream_url: str, sim: Simulator
) -> None:
    async with connected_as(ALPHA_TOKEN, upstream_url) as ann:
        assert [prompt.name for prompt in (await ann.list_prompts()).prompts] == ["persona-alpha"]
        own = await ann.get_prompt("persona-alpha", {})
        assert ALPHA_SECRET in str(own.messages)
        with pytest.raises(MCPError) as caught:
            await ann.get_prompt("persona-beta", {})
    assert "Unknown prompt" in str(caught.value) and BETA_SECRET not in str(caught.value)


async def test_a_token_whose_personas_lack_the_catalog_tools_sees_no_catalog_resources(
    upstream_url: str, sim: Simulator
) -> None:
    async with connected_as(ALPHA_TOKEN, upstream_url) as ann:
        assert (await ann.list_resources()).resources == []
        assert (await ann.list_resource_templates()).resource_templates == []
        for uri in ("openrouter://models", "openrouter://models/openai/gpt-4o/endpoints", "openrouter://usage"):
            with pytest.raises(MCPError) as caught:
                await ann.read_resource(uri)
            assert "Unknown resource" in str(caught.value)
        completion = await ann.complete(
            ResourceTemplateReference(uri=ENDPOINTS_TEMPLATE), {"name": "author", "value": "o"}
        )
        assert completion.completion.values == []
    assert not any(r.path.endswith("/endpoints") for r in sim.requests)


async def test_a_token_for_a_persona_with_every_tool_sees_every_resource_but_only_its_own_prompt(
    upstream_url: str, sim: Simulator
) -> None:
    async with connected_as(BETA_TOKEN, upstream_url) as bea:
        assert [prompt.name for prompt in (await bea.list_prompts()).prompts] == ["persona-beta"]
        listed = {str(resource.uri) for resource in (await bea.list_resources()).resources}
        templates = {t.uri_template for t in (await bea.list_resource_templates()).resource_templates}
        assert listed | templates == set(TOOL_FOR_RESOURCE)
        assert (await bea.read_resource("openrouter://models")).contents
        completion = await bea.complete(
            ResourceTemplateReference(uri=ENDPOINTS_TEMPLATE), {"name": "author", "value": "o"}
        )
        assert "openai" in completion.completion.values
        with pytest.raises(MCPError):
            await bea.get_prompt("persona-alpha", {})


async def test_an_unscoped_token_sees_every_prompt(upstream_url: str, sim: Simulator) -> None:
    async with connected_as(ANY_TOKEN, upstream_url) as root:
        assert {prompt.name for prompt in (await root.list_prompts()).prompts} == {"persona-alpha", "persona-beta"}
        assert BETA_SECRET in str((await root.get_prompt("persona-beta", {})).messages)
