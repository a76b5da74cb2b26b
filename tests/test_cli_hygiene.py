"""The command line keeps the key out of stderr, and the demo keeps a throwaway audit log; real processes.

- `--log-level DEBUG` never logs upstream headers: an upstream that echoes the key in `Location` (and
  another header) does not get it onto stderr, while the one-line request log stays.
- `--api-key VALUE` (and any argument that looks like a key) is refused without the value being echoed.
- `--demo` records into an owner-only temporary audit log that is gone when the process exits, so
  `get_usage` works in a demo; a named database or `OPENROUTER_MCP_AUDIT=off` still win.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

# slow: every test here runs the command line in a process.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SERVER = [sys.executable, "-m", "openrouter_mcp"]
#: A fake key of this test module's own, in OpenRouter's shape.
FAKE_KEY = "sk-or-v1-" + secrets.token_hex(24)


def base_env(**extra: str) -> dict[str, str]:
    """A minimal environment with no key, no audit database and no personas file of the user's."""
    passed = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    return {name: os.environ[name] for name in passed if name in os.environ} | extra


class EchoingUpstream(BaseHTTPRequestHandler):
    """An upstream that answers every GET with an empty list and echoes the Authorization header back."""

    seen_keys: list[str] = []

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        authorization = self.headers.get("Authorization", "")
        self.seen_keys.append(authorization)
        body = json.dumps({"data": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Location", f"https://example.invalid/next?auth={authorization}")
        self.send_header("X-Echo", authorization.removeprefix("Bearer "))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the stdlib's signature)
        pass


@pytest.fixture
def echoing_upstream() -> Iterator[str]:
    """The base URL (".../api/v1") of an `EchoingUpstream` on 127.0.0.1."""
    EchoingUpstream.seen_keys = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EchoingUpstream)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/api/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_debug_logging_never_prints_an_upstream_header_that_echoes_the_key(echoing_upstream: str) -> None:
    env = base_env(OPENROUTER_API_KEY=FAKE_KEY, OPENROUTER_BASE_URL=echoing_upstream, OPENROUTER_MCP_AUDIT="off")
    done = subprocess.run(
        [*SERVER, "--check-personas", "--log-level", "DEBUG"], env=env, capture_output=True, text=True, timeout=60
    )

    assert any(FAKE_KEY in seen for seen in EchoingUpstream.seen_keys), "the upstream saw and echoed the key"
    assert "HTTP Request: GET " + echoing_upstream + "/models" in done.stderr, "the one-line request log stays"
    assert "DEBUG" in done.stderr, "DEBUG records are logged"
    assert FAKE_KEY not in done.stderr and FAKE_KEY.removeprefix("sk-or-v1-")[:16] not in done.stderr
    assert "example.invalid" not in done.stderr, "no response header is logged"


@pytest.mark.parametrize(
    "argv",
    [
        ["--api-key", FAKE_KEY],
        [f"--api-key={FAKE_KEY}"],
        ["--key", "hunter2-not-key-shaped"],
        ["--OPENROUTER_API_KEY", "hunter2-not-key-shaped"],
        [FAKE_KEY],
        ["--port", FAKE_KEY],
        ["--transport", "stdio", "--persona", "x", "--bogus", FAKE_KEY],
    ],
)
def test_an_argument_error_never_echoes_a_key(argv: list[str]) -> None:
    done = subprocess.run([*SERVER, *argv], env=base_env(), capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert "error:" in done.stderr
    assert FAKE_KEY not in done.stderr and FAKE_KEY.removeprefix("sk-or-v1-")[:16] not in done.stderr
    assert "hunter2" not in done.stderr


def test_a_key_passed_as_an_option_is_refused_with_the_way_to_give_it() -> None:
    done = subprocess.run([*SERVER, "--api-key", FAKE_KEY], env=base_env(), capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert "never accepted as an argument" in done.stderr and "OPENROUTER_API_KEY" in done.stderr


def demo_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("openrouter-mcp-demo-*"))


async def test_the_demo_keeps_a_private_throwaway_audit_log_so_get_usage_works(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], "--demo"], env=base_env(TMPDIR=str(tmp)))
    with (tmp_path / "stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            chat = await client.call_tool(
                "create_chat_completion", {"messages": [{"role": "user", "content": "hi"}], "model": "openai/gpt-4o"}
            )
            assert not chat.is_error
            usage = await client.call_tool("get_usage", {})
            (folder,) = demo_folders(tmp)
            database = folder / "audit.sqlite3"
            assert folder.stat().st_mode & 0o777 == 0o700
            assert database.stat().st_mode & 0o777 == 0o600

    assert not usage.is_error, usage.content
    assert usage.structured_content is not None and usage.structured_content["calls"] == 1
    assert demo_folders(tmp) == [], "the throwaway log is removed at exit"


async def test_the_demo_records_nothing_when_the_audit_log_is_off(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = base_env(TMPDIR=str(tmp), OPENROUTER_MCP_AUDIT="off")
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], "--demo"], env=env)
    with (tmp_path / "stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            usage = await client.call_tool("get_usage", {})
            assert demo_folders(tmp) == []

    assert usage.is_error and "OPENROUTER_MCP_AUDIT=off" in str(usage.content)
