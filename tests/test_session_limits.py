"""One client cannot lock everyone out: sessions per client, idle sessions, slow and numerous connections.

In process: the real server's HTTP app as `serve_http` builds it (SDK session manager running), driven
by raw JSON-RPC `initialize` requests through httpx2's ASGI transport, with and without tokens. In
subprocesses (`python -m openrouter_mcp --demo` under uvicorn on loopback): the same flood, idle closing
and an SSE stream over real HTTP, and a raw socket that drips its request headers.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.server.auth.settings import AuthSettings
from starlette.types import ASGIApp

from openrouter_mcp.__main__ import http_options, parse_args
from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.serving.auth import HashedTokenVerifier, TokenEntry
from openrouter_mcp.serving.connections import KEEP_ALIVE_TIMEOUT, MAX_HEAD_BYTES, RequestDeadlineH11Protocol
from openrouter_mcp.serving.http import HttpOptions, http_app, uvicorn_config
from openrouter_mcp.serving.sessions import SessionLimits, live_sessions
from tests.team import ALICE, ALICE_HASH, BOB, BOB_HASH, INITIALIZE, MCP_HEADERS, Served, serve

# slow: server processes, and deliberate waits for idle and header timeouts.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BASE = "http://127.0.0.1:8000"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def app_running(options: HttpOptions, *, tokens: bool = True) -> AsyncIterator[ASGIApp]:
    """The app `serve_http` would serve for `options` (tokens for alice and bob), its session manager running."""
    verifier = None
    if tokens:
        verifier = HashedTokenVerifier([TokenEntry("alice", ALICE_HASH), TokenEntry("bob", BOB_HASH)])
        auth = AuthSettings(issuer_url=BASE, resource_server_url=None)
        server = build_server(Settings(), token_verifier=verifier, auth=auth)
    else:
        server = build_server(Settings())
    app = http_app(server, options, verifier)
    async with server.session_manager.run():
        yield app


@asynccontextmanager
async def reaching(app: ASGIApp, address: str = "127.0.0.1") -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client for `app` in process, its requests coming from `address` (no packet is sent)."""
    transport = httpx2.ASGITransport(app=app, client=(address, 40000))
    async with httpx2.AsyncClient(transport=transport, base_url=BASE, timeout=10.0) as http:
        yield http


@asynccontextmanager
async def in_process(options: HttpOptions, *, tokens: bool = True) -> AsyncIterator[httpx2.AsyncClient]:
    async with app_running(options, tokens=tokens) as app, reaching(app) as http:
        yield http


async def initialize(http: httpx2.AsyncClient, headers: dict[str, str] | None = None) -> httpx2.Response:
    return await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | (headers or {}))


def streamable(**limits: float) -> HttpOptions:
    return HttpOptions(transport="streamable-http", **limits)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# In process
# ------------------------------------------------------------------------------------------------


async def test_one_user_flooding_sessions_is_refused_at_the_cap_while_another_user_still_initializes() -> None:
    cap = 3
    with anyio.fail_after(20):
        async with in_process(streamable(max_sessions_per_client=cap, session_idle_timeout=120)) as http:
            opened = [await initialize(http, bearer(ALICE)) for _ in range(cap)]
            assert [response.status_code for response in opened] == [200] * cap
            refused = await initialize(http, bearer(ALICE))
            other = await initialize(http, bearer(BOB))

            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "120"
            assert "mcp-session-id" not in refused.headers
            error = refused.json()
            assert error["jsonrpc"] == "2.0" and error["id"] is None
            message = error["error"]["message"]
            assert "user alice holds 3, the limit per client is 3" in message
            assert "DELETE" in message and "Mcp-Session-Id" in message and "after 120 s" in message
            assert other.status_code == 200 and other.headers["mcp-session-id"]

            # Closing one of its sessions gives the user its place back.
            closed = await http.delete(
                "/mcp", headers=MCP_HEADERS | bearer(ALICE) | {"mcp-session-id": opened[0].headers["mcp-session-id"]}
            )
            assert closed.status_code == 200
            assert (await initialize(http, bearer(ALICE))).status_code == 200
            assert (await initialize(http, bearer(ALICE))).status_code == 429


