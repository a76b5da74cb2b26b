"""The stdio transport: the SDK's `stdio_server`, with stdin read by our daemon thread.

Every test but the last runs a real server process. What they pin down: pipes, sockets and terminals
are all served; stray writes to stdout never reach the protocol; a host that stops reading for a
while loses nothing (back-pressure on both pipes); fd 0 and fd 1 are given back; a host that closes
stdout ends the server cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import select
import socket
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from openrouter_mcp.serving import stdio
from openrouter_mcp.serving.stdio import _LineSplitter
from tests.processes import EXIT_TIMEOUT, SERVER, handshake_lines, server_env

# Every test here but the line splitter's runs a server process.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent


def replies(stdout: bytes) -> dict[int, dict[str, Any]]:
    """The JSON-RPC responses on `stdout` by id; every line must be one JSON message."""
    found = {}
    for line in stdout.splitlines():
        message = json.loads(line)  # a stray or torn line fails here
        if "id" in message:
            found[message["id"]] = message
    return found


def read_replies(stdout: IO[bytes], count: int, timeout: float = 60.0) -> dict[int, dict[str, Any]]:
    """Responses read off a server's stdout until `count` have come, the server stops, or `timeout` passes.

    Read raw, never through the pipe object's buffer: a reply already buffered there is invisible to select.
    """
    got: dict[int, dict[str, Any]] = {}
    partial = b""
    deadline = time.monotonic() + timeout
    while len(got) < count and select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(stdout.fileno(), 65536)
        if not chunk:
            break
        *lines, partial = (partial + chunk).split(b"\n")
        got |= replies(b"\n".join(lines))
    return got


@contextlib.contextmanager
def server_process(
    upstream_url: str,
    *extra_args: str,
    stdin: Any = subprocess.PIPE,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.DEVNULL,
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m openrouter_mcp`, stdout a pipe unless said; killed if still running at the end, pipes closed."""
    process = subprocess.Popen(
        [*SERVER, *extra_args],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=server_env(upstream_url),
        cwd=REPO,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(BrokenPipeError):  # a server gone early leaves unflushed stdin behind
            process.__exit__(None, None, None)  # waits, and closes the pipes


def unread(pipe: IO[bytes]) -> int:
    """Bytes waiting in `pipe` (either end): what its reader has not taken yet."""
    return int(struct.unpack("i", fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0])


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `condition` came true within `timeout` seconds (checked every 10 ms): a bounded wait, no guess."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_one_socket_as_stdin_and_stdout_keeps_serving_request_after_request(upstream_url: str) -> None:
    """Each request arrives on a socket the server also writes to: it must not take that for a hang-up."""
    host, child = socket.socketpair()
    with host, server_process(upstream_url, stdin=child, stdout=child) as process:
        child.close()
        host.settimeout(10)
        first, _ = handshake_lines().split(b"\n", 1)
        for number, request in enumerate([first, b'{"jsonrpc":"2.0","id":2,"method":"ping"}'], start=1):
            host.sendall(request + b"\n")
            reply = json.loads(host.makefile("rb").readline())  # one request answered before the next is sent
            assert reply["id"] == number and "result" in reply
        host.shutdown(socket.SHUT_WR)
        assert process.wait(timeout=EXIT_TIMEOUT) == 0


STRAY_SERVER = textwrap.dedent(
    """
    import os, sys, anyio
    from mcp.server.mcpserver import MCPServer
    from openrouter_mcp.serving.stdio import serve_stdio

    server = MCPServer("stray")

    @server.tool()
    def noisy() -> str:
        print("stray print")
        sys.stdout.flush()
        os.write(1, b"stray write to fd 1\\n")
        return "clean"

    anyio.run(serve_stdio, server)
    """
)


async def test_stray_writes_to_stdout_go_to_stderr_and_never_corrupt_the_protocol(tmp_path: Path) -> None:
    script = tmp_path / "stray_server.py"
    script.write_text(STRAY_SERVER)
    errors = tmp_path / "stderr"
    params = StdioServerParameters(command=sys.executable, args=[str(script)], cwd=str(REPO))
    with errors.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            first = await client.call_tool("noisy", {})
            second = await client.call_tool("noisy", {})
    assert [first.structured_content, second.structured_content] == [{"result": "clean"}] * 2
    log = errors.read_text()
    assert log.count("stray print") == 2
    assert log.count("stray write to fd 1") == 2


def test_requests_already_read_when_stdin_ends_are_all_answered_before_the_server_exits(upstream_url: str) -> None:
    """`openrouter-mcp < requests.jsonl`: every request is answered, the upstream call too, then status 0."""
    chat = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]}
    requests: list[dict[str, Any]] = [{"method": "tools/list"}] * 20
    requests += [{"method": "tools/call", "params": {"name": "create_chat_completion", "arguments": chat}}]
    requests += [{"method": "ping"}]
    done = subprocess.run(
        SERVER,
        input=handshake_lines(*requests),
        capture_output=True,
        env=server_env(upstream_url),
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    got = replies(done.stdout)
    assert sorted(got) == list(range(1, 24))
    assert got[22]["result"]["structuredContent"]["text"]
    assert got[23]["result"] == {}


def test_a_host_that_stops_reading_for_a_while_loses_no_reply(upstream_url: str) -> None:
    """300 `tools/list` requests (about 4.7 MB of replies) sent at once, and stdout left unread meanwhile.

    The server's stdin buffer fills, it stops reading stdin; its stdout pipe fills, it waits for the host.
    Once the host reads, every reply arrives whole, each once.
    """
    requests = [{"method": "tools/list"}] * 300
    with server_process(upstream_url) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(handshake_lines(*requests))
        process.stdin.flush()
        # Unread, the replies back up in the stdout pipe (64 KiB, less what partly filled pages waste) and
        # the server, with 4.7 MB to send, has to wait for us.
        stdout = process.stdout
        assert until(lambda: unread(stdout) >= 32768), "the replies never backed up in the stdout pipe"
        assert process.poll() is None
        got = read_replies(process.stdout, 301)
        # Closing stdin is how a host stops a stdio server (it abandons whatever is still in flight).
        process.stdin.close()
        assert process.wait(timeout=EXIT_TIMEOUT) == 0
    assert sorted(got) == list(range(1, 302))
    assert all(len(got[number]["result"]["tools"]) == 15 for number in range(2, 302))


def test_a_terminal_on_stdin_is_served(upstream_url: str) -> None:
    """Someone typing requests into a terminal, ending with Ctrl-D."""
    controller, terminal = pty.openpty()
    try:
        with server_process(upstream_url, stdin=terminal) as process:
            os.close(terminal)
            assert process.stdout is not None
            os.write(controller, handshake_lines({"method": "tools/list"}, {"method": "ping"}))
            got = read_replies(process.stdout, 3)
            os.write(controller, b"\x04")  # Ctrl-D at the start of a line: end of input
            assert process.wait(timeout=EXIT_TIMEOUT) == 0
    finally:
        os.close(controller)
    assert sorted(got) == [1, 2, 3]
    assert len(got[2]["result"]["tools"]) == 15
    assert got[3]["result"] == {}


def test_the_standard_descriptors_are_given_back_after_serving(tmp_path: Path) -> None:
    """After `serve_stdio` returns, fd 1 is the host's pipe again (the SDK claimed it), and blocking, as it was."""
    script = tmp_path / "after.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, anyio
            from mcp.server.mcpserver import MCPServer
            from openrouter_mcp.serving.stdio import serve_stdio
            anyio.run(serve_stdio, MCPServer("after"))
            os.write(1, b"after serving: blocking=%d\\n" % os.get_blocking(1))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], input=handshake_lines(), capture_output=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.splitlines()[-1] == b"after serving: blocking=1"


