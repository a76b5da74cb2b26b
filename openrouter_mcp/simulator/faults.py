"""Injected faults: the :class:`Fault` record and what it does to a reply.

A fault with a ``status`` turns the reply into that error (:func:`fault_reply`); the other flags shape a
successful answer (:class:`Served`): truncated JSON, a mid-stream error, ``finish_reason: "error"`` in a 200.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .asgi import Reply, json_reply
from .envelopes import anthropic_error_body, error_body

STATUS_MESSAGES: dict[int, str] = {
    400: "Invalid request parameters",
    401: "User not found.",
    402: "Insufficient credits. This account never purchased credits. Add more at https://openrouter.ai/settings/credits",
    403: "Forbidden",
    404: "No endpoints found for this model.",
    408: "Request timed out",
    410: "This endpoint has been removed.",
    413: "Payload too large",
    422: "Unprocessable entity",
    429: "Rate limit exceeded: free-models-per-min.",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No available model provider that meets your routing requirements",
    504: "Gateway timeout",
    524: "Edge network timeout",
    529: "Provider is overloaded",
}


@dataclass
class Fault:
    """A fault injected for one model (or one path).

    Attributes:
        status: answer with this HTTP status and OpenRouter's error envelope (401, 402, 404, 429, 5xx...).
        retry_after: seconds; sets ``Retry-After`` on the error response.
        latency: seconds to wait before answering.
        mid_stream_error: streaming: a couple of content chunks, then the mid-stream error chunk (HTTP 200).
        cut_stream: streaming: a couple of content chunks, then the stream ends with neither a finish_reason nor
            ``[DONE]``, as when a connection drops between events behind a proxy.
        malformed: answer 200 with a body that is not valid JSON.
        drip: seconds between bytes: the answer (every event of a stream, an error answer too) is sent one byte at
            a time, so each read gets data well within any read timeout while the whole answer takes forever.
        error_in_200: non-streaming chat: HTTP 200 whose ``choices[0]`` has ``finish_reason: "error"``.
        error_type: ``error.metadata.error_type``; derived from ``status`` when None.
        provider_code: ``error.metadata.provider_code`` for upstream errors; None = OpenRouter's own error.
        rate_limit_headers: add ``X-RateLimit-Limit/Remaining/Reset`` (OpenRouter's own limit).
        availability: the ``error.availability`` object to include.
        times: apply this many times, then stop; None = forever.
    """

    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    mid_stream_error: bool = False
    cut_stream: bool = False
    malformed: bool = False
    drip: float = 0.0
    error_in_200: bool = False
    error_type: str | None = None
    provider_code: int | str | None = None
    rate_limit_headers: bool = False
    availability: dict[str, Any] | None = None
    times: int | None = None

    @property
    def active(self) -> bool:
        """Whether the fault still applies (``times`` not used up)."""
        return self.times is None or self.times > 0

    def consume(self) -> None:
        """Count one application against ``times``."""
        if self.times is not None:
            self.times -= 1


@dataclass
class Served:
    """Fault flags that shape a successful answer (merged from the model's and the path's faults)."""

    malformed: bool = False
    mid_stream_error: bool = False
    cut_stream: bool = False
    error_in_200: bool = False
    error_type: str | None = None
    provider_code: int | str | None = None
    drip: float = 0.0

    @classmethod
    def merge(cls, *faults: Fault | None) -> Served:
        served = cls()
        for fault in faults:
            if fault is None:
                continue
            served.malformed |= fault.malformed
            served.mid_stream_error |= fault.mid_stream_error
            served.cut_stream |= fault.cut_stream
            served.error_in_200 |= fault.error_in_200
            served.drip = max(served.drip, fault.drip)
            served.error_type = served.error_type or fault.error_type
            served.provider_code = served.provider_code if served.provider_code is not None else fault.provider_code
        return served


def fault_reply(
    fault: Fault,
    *,
    anthropic: bool,
    model: str | None = None,
    provider: str | None = None,
    request_id: str | None = None,
) -> Reply:
    """The error reply for a fault with a ``status``, in the OpenRouter or the Anthropic envelope."""
    status = fault.status or 500
    message = STATUS_MESSAGES.get(status, "Error")
    if model is not None and fault.provider_code is not None:
        message = f"{model} is temporarily unavailable upstream: {STATUS_MESSAGES.get(status, 'error').lower()}"
        if status == 429:
            message = (
                f"{model} is temporarily rate-limited upstream. Please retry shortly, or add your own key to "
                "accumulate your rate limits: https://openrouter.ai/settings/integrations"
            )
    headers: list[tuple[str, str]] = []
    if fault.retry_after is not None:
        headers.append(("Retry-After", _format_seconds(fault.retry_after)))
    if fault.rate_limit_headers:
        reset_ms = int((time.time() + (fault.retry_after or 60.0)) * 1000)
        headers += [
            ("X-RateLimit-Limit", "20"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", str(reset_ms)),
        ]
    if anthropic:
        body = anthropic_error_body(status, message, error_type=fault.error_type, request_id=request_id)
    else:
        body = error_body(
            status,
            message,
            error_type=fault.error_type,
            provider_code=fault.provider_code,
            provider_name=provider,
            availability=fault.availability,
        )
    return json_reply(status, body, headers)


def malformed_reply(headers: list[tuple[str, str]] | None = None) -> Reply:
    # A truncated body, as seen when an upstream connection dies mid-response behind a proxy.
    return Reply(
        200, b'{"id":"gen-truncated","object":"chat.completion","choices":[{"index":0,"message":{"rol', headers or []
    )


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
