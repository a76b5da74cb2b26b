"""Frames that are not JSON-RPC messages get JSON-RPC's answer, and the server goes on serving.

Over stdio: a real server process (`--demo`) fed every kind of garbage line between valid requests, and a
hypothesis property: random lines, each answered with exactly one error, and a `ping` after them still answered.
Over streamable HTTP: the app `serve_http` serves, in process (SDK session manager running), through httpx2's
ASGI transport, with and without tokens.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import IO, Any

import anyio
import httpx2
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from mcp.server.auth.settings import AuthSettings
from mcp.types import INVALID_REQUEST, PARSE_ERROR

from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.serving.auth import HashedTokenVerifier, TokenEntry
from openrouter_mcp.serving.frames import frame_error
from openrouter_mcp.serving.http import SSE_MESSAGE_PATH, HttpOptions, http_app
from tests.processes import EXIT_TIMEOUT, SERVER, handshake_lines, server_env
from tests.team import ALICE, ALICE_HASH, INITIALIZE, MCP_HEADERS

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8000"


def ping(request_id: int | str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}).encode()


#: Every kind of garbage: the frame, the error code it gets, and the id that error carries.
GARBAGE: dict[str, tuple[bytes, int, int | str | None]] = {
    "invalid JSON": (b'{"jsonrpc": "2.0", "id": 1, "method": "ping"', PARSE_ERROR, None),
    "not JSON at all": (b"hello", PARSE_ERROR, None),
    "invalid UTF-8": (b"\xff\xfe\x00\x81", PARSE_ERROR, None),
    "a leading byte order mark": ("\ufeff".encode() + ping(40), PARSE_ERROR, None),
    "nesting past 1,000 levels": (b"[" * 1500 + b"]" * 1500, PARSE_ERROR, None),
    "nesting past 100,000 levels, unclosed": (b"[" * 100_000, PARSE_ERROR, None),
    "a request nested past 1,000 levels": (
        b'{"jsonrpc": "2.0", "id": 41, "method": "ping", "params": {"a": ' + b"[" * 1500 + b"]" * 1500 + b"}}",
        PARSE_ERROR,
        None,
    ),
    "jsonrpc 1.0": (b'{"jsonrpc": "1.0", "id": 42, "method": "ping"}', INVALID_REQUEST, 42),
    "no jsonrpc": (b'{"id": "x-43", "method": "ping"}', INVALID_REQUEST, "x-43"),
    "a boolean id": (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', INVALID_REQUEST, None),
    "a float id": (b'{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}', INVALID_REQUEST, None),
    "a whole float id": (b'{"jsonrpc": "2.0", "id": 44.0, "method": "ping"}', INVALID_REQUEST, None),
    "an object id": (b'{"jsonrpc": "2.0", "id": {"n": 1}, "method": "ping"}', INVALID_REQUEST, None),
    "a null id": (b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', INVALID_REQUEST, None),
    "params as an array": (b'{"jsonrpc": "2.0", "id": 45, "method": "ping", "params": [1]}', INVALID_REQUEST, 45),
    "a method that is no string": (b'{"jsonrpc": "2.0", "id": 46, "method": 7}', INVALID_REQUEST, 46),
    "a batch": (b"[" + ping(47) + b", " + ping(48) + b"]", INVALID_REQUEST, None),
    "an empty batch": (b"[]", INVALID_REQUEST, None),
    "an empty object": (b"{}", INVALID_REQUEST, None),
    "a number": (b"5", INVALID_REQUEST, None),
}


def test_every_kind_of_garbage_has_its_error_and_a_valid_message_has_none() -> None:
    for name, (frame, code, request_id) in GARBAGE.items():
        error = frame_error(frame)
        assert error is not None, name
        assert (error.error.code, error.id) == (code, request_id), name
    for valid in (ping(1), ping("a"), b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'):
        assert frame_error(valid) is None and frame_error(valid.decode()) is None
    assert frame_error(b'{"jsonrpc": "2.0", "id": 3, "result": {}}') is None  # a client's answer to our request


# --- stdio ---------------------------------------------------------------------------------------


class StdioServer:
    """A `--demo` server process on pipes: write lines, read its messages one by one, each wait bounded."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._partial = b""
        self._lines: list[bytes] = []

    @property
    def stdin(self) -> IO[bytes]:
        assert self.process.stdin is not None
        return self.process.stdin

    def send(self, *lines: bytes) -> None:
        self.stdin.write(b"".join(line + b"\n" for line in lines))
        self.stdin.flush()

    def next_message(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next message on stdout. Read raw: a line buffered in the pipe object is invisible to select.

        Raises:
            AssertionError: none came within `timeout` seconds, or stdout ended.
        """
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while not self._lines:
            ready = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]
            assert ready, f"no message within {timeout} s"
            chunk = os.read(self.process.stdout.fileno(), 65536)
            assert chunk, "the server closed stdout"
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self._lines += complete
        message: dict[str, Any] = json.loads(self._lines.pop(0))
        return message

    def messages_until_reply(self, request_id: int | str) -> list[dict[str, Any]]:
        """Every message up to and including the answer to `request_id`."""
        got: list[dict[str, Any]] = []
        while not got or got[-1].get("id") != request_id or "method" in got[-1]:
            got.append(self.next_message())
        return got


@contextmanager
def stdio_server() -> Iterator[StdioServer]:
    process = subprocess.Popen(
        [*SERVER, "--demo"], env=server_env(None), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        served = StdioServer(process)
        served.send(handshake_lines().rstrip(b"\n"))
        assert "result" in served.next_message()  # the handshake's answer
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(EXIT_TIMEOUT)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def errors_in(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message for message in messages if "error" in message]


@pytest.mark.slow
def test_every_kind_of_garbage_line_gets_its_error_on_stdio_and_the_ping_after_it_still_answers() -> None:
    with stdio_server() as served:
        for number, (name, (frame, code, request_id)) in enumerate(GARBAGE.items(), start=100):
            served.send(frame, ping(number))
            got = served.messages_until_reply(number)
            errors = errors_in(got)
            assert len(errors) == 1, (name, got)
            assert (errors[0]["error"]["code"], errors[0]["id"]) == (code, request_id), (name, errors)
            assert errors[0]["jsonrpc"] == "2.0" and errors[0]["error"]["message"], name
            assert got[-1] == {"jsonrpc": "2.0", "id": number, "result": {}}, name
        # At end of input, garbage read last is answered too, and the server exits on its own, cleanly.
        served.send(GARBAGE["a boolean id"][0], ping("last"))
        served.stdin.close()
        rest = served.messages_until_reply("last")
        assert len(errors_in(rest)) == 1 and rest[-1]["result"] == {}
        assert served.process.wait(EXIT_TIMEOUT * 4) == 0
        assert served.process.stderr is not None
        log = served.process.stderr.read().decode(errors="replace")
        assert "Traceback" not in log, log


#: JSON that is no JSON-RPC message: any JSON value, and objects that look like one with a part gone wrong.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
near_messages = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2.0, None]), "method": st.sampled_from(["ping", 7, None])},
    optional={"id": json_values, "params": json_values},
)
garbage_lines = st.one_of(
    st.binary(max_size=200).map(lambda data: data.replace(b"\n", b" ")),
    json_values.map(lambda value: json.dumps(value).encode()),
    near_messages.map(lambda value: json.dumps(value).encode()),
)


@pytest.mark.slow
def test_random_lines_each_get_one_error_answer_and_a_ping_after_them_still_answers() -> None:
    with stdio_server() as served:
        pings = iter(range(1000, 10**9))

        @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(garbage_lines, min_size=1, max_size=5))
        def check(lines: list[bytes]) -> None:
            # A blank line is no message (the reader skips it, unanswered); a line that happens to be a valid
            # message is left out.
            sent = [line for line in lines if not line.strip() or frame_error(line) is not None]
            garbage = [line for line in sent if line.strip()]
            number = next(pings)
            served.send(*sent, ping(number))
            got = served.messages_until_reply(number)
            assert len(errors_in(got)) == len(garbage), (lines, got)
            assert all(error["error"]["code"] in (PARSE_ERROR, INVALID_REQUEST) for error in errors_in(got))
            assert got[-1] == {"jsonrpc": "2.0", "id": number, "result": {}}

        check()
        assert served.process.poll() is None


# --- streamable HTTP -----------------------------------------------------------------------------


@asynccontextmanager
async def reaching_app(*, tokens: bool = False, stateless: bool = False) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client for the app `serve_http` serves, in process, its session manager running."""
    options = HttpOptions(transport="streamable-http", stateless=stateless)
    if tokens:
        verifier = HashedTokenVerifier([TokenEntry("alice", ALICE_HASH)])
        auth = AuthSettings(issuer_url=BASE, resource_server_url=None)
        server = build_server(Settings(), token_verifier=verifier, auth=auth)
        app = http_app(server, options, verifier)
    else:
        server = build_server(Settings())
        app = http_app(server, options)
    async with server.session_manager.run():
        transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx2.AsyncClient(transport=transport, base_url=BASE, timeout=10.0) as http:
            yield http


def sse_message(response: httpx2.Response) -> dict[str, Any]:
    """The one JSON-RPC message of a POST's answer, whether sent as JSON or as an SSE stream."""
    if response.headers["content-type"].startswith("application/json"):
        message: dict[str, Any] = response.json()
        return message
    data = [line.removeprefix("data:").strip() for line in response.text.splitlines() if line.startswith("data:")]
    messages: list[dict[str, Any]] = [json.loads(item) for item in data if item]
    assert len(messages) == 1, response.text
    return messages[0]


@pytest.mark.parametrize("stateless", [False, True], ids=["with sessions", "stateless"])
async def test_every_kind_of_garbage_body_gets_400_and_its_error_over_http_and_a_ping_still_answers(
    stateless: bool,
) -> None:
    with anyio.fail_after(30):
        async with reaching_app(stateless=stateless) as http:
            opened = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert opened.status_code == 200
            session = {"mcp-session-id": opened.headers["mcp-session-id"]} if not stateless else {}
            headers = MCP_HEADERS | session | {"mcp-protocol-version": "2025-06-18"}
            for number, (name, (frame, code, request_id)) in enumerate(GARBAGE.items(), start=100):
                for sent_headers in (headers, MCP_HEADERS):  # in a session, and opening none
                    refused = await http.post("/mcp", content=frame, headers=sent_headers)
                    assert refused.status_code == 400, (name, refused.text)
                    assert refused.headers["content-type"] == "application/json"
                    assert "mcp-session-id" not in refused.headers
                    error = refused.json()
                    assert error["jsonrpc"] == "2.0", name
                    assert (error["error"]["code"], error["id"]) == (code, request_id), (name, error)
                answered = await http.post("/mcp", content=ping(number), headers=headers)
                assert answered.status_code == 200, (name, answered.text)
                assert sse_message(answered) == {"jsonrpc": "2.0", "id": number, "result": {}}, name


async def test_a_garbage_body_without_a_valid_token_is_refused_401_before_it_is_read() -> None:
    with anyio.fail_after(30):
        async with reaching_app(tokens=True) as http:
            garbage = GARBAGE["a boolean id"][0]
            refused = await http.post("/mcp", content=garbage, headers=MCP_HEADERS | {"Authorization": "Bearer nope"})
            assert refused.status_code == 401
            answered = await http.post(
                "/mcp", content=garbage, headers=MCP_HEADERS | {"Authorization": f"Bearer {ALICE}"}
            )
            assert answered.status_code == 400 and answered.json()["error"]["code"] == INVALID_REQUEST


async def test_a_body_over_the_size_limit_is_left_to_the_sdk_which_answers_413() -> None:
    with anyio.fail_after(30):
        async with reaching_app() as http:
            too_big = b"[" * (HttpOptions().max_request_bytes + 10)
            refused = await http.post("/mcp", content=too_big, headers=MCP_HEADERS)
            assert refused.status_code == 413


async def test_other_methods_and_paths_pass_untouched() -> None:
    with anyio.fail_after(30):
        async with reaching_app() as http:
            opened = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            session = {"mcp-session-id": opened.headers["mcp-session-id"]}
            assert (await http.delete("/mcp", headers=MCP_HEADERS | session)).status_code == 200
            assert (await http.post("/elsewhere", content=b"hello", headers=MCP_HEADERS)).status_code == 404


async def test_over_sse_a_garbage_message_post_gets_400_and_its_json_rpc_error() -> None:
    server = build_server(Settings())
    app = http_app(server, HttpOptions(transport="sse"))
    transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 40000))
    with anyio.fail_after(30):
        async with httpx2.AsyncClient(transport=transport, base_url=BASE, timeout=10.0) as http:
            for name, (frame, code, request_id) in GARBAGE.items():
                refused = await http.post(f"{SSE_MESSAGE_PATH}?session_id=0123", content=frame)
                assert refused.status_code == 400, (name, refused.text)
                error = refused.json()
                assert (error["error"]["code"], error["id"]) == (code, request_id), (name, error)
            # A valid message for no session still gets the SDK's own answer: the frame was fine.
            unknown = await http.post(f"{SSE_MESSAGE_PATH}?session_id=0123", content=ping(1))
            assert unknown.status_code != 400 or "jsonrpc" not in unknown.text