async def test_without_tokens_sessions_are_counted_per_client_address() -> None:
    options = streamable(max_sessions_per_client=2)
    with anyio.fail_after(20):
        async with app_running(options, tokens=False) as app:
            async with reaching(app, "127.0.0.2") as flooder, reaching(app, "127.0.0.3") as neighbour:
                statuses = [(await initialize(flooder)).status_code for _ in range(3)]
                refused = await initialize(flooder)
                welcomed = await initialize(neighbour)
    assert statuses == [200, 200, 429]
    assert "address 127.0.0.2 holds 2" in refused.json()["error"]["message"]
    assert welcomed.status_code == 200


async def test_requests_that_open_no_session_hold_no_place() -> None:
    options = streamable(max_sessions_per_client=1)
    with anyio.fail_after(20):
        async with in_process(options) as http:
            # Refused by the SDK (a notification cannot open a session; a bad body): no session, no place kept.
            notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            bad = await http.post("/mcp", json=notification, headers=MCP_HEADERS | bearer(ALICE))
            garbage = await http.post("/mcp", content=b"{not json", headers=MCP_HEADERS | bearer(ALICE))
            assert bad.status_code >= 400 and garbage.status_code >= 400
            session = await initialize(http, bearer(ALICE))
            assert session.status_code == 200
            # Requests on an open session do not count as new ones.
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            in_session = MCP_HEADERS | bearer(ALICE) | {"mcp-session-id": session.headers["mcp-session-id"]}
            for _ in range(3):
                assert (await http.post("/mcp", json=ping, headers=in_session)).status_code == 200
            # Without a token the SDK answers 401, uncounted: the cap never speaks for an unknown caller.
            assert (await initialize(http)).status_code == 401


class _Seen(logging.Handler):
    """Sets `event` when a log record's message contains `text`."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def idle_closed() -> Iterator[_Seen]:
    """Set when the SDK's session manager says it closed a session for being idle."""
    seen = _Seen("idle timeout")
    manager_log = logging.getLogger("mcp.server.streamable_http_manager")
    level = manager_log.level
    manager_log.addHandler(seen)
    manager_log.setLevel(logging.INFO)
    yield seen
    manager_log.removeHandler(seen)
    manager_log.setLevel(level)


async def test_an_idle_session_is_closed_after_the_timeout_answers_404_and_frees_its_place(idle_closed: _Seen) -> None:
    options = streamable(max_sessions_per_client=1, session_idle_timeout=0.3)
    with anyio.fail_after(20):
        async with in_process(options) as http:
            started = time.monotonic()
            session = await initialize(http, bearer(ALICE))
            assert session.status_code == 200
            assert (await initialize(http, bearer(ALICE))).status_code == 429
            with anyio.fail_after(10):
                await idle_closed.event.wait()
            waited = time.monotonic() - started
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            stale = MCP_HEADERS | bearer(ALICE) | {"mcp-session-id": session.headers["mcp-session-id"]}
            gone = await http.post("/mcp", json=ping, headers=stale)
            again = await initialize(http, bearer(ALICE))
    assert waited >= 0.3
    assert gone.status_code == 404  # the spec's answer: the client starts a new session
    assert again.status_code == 200


def test_session_limits_count_places_being_opened_and_forget_sessions_that_are_gone() -> None:
    alive = {"s1", "s2"}
    limits = SessionLimits(2, retry_after=60, live=alive.__contains__)
    assert limits.try_open("user a") and limits.try_open("user a")
    assert not limits.try_open("user a")  # two opening at once fill the cap
    limits.opened("user a", "s1")
    limits.abandoned("user a")
    assert limits.held("user a") == 1 and limits.held("user b") == 0
    assert limits.try_open("user a")
    limits.opened("user a", "s2")
    assert not limits.try_open("user a")
    alive.discard("s1")  # ended inside the SDK
    assert limits.held("user a") == 1
    assert limits.try_open("user a")
    with pytest.raises(ValueError):
        SessionLimits(0, retry_after=60)


# ------------------------------------------------------------------------------------------------
# Options and uvicorn's settings
# ------------------------------------------------------------------------------------------------


def test_the_session_and_connection_flags_become_typed_options_with_sensible_defaults() -> None:
    args = parse_args(
        [
            "--transport", "streamable-http", "--max-sessions-per-client", "5", "--session-idle-timeout", "42.5",
            "--header-timeout", "3", "--max-connections", "100",
        ]
    )  # fmt: skip
    options = http_options(args)
    assert (options.max_sessions_per_client, options.session_idle_timeout) == (5, 42.5)
    assert (options.header_timeout, options.max_connections) == (3.0, 100)
    defaults = http_options(parse_args([]))
    assert defaults.max_sessions_per_client == 32
    assert defaults.session_idle_timeout == 300.0  # well under the SDK's 30 minutes
    assert (defaults.header_timeout, defaults.max_connections) == (10.0, 512)


