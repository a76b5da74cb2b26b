"""The upstream connection pool: as many kept-alive connections as it opens, reused, and a cheap but exact check
of whether the server closed an idle one."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpcore2
import pytest

from openrouter_mcp.config import Settings
from openrouter_mcp.simulator import Simulator
from openrouter_mcp.upstream.client import (
    UPSTREAM_LIMITS,
    OpenRouterClient,
    _ProbedStream,
    _ProbingBackend,
    build_http_client,
)

pytestmark = pytest.mark.anyio


def test_the_pool_keeps_alive_as_many_connections_as_it_may_open_and_probes_them_with_our_backend() -> None:
    # With fewer keep-alive slots than connections, every connection past them is closed after one use: at 200
    # concurrent calls almost every call opened a new one (a TLS handshake against OpenRouter).
    assert UPSTREAM_LIMITS.max_keepalive_connections == UPSTREAM_LIMITS.max_connections
    assert UPSTREAM_LIMITS.max_connections is not None and UPSTREAM_LIMITS.max_connections >= 200
    http = build_http_client(Settings())
    # The one place we reach into httpx2: if its transport is laid out differently, this says so.
    pool = http._transport._pool  # type: ignore[attr-defined]
    assert type(pool) is httpcore2.AsyncConnectionPool
    assert isinstance(pool._network_backend, _ProbingBackend)
    assert (pool._max_connections, pool._max_keepalive_connections) == (256, 256)


@contextmanager
def listener() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        yield server


async def test_an_idle_connection_reads_as_closed_exactly_when_the_server_has_closed_it() -> None:
    with listener() as server:
        stream = await _ProbingBackend().connect_tcp("127.0.0.1", server.getsockname()[1], timeout=5)
        accepted, _ = server.accept()
        try:
            assert isinstance(stream, _ProbedStream)
            assert stream.get_extra_info("is_readable") is False
            accepted.close()  # the server's keep-alive timeout: its FIN waits to be read
            raw = stream.get_extra_info("socket")
            assert select.select([raw], [], [], 5)[0] == [raw]  # bounded: the FIN has arrived
            assert stream.get_extra_info("is_readable") is True
            assert await stream.read(10, timeout=5) == b""
        finally:
            await stream.aclose()
        assert stream.get_extra_info("is_readable") is True  # a closed socket is never handed out again


async def test_concurrent_calls_reuse_the_connections_of_the_first_burst(sim: Simulator, settings: Settings) -> None:
    http = build_http_client(settings)
    opened: list[object] = []
    pool = http._transport._pool  # type: ignore[attr-defined]
    backend = pool._network_backend
    connect = backend.connect_tcp

    async def counted(*args: object, **kwargs: object) -> httpcore2.AsyncNetworkStream:
        stream: httpcore2.AsyncNetworkStream = await connect(*args, **kwargs)
        opened.append(stream)
        return stream

    backend.connect_tcp = counted
    client = OpenRouterClient(settings, http)
    try:
        with anyio.fail_after(30):
            for _ in range(3):
                async with anyio.create_task_group() as group:
                    for _ in range(20):
                        group.start_soon(client.get_models_count)
    finally:
        await http.aclose()
    assert 1 <= len(opened) <= 20
    assert sim.count("/models/count") == 60
