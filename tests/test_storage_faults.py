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
from contextlib import asynccontextmanager, contextmanager, suppress
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


async def test_an_audit_log_deleted_while_serving_loses_no_answered_call(tmp_path: Path) -> None:
    """`rm audit.sqlite3*` under a running server: the next answer is spooled (with a warning), the log is
    created anew, and the spooled record lands in it; before, rows went on into the unlinked file, unseen."""
    database = tmp_path / "audit.sqlite3"
    env = server_env(None, OPENROUTER_MCP_AUDIT_DB=str(database))
    with http_server("--demo", env=env) as served:
        with anyio.fail_after(60):
            async with connected(served.url) as client:
                assert "warning" not in structured(await client.call_tool("get_credits", {}))
                for side in ("", "-wal", "-shm"):
                    Path(f"{database}{side}").unlink()
                assert "audit" in structured(await client.call_tool("get_models_count", {}))["warning"]
                assert "warning" not in structured(await client.call_tool("get_current_key", {}))
        served.stop()
        served.assert_exited_cleanly()
        assert "replaced or removed while serving" in served.log()
    with sqlite3.connect(database) as db:
        tools = sorted(row[0] for row in db.execute("SELECT tool FROM calls"))
    assert tools == ["get_current_key", "get_models_count"]


@contextmanager
def small_disk(path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs at `path`, so that filling it makes the audit log's disk full."""
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(path)]).returncode:
        if os.environ.get("CI"):
            pytest.fail("mounting a tmpfs is needed for this test (run as root, as CI does)")
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_a_full_disk_answers_with_a_warning_and_replays_the_record_once_there_is_room(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        database = disk / "audit.sqlite3"
        env = server_env(None, OPENROUTER_MCP_AUDIT_DB=str(database))
        with http_server("--demo", env=env) as served:
            with anyio.fail_after(60):
                async with connected(served.url) as client:
                    assert "warning" not in structured(await client.call_tool("get_credits", {}))
                    filler = disk / "filler"
                    with suppress(OSError), filler.open("wb") as file:
                        while True:
                            file.write(b"\0" * 4096)
                    big = {"query": "x" * 200_000}  # a row larger than what is left
                    assert "audit" in structured(await client.call_tool("list_providers", big))["warning"]
                    filler.unlink()
                    assert "warning" not in structured(await client.call_tool("get_current_key", {}))
            served.stop()
            served.assert_exited_cleanly()
        with sqlite3.connect(database) as db:
            tools = sorted(row[0] for row in db.execute("SELECT tool FROM calls"))
    assert tools == ["get_credits", "get_current_key", "list_providers"]