@pytest.mark.parametrize(
    "flag", ["--max-sessions-per-client", "--session-idle-timeout", "--header-timeout", "--max-connections"]
)
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "many"])
def test_a_limit_that_is_not_a_positive_number_is_refused(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args([flag, value])
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err


def test_uvicorn_is_configured_with_the_connection_bounds() -> None:
    options = HttpOptions(transport="streamable-http", header_timeout=2.5, max_connections=64)
    config = uvicorn_config(object(), options)  # type: ignore[arg-type]
    assert config.limit_concurrency == 64
    assert config.timeout_keep_alive == KEEP_ALIVE_TIMEOUT
    assert config.h11_max_incomplete_event_size == MAX_HEAD_BYTES
    assert isinstance(config.http, type) and issubclass(config.http, RequestDeadlineH11Protocol)
    assert config.http.timeout == 2.5


# ------------------------------------------------------------------------------------------------
# Subprocesses on loopback
# ------------------------------------------------------------------------------------------------

HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Streamable HTTP with tokens, 2 sessions per user, 1 s idle timeout and a 1 s header deadline."""
    yield from serve(
        tmp_path_factory.mktemp("guarded"),
        "streamable-http", "--max-sessions-per-client", "2", "--session-idle-timeout", "1",
        "--header-timeout", str(HEADER_TIMEOUT),
    )  # fmt: skip


@pytest.fixture(scope="module")
def guarded_sse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("guarded-sse"), "sse", "--max-sessions-per-client", "1")


async def test_over_real_http_a_flooding_user_gets_429_and_another_user_still_initializes(
    guarded_server: Served,
) -> None:
    with anyio.fail_after(20):
        async with httpx2.AsyncClient(base_url=guarded_server.url, timeout=10.0) as http:
            flood = [await initialize(http, bearer(ALICE)) for _ in range(3)]
            other = await initialize(http, bearer(BOB))
            for response in flood[:2]:  # leave nothing open for the next test
                await http.delete(
                    "/mcp", headers=MCP_HEADERS | bearer(ALICE) | {"mcp-session-id": response.headers["mcp-session-id"]}
                )
            await http.delete(
                "/mcp", headers=MCP_HEADERS | bearer(BOB) | {"mcp-session-id": other.headers["mcp-session-id"]}
            )
    assert [response.status_code for response in flood] == [200, 200, 429]
    assert int(flood[2].headers["retry-after"]) >= 1
    assert "the limit per client is 2" in json.loads(flood[2].text)["error"]["message"]
    assert other.status_code == 200
    assert "refused a new session for user alice" in guarded_server.wait_for_log("refused a new session")


async def test_over_real_http_an_idle_session_is_closed_and_then_answers_404(guarded_server: Served) -> None:
    with anyio.fail_after(25):
        async with httpx2.AsyncClient(base_url=guarded_server.url, timeout=10.0) as http:
            before = guarded_server.log().count("idle timeout")
            session = await initialize(http, bearer(BOB))
            session_id = session.headers["mcp-session-id"]
            log = await anyio.to_thread.run_sync(lambda: guarded_server.wait_for_log("idle timeout", before + 1))
            assert f"Session {session_id} idle timeout" in log
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            gone = await http.post(
                "/mcp", json=ping, headers=MCP_HEADERS | bearer(BOB) | {"mcp-session-id": session_id}
            )
    assert gone.status_code == 404


def drip(sock: socket.socket, data: bytes) -> float | None:
    """Send `data` a byte at a time, each after waiting up to 0.1 s for the server to close; seconds until it did.

    None if the server took every byte. Bounded: at most `len(data)` waits of 0.1 s.
    """
    sock.settimeout(0.1)
    started = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(1024) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    return None


def port_of(served: Served) -> int:
    return int(served.url.rsplit(":", 1)[1])


#: 100 bytes at one per 0.1 s: about 10 s, far past the 1 s deadline.
DRIP = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: " + b"a" * 100


def test_a_client_dripping_its_headers_is_disconnected_within_the_header_timeout(guarded_server: Served) -> None:
    with socket.create_connection(("127.0.0.1", port_of(guarded_server)), timeout=5) as sock:
        closed_after = drip(sock, DRIP[:100])
    assert closed_after is not None, "the server kept a connection dripping its headers for 10 s"
    assert HEADER_TIMEOUT * 0.9 <= closed_after < HEADER_TIMEOUT + 3
    assert "no complete request headers within 1 s" in guarded_server.wait_for_log("no complete request headers")


def test_a_kept_alive_connection_dripping_its_next_request_is_disconnected_too(guarded_server: Served) -> None:
    with socket.create_connection(("127.0.0.1", port_of(guarded_server)), timeout=5) as sock:
        sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 404")
        # uvicorn's keep-alive timer (5 s) restarts at every byte; the head deadline does not.
        closed_after = drip(sock, DRIP[:100])
    assert closed_after is not None and closed_after < HEADER_TIMEOUT + 3


def test_a_client_dripping_its_body_is_disconnected_within_the_timeout_after_its_headers(
    guarded_server: Served,
) -> None:
    head = (
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nAuthorization: Bearer {ALICE}\r\n"
        "Content-Length: 500\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port_of(guarded_server)), timeout=5) as sock:
        sock.sendall(head)
        closed_after = drip(sock, b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {' + b" " * 100)
    assert closed_after is not None, "the server kept a connection dripping its body for 10 s"
    assert HEADER_TIMEOUT * 0.9 <= closed_after < HEADER_TIMEOUT + 3
    assert "no complete request body within 1 s" in guarded_server.wait_for_log("no complete request body")


def test_a_silent_connection_is_closed_within_the_header_timeout(guarded_server: Served) -> None:
    with socket.create_connection(("127.0.0.1", port_of(guarded_server)), timeout=5) as sock:
        sock.settimeout(HEADER_TIMEOUT + 3)
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - started >= HEADER_TIMEOUT * 0.9


async def test_over_sse_an_open_event_stream_holds_a_session_place_per_user(guarded_sse_server: Served) -> None:
    headers = {"Accept": "text/event-stream"}
    with anyio.fail_after(20):
        async with httpx2.AsyncClient(base_url=guarded_sse_server.url, timeout=10.0) as http:
            async with http.stream("GET", "/sse", headers=headers | bearer(ALICE)) as first:
                assert first.status_code == 200
                second = await http.get("/sse", headers=headers | bearer(ALICE))
                async with http.stream("GET", "/sse", headers=headers | bearer(BOB)) as other:
                    assert other.status_code == 200
    assert second.status_code == 429
    assert "a session ends when its event stream is closed" in second.json()["error"]["message"]


async def test_the_sdk_still_keeps_its_open_sessions_where_live_sessions_looks() -> None:
    """`live_sessions` reads the manager's `_server_instances` (it has no public view): pinned here."""
    server = build_server(Settings())
    app = server.streamable_http_app()
    live = live_sessions(server.session_manager)
    with anyio.fail_after(10):
        async with server.session_manager.run(), reaching(app) as http:
            session_id = (await initialize(http)).headers["mcp-session-id"]
            assert live(session_id)
            await http.delete("/mcp", headers=MCP_HEADERS | {"mcp-session-id": session_id})
            assert not live(session_id)


def test_the_readme_lists_each_session_and_connection_flag_with_its_real_default() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Serving a team over HTTP\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        cells[0].split()[0].strip("`"): cells[1].strip("`")
        for line in section.splitlines()
        if line.startswith("| `--") and (cells := [cell.strip() for cell in line.strip("|").split("|")])
    }
    defaults = vars(parse_args([]))
    for flag in ("--max-sessions-per-client", "--session-idle-timeout", "--header-timeout", "--max-connections"):
        assert float(rows[flag]) == defaults[flag.removeprefix("--").replace("-", "_")], flag


@pytest.fixture(scope="module")
def two_connection_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("two-connections"), "streamable-http", "--max-connections", "2")


def test_past_max_connections_a_request_gets_503(two_connection_server: Served) -> None:
    port = port_of(two_connection_server)
    request = b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as alone:
        alone.sendall(request)
        assert alone.recv(65536).startswith(b"HTTP/1.1 404")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5),
        socket.create_connection(("127.0.0.1", port), timeout=5) as crowded,
    ):
        crowded.sendall(request)
        assert crowded.recv(65536).startswith(b"HTTP/1.1 503")
