"""A cheap load-generating MCP client: raw JSON-RPC over streamable HTTP (httpx2), stateful or stateless.

The real `mcp.Client` costs a load generator about as much CPU per call as the server it measures (its session,
task groups and message validation: ~3.9 ms a call); this one posts `tools/call` and reads the answer (1.3-2.0 ms),
so the servers, not the client, are what a load benchmark measures. Used by `bench.load` and `bench.replicas`.

`client` runs one client: its own `httpx2.AsyncClient` (one connection), a session first unless stateless,
then calls back to back until `Run.stop`; the calls ending inside `Run.window` count in its `Tally`, and every
error counts, in the warm-up too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2

from bench._harness import HarnessError

PROTOCOL_VERSION = "2025-06-18"
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": PROTOCOL_VERSION,
}


def answer_of(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message of a response, plain JSON or the last `data:` of an SSE stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        if not data:
            raise HarnessError(f"an event stream without data: {response.text[:200]!r}")
        message: dict[str, Any] = json.loads(data[-1])
        return message
    parsed: dict[str, Any] = response.json()
    return parsed


@dataclass
class Tally:
    """What the clients of one run saw: latencies (seconds) of the calls answered in the window, and errors."""

    latencies: list[float] = field(default_factory=list)
    calls: int = 0
    errors: int = 0
    first_error: str = ""

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what[:300]


@dataclass
class Run:
    """One run: when the window opens (None while warming up), and whether to stop."""

    clients: int
    warmed: anyio.Event = field(default_factory=anyio.Event)
    stop: anyio.Event = field(default_factory=anyio.Event)
    answered_once: int = 0
    window: tuple[float, float] | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)
    sessions: int = 0

    def session_open(self) -> None:
        self.sessions += 1
        if self.sessions == self.clients:
            self.ready.set()

    def first_answer(self) -> None:
        self.answered_once += 1
        if self.answered_once == self.clients:
            self.warmed.set()


async def client(
    url: str, stateless: bool, start: anyio.Event, run: Run, tally: Tally, arguments: Mapping[str, Any]
) -> None:
    """One client: a session (unless stateless), then `create_chat_completion` with `arguments` until `run.stop`;
    those ending in the window count."""
    limits = httpx2.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=60)
    timeout = httpx2.Timeout(60.0)
    async with httpx2.AsyncClient(limits=limits, timeout=timeout) as http:
        headers = dict(HEADERS)
        if not stateless:
            init = {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "load"}},
            }
            response = await http.post(url, headers=headers, json=init)
            if response.status_code != 200 or "mcp-session-id" not in response.headers:
                tally.error(f"initialize: HTTP {response.status_code} {response.text[:200]}")
                return
            headers["mcp-session-id"] = response.headers["mcp-session-id"]
            done = await http.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            if done.status_code != 202:
                tally.error(f"notifications/initialized: HTTP {done.status_code}")
                return
        run.session_open()
        await start.wait()
        request_id = 0
        while not run.stop.is_set():
            request_id += 1
            body = {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": "create_chat_completion", "arguments": arguments},
            }
            started = anyio.current_time()
            try:
                response = await http.post(url, headers=headers, json=body)
                failure = "" if response.status_code == 200 else f"HTTP {response.status_code} {response.text[:200]}"
                if not failure:
                    message = answer_of(response)
                    if "error" in message or message.get("result", {}).get("isError"):
                        failure = json.dumps(message)[:300]
            except (httpx2.HTTPError, HarnessError, ValueError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            finished = anyio.current_time()
            if request_id == 1:
                run.first_answer()
            if failure:
                tally.error(failure)  # in the warm-up too: no error may pass unseen
            elif run.window is not None and run.window[0] <= finished <= run.window[1]:
                tally.calls += 1
                tally.latencies.append(finished - started)
        if not stateless:
            # Close the session, as the SDK's clients do: the server frees it at once.
            await http.delete(url, headers=headers)
