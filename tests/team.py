"""A token-protected team server for tests: two users' tokens, the tokens file, and a demo server using them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from openrouter_mcp.serving.auth import new_token
from tests.processes import ServerProcess, http_server, server_env

ALICE, ALICE_HASH = new_token()
BOB, BOB_HASH = new_token()


def tokens_toml() -> str:
    return (
        f'[[tokens]]\nuser = "alice"\nsha256 = "{ALICE_HASH}"\n\n'
        f'[[tokens]]\nuser = "bob"\nsha256 = "{BOB_HASH}"\npersonas = ["default"]\n'
    )


def write_tokens(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


#: A server subprocess: its base URL, and its log so far (`log()`, `wait_for_log(text)`).
Served = ServerProcess


def serve(tmp_path: Path, transport: str, *args: str) -> Iterator[Served]:
    """`python -m openrouter_mcp --transport T --demo --auth-tokens FILE ARGS` on a free loopback port, until SIGTERM.

    Sync and thread-drained, so one server can serve a whole module. Ready when uvicorn says so.
    """
    tokens = write_tokens(tmp_path / "tokens.toml", tokens_toml())
    args = ("--demo", "--auth-tokens", str(tokens), *args)
    with http_server(*args, env=server_env(None), transport=transport) as served:
        yield served
    served.assert_exited_cleanly()
    log = served.log()
    assert ALICE not in log and BOB not in log