def test_a_request_written_in_pieces_is_read_whole_and_blank_lines_are_no_messages(upstream_url: str) -> None:
    first, ping = handshake_lines().split(b"\n", 1)[0] + b"\n", b'{"jsonrpc":"2.0","id":2,"method":"ping"}\n'
    with server_process(upstream_url) as process:
        stdin = process.stdin
        assert stdin is not None and process.stdout is not None
        for piece in (first[:7], first[7:50], first[50:]):  # one message over three reads
            stdin.write(piece)
            stdin.flush()
            assert until(lambda: unread(stdin) == 0), "the server did not read the piece"
        stdin.write(b"\n  \n" + ping)
        stdin.flush()
        got = read_replies(process.stdout, 2)
        stdin.close()
        assert process.wait(timeout=EXIT_TIMEOUT) == 0
    assert sorted(got, key=str) == [1, 2]  # and no error reply (id null) for the blank lines
    assert got[1]["result"]["serverInfo"]["name"] == "openrouter"


def test_a_host_that_closes_stdout_ends_the_server_cleanly(upstream_url: str) -> None:
    """No reader left for the replies: the server stops with status 0 and no traceback, instead of crashing."""
    with server_process(upstream_url, "--log-level", "INFO", stderr=subprocess.PIPE) as process:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        process.stdin.write(handshake_lines().split(b"\n", 1)[0] + b"\n")
        process.stdin.flush()
        assert read_replies(process.stdout, 1)
        process.stdout.close()
        with contextlib.suppress(BrokenPipeError):  # the server may be gone before the second ping
            for number in (2, 3):
                process.stdin.write(b'{"jsonrpc":"2.0","id":%d,"method":"ping"}\n' % number)
                process.stdin.flush()
        status = process.wait(timeout=EXIT_TIMEOUT)
        stderr = process.stderr.read().decode(errors="replace")
    assert status == 0, stderr
    assert "Traceback" not in stderr
    assert "the host closed stdout" in stderr


