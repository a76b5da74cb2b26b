"""Serving a team over HTTP: bearer tokens, failure reporting, refusing unsafe start-ups, request limits.

In process: the tokens file checks, the verifier, the failure reporter around the real SDK app, and the
caller's identity as a tool sees it. In subprocesses (`python -m openrouter_mcp --demo`, so no upstream is
needed): the real SDK client over streamable HTTP and SSE with a token, raw requests for the refusals
(401, 413, 421, 403), the stateless mode, and start-ups that must fail with status 2 before binding.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.types import TextContent

from openrouter_mcp.__main__ import http_options, parse_args
from openrouter_mcp.audit.log import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.server import build_server
from openrouter_mcp.serving.auth import (
    AuthFailureReporter,
    HashedTokenVerifier,
    Identity,
    TokenEntry,
    current_identity,
    hash_token,
    load_tokens,
    main_hash_token,
    new_token,
    parse_tokens,
)
from openrouter_mcp.serving.http import exposure_problem
from tests.processes import SERVER, STARTUP_TIMEOUT, free_port, server_env
from tests.team import (
    ALICE,
    ALICE_HASH,
    BOB,
    BOB_HASH,
    INITIALIZE,
    MCP_HEADERS,
    Served,
    serve,
    tokens_toml,
    write_tokens,
)

pytestmark = pytest.mark.anyio

#: Small, so an oversized body is cheap to send; the SDK client's own messages stay far below it.
MAX_REQUEST_BYTES = 64 * 1024
# ------------------------------------------------------------------------------------------------
# The tokens file
# ------------------------------------------------------------------------------------------------


def test_a_tokens_file_gives_each_hash_its_user_and_personas(tmp_path: Path) -> None:
    entries = load_tokens(write_tokens(tmp_path / "tokens.toml", tokens_toml()), known_personas={"default"})
    assert entries == [
        TokenEntry("alice", ALICE_HASH, None),
        TokenEntry("bob", BOB_HASH, frozenset({"default"})),
    ]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_tokens_file_other_users_can_access_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = write_tokens(tmp_path / "tokens.toml", tokens_toml(), mode)
    with pytest.raises(ConfigurationError) as caught:
        load_tokens(path)
    assert str(path) in caught.value.message
    assert f"chmod 600 {path}" in caught.value.message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"sha256": "a" * 64}, "tokens[1]: field 'user': required"),
        ({"user": "", "sha256": "a" * 64}, "tokens[1]: field 'user': required"),
        ({"user": "carol"}, "tokens[1]: field 'sha256': required"),
        ({"user": "carol", "sha256": "abc"}, "tokens[1]: field 'sha256': must be 64 hex digits"),
        ({"user": "carol", "sha256": "z" * 64}, "tokens[1]: field 'sha256': must be 64 hex digits"),
        ({"user": "carol", "sha256": "a" * 64, "personas": "default"}, "field 'personas': must be a list"),
        ({"user": "carol", "sha256": "a" * 64, "personas": []}, "field 'personas': an empty list"),
        ({"user": "carol", "sha256": "a" * 64, "personas": ["nope"]}, "unknown persona(s) 'nope'; defined: default"),
        ({"user": "carol", "sha256": "a" * 64, "role": "admin"}, "field 'role': unknown field"),
        ({"user": "carol", "sha256": "a" * 64, "token": "secret"}, "never the token"),
        ({"user": "carol", "sha256": ALICE_HASH.upper()}, "tokens[1]: field 'sha256': the same hash as tokens[0]"),
    ],
)
def test_a_bad_token_entry_is_refused_naming_the_file_entry_field_and_problem(
    entry: dict[str, Any], expected: str
) -> None:
    raw = {"tokens": [{"user": "alice", "sha256": ALICE_HASH}, entry]}
    with pytest.raises(ConfigurationError) as caught:
        parse_tokens(raw, source="team.toml", known_personas={"default"})
    assert expected in caught.value.message
    assert caught.value.message.startswith("team.toml: tokens[1]")
    assert "secret" not in caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"), [("", "no [[tokens]] entries"), ("tokens = [", "not valid TOML"), ("x = 1", "'x'")]
)
def test_a_tokens_file_that_is_empty_or_not_toml_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected.replace("[", r"\[")):
        load_tokens(write_tokens(tmp_path / "tokens.toml", text))


def test_hash_token_prints_a_fresh_token_once_and_an_entry_that_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_hash_token(["--user", "carol", "--persona", "default"]) == 0
    lines = capsys.readouterr().out.splitlines()
    token = next(line for line in lines if line and not line.startswith("#"))
    entry = "\n".join(lines[lines.index("[[tokens]]") :])
    assert token not in entry  # only the hash goes in the file
    loaded = load_tokens(write_tokens(tmp_path / "tokens.toml", entry), known_personas={"default"})
    assert loaded == [TokenEntry("carol", hash_token(token), frozenset({"default"}))]
    assert new_token()[0] != new_token()[0]


@pytest.mark.slow
def test_the_hash_token_subcommand_runs_from_the_command_line() -> None:
    done = subprocess.run([*SERVER, "hash-token", "--user", "dave"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert 'user = "dave"' in done.stdout
    assert "sha256 = " in done.stdout


# ------------------------------------------------------------------------------------------------
# The verifier, the failure reporter and the identity, in process
# ------------------------------------------------------------------------------------------------


def verifier(failures: list[str] | None = None) -> HashedTokenVerifier:
    entries = [TokenEntry("alice", ALICE_HASH, None), TokenEntry("bob", BOB_HASH, frozenset({"default"}))]
    return HashedTokenVerifier(entries, on_failure=None if failures is None else failures.append)


async def test_the_verifier_accepts_a_listed_token_as_its_user_with_persona_scopes() -> None:
    alice = await verifier().verify_token(ALICE)
    bob = await verifier().verify_token(BOB)
    assert alice is not None and bob is not None
    assert (alice.client_id, alice.scopes, alice.token) == ("alice", ["persona:*"], ALICE)
    assert (bob.client_id, bob.scopes) == ("bob", ["persona:default"])


async def test_the_verifier_refuses_an_unknown_token_and_reports_it_without_the_token() -> None:
    failures: list[str] = []
    assert await verifier(failures).verify_token("ormcp_guess") is None
    assert await verifier(failures).verify_token(ALICE_HASH) is None  # the hash itself is no token
    assert failures == ["unknown token", "unknown token"]


async def test_a_refused_request_is_logged_and_recorded_in_the_servers_ledger_without_the_token(
    settings: Settings, tmp_path: Path
) -> None:
    db = tmp_path / "audit" / "audit.sqlite3"
    failures: list[str] = []
    checker = verifier(failures)
    auth = AuthSettings(issuer_url="http://127.0.0.1:1", resource_server_url=None)
    build_server(settings, token_verifier=checker, auth=auth, audit=lambda: AuditLog(db), transport="streamable-http")
    assert await checker.verify_token("ormcp_guess") is None
    assert failures == ["unknown token"]  # the log line's callback still runs, first
    with anyio.fail_after(10):
        while not db.exists() or not (rows := AuditLog(db).tail()):
            await anyio.sleep(0.01)
    [row] = rows
    assert (row["user"], row["tool"], row["outcome"], row["error"], row["transport"]) == (
        "(unauthenticated)", "(authentication)", "refused", "unknown token", "streamable-http",
    )  # fmt: skip
    assert "ormcp_guess" not in json.dumps(row)


def test_the_identity_comes_from_the_requests_access_token_and_is_none_without_one() -> None:
    assert current_identity() is None

    def as_user(scopes: list[str]) -> Identity | None:
        marker = auth_context_var.set(AuthenticatedUser(AccessToken(token="t", client_id="bob", scopes=scopes)))
        try:
            return current_identity()
        finally:
            auth_context_var.reset(marker)

    assert as_user(["persona:*"]) == Identity("bob", None)
    assert as_user(["persona:default", "persona:frugal"]) == Identity("bob", frozenset({"default", "frugal"}))
    assert as_user([]) == Identity("bob", frozenset())


def auth_settings() -> AuthSettings:
    return AuthSettings(issuer_url="http://127.0.0.1:8000", resource_server_url=None)


@asynccontextmanager
async def in_process_app(failures: list[str]) -> AsyncIterator[httpx2.AsyncClient]:
    """The real server's streamable HTTP app with tokens on, wrapped as `_serve_http` wraps it, lifespan running."""
    checker = verifier(failures)
    server = build_server(Settings(), token_verifier=checker, auth=auth_settings())
    app = server.streamable_http_app()
    transport = httpx2.ASGITransport(app=AuthFailureReporter(app, checker.on_failure))
    async with app.router.lifespan_context(app):
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            yield http


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing or invalid token"),
        ("Basic YWxpY2U6eA==", "missing or invalid token"),
        ("Bearer ", "unknown token"),
        ("Bearer ormcp_wrong", "unknown token"),
    ],
)
async def test_each_refused_request_is_reported_exactly_once_with_its_reason(
    authorization: str | None, reason: str
) -> None:
    failures: list[str] = []
    headers = MCP_HEADERS | ({"Authorization": authorization} if authorization else {})
    with anyio.fail_after(10):
        async with in_process_app(failures) as http:
            response = await http.post("/mcp", json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert failures == [reason]


async def test_an_accepted_request_reports_no_failure() -> None:
    failures: list[str] = []
    with anyio.fail_after(10):
        async with in_process_app(failures) as http:
            headers = MCP_HEADERS | {"Authorization": f"Bearer {BOB}"}
            response = await http.post("/mcp", json=INITIALIZE, headers=headers)
    assert response.status_code == 200
    assert failures == []


async def test_a_tool_sees_the_callers_identity_over_streamable_http() -> None:
    """`current_identity()` inside a tool handler: the SDK carries the request's context to it."""
    server = MCPServer("whoami", token_verifier=verifier(), auth=auth_settings())

    @server.tool()
    def whoami() -> str:
        identity = current_identity()
        assert identity is not None
        personas = None if identity.personas is None else sorted(identity.personas)
        return json.dumps({"user": identity.user, "personas": personas})

    app = server.streamable_http_app()
    base = "http://127.0.0.1:8000"
    with anyio.fail_after(10):
        async with app.router.lifespan_context(app):
            cases: list[tuple[str, dict[str, Any]]] = [
                (BOB, {"user": "bob", "personas": ["default"]}),
                (ALICE, {"user": "alice", "personas": None}),  # any persona
            ]
            for token, expected in cases:
                headers = {"Authorization": f"Bearer {token}"}
                transport = httpx2.ASGITransport(app=app)
                async with httpx2.AsyncClient(transport=transport, base_url=base, headers=headers) as http:
                    async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
                        result = await client.call_tool("whoami", {})
                block = result.content[0]
                assert isinstance(block, TextContent)
                assert json.loads(block.text) == expected


# ------------------------------------------------------------------------------------------------
# Start-up refusals
# ------------------------------------------------------------------------------------------------


def run_to_exit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER, *args, "--port", str(free_port())],
        env=env or server_env(None),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )


