"""Without a key, paid tools say so before any upstream work, and a routing record counts only requests sent."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from openrouter_mcp import errors
from openrouter_mcp.audit import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.routing.cooldowns import Cooldowns
from openrouter_mcp.routing.fallback import RoutingRecord, Upstream, run_with_fallback
from openrouter_mcp.routing.personas import Persona
from openrouter_mcp.routing.plan import Candidate, Route
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Simulator

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "Hello without a key."}]
PAID_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_chat_completion", {"messages": HELLO, "model": "openai/gpt-4o"}),
    ("create_chat_completion", {"messages": HELLO, "model": "openai/gpt-4o", "stream": True}),
    ("create_chat_completion", {"messages": HELLO}),
    ("create_message", {"messages": HELLO, "model": "anthropic/claude-sonnet-4", "max_tokens": 20}),
    ("get_credits", {}),
    ("get_current_key", {}),
    ("get_generation", {"id": "gen-1"}),
    ("list_user_models", {}),
]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port with nothing listening (bound, never listened on, so no one else takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def error_payload(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    return dict(json.loads(text.split("\n", 1)[1]))


@pytest.mark.parametrize(("tool", "arguments"), PAID_CALLS, ids=[f"{t}{i}" for i, (t, _) in enumerate(PAID_CALLS)])
async def test_without_a_key_and_with_openrouter_unreachable_paid_tools_answer_the_missing_key_error(
    closed_port: int, tmp_path: Path, tool: str, arguments: dict[str, Any]
) -> None:
    settings = Settings(api_key=None, base_url=f"http://127.0.0.1:{closed_port}/api/v1", read_timeout=5.0)
    log = AuditLog(tmp_path / "audit.sqlite3")
    async with Client(build_server(settings, audit=log)) as client:
        with anyio.fail_after(10):
            result = await client.call_tool(tool, arguments)
    payload = error_payload(result)
    assert payload["error"] == "missing_api_key", payload
    assert "OPENROUTER_API_KEY" in payload["message"] and "Connection" not in payload["message"]
    assert "routing" not in payload  # no candidate was planned, so no upstream call to account for
    [row] = log.tail(1)
    assert row["outcome"] == "error" and row["attempts"] is None
    assert row["error"].startswith("missing_api_key")


async def test_without_a_key_a_chat_sends_nothing_not_even_the_catalog_fetch(
    settings: Settings, sim: Simulator
) -> None:
    async with Client(build_server(Settings(api_key=None, base_url=settings.base_url))) as client:
        payload = error_payload(await client.call_tool("create_chat_completion", {"messages": HELLO}))
    assert payload["error"] == "missing_api_key"
    assert sim.requests == []


class _KeylessUpstream:
    def __init__(self) -> None:
        self.calls = 0

    async def call(self, models: list[str]) -> str:
        self.calls += 1
        raise errors.MissingApiKeyError("`create_chat_completion`")


async def test_a_failure_before_sending_is_no_upstream_call_and_no_failed_attempt_in_the_record() -> None:
    candidates = [Candidate("a/1", "listed", None, None), Candidate("b/2", "listed", None, None)]
    route = Route(persona="p", task=None, candidates=candidates, exclusions=[])
    upstream = _KeylessUpstream()
    record = RoutingRecord.for_route(route)
    with pytest.raises(errors.RoutingFailed) as caught:
        await run_with_fallback(
            route,
            Persona(name="p"),
            Cooldowns(),
            Upstream(call=upstream.call, served_model=str, router_attempts=lambda _: []),
            record,
        )
    assert upstream.calls == 1
    assert record.upstream_calls == 0 and record.attempts == []
    payload = caught.value.payload()
    assert payload["error"] == "missing_api_key" and payload["retryable"] is False
    assert payload["message"].startswith("nothing was sent: ")