def test_the_stdin_reader_joins_a_line_s_pieces_and_skips_blank_lines() -> None:
    splitter = _LineSplitter()
    assert splitter.feed(b'{"a"') == []
    assert splitter.feed(b":1}\n\n  \r\n") == ['{"a":1}']
    assert splitter.feed(b'{"b":2}\n{"c"') == ['{"b":2}']
    assert splitter.end() == ['{"c"']
    assert splitter.end() == []


def reader_thread() -> threading.Thread:
    [reader] = [thread for thread in threading.enumerate() if thread.name == "stdin-reader"]
    return reader


def test_the_stdin_reader_ends_quietly_when_the_servers_event_loop_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    # A host that closes stdout ends the server while the reader thread may still be handing lines to the loop:
    # the loop is closed by then, which must end the thread without a traceback on stderr.
    read_end, write_end = os.pipe()
    crashes: list[BaseException | None] = []
    monkeypatch.setattr(stdio, "STDIN", read_end)
    monkeypatch.setattr(threading, "excepthook", lambda hook: crashes.append(hook.exc_value))

    async def start_reading() -> stdio._StdinLines:
        return stdio._StdinLines()

    loop = asyncio.new_event_loop()
    lines = loop.run_until_complete(start_reading())
    reader = reader_thread()  # found before it has anything to read: once it has, it may be gone already
    loop.close()
    try:
        os.write(write_end, b'{"jsonrpc": "2.0", "method": "ping", "id": 1}\n')
        os.close(write_end)
        reader.join(timeout=10)
        assert not reader.is_alive()
    finally:
        lines.close()
        lines._send.close()  # the reader's own close could not reach the closed loop either
        os.close(read_end)
    assert crashes == []


@pytest.mark.anyio
async def test_the_stdin_reader_hands_over_every_line_in_order_holding_at_most_its_buffer_untaken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_end, write_end = os.pipe()
    monkeypatch.setattr(stdio, "STDIN", read_end)
    sent = [f'{{"jsonrpc": "2.0", "method": "ping", "id": {number}}}' for number in range(3 * stdio.BUFFERED_LINES)]
    lines = stdio._StdinLines()
    reader = reader_thread()
    try:
        os.write(write_end, "".join(line + "\n" for line in sent).encode())  # one read takes them all
        os.close(write_end)
        with anyio.fail_after(10):
            # Nothing taken yet: the reader waits once the buffer is full, and has not ended.
            while lines._receive.statistics().current_buffer_used < stdio.BUFFERED_LINES:
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)
            assert lines._receive.statistics().current_buffer_used == stdio.BUFFERED_LINES
            assert reader.is_alive()
            got = [line async for line in lines]
        reader.join(timeout=10)
        assert not reader.is_alive()
    finally:
        lines.close()
        os.close(read_end)
    assert got == sent
