"""Reading an upstream answer within bounds: a cap on its bytes, and for a stream a deadline per line and overall.

The read timeout alone bounds the wait for each *byte*, so an upstream that drips one byte every
second answers forever within it. These bound what one answer may cost, whatever the upstream does:
`read_capped` reads a whole body up to `cap` bytes, `timed_lines` splits a stream into lines with
each line due within `gap` seconds of the one before and all of them by `ends`. The caller puts its
overall deadline around `read_capped` (and the send before it).

No httpx here (`client.py` is the only module that imports it): both take the body as an async
iterator of bytes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator

import anyio

from openrouter_mcp.config import MAX_RESPONSE_MB_ENV, MIB, READ_TIMEOUT_ENV, STREAM_DEADLINE_ENV
from openrouter_mcp.errors import ResponseTooLargeError, UpstreamTimeout

#: Line ends in an SSE stream; a `\r` at the end of a chunk waits for the next one (it may start with `\n`).
_LINE_END = re.compile(r"\r\n|\r(?!$)|\n")


def late(what: str, limit: float, variable: str) -> str:
    """The message of a call that outlasted its overall deadline (`variable` is the setting that sets it)."""
    return f"OpenRouter did not finish answering {what} within {limit:g} s (the deadline {variable} sets)"


def too_large(what: str, cap: int) -> str:
    """The message of an answer over the size cap."""
    size = f"{cap / MIB:g} MiB" if cap >= MIB else f"{cap} bytes"
    return f"OpenRouter's answer to {what} exceeded {size} (the cap {MAX_RESPONSE_MB_ENV} sets); nothing of it was used"


async def read_capped(chunks: AsyncIterator[bytes], *, declared_length: str | None, cap: int, what: str) -> bytes:
    """The whole body, read incrementally and refused once past `cap` bytes (or at once if it says it is larger).

    Raises:
        ResponseTooLargeError: the body (as declared in Content-Length, or as it arrives) is larger than `cap`.
    """
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > cap:
        raise ResponseTooLargeError(too_large(what, cap))
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > cap:
            raise ResponseTooLargeError(too_large(what, cap))
    return bytes(body)


async def timed_lines(
    chunks: AsyncIterator[bytes], *, what: str, gap: float, ends: float, deadline: float, cap: int
) -> AsyncIterator[str]:
    """The lines of a streamed UTF-8 body, each within `gap` seconds of the last and all before `ends`.

    Split here rather than by the HTTP client, so that the size cap also bounds a line that never ends.
    `deadline` is the overall limit `ends` came from, for the message.

    Raises:
        UpstreamTimeout: a line took longer than `gap` (the read timeout), or the stream outlasted `ends`.
        ResponseTooLargeError: the stream passed `cap` bytes.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    received, pending = 0, ""
    line_due = min(anyio.current_time() + gap, ends)
    while True:
        chunk: bytes | None = None
        with anyio.move_on_at(line_due) as waiting:
            chunk = await anext(chunks, None)
        if waiting.cancelled_caught:
            if line_due >= ends:
                raise UpstreamTimeout(late(what, deadline, STREAM_DEADLINE_ENV))
            raise UpstreamTimeout(
                f"OpenRouter's stream for {what} went {gap:g} s without a complete event (the read timeout, "
                f"{READ_TIMEOUT_ENV})"
            )
        if chunk is None:
            break
        received += len(chunk)
        if received > cap:
            raise ResponseTooLargeError(too_large(what, cap))
        *lines, pending = _LINE_END.split(pending + decoder.decode(chunk))
        if lines:
            line_due = min(anyio.current_time() + gap, ends)
        for line in lines:
            yield line
    pending += decoder.decode(b"", final=True)
    for line in _LINE_END.split(pending.rstrip("\r")) if pending else ():
        yield line
