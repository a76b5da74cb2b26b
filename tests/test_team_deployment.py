"""A team server: stateless HTTP processes sharing one audit database, and no answered call lost to SIGKILL."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import Client

from openrouter_mcp.audit import AuditLog
from openrouter_mcp.simulator import Simulator
from tests.processes import async_http_server, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HELLO = [{"role": "user", "content": "Count me in the audit log."}]


def generation_ids(database: Path) -> set[str]:
    with AuditLog(database) as log:
        return {row["generation_id"] for row in log.export() if row["generation_id"]}


async def test_two_stateless_processes_serve_the_same_team_and_write_one_log(
    upstream_url: str, sim: Simulator, tmp_path: Path
) -> None:
    database = tmp_path / "team.sqlite3"
    env = server_env(upstream_url, OPENROUTER_MCP_AUDIT_DB=str(database))
    answered: set[str] = set()
    async with async_http_server("--stateless", env=env) as first, async_http_server("--stateless", env=env) as second:
        for served in (first, second, first, second):
            async with Client(f"{served.url}/mcp") as client:
                result = await client.call_tool("create_chat_completion", {"messages": HELLO})
                assert not result.is_error and result.structured_content is not None
                answered.add(result.structured_content["generation_id"])
    assert len(answered) == 4 and generation_ids(database) == answered


async def test_every_call_answered_before_a_sigkill_is_in_the_log(
    upstream_url: str, sim: Simulator, tmp_path: Path
) -> None:
    database = tmp_path / "killed.sqlite3"
    env = server_env(upstream_url, OPENROUTER_MCP_AUDIT_DB=str(database))
    answered: set[str] = set()
    enough = anyio.Event()

    async def burst(client: Client) -> None:
        while True:
            try:
                result = await client.call_tool("create_chat_completion", {"messages": HELLO})
            except Exception:
                return  # the server is gone
            content: dict[str, Any] = result.structured_content or {}
            if not result.is_error:
                answered.add(content["generation_id"])
            if len(answered) >= 40:
                enough.set()

    async with async_http_server("--max-concurrent-per-client", "16", env=env) as served:
        with anyio.fail_after(60):
            try:
                async with Client(f"{served.url}/mcp") as client, anyio.create_task_group() as group:
                    for _ in range(8):
                        group.start_soon(burst, client)
                    await enough.wait()
                    served.process.kill()  # SIGKILL mid-burst: no clean-up runs in the server
                    await anyio.to_thread.run_sync(served.process.wait)
            except Exception:
                pass  # the client's own connection errors after the kill; what matters is the log
    # Killed, not exited: -SIGKILL (255 was what asyncio reported when another child watcher in this test
    # process reaped it first); either way the process must be gone.
    assert served.returncode in (-signal.SIGKILL, 255), served.log()[-3000:]
    with pytest.raises(ProcessLookupError):
        os.kill(served.pid, 0)
    recorded = generation_ids(database)
    assert len(answered) >= 40
    assert answered <= recorded, f"{len(answered - recorded)} answered calls missing from the log"


PERSONAS_TOML = """
default = "team"

[personas.team]
models = ["openai/gpt-4o"]
rank_by = []

[personas.frugal]
models = ["openai/gpt-4o-mini"]
rank_by = []
tools = ["create_chat_completion", "route_request"]
"""


async def test_a_token_for_one_persona_cannot_use_another_personas_tools(tmp_path: Path) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from openrouter_mcp.serving.auth import new_token

    frugal_token, frugal_hash = new_token()
    team_token, team_hash = new_token()
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'[[tokens]]\nuser = "fran"\nsha256 = "{frugal_hash}"\npersonas = ["frugal"]\n\n'
        f'[[tokens]]\nuser = "tess"\nsha256 = "{team_hash}"\npersonas = ["team"]\n'
    )
    tokens.chmod(0o600)
    personas_file = tmp_path / "personas.toml"
    personas_file.write_text(PERSONAS_TOML)
    database = tmp_path / "scoped.sqlite3"
    env = server_env(None, OPENROUTER_MCP_AUDIT_DB=str(database))
    args = ("--demo", "--personas", str(personas_file), "--auth-tokens", str(tokens))

    @asynccontextmanager
    async def as_user(url: str, token: str) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                yield client

    def text(result: Any) -> str:
        return " ".join(block.text for block in result.content if block.type == "text")

    with anyio.fail_after(60):
        async with async_http_server(*args, env=env) as served:
            url = f"{served.url}/mcp"
            async with as_user(url, frugal_token) as fran:
                listed = {tool.name for tool in (await fran.list_tools()).tools}
                assert listed == {"create_chat_completion", "route_request"}
                refused = await fran.call_tool("get_credits", {})
                assert refused.is_error and "get_credits is not available in this session's scope" in text(refused)
                other = await fran.call_tool("create_chat_completion", {"messages": HELLO, "persona": "team"})
                assert other.is_error and "bound to persona" not in text(other)
                assert "persona 'team' is outside this client's scope; it may use: frugal" in text(other)
                own = await fran.call_tool("create_chat_completion", {"messages": HELLO})
                assert not own.is_error and (own.structured_content or {})["routing"]["persona"] == "frugal"
            async with as_user(url, team_token) as tess:
                assert "get_credits" in {tool.name for tool in (await tess.list_tools()).tools}
                assert not (await tess.call_tool("get_credits", {})).is_error
    with AuditLog(database) as log:
        rows = log.export()
        who = {(row["user"], row["tool"], row["outcome"]) for row in rows}
    assert ("fran", "get_credits", "refused") in who and ("tess", "get_credits", "ok") in who
    assert ("fran", "create_chat_completion", "ok") in who