@pytest.mark.slow
def test_a_server_with_a_tokens_file_others_can_read_exits_2_saying_how_to_fix_it(tmp_path: Path) -> None:
    path = write_tokens(tmp_path / "tokens.toml", tokens_toml(), 0o644)
    done = run_to_exit("--transport", "streamable-http", "--demo", "--auth-tokens", str(path))
    assert done.returncode == 2
    assert f"tokens file {path} is accessible to other users (mode 644)" in done.stderr
    assert "Uvicorn running" not in done.stderr


@pytest.mark.slow
def test_a_tokens_file_from_the_environment_is_checked_the_same_way(tmp_path: Path) -> None:
    path = write_tokens(tmp_path / "tokens.toml", tokens_toml().replace('"default"', '"ghost"'))
    done = run_to_exit("--transport", "sse", "--demo", env=server_env(None, OPENROUTER_MCP_TOKENS=str(path)))
    assert done.returncode == 2
    assert "tokens[1]: field 'personas': unknown persona(s) 'ghost'" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
def test_a_non_loopback_host_without_tokens_exits_2_before_binding(transport: str) -> None:
    done = run_to_exit("--transport", transport, "--host", "0.0.0.0", "--demo")
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in done.stderr
    assert "--auth-tokens" in done.stderr and "--insecure-no-auth" in done.stderr
    assert "Uvicorn running" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "authenticated", "refused"),
    [
        (["--transport", "streamable-http", "--host", "0.0.0.0"], False, True),
        (["--transport", "sse", "--host", "10.1.2.3"], False, True),
        (["--transport", "streamable-http", "--host", "mcp.example.com"], False, True),
        (["--transport", "streamable-http", "--host", "0.0.0.0", "--insecure-no-auth"], False, False),
        (["--transport", "streamable-http", "--host", "0.0.0.0"], True, False),
        (["--transport", "streamable-http", "--host", "127.0.0.2"], False, False),
        (["--transport", "streamable-http", "--host", "::1"], False, False),
        (["--transport", "streamable-http", "--host", "localhost"], False, False),
        (["--host", "0.0.0.0"], False, False),  # stdio binds nothing
    ],
)
def test_only_an_unauthenticated_non_loopback_http_server_is_refused(
    argv: list[str], authenticated: bool, refused: bool
) -> None:
    assert (exposure_problem(http_options(parse_args(argv)), authenticated=authenticated) is not None) is refused


