"""An audit log whose shared-memory file turns immutable while serving: the server neither dies nor fails open.

SQLite maps the log's `-shm` file into memory; once that file cannot be written (`chattr +i`), SQLite's next
access used to kill the process with SIGBUS. Now the server answers calls already paid for (with a warning,
their records spooled), refuses budgeted calls it cannot account for, replays the spool once the file is
writable again, and still exits cleanly while the file is immutable.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.processes import http_server, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PERSONAS = """
[personas.open]
models = ["openai/gpt-4o"]
rank_by = []

[personas.frugal]
models = ["openai/gpt-4o"]
rank_by = []

[personas.frugal.budget]
daily = 5.0
"""
HELLO = [{"role": "user", "content": "Say hello."}]


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """`path` immutable (`chattr +i`) for the block; this is how a broken or locked-down disk shows up."""
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        if os.environ.get("CI"):
            pytest.fail("chattr +i is needed for this test (run as root on ext4, as CI does)")
        pytest.skip("chattr +i is not available here (needs root on a file system that supports it)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(timeout=30.0) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
            yield client


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    return dict(result.structured_content or {})


def error_text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(block.text for block in result.content if block.type == "text")


async def test_an_immutable_shm_file_spools_answers_refuses_budgets_and_never_kills_the_server(tmp_path: Path) -> None:
    database = tmp_path / "audit.sqlite3"
    personas = tmp_path / "personas.toml"
    personas.write_text(PERSONAS)
    env = server_env(None, OPENROUTER_MCP_AUDIT_DB=str(database))
    chat = {"messages": HELLO, "persona": "open"}
    with http_server("--demo", "--personas", str(personas), env=env) as served:
        with anyio.fail_after(60):
            async with connected(served.url) as client:
                assert "warning" not in structured(await client.call_tool("create_chat_completion", chat))
                with immutable(Path(f"{database}-shm")):
                    answered = structured(await client.call_tool("create_chat_completion", chat))
                    assert "audit" in answered["warning"]
                    assert "warning" in structured(await client.call_tool("get_credits", {}))
                    refused = await client.call_tool("create_chat_completion", {**chat, "persona": "frugal"})
                    assert "ledger_unavailable" in error_text(refused)
                # Writable again: the next call's write replays what was spooled.
                assert "warning" not in structured(await client.call_tool("get_models_count", {}))
            with immutable(Path(f"{database}-shm")):
                served.stop()
        served.assert_exited_cleanly()
        assert "Bus error" not in served.log()
    with sqlite3.connect(database) as db:
        tools = [row[0] for row in db.execute("SELECT tool FROM calls ORDER BY id")]
        distinct = db.execute("SELECT COUNT(DISTINCT record_id) FROM calls").fetchone()[0]
    # Every call the client was answered (or refused) is there once: the refusal too, replayed with the rest.
    assert sorted(tools) == sorted(
        [
            "create_chat_completion",
            "create_chat_completion",
            "get_credits",
            "create_chat_completion",
            "get_models_count",
        ]
    )
    assert distinct == len(tools)
