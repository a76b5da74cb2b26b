"""Errors as the spec and the calling model expect them: tidy argument errors, the spec's JSON-RPC codes.

Through the real `mcp.Client` in memory against the simulated upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult
from pydantic import ValidationError

from openrouter_mcp.audit import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Simulator
from openrouter_mcp.tools import ALL_TOOLS
from openrouter_mcp.tools.argument_errors import InvalidArguments, tidy_validation_message, validate_or_refuse

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hi"}]
SPECS = {spec.name: spec for spec in ALL_TOOLS}


def error_text(result: CallToolResult) -> str:
    assert result.is_error, f"expected an error result, got {result.structured_content}"
    return " ".join(block.text for block in result.content if block.type == "text")


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "audit.sqlite3")


@pytest.fixture
async def audited(settings: Settings, sim: Simulator, log: AuditLog) -> AsyncIterator[Client]:
    async with Client(build_server(settings, audit=log)) as connected:
        yield connected


# --- tool arguments ------------------------------------------------------------------------------


async def test_a_misspelt_argument_names_it_and_lists_the_accepted_ones(client: Client, sim: Simulator) -> None:
    text = error_text(await client.call_tool("list_available_models", {"limt": 5}))

    assert text.startswith("list_available_models: invalid arguments: 1 validation error: unknown argument 'limt'")
    accepted = text.split("accepted: ", 1)[1].split(", ")
    assert "limit" in accepted and "offset" in accepted and "query" in accepted
    assert "pydantic" not in text and "For further information" not in text and "NoInput" not in text
    assert sim.count("/models") == 0


async def test_an_argument_to_a_tool_that_takes_none_says_it_takes_none(client: Client) -> None:
    text = error_text(await client.call_tool("get_credits", {"foo": 1}))

    assert text == (
        "get_credits: invalid arguments: 1 validation error: unknown argument 'foo': Extra inputs are not permitted; "
        "it takes no arguments"
    )


async def test_each_problem_is_named_with_its_field_and_message(client: Client, sim: Simulator) -> None:
    args = {"messages": HELLO, "temperature": "hot", "temprature": 0.5}
    text = error_text(await client.call_tool("create_chat_completion", args))

    assert "2 validation errors" in text
    assert "'temperature': Input should be a valid number" in text
    assert "unknown argument 'temprature'" in text
    assert "errors.pydantic.dev" not in text and "hot" not in text
    assert sim.count("/chat/completions") == 0


async def test_a_missing_required_argument_is_named(client: Client) -> None:
    text = error_text(await client.call_tool("create_chat_completion", {}))

    assert "missing required argument 'messages'" in text


async def test_refused_arguments_are_audited_as_invalid_arguments_by_name_only(audited: Client, log: AuditLog) -> None:
    error_text(await audited.call_tool("create_chat_completion", {"messages": HELLO, "temprature": "sk-secret"}))
    error_text(await audited.call_tool("get_generation", {"id": "../key#"}))

    rows = {row["tool"]: row for row in log.tail(2)}
    schema_refusal, own_check = rows["create_chat_completion"], rows["get_generation"]
    assert schema_refusal["outcome"] == "invalid_arguments"
    assert schema_refusal["arguments"] == {"invalid_argument_names": ["messages", "temprature"]}
    assert "unknown argument 'temprature'" in schema_refusal["error"]
    assert "sk-secret" not in str(schema_refusal)
    assert own_check["outcome"] == "invalid_arguments"
    assert log.usage(since=0).errors == 0, "a refused call is not an upstream error"


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tool=st.sampled_from(sorted(SPECS)),
    arguments=st.dictionaries(
        st.text(min_size=1, max_size=30),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
            max_leaves=8,
        ),
        max_size=6,
    ),
)
@pytest.mark.slow
def test_any_refused_arguments_give_one_short_line_without_pydantic_noise(tool: str, arguments: dict[str, Any]) -> None:
    model = SPECS[tool].input_model
    outcome = validate_or_refuse(model, arguments)
    if not isinstance(outcome, InvalidArguments):
        return
    assert "\n" not in outcome.message and "pydantic" not in outcome.message
    assert "validation error" in outcome.message
    assert "accepted:" in outcome.message or "no arguments" in outcome.message
    assert len(outcome.message) < 4000
    assert len(outcome.names) <= 10


def test_the_tidy_message_caps_the_number_of_problems() -> None:
    model = SPECS["list_available_models"].input_model
    with pytest.raises(ValidationError) as caught:
        model.model_validate({f"bogus{i}": i for i in range(50)})

    message = tidy_validation_message(caught.value, model)
    assert message.startswith("50 validation errors: ") and message.count("unknown argument") == 10
    assert "and 40 more" in message


# --- prompts ---------------------------------------------------------------------------------------


async def test_an_unknown_prompt_is_invalid_params_with_a_clear_message(client: Client) -> None:
    with pytest.raises(MCPError) as caught:
        await client.get_prompt("persona-nobody")

    assert caught.value.error.code == INVALID_PARAMS
    assert "Unknown prompt: 'persona-nobody'" in caught.value.error.message
    assert "prompts/list" in caught.value.error.message


async def test_a_known_prompt_still_renders(client: Client) -> None:
    names = [prompt.name for prompt in (await client.list_prompts()).prompts]
    result = await client.get_prompt(names[0], {"request": "write a haiku"})

    assert "write a haiku" in str(result.messages[0].content)
