"""The instructions a host's model reads at initialize: short, and naming only tools that exist."""

from __future__ import annotations

import re

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio


async def test_the_instructions_tell_the_model_about_personas_routing_and_usage(client: Client) -> None:
    instructions = client.instructions
    assert instructions is not None and len(instructions) < 1200  # sent to the model with every session
    assert "persona" in instructions and "route_request" in instructions and "get_usage" in instructions


async def test_every_tool_the_instructions_name_is_a_real_tool(client: Client) -> None:
    assert client.instructions is not None
    named = set(re.findall(r"\b(?:create|list|get|route)_[a-z_]+\b", client.instructions))
    tools = {tool.name for tool in (await client.list_tools()).tools}
    assert named and named <= tools
