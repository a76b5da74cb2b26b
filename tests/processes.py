"""Spawning and reaping server processes for the tests: one place for how a server is started, awaited and stopped.

- `SERVER`: `python -m openrouter_mcp` with this interpreter; `server_env`: the minimal environment a server gets
  (the key only through it, never argv); `free_port`: a loopback port nobody holds right now.
- `http_server` (sync, for module-scoped fixtures) and `async_http_server` (for async tests): a streamable-HTTP or
  SSE server on a free loopback port, ready once uvicorn says so, its stderr drained by a thread for as long as it
  runs (a full pipe would stall it) and kept; on exit SIGTERM, then SIGKILL after `EXIT_TIMEOUT`, always reaped.
- `spawned`: any command as an anyio process with the pipes the caller asks for, reaped the same way.

Every wait here is bounded; none polls on a timer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import Process

from tests.conftest import TEST_KEY

SERVER = [sys.executable, "-m", "openrouter_mcp"]

#: Bounds for the waits on processes: start-up includes imports on a busy 2-core machine.
STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 5.0

#: What uvicorn logs once it listens: the readiness signal of an HTTP server.
UVICORN_READY = "Uvicorn running on"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(upstream_url: str | None, **extra: str) -> dict[str, str]:
    """A minimal environment: the key reaches a server only this way, never through argv."""
    # OPENROUTER_MCP_AUDIT_DB: the session's throwaway audit database (conftest), never the user's own.
    passed = ("PATH", "HOME", "LANG", "SYSTEMROOT", "OPENROUTER_MCP_AUDIT_DB")
    env = {name: os.environ[name] for name in passed if name in os.environ}
    if upstream_url is not None:
        env |= {"OPENROUTER_API_KEY": TEST_KEY, "OPENROUTER_BASE_URL": upstream_url}
    return env | extra


class ServerProcess:
    """A server subprocess whose stderr a thread drains and keeps; `stop` reaps it.

    `url` is `http://127.0.0.1:PORT` (empty for a server that listens on no port).
    """

    def __init__(self, command: list[str], env: dict[str, str], *, port: int | None = None) -> None:
        self.command = command
        self.url = f"http://127.0.0.1:{port}" if port is not None else ""
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._stderr = bytearray()
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        while chunk := os.read(self.process.stderr.fileno(), 65536):
            with self._changed:
                self._stderr.extend(chunk)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def cmdline(self) -> str:
        """The command line as the system shows it to other users (`/proc/PID/cmdline`): what a leak scan reads."""
        path = Path(f"/proc/{self.pid}/cmdline")
        return path.read_bytes().replace(b"\0", b" ").decode() if path.exists() else " ".join(self.command)

    def log(self) -> str:
        """Everything the server has written to stderr so far."""
        with self._changed:
            return self._stderr.decode(errors="replace")

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 10.0) -> str:
        """The log once `text` appears in it `count` times, the server has stopped, or `timeout` has passed."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._stderr.decode(errors="replace").count(text) >= count or self._eof,
                timeout,
            )
            return self._stderr.decode(errors="replace")

    def wait_until_ready(self, marker: str = UVICORN_READY, timeout: float = STARTUP_TIMEOUT) -> None:
        """Return once the server has logged `marker`.

        Raises:
            AssertionError: it stopped or stayed silent for `timeout` seconds first; the message holds its log.
        """
        log = self.wait_for_log(marker, timeout=timeout)
        if marker not in log and self._eof:
            # Its stderr closed: it is exiting. Its status says how, once it has.
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(EXIT_TIMEOUT)
        assert marker in log and self.returncode is None, f"server not ready (status {self.returncode}):\n{log}"

    def stop(self, grace: float = EXIT_TIMEOUT) -> int:
        """SIGTERM (unless it has stopped already), SIGKILL if it is still running after `grace` seconds; reaped.

        Returns its exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(grace)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return self.process.returncode

    def assert_exited_cleanly(self) -> None:
        """After `stop`: status 0 or -SIGTERM, and no traceback in the log.

        -SIGTERM is how uvicorn ends well: it shuts down gracefully (lifespan included), then re-raises the
        signal it caught, as a well-behaved process does.
        """
        log = self.log()
        assert self.process.returncode in (0, -signal.SIGTERM), log
        assert "Traceback" not in log, log


def http_command(transport: str, port: int, *args: str, log_level: str = "INFO") -> list[str]:
    return [*SERVER, "--transport", transport, "--port", str(port), "--log-level", log_level, *args]


@contextmanager
def http_server(
    *args: str,
    env: dict[str, str],
    transport: str = "streamable-http",
    log_level: str = "INFO",
    seen: list[str] | None = None,
) -> Iterator[ServerProcess]:
    """`python -m openrouter_mcp --transport T --port P ARGS` on a free loopback port, ready; stopped at the end.

    With `seen`, its command line (as other users see it) and, once it is reaped, its whole log are added
    to that list, for a leak scan.
    """
    port = free_port()
    served = ServerProcess(http_command(transport, port, *args, log_level=log_level), env, port=port)
    if seen is not None:
        seen.append(served.cmdline())
    try:
        served.wait_until_ready()
        yield served
    finally:
        served.stop()
        if seen is not None:
            seen.append(served.log())


@asynccontextmanager
async def async_http_server(
    *args: str,
    env: dict[str, str],
    transport: str = "streamable-http",
    log_level: str = "INFO",
    seen: list[str] | None = None,
) -> AsyncIterator[ServerProcess]:
    """`http_server` for async tests: the start-up wait and the reaping run in a worker thread."""
    port = free_port()
    served = ServerProcess(http_command(transport, port, *args, log_level=log_level), env, port=port)
    if seen is not None:
        seen.append(served.cmdline())
    try:
        await anyio.to_thread.run_sync(served.wait_until_ready)
        yield served
    finally:
        # Shielded, and bounded inside: a failing or timed-out test must not leave the server running.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(served.stop)
        if seen is not None:
            seen.append(served.log())


@asynccontextmanager
async def spawned(command: list[str], **options: Any) -> AsyncIterator[Process]:
    """`command` as an anyio process (`options` go to `anyio.open_process`: env, pipes); if it has not stopped by
    itself at the end, SIGTERM, then SIGKILL after `EXIT_TIMEOUT`; always reaped."""
    process = await anyio.open_process(command, **options)
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with anyio.move_on_after(EXIT_TIMEOUT):
                    await process.wait()
            if process.returncode is None:
                process.kill()
            await process.aclose()


#: Standard-library modules a measuring tool may load before any test code runs (coverage keeps its data in
#: SQLite, and CI starts coverage in every Python process): forgotten first, so an import of ours still shows.
PRELOADED_BY_TOOLS = ("sqlite3", "_sqlite3")


def fresh_interpreter(code: str) -> str:
    """What `code` prints in a new interpreter that first forgets `PRELOADED_BY_TOOLS`, so a test of which modules
    our code imports holds under coverage too."""
    forget = (
        "import sys\n"
        f"for _name in [m for m in sys.modules if m.split('.')[0] in {PRELOADED_BY_TOOLS!r}]:\n"
        "    del sys.modules[_name]\n"
    )
    done = subprocess.run([sys.executable, "-c", forget + code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def handshake_lines(*requests: dict[str, Any]) -> bytes:
    """The legacy `initialize` handshake, then `requests` (ids from 2), as newline-delimited JSON-RPC."""
    messages: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    messages += [{"jsonrpc": "2.0", "id": number, **request} for number, request in enumerate(requests, start=2)]
    return b"".join(json.dumps(message).encode() + b"\n" for message in messages)
