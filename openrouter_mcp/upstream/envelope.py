"""OpenRouter's error answers read into our error tree: the error envelope and the rate-limit headers.

The envelope's documented variants are all accepted (`error_type` under `metadata` or directly under
`error`, Anthropic's `type`, a `code` as int or string). No httpx here: `client.py` hands over the
parsed body and the response headers, and remains the only place that translates httpx's own errors.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from openrouter_mcp.errors import APIStatusError, ErrorInResponseError, MidStreamError

#: Longest Retry-After we pass on as-is; a larger value is almost certainly a daily cap.
MAX_RETRY_AFTER = 24 * 3600.0


def error_from_body(
    envelope: Mapping[str, Any],
    cls: type[APIStatusError],
    *,
    status_code: int,
    redact: Callable[[str], str],
    retry_after: float | None = None,
    rate_limit: dict[str, str] | None = None,
    generation_id: str | None = None,
) -> APIStatusError:
    """Build an error from OpenRouter's envelope, tolerating its documented variants.

    `error_type` may sit under `error.metadata` (spec) or directly under `error` (docs examples);
    Anthropic-format errors put a `type` there instead; `code` may be an int or a string.
    """
    metadata = envelope.get("metadata") if isinstance(envelope.get("metadata"), dict) else None
    error_type = (metadata or {}).get("error_type") or envelope.get("error_type") or envelope.get("type")
    provider_code = (metadata or {}).get("provider_code")
    code = envelope.get("code")
    if cls in (MidStreamError, ErrorInResponseError) and isinstance(code, int) and code >= 400:
        status_code = code
    message = redact(str(envelope.get("message") or f"OpenRouter returned an error (HTTP {status_code})"))
    availability = envelope.get("availability") if isinstance(envelope.get("availability"), dict) else None
    safe_metadata = json.loads(redact(json.dumps(metadata))) if metadata else None
    return cls(
        message,
        status_code=status_code,
        error_type=str(error_type) if error_type else None,
        provider_code=provider_code if isinstance(provider_code, int | str) else None,
        availability=availability,
        metadata=safe_metadata,
        retry_after=retry_after,
        rate_limit=rate_limit,
        generation_id=generation_id,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or HTTP-date), bounded; None when absent or junk.

    `headers` look names up without regard to case, as `httpx2.Headers` does.
    """
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
        except (ValueError, TypeError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The `X-RateLimit-*` headers, by the rest of their (lower-case) name; None when there are none."""
    found = {name[len("x-ratelimit-") :]: value for name, value in headers.items() if name.startswith("x-ratelimit-")}
    return found or None
