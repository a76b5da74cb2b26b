"""Shared fixtures: a simulated OpenRouter on a real loopback HTTP server, and MCP clients for it."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import SecretStr

from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Simulator, serve_in_thread
from openrouter_mcp.state import AppState

# The throwaway PostgreSQL server's fixtures, defined beside the code that runs it.
from tests.postgres import postgres_cluster, postgres_url  # noqa: F401

#: A fresh fake key per run; tests assert it never shows up anywhere.
TEST_KEY = "sk-or-v1-" + secrets.token_hex(24)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _throwaway_audit_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Servers the tests start record into a database of their own, never into the user's audit log."""
    path = tmp_path_factory.mktemp("audit") / "audit.sqlite3"
    previous = os.environ.get("OPENROUTER_MCP_AUDIT_DB")
    os.environ["OPENROUTER_MCP_AUDIT_DB"] = str(path)
    yield path
    if previous is None:
        del os.environ["OPENROUTER_MCP_AUDIT_DB"]
    else:
        os.environ["OPENROUTER_MCP_AUDIT_DB"] = previous


@pytest.fixture(autouse=True)
def _audit_db_per_test(_throwaway_audit_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers a test starts get a database of their own: the ledger shares cooldowns and budgets between the
    processes on one file, and a model cooled down in one test must not be skipped in the next."""
    path = tmp_path_factory.mktemp("audit") / "audit.sqlite3"
    os.environ["OPENROUTER_MCP_AUDIT_DB"] = str(path)
    yield
    os.environ["OPENROUTER_MCP_AUDIT_DB"] = str(_throwaway_audit_db)


@pytest.fixture(scope="session")
def shared_sim() -> Simulator:
    return Simulator(api_key=TEST_KEY)


@pytest.fixture(scope="session")
def upstream_url(shared_sim: Simulator) -> Iterator[str]:
    """Base URL (".../api/v1") of the simulator served by uvicorn on 127.0.0.1, for the whole session."""
    with serve_in_thread(shared_sim) as url:
        yield url


@pytest.fixture
def sim(shared_sim: Simulator, upstream_url: str) -> Iterator[Simulator]:
    """The running simulator, with faults and the request log cleared before and after each test."""
    shared_sim.reset()
    yield shared_sim
    shared_sim.reset()


@pytest.fixture
def settings(upstream_url: str) -> Settings:
    return Settings(api_key=SecretStr(TEST_KEY), base_url=upstream_url, read_timeout=10.0, heartbeat_interval=0.05)


@pytest.fixture
def server(settings: Settings, sim: Simulator) -> MCPServer[AppState]:
    return build_server(settings)


@pytest.fixture
async def client(server: MCPServer[AppState]) -> AsyncIterator[Client]:
    """The real MCP client connected in memory to the server, which talks HTTP to the simulator."""
    async with Client(server) as connected:
        yield connected