# ------------------------------------------------------------------------------------------------
# Servers in subprocesses
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Streamable HTTP with tokens, a small body limit and one extra allowed browser origin."""
    yield from serve(
        tmp_path_factory.mktemp("team"),
        "streamable-http",
        "--max-request-bytes",
        str(MAX_REQUEST_BYTES),
        "--allowed-origin",
        "https://app.example.com",
    )


@pytest.fixture(scope="module")
def stateless_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("stateless"), "streamable-http", "--stateless")


@pytest.fixture(scope="module")
def sse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("sse"), "sse")


@asynccontextmanager
async def connected(served: Served, token: str, transport: str = "streamable-http") -> AsyncIterator[Client]:
    """The SDK client, sending `Authorization: Bearer token` on every request."""
    headers = {"Authorization": f"Bearer {token}"}
    if transport == "sse":
        async with Client(sse_client(f"{served.url}/sse", headers=headers)) as client:
            yield client
        return
    async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
        async with Client(streamable_http_client(f"{served.url}/mcp", http_client=http)) as client:
            yield client


async def lists_tools_and_chats(client: Client) -> None:
    listed = await client.list_tools()
    assert "create_chat_completion" in {tool.name for tool in listed.tools}
    args = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    result = await client.call_tool("create_chat_completion", args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["model"] == "openai/gpt-4o-mini"


async def raw_post(served: Served, headers: dict[str, str], body: bytes | None = None) -> httpx2.Response:
    content = json.dumps(INITIALIZE).encode() if body is None else body
    async with httpx2.AsyncClient(timeout=10.0) as http:
        return await http.post(f"{served.url}/mcp", content=content, headers=MCP_HEADERS | headers)


@pytest.mark.slow
async def test_a_request_without_a_token_gets_401_and_is_logged(team_server: Served) -> None:
    with anyio.fail_after(15):
        response = await raw_post(team_server, {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "refused an HTTP request: missing or invalid token" in team_server.wait_for_log("missing or invalid")


@pytest.mark.slow
async def test_a_request_with_a_wrong_token_gets_401_and_is_logged_without_the_token(team_server: Served) -> None:
    with anyio.fail_after(15):
        response = await raw_post(team_server, {"Authorization": "Bearer ormcp_not-a-real-token"})
    assert response.status_code == 401
    log = team_server.wait_for_log("refused an HTTP request: unknown token")
    assert "refused an HTTP request: unknown token" in log
    assert "ormcp_not-a-real-token" not in log


@pytest.mark.slow
@pytest.mark.parametrize("token", [ALICE, BOB], ids=["any-persona", "one-persona"])
async def test_a_client_with_a_valid_token_lists_the_tools_and_calls_one(team_server: Served, token: str) -> None:
    with anyio.fail_after(20):
        async with connected(team_server, token) as client:
            await lists_tools_and_chats(client)


@pytest.mark.slow
async def test_a_client_with_a_valid_token_works_over_sse_and_without_one_gets_401(sse_server: Served) -> None:
    with anyio.fail_after(20):
        async with httpx2.AsyncClient(timeout=10.0) as http:
            assert (await http.get(f"{sse_server.url}/sse")).status_code == 401
        async with connected(sse_server, ALICE, "sse") as client:
            await lists_tools_and_chats(client)


@pytest.mark.slow
async def test_an_oversized_request_body_gets_413(team_server: Served) -> None:
    body = json.dumps(INITIALIZE).encode() + b" " * MAX_REQUEST_BYTES
    with anyio.fail_after(15):
        response = await raw_post(team_server, {"Authorization": f"Bearer {ALICE}"}, body)
    assert response.status_code == 413


@pytest.mark.slow
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),  # DNS rebinding: a name that resolves to us, but is not ours
        ({"Origin": "http://evil.example"}, 403),  # a web page elsewhere, calling through the browser
        ({"Origin": "https://app.example.com"}, 200),  # allowed with --allowed-origin
        ({}, 200),
    ],
)
async def test_host_and_origin_headers_are_checked_even_with_a_valid_token(
    team_server: Served, headers: dict[str, str], status: int
) -> None:
    with anyio.fail_after(15):
        response = await raw_post(team_server, {"Authorization": f"Bearer {ALICE}", **headers})
    assert response.status_code == status


@pytest.mark.slow
async def test_a_stateless_server_answers_separate_connections_without_sessions(stateless_server: Served) -> None:
    with anyio.fail_after(30):
        response = await raw_post(stateless_server, {"Authorization": f"Bearer {ALICE}"})
        assert response.status_code == 200
        assert "mcp-session-id" not in response.headers
        for token in (ALICE, BOB):
            async with connected(stateless_server, token) as client:
                await lists_tools_and_chats(client)
        assert (await raw_post(stateless_server, {})).status_code == 401


@pytest.mark.slow
def test_the_servers_log_no_token(team_server: Served, stateless_server: Served, sse_server: Served) -> None:
    """The fixtures check again on teardown, after every request has been logged."""
    for served in (team_server, stateless_server, sse_server):
        assert ALICE not in served.log() and BOB not in served.log()
