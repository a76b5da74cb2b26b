"""Connections: slow clients cannot hold them forever, and there are only so many at once.

uvicorn has no timeout for reading a request's headers. A new connection that sends nothing, or drips
one header byte at a time, is kept as long as the client likes; so is a kept-alive connection, whose
keep-alive timer restarts at every byte received. `HeaderDeadlineH11Protocol` gives every request
head (request line and headers) a deadline, counted from when the connection opens or its previous
response ends, that no trickle of bytes extends; past it the connection is closed.

The size of a request head is bounded by h11 (`h11_max_incomplete_event_size`, an over-long head gets
400), and the number of connections by uvicorn's `limit_concurrency` (past it, a request gets 503).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from openrouter_mcp.serving.http import DEFAULT_HEADER_TIMEOUT

logger = logging.getLogger("openrouter_mcp")

#: Seconds an idle kept-alive connection stays open (uvicorn's default).
KEEP_ALIVE_TIMEOUT = 5
#: Bytes of a request head (request line and headers) h11 buffers before answering 400 (h11's default).
MAX_HEAD_BYTES = 16 * 1024


class HeaderDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request head (`header_timeout` seconds).

    Give it to uvicorn as a class with the deadline bound: `HeaderDeadlineH11Protocol.with_timeout(10.0)`.
    """

    header_timeout: float = DEFAULT_HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    @classmethod
    def with_timeout(cls, seconds: float) -> type[HeaderDeadlineH11Protocol]:
        """This protocol with its deadline set to `seconds`.

        Raises:
            ValueError: `seconds` is not positive.
        """
        if not seconds > 0:
            raise ValueError(f"the header timeout must be positive, got {seconds}")
        return type(cls.__name__, (cls,), {"header_timeout": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head arrived complete: its request is under way
            self._disarm_head_deadline()

    def on_response_complete(self) -> None:
        # Armed first: for a pipelined request, the parent handles its head at once and that disarms it.
        self._arm_head_deadline()
        super().on_response_complete()

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_deadline_passed)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_deadline_passed(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        logger.warning(
            "closed a connection from %s: no complete request headers within %g s",
            f"{self.client[0]}:{self.client[1]}" if self.client else "an unknown address",
            self.header_timeout,
        )
        self.transport.close()
