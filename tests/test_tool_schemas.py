"""The tools/list payload stays small enough to send to a model every turn, and every schema is complete."""

from __future__ import annotations

import json

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio

#: The issue's budget for all tools, schemas included, as compact JSON.
TOOLS_LIST_BUDGET = 16_000


async def test_the_whole_tools_list_fits_the_budget(client: Client) -> None:
    tools = (await client.list_tools()).tools
    payload = json.dumps(
        [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools], separators=(",", ":")
    )
    assert len(tools) == 15
    assert len(payload) < TOOLS_LIST_BUDGET, f"tools/list is {len(payload)} bytes"


async def test_every_tool_has_a_strict_input_schema_an_output_schema_and_annotations(client: Client) -> None:
    for tool in (await client.list_tools()).tools:
        assert tool.input_schema["type"] == "object" and tool.input_schema.get("additionalProperties") is False
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        assert tool.annotations is not None and tool.annotations.read_only_hint is not None
        assert tool.title and tool.description


def test_the_shipped_schemas_are_those_the_models_generate() -> None:
    from openrouter_mcp.tools import ALL_TOOLS
    from openrouter_mcp.tools.registry import load_schemas, tool_schemas

    shipped = load_schemas()
    stale = [spec.name for spec in ALL_TOOLS if shipped.get(spec.name) != tool_schemas(spec)]
    extra = set(shipped) - {spec.name for spec in ALL_TOOLS}
    assert not stale and not extra, (
        f"openrouter_mcp/tools/schemas.json is out of date for {stale or sorted(extra)}: "
        "run `python -m openrouter_mcp.tools` and commit the result"
    )
