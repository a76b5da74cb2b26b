"""The logging capability: `logging/setLevel`, and the server's own records as `notifications/message`.

Through the real `mcp.Client` in memory, on the handshake protocol (where `logging/setLevel` exists;
the client marks it deprecated for 2026-07-28, hence the filter). Records are logged by the server's
own code (a failing tool call) or on a child of the `openrouter_mcp` logger, in the server's process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.server.mcpserver import MCPServer
from mcp.types import LoggingMessageNotification

from openrouter_mcp.client_logging import DEFAULT_CAPACITY
from openrouter_mcp.state import AppState
from tests.conftest import TEST_KEY

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]

probe = logging.getLogger("openrouter_mcp.tests_probe")


class Messages:
    """The `notifications/message` a client received, and a bounded wait for one."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._changed = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, LoggingMessageNotification):
            self.received.append(message.params.model_dump())
            self._changed.set()
            self._changed = anyio.Event()

    def data(self, logger: str | None = "openrouter_mcp.tests_probe") -> list[Any]:
        return [m["data"] for m in self.received if logger is None or m["logger"] == logger]

    async def wait_for(self, found: Callable[[], bool], timeout: float = 10) -> None:
        with anyio.fail_after(timeout):
            while not found():
                await self._changed.wait()


@pytest.fixture
async def logged(server: MCPServer[AppState]) -> AsyncIterator[tuple[Client, Messages]]:
    messages = Messages()
    async with Client(server, mode="legacy", message_handler=messages) as client:
        yield client, messages


async def test_the_server_declares_the_logging_capability(logged: tuple[Client, Messages]) -> None:
    client, _ = logged
    assert client.server_capabilities.logging is not None


async def test_records_at_or_above_the_level_the_client_set_arrive_and_none_before(
    logged: tuple[Client, Messages],
) -> None:
    client, messages = logged
    probe.error("before any level was set")
    await client.set_logging_level("warning")

    probe.debug("a debug record")
    probe.info("an info record")
    probe.warning("a warning record")
    probe.error("an error record")
    await messages.wait_for(lambda: "an error record" in messages.data())

    assert messages.data() == ["a warning record", "an error record"]
    levels = [m["level"] for m in messages.received if m["logger"] == "openrouter_mcp.tests_probe"]
    assert levels == ["warning", "error"]


async def test_a_lower_level_lets_the_servers_own_info_records_through(logged: tuple[Client, Messages]) -> None:
    client, messages = logged
    await client.set_logging_level("debug")

    result = await client.call_tool("get_generation", {"id": "gen-does-not-exist"})
    assert result.is_error
    await messages.wait_for(lambda: bool(messages.data("openrouter_mcp.tools.registry")))

    (notice,) = [m for m in messages.received if m["logger"] == "openrouter_mcp.tools.registry"]
    assert notice["level"] == "info" and "tool get_generation failed: not_found" in notice["data"]


async def test_each_session_gets_records_at_its_own_level(server: MCPServer[AppState]) -> None:
    quiet, verbose = Messages(), Messages()
    async with (
        Client(server, mode="legacy", message_handler=quiet) as quiet_client,
        Client(server, mode="legacy", message_handler=verbose) as verbose_client,
    ):
        await quiet_client.set_logging_level("error")
        await verbose_client.set_logging_level("info")
        probe.info("for the verbose one")
        probe.error("for both")
        await quiet.wait_for(lambda: "for both" in quiet.data())
        await verbose.wait_for(lambda: "for both" in verbose.data())

    assert quiet.data() == ["for both"]
    assert verbose.data() == ["for the verbose one", "for both"]


async def test_a_session_that_set_no_level_gets_nothing(server: MCPServer[AppState]) -> None:
    silent, listening = Messages(), Messages()
    async with (
        Client(server, mode="legacy", message_handler=silent),
        Client(server, mode="legacy", message_handler=listening) as listening_client,
    ):
        await listening_client.set_logging_level("debug")
        probe.warning("only for the one that asked")
        await listening.wait_for(lambda: bool(listening.data()))

    assert silent.received == []


async def test_the_api_key_is_redacted_from_forwarded_records(logged: tuple[Client, Messages]) -> None:
    client, messages = logged
    await client.set_logging_level("info")

    probe.warning("upstream said: bad key %s", TEST_KEY)
    await messages.wait_for(lambda: bool(messages.data()))

    assert messages.data() == ["upstream said: bad key [redacted]"]
    assert TEST_KEY not in str(messages.received)


async def test_a_burst_beyond_the_buffer_is_dropped_counted_and_reported_without_blocking(
    logged: tuple[Client, Messages],
) -> None:
    client, messages = logged
    await client.set_logging_level("info")
    extra = 500

    # No await in between: the sender cannot run, so the buffer fills and the rest is dropped.
    for number in range(DEFAULT_CAPACITY + extra):
        probe.info("record %d", number)
    await messages.wait_for(lambda: f"record {DEFAULT_CAPACITY - 1}" in messages.data(), timeout=60)

    assert messages.data() == [f"record {number}" for number in range(DEFAULT_CAPACITY)]
    notes = messages.data("openrouter_mcp.client_logging")
    assert notes == [f"{extra} log record(s) were dropped: the server's log buffer was full"], "no record of itself"
    assert messages.received[0]["level"] == "warning"


async def test_a_record_from_another_thread_arrives(logged: tuple[Client, Messages]) -> None:
    client, messages = logged
    await client.set_logging_level("info")

    await anyio.to_thread.run_sync(lambda: probe.warning("from a worker thread"))
    await messages.wait_for(lambda: bool(messages.data()))

    assert messages.data() == ["from a worker thread"]


async def test_after_the_session_ends_the_server_logs_as_before(server: MCPServer[AppState]) -> None:
    messages = Messages()
    package = logging.getLogger("openrouter_mcp")
    level, handlers = package.level, list(package.handlers)
    async with Client(server, mode="legacy", message_handler=messages) as client:
        await client.set_logging_level("debug")
        assert package.getEffectiveLevel() == logging.DEBUG

    assert package.level == level and package.handlers == handlers


# --- 2026-07-28: the per-request opt-in -----------------------------------------------------------


class Logged:
    """A `logging_callback`: the log entries a 2026-07-28 client received."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def __call__(self, params: Any) -> None:
        self.received.append(params.model_dump())


async def test_a_request_that_opts_in_gets_the_records_of_its_own_handling_before_its_answer(
    server: MCPServer[AppState],
) -> None:
    logged = Logged()
    async with Client(server, log_level="info", logging_callback=logged) as client:
        result = await client.call_tool("get_generation", {"id": "gen-does-not-exist"})
        received_before_answer = list(logged.received)

    assert result.is_error
    (notice,) = [m for m in received_before_answer if m["logger"] == "openrouter_mcp.tools.registry"]
    assert notice["level"] == "info" and "tool get_generation failed: not_found" in notice["data"]


async def test_a_request_without_the_opt_in_gets_no_records(server: MCPServer[AppState]) -> None:
    logged = Logged()
    async with Client(server, logging_callback=logged) as client:
        result = await client.call_tool("get_generation", {"id": "gen-does-not-exist"})

    assert result.is_error and logged.received == []


async def test_a_request_gets_only_records_at_or_above_the_level_it_asked_for(server: MCPServer[AppState]) -> None:
    logged = Logged()
    async with Client(server, log_level="error", logging_callback=logged) as client:
        result = await client.call_tool("get_generation", {"id": "gen-does-not-exist"})

    assert result.is_error and logged.received == [], "the failure is logged at info, below error"
