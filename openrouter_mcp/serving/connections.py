"""Connections: slow clients cannot hold them forever, and there are only so many at once.

uvicorn has no timeout for reading a request. A new connection that sends nothing, or drips one header
byte at a time, is kept as long as the client likes; so is a kept-alive connection, whose keep-alive
timer restarts at every byte received, and so is a request whose body trickles in. `RequestDeadlineH11Protocol`
gives every request head (request line and headers) a deadline, counted from when the connection opens
or its previous response ends, and then its body the same time again; no trickle of bytes extends them.
Past a deadline the connection is closed (the app sees the client disconnect).

The size of a request head is bounded by h11 (`h11_max_incomplete_event_size`, an over-long head gets
400), and the number of connections by uvicorn's `limit_concurrency` (past it, a request gets 503).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from openrouter_mcp.serving.http import DEFAULT_HEADER_TIMEOUT

logger = logging.getLogger("openrouter_mcp")

#: Seconds an idle kept-alive connection stays open (uvicorn's default).
KEEP_ALIVE_TIMEOUT = 5
#: Bytes of a request head (request line and headers) h11 buffers before answering 400 (h11's default).
MAX_HEAD_BYTES = 16 * 1024


class RequestDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline of `timeout` seconds for each request's head, then its body.

    Give it to uvicorn as a class with the deadline bound: `RequestDeadlineH11Protocol.with_timeout(10.0)`.
    """

    timeout: float = DEFAULT_HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    @classmethod
    def with_timeout(cls, seconds: float) -> type[RequestDeadlineH11Protocol]:
        """This protocol with its deadline set to `seconds`.

        Raises:
            ValueError: `seconds` is not a positive number.
        """
        if not 0 < seconds < float("inf"):
            raise ValueError(f"the request timeout must be a positive number of seconds, got {seconds}")
        return type(cls.__name__, (cls,), {"timeout": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.conn.their_state
        super().handle_events()
        after = self.conn.their_state
        if after is before:
            return
        if after is h11.SEND_BODY:
            self._arm()  # the head arrived complete: the body gets its own time
        elif after is not h11.IDLE:
            self._disarm()  # the whole request arrived (or the connection is done)

    def on_response_complete(self) -> None:
        # Armed first: for a pipelined request, the parent handles its head at once, which re-arms or disarms.
        self._arm()
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.timeout, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        state = self.conn.their_state
        if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
            return
        if state is h11.IDLE and self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being sent: the next request's head is not due yet
        logger.warning(
            "closed a connection from %s: no complete request %s within %g s",
            f"{self.client[0]}:{self.client[1]}" if self.client else "an unknown address",
            "headers" if state is h11.IDLE else "body",
            self.timeout,
        )
        self.transport.close()
