"""Error bodies: OpenRouter's envelope, and Anthropic's on ``/messages``.

OpenRouter's is ``{"error": {code, message, metadata}, "user_id": null}``; both map an HTTP status to an
error type through the tables here.
"""

from __future__ import annotations

from .asgi import JSON, Reply, json_reply

# HTTP status -> error.metadata.error_type (API.md §1.4 and the brief's 503 -> provider_overloaded).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request",
    401: "authentication",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    410: "not_found",
    412: "precondition_failed",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limit_exceeded",
    500: "server",
    502: "provider_unavailable",
    503: "provider_overloaded",
    504: "timeout",
    524: "timeout",
    529: "provider_overloaded",
}

# HTTP status -> Anthropic error.type on /messages (errors-and-debugging.mdx mapping table).
ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    524: "timeout_error",
    529: "overloaded_error",
}


def error_body(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    provider_code: int | str | None = None,
    provider_name: str | None = None,
    availability: JSON | None = None,
    with_metadata: bool = True,
) -> JSON:
    metadata: JSON | None = None
    if with_metadata:
        metadata = {"error_type": error_type or ERROR_TYPES.get(status, "unmapped")}
        if provider_code is not None:
            metadata["provider_code"] = provider_code
            if provider_name is not None:
                metadata["provider_name"] = provider_name
    error: JSON = {"code": status, "message": message, "metadata": metadata}
    if availability is not None:
        error["availability"] = availability
    return {"error": error, "user_id": None}


def anthropic_error_body(status: int, message: str, *, error_type: str | None = None, request_id: str | None) -> JSON:
    return {
        "type": "error",
        "error": {
            "type": ANTHROPIC_ERROR_TYPES.get(status, "api_error"),
            "message": message,
            "error_type": error_type or ERROR_TYPES.get(status, "unmapped"),
        },
        "request_id": request_id,
    }


def bad_request(message: str, *, anthropic: bool = False, availability: JSON | None = None) -> Reply:
    if anthropic:
        return json_reply(400, anthropic_error_body(400, message, request_id=None))
    return json_reply(400, error_body(400, message, availability=availability))
