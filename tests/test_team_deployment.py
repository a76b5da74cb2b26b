"""A team server: stateless HTTP processes sharing one audit database, and no answered call lost to SIGKILL."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from mcp import Client

from openrouter_mcp.audit import AuditLog
from openrouter_mcp.simulator import Simulator
from tests.test_transports import SERVER, STARTUP_TIMEOUT, free_port, server_env

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "Count me in the audit log."}]


@asynccontextmanager
async def http_server(env: dict[str, str], *args: str) -> AsyncIterator[tuple[str, Process, bytearray]]:
    """A streamable-HTTP server subprocess on a free loopback port: yields its /mcp URL and the process.

    Its stderr is drained for as long as it runs (a full pipe would stall it); ready means uvicorn said so.
    """
    port = free_port()
    command = [*SERVER, "--transport", "streamable-http", "--port", str(port), "--log-level", "INFO", *args]
    async with await anyio.open_process(command, env=env, stdin=DEVNULL, stdout=DEVNULL, stderr=PIPE) as process:
        log = bytearray()
        ready = anyio.Event()

        async def drain() -> None:
            assert process.stderr is not None
            async for chunk in process.stderr:
                log.extend(chunk)
                if b"Uvicorn running on" in log:
                    ready.set()
            ready.set()

        async with anyio.create_task_group() as group:
            group.start_soon(drain)
            try:
                with anyio.fail_after(STARTUP_TIMEOUT):
                    await ready.wait()
                assert process.returncode is None, log.decode(errors="replace")
                yield f"http://127.0.0.1:{port}/mcp", process, log
            finally:
                with anyio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.send_signal(signal.SIGTERM)
                    with anyio.move_on_after(5):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()


def generation_ids(database: Path) -> set[str]:
    with AuditLog(database) as log:
        return {row["generation_id"] for row in log.export() if row["generation_id"]}


async def test_two_stateless_processes_serve_the_same_team_and_write_one_log(
    upstream_url: str, sim: Simulator, tmp_path: Path
) -> None:
    database = tmp_path / "team.sqlite3"
    env = server_env(upstream_url, OPENROUTER_MCP_AUDIT_DB=str(database))
    answered: set[str] = set()
    async with http_server(env, "--stateless") as (first, *_), http_server(env, "--stateless") as (second, *_):
        for url in (first, second, first, second):
            async with Client(url) as client:
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

    async with http_server(env, "--max-concurrent-per-client", "16") as (url, process, log):
        with anyio.fail_after(60):
            try:
                async with Client(url) as client, anyio.create_task_group() as group:
                    for _ in range(8):
                        group.start_soon(burst, client)
                    await enough.wait()
                    process.kill()  # SIGKILL mid-burst: no clean-up runs in the server
                    await process.wait()
            except Exception:
                pass  # the client's own connection errors after the kill; what matters is the log
    assert process.returncode == -signal.SIGKILL, log.decode(errors="replace")[-3000:]
    recorded = generation_ids(database)
    assert len(answered) >= 40
    assert answered <= recorded, f"{len(answered - recorded)} answered calls missing from the log"
