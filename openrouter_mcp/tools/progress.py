"""Progress notifications for long upstream calls.

Hosts commonly time a tool call out after about 60 s unless progress arrives. While a call waits
on OpenRouter we send a heartbeat every `interval` seconds, and while a stream produces text we
send that text as the progress message (at most every `MIN_GAP` seconds, so a fast stream does
not become a flood of notifications). Nothing is sent unless the request carries a progress token
(the SDK's in-memory `Client` sends one only when the call passes `meta={"progress_token": ...}`).
"""

from __future__ import annotations

import time
from types import TracebackType

import anyio
from anyio.abc import TaskGroup
from mcp.server.mcpserver import Context

#: Shortest time between two text progress notifications.
MIN_GAP = 0.2
#: Longest progress message; the full text is in the result.
MAX_MESSAGE = 400


def progress_requested(ctx: Context) -> bool:
    """Whether the caller asked for progress notifications for this request: it sent a progress token."""
    meta = ctx.request_context.meta
    return meta is not None and meta.get("progress_token") is not None


class ProgressReporter:
    """`async with ProgressReporter(ctx, interval, label) as progress:` around an upstream call."""

    def __init__(self, ctx: Context, interval: float, label: str) -> None:
        self._ctx = ctx
        self._interval = interval
        self._label = label
        self._count = 0
        self._last_text = 0.0
        self._pending = ""
        self._chars = 0
        self._started = time.monotonic()
        self._group: TaskGroup | None = None
        # A heartbeat task per call costs ~0.2 ms: start one only for a caller that asked for progress.
        self.enabled = progress_requested(ctx)

    async def __aenter__(self) -> ProgressReporter:
        if self.enabled:
            self._group = anyio.create_task_group()
            await self._group.__aenter__()
            self._group.start_soon(self._heartbeat)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._group is None:
            return None
        self._group.cancel_scope.cancel()
        # Not handed the body's exception: the task group would wrap it in an ExceptionGroup, and the
        # tool registry could no longer turn an OpenRouterError into an `isError` result. It propagates as is.
        await self._group.__aexit__(None, None, None)
        return None

    async def text(self, new_text: str, total_chars: int) -> None:
        """Report streamed text; coalesced so that notifications are at most every MIN_GAP seconds."""
        if not self.enabled:
            return
        self._pending += new_text
        self._chars = total_chars
        # Measured from the last *text* notification: heartbeats must not hold streamed text back.
        if time.monotonic() - self._last_text >= MIN_GAP:
            message, self._pending = self._pending[-MAX_MESSAGE:], ""
            self._last_text = time.monotonic()
            await self._send(message)

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(self._interval)
            elapsed = time.monotonic() - self._started
            await self._send(f"waiting for {self._label}: {elapsed:.0f} s, {self._chars} characters so far")

    async def _send(self, message: str) -> None:
        # MCP requires progress to increase with every notification: count them.
        self._count += 1
        await self._ctx.report_progress(self._count, None, message)
