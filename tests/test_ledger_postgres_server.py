"""The PostgreSQL ledger selected and used for real: budgets held under parallel calls through the server, the
`audit` CLI reading PostgreSQL as it reads SQLite, replica processes recording into one database, and start-ups
that fail clearly (exit 2) without ever showing the database password."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.settings import AuthSettings
from mcp.types import TextResourceContents

from openrouter_mcp.audit import AuditLog
from openrouter_mcp.audit import cli as audit_cli
from openrouter_mcp.audit.postgres import PostgresLedger
from openrouter_mcp.audit.spool import Spool
from openrouter_mcp.config import Settings
from openrouter_mcp.routing import personas
from openrouter_mcp.server import build_server
from openrouter_mcp.serving.auth import HashedTokenVerifier
from openrouter_mcp.simulator import Fault, Simulator
from tests.audit_data import PARITY_RECORDS, PRIVACY
from tests.postgres import PostgresCluster, create_database, throwaway_cluster
from tests.processes import SERVER, STARTUP_TIMEOUT, async_http_server, free_port, server_env

# slow: a throwaway PostgreSQL cluster and server processes.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HELLO = [{"role": "user", "content": "Count to three."}]
#: A budget of a few calls of the simulator's gpt-4o-mini at max_tokens 16 (the reservation is the worst case).
CONFIG = personas.parse(
    {
        "default": "capped",
        "personas": {
            "capped": {"models": ["openai/gpt-4o-mini"], "rank_by": [], "budget": {"daily": 0.0001}},
        },
    }
)


@pytest.fixture
async def ledger(postgres_url: str) -> AsyncIterator[PostgresLedger]:
    opened = await PostgresLedger.open(postgres_url, pool_size=20)
    try:
        yield opened
    finally:
        await opened.aclose()


async def test_a_request_refused_authentication_is_recorded_in_the_postgres_ledger(
    settings: Settings, ledger: PostgresLedger
) -> None:
    checker = HashedTokenVerifier([])
    auth = AuthSettings(issuer_url="http://127.0.0.1:1", resource_server_url=None)
    build_server(settings, token_verifier=checker, auth=auth, audit=ledger, transport="sse")
    assert await checker.verify_token("ormcp_guess") is None
    with anyio.fail_after(10):
        while not (rows := await ledger.tail()):
            await anyio.sleep(0.01)
    [row] = rows
    assert (row["user"], row["tool"], row["outcome"], row["error"], row["transport"]) == (
        "(unauthenticated)", "(authentication)", "refused", "unknown token", "sse",
    )  # fmt: skip


async def test_twenty_parallel_paid_calls_through_the_server_never_overspend_the_budget_on_postgres(
    settings: Settings, sim: Simulator, ledger: PostgresLedger
) -> None:
    results: list[Any] = []

    async def chat(client: Client) -> None:
        results.append(await client.call_tool("create_chat_completion", {"messages": HELLO, "max_tokens": 16}))

    async with Client(build_server(settings, personas=CONFIG, audit=ledger)) as client:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(chat, client)
    answered = [result for result in results if not result.is_error]
    refused = [result for result in results if result.is_error]
    assert answered and refused
    assert all("budget_exceeded" in result.content[0].text for result in refused)
    rows = [row async for row in ledger.export()]
    assert len(rows) == 20  # every call, answered or refused, is one row
    spent = sum(row["cost"] or 0.0 for row in rows if row["outcome"] in ("ok", "error"))
    assert spent <= 0.0001
    assert sim.count("/chat/completions") == len(answered)
    # get_usage and openrouter://usage read the same PostgreSQL ledger.
    async with Client(build_server(settings, personas=CONFIG, audit=ledger)) as client:
        usage = (await client.call_tool("get_usage", {"days": 1})).structured_content
        assert usage is not None
        assert (usage["calls"], usage["refused"] + usage["errors"]) == (20, len(refused))
        assert usage["cost"] == pytest.approx(spent)
        assert usage["by_persona"][0]["persona"] == "capped"
        read = await client.read_resource("openrouter://usage")
    [content] = [c.text for c in read.contents if isinstance(c, TextResourceContents)]
    assert json.loads(content)["calls"] == 21  # and the get_usage call itself


def test_the_audit_cli_reads_a_postgres_ledger_exactly_as_it_reads_an_sqlite_log(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.sqlite3"

    async def fill() -> None:
        ledger = await PostgresLedger.open(postgres_url)
        try:
            for record, privacy in zip(PARITY_RECORDS, PRIVACY, strict=True):
                await ledger.record(record, privacy=privacy)  # type: ignore[arg-type]
        finally:
            await ledger.aclose()

    anyio.run(fill)
    with AuditLog(path) as log:
        for record, privacy in zip(PARITY_RECORDS, PRIVACY, strict=True):
            log.record(record, privacy=privacy)  # type: ignore[arg-type]
    now = datetime(2025, 3, 3, tzinfo=UTC).timestamp()
    commands = [["tail", "-n", "3"], ["export"], ["export", "--since", "2025-03-01T00:00:15"], ["usage", "--days", "7"]]
    for command in commands:
        assert audit_cli.main([*command, "--db", str(path)], clock=lambda: now, environ={}) == 0
        from_sqlite = capsys.readouterr().out
        assert audit_cli.main([*command, "--database-url", postgres_url], clock=lambda: now, environ={}) == 0
        assert capsys.readouterr().out == from_sqlite, command
    # The variable works as the flag does.
    assert audit_cli.main(["tail"], clock=lambda: now, environ={"OPENROUTER_MCP_DATABASE_URL": postgres_url}) == 0
    assert "create_chat_completion" in capsys.readouterr().out


def test_the_audit_cli_refuses_a_password_on_its_command_line_and_reports_an_unreachable_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://app:hunter2@127.0.0.1:{free_port()}/ledger"
    assert audit_cli.main(["tail", "--database-url", url], environ={}) == 2
    refused = capsys.readouterr().err
    assert "carries a password" in refused and "OPENROUTER_MCP_DATABASE_URL" in refused and "hunter2" not in refused
    assert audit_cli.main(["usage"], environ={"OPENROUTER_MCP_DATABASE_URL": url}) == 2
    unreachable = capsys.readouterr().err
    assert "cannot use the ledger database postgresql://app:***@127.0.0.1" in unreachable
    assert "hunter2" not in unreachable


@pytest.mark.slow
def test_a_server_whose_database_is_unreachable_exits_2_with_a_clear_message_and_no_password() -> None:
    url = f"postgresql://app:hunter2@127.0.0.1:{free_port()}/ledger"
    started = subprocess.run(
        [*SERVER, "--transport", "streamable-http", "--port", str(free_port())],
        env=server_env(None, OPENROUTER_MCP_DATABASE_URL=url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT + 10,
    )
    assert started.returncode == 2
    assert "cannot use the ledger database postgresql://app:***@127.0.0.1" in started.stderr
    assert "hunter2" not in started.stderr + started.stdout
    on_argv = subprocess.run(
        [*SERVER, "--database-url", url], env=server_env(None), stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=STARTUP_TIMEOUT + 10,
    )  # fmt: skip
    assert on_argv.returncode == 2
    assert "carries a password" in on_argv.stderr and "hunter2" not in on_argv.stderr


@pytest.mark.slow
async def test_two_replica_processes_record_into_one_postgres_database(
    postgres_cluster: PostgresCluster, postgres_url: str, upstream_url: str, sim: Simulator
) -> None:
    # The password-bearing URL over loopback TCP, as a team would configure it: in the environment only.
    url = postgres_cluster.url(postgres_url.split("/")[3].split("?")[0], tcp=True)
    env = server_env(upstream_url, OPENROUTER_MCP_DATABASE_URL=url)
    seen: list[str] = []
    async with (
        async_http_server("--stateless", env=env, seen=seen) as one,
        async_http_server("--stateless", env=env, seen=seen) as other,
    ):
        for served in (one, other, one):
            async with httpx2.AsyncClient() as http:
                async with Client(streamable_http_client(f"{served.url}/mcp", http_client=http)) as client:
                    with anyio.fail_after(30):
                        result = await client.call_tool("create_chat_completion", {"messages": HELLO})
                    assert not result.is_error, result.content
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT tool, outcome, transport FROM calls ORDER BY id").fetchall()
    assert rows == [("create_chat_completion", "ok", "streamable-http")] * 3
    assert all(postgres_cluster.password not in text for text in seen)


@pytest.mark.slow
async def test_calls_answered_while_postgres_is_down_are_spooled_and_replayed_once_it_is_back(
    settings: Settings, sim: Simulator, tmp_path: Path
) -> None:
    config = personas.parse(
        {
            "default": "open",
            "personas": {
                "open": {"models": ["openai/gpt-4o-mini"], "rank_by": []},
                "capped": {"models": ["openai/gpt-4o-mini"], "rank_by": [], "budget": {"daily": 1.0}},
            },
        }
    )
    spool = Spool([tmp_path / "spool" / "ledger.spool.jsonl"])
    with throwaway_cluster() as cluster:
        url = create_database(cluster)
        ledger = await PostgresLedger.open(url, timeout=2, spool=spool)
        try:
            async with Client(build_server(settings, personas=config, audit=ledger)) as client:
                with anyio.fail_after(60):
                    before = await client.call_tool("create_chat_completion", {"messages": HELLO})
                    assert not before.is_error
                    await anyio.to_thread.run_sync(cluster.stop)
                    # No budget: answered, its row kept in the spool (owner-only) with a warning.
                    open_call = await client.call_tool("create_chat_completion", {"messages": HELLO})
                    assert not open_call.is_error
                    assert "kept for a retried write" in str(open_call.structured_content)
                    assert spool.pending()
                    assert (tmp_path / "spool" / "ledger.spool.jsonl").stat().st_mode & 0o077 == 0
                    # A budget cannot be counted: refused before anything is sent, retryably.
                    upstream_calls = sim.count("/chat/completions")
                    capped = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"})
                    assert capped.is_error
                    refusal = capped.content[0].text  # type: ignore[union-attr]
                    assert "ledger_unavailable" in refusal and '"retryable":true' in refusal.replace(" ", "")
                    assert sim.count("/chat/completions") == upstream_calls
                    await anyio.to_thread.run_sync(cluster.start)
                    after = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"})
                    assert not after.is_error, after.content
            rows = [row async for row in ledger.export()]
        finally:
            await ledger.aclose()
    # Every call is in the database once: the spooled ones replayed after the first write that worked.
    assert len(rows) == 4
    assert len({row["id"] for row in rows}) == 4
    assert [row["outcome"] for row in sorted(rows, key=lambda row: row["ts"])] == ["ok", "ok", "error", "ok"]
    assert not spool.pending()


async def test_a_model_rate_limited_for_one_replica_is_skipped_by_another_through_postgres(
    settings: Settings, sim: Simulator, postgres_url: str
) -> None:
    config = personas.parse(
        {
            "default": "team",
            "personas": {
                "team": {
                    "models": ["openai/gpt-4o", "anthropic/claude-sonnet-4"],
                    "rank_by": [],
                    "fallback": {"cooldown_seconds": 60},
                }
            },
        }
    )
    one = await PostgresLedger.open(postgres_url)
    other = await PostgresLedger.open(postgres_url)
    try:
        sim.model_faults["openai/gpt-4o"] = Fault(status=429, retry_after=30, provider_code=429)
        async with Client(build_server(settings, personas=config, audit=one)) as replica:
            first = await replica.call_tool("create_chat_completion", {"messages": HELLO})
        assert not first.is_error and first.structured_content is not None
        assert first.structured_content["routing"]["attempts"][0]["status"] == 429
        sent_before = sim.count("/chat/completions")
        async with Client(build_server(settings, personas=config, audit=other)) as replica:
            second = await replica.call_tool("create_chat_completion", {"messages": HELLO})
        assert not second.is_error and second.structured_content is not None
        routing = second.structured_content["routing"]
        assert {"model": "openai/gpt-4o", "reason": "cooling_down"}.items() <= routing["exclusions"][0].items()
        later = [r.body for r in sim.requests if r.path == "/chat/completions"][sent_before:]
        assert later and all("openai/gpt-4o" not in [body["model"], *body.get("models", [])] for body in later)
    finally:
        await one.aclose()
        await other.aclose()
