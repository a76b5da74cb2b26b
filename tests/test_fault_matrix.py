"""The upstream fault matrix: every tool that calls OpenRouter, against every kind of upstream failure.

Each cell must give an `isError` result (never a success, never the SDK's bare "Error executing tool"),
with the error kind the fault calls for, the retry advice that kind deserves, no API key anywhere,
and an audit row whose outcome is `error` with that same kind. Drips (deadlines) have their own test
file, `test_upstream_deadlines.py`; cut streams theirs, `test_incomplete_streams.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from openrouter_mcp.audit import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator
from tests.conftest import TEST_KEY
from tests.upstream_tools import UPSTREAM_TOOLS

# slow: a sweep of every upstream tool against every fault (about a hundred calls).
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

#: (fault, the error kind it must give, whether the result must say a retry can help)
FAULTS: list[tuple[str, Fault, str, bool]] = [
    ("429", Fault(status=429, retry_after=7), "rate_limited", True),
    ("500", Fault(status=500), "server_error", True),
    ("503", Fault(status=503), "unavailable", True),
    ("401", Fault(status=401), "authentication", False),
    ("402", Fault(status=402), "payment_required", False),
    ("malformed", Fault(malformed=True), "malformed_response", True),
]

#: Tools that route: their error is the last model's, with the routing record of every attempt.
ROUTED = {"create_chat_completion", "create_message"}
#: Every cell of the matrix. route_request calls no upstream path of its own (it reads the cached catalog), and the
#: retired Coinbase charge reads no answer body, so a malformed body cannot reach it.
CELLS = [
    (tool, arguments, path, label, fault, kind, retryable)
    for tool, arguments, path in UPSTREAM_TOOLS
    if tool != "route_request"
    for label, fault, kind, retryable in FAULTS
    if not (label == "malformed" and tool == "create_coinbase_charge")
]


def payload(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    text = "\n".join(block.text for block in result.content if block.type == "text")
    assert "Error executing tool" not in text
    assert TEST_KEY not in text and TEST_KEY[-12:] not in text
    headline, _, body = text.partition("\n")
    data = dict(json.loads(body))
    data["headline"] = headline
    return data


@pytest.mark.parametrize(
    ("tool", "arguments", "path", "label", "fault", "kind", "retryable"),
    CELLS,
    ids=[f"{cell[0]}:{cell[2]}:{cell[3]}" for cell in CELLS],
)
async def test_every_upstream_tool_turns_every_upstream_failure_into_a_clear_audited_error(
    settings: Settings,
    sim: Simulator,
    tmp_path: Path,
    tool: str,
    arguments: dict[str, Any],
    path: str,
    label: str,
    fault: Fault,
    kind: str,
    retryable: bool,
) -> None:
    database = tmp_path / "audit.sqlite3"
    async with Client(build_server(settings, audit=AuditLog(database))) as client:
        sim.path_faults[path] = fault
        result = await client.call_tool(tool, arguments)

    data = payload(result)
    assert data["error"] == kind and data["retryable"] is retryable, data
    assert ("Do not retry" in data["headline"]) is not retryable, data["headline"]
    if label == "429":
        assert data["retry_after_seconds"] == 7 and "Retry after 7 s" in data["headline"]
    if tool in ROUTED:  # the routing record says what was tried, and that each try failed
        attempts = data["routing"]["attempts"]
        assert attempts and all(attempt["outcome"] == "failed" for attempt in attempts), attempts
    with AuditLog(database) as log:
        [row] = [row for row in log.export() if row["tool"] == tool]
    assert row["outcome"] == "error" and TEST_KEY not in json.dumps(row)
