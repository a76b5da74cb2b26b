"""Everything that can go wrong serving a call to OpenRouter, as one exception tree.

```
OpenRouterError
├── ConfigurationError              our own set-up is wrong (no key, unreadable key file, bad audit path)
│   ├── MissingApiKeyError
│   └── AuditSetupError             the audit log's path or file is unusable (also an AuditError)
├── PersonaError                    a personas file that cannot be used, or a persona name that names none
├── AuditError                      the audit log cannot be written or read (disk full, locked too long)
│   ├── AuditSetupError             (drawn above: a configuration mistake, caught as either)
│   └── LedgerUnavailableError      a budgeted call refused because its spend cannot be recorded (retryable)
├── NotAllowedError                 our policy refuses the call (outside the persona's scope)
│   ├── BudgetExceededError         the persona's daily or monthly budget is spent
│   └── TooBusyError                the client already has as many calls running as allowed
├── RoutingFailed                   no candidate model answered (takes the last error's kind; lists attempts)
├── InvalidRequestError             the HTTP client refused to build the request (nothing was sent)
├── TransportError                  no HTTP answer at all
│   ├── UpstreamTimeout             connect/read/write/pool timeout, or the call's overall deadline
│   │   └── DeadlineExceededError   a persona's deadline ran out across its fallback attempts
│   └── UpstreamConnectionError     refused, reset, DNS, TLS
├── MalformedResponseError          an answer we cannot parse (bad JSON, wrong shape)
│   └── ResponseTooLargeError       an answer larger than we read into memory
└── APIStatusError                  OpenRouter answered with an error (status, envelope, Retry-After)
    ├── BadRequestError               400
    ├── AuthenticationError           401
    ├── PaymentRequiredError          402  out of credits
    ├── PermissionDeniedError         403  moderation, guardrail, key kind
    ├── NotFoundError                 404
    ├── RequestTimeoutError           408
    ├── GoneError                     410  retired endpoint (Coinbase charges)
    ├── PayloadTooLargeError          413
    ├── UnprocessableEntityError      422
    ├── RateLimitError                429
    ├── InternalServerError           500 (and any other 5xx we do not name)
    │   ├── BadGatewayError             502  model down / invalid upstream response
    │   ├── ServiceUnavailableError     503  no provider meets the routing requirements
    │   ├── EdgeTimeoutError            524
    │   └── ProviderOverloadedError     529
    ├── MidStreamError                HTTP 200 stream that ended with an error chunk, or incomplete
    └── ErrorInResponseError          HTTP 200 body that carries an error (finish_reason "error")
```

A storage fault (`AuditError`) is not the user's configuration mistake, so it is not a
`ConfigurationError`; only `AuditSetupError` (a path that cannot be created, a file that is not our
log, a newer schema) is both, so start-up and the audit CLI report it either way.

httpx exceptions are translated into this tree only in `client.py`; everything above it sees these
classes. `status_error_class` is the single status -> class table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openrouter_mcp.routing.fallback import RoutingRecord

__all__ = [
    "APIStatusError",
    "AuditError",
    "AuditSetupError",
    "LedgerUnavailableError",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "BudgetExceededError",
    "ConfigurationError",
    "EdgeTimeoutError",
    "ErrorInResponseError",
    "DeadlineExceededError",
    "GoneError",
    "InternalServerError",
    "InvalidRequestError",
    "MalformedResponseError",
    "MidStreamError",
    "MissingApiKeyError",
    "NotAllowedError",
    "NotFoundError",
    "OpenRouterError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PersonaError",
    "ProviderOverloadedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RoutingFailed",
    "ServiceUnavailableError",
    "TooBusyError",
    "TransportError",
    "UnprocessableEntityError",
    "UpstreamConnectionError",
    "UpstreamTimeout",
    "status_error_class",
]


class OpenRouterError(Exception):
    """Base of every error this package raises about OpenRouter."""

    #: Whether repeating the same request later may succeed.
    retryable: bool = False
    #: A short stable name for the kind of failure, shown to the calling model.
    kind: str = "error"
    #: What the caller can do about it, when we know better than the upstream message.
    hint: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before retrying, when the upstream said so."""
        return None

    def payload(self) -> dict[str, Any]:
        """A JSON-ready description the calling model can act on (never contains the API key)."""
        data: dict[str, Any] = {"error": self.kind, "message": self.message, "retryable": self.retryable}
        if self.retry_after is not None:
            data["retry_after_seconds"] = self.retry_after
        if self.hint:
            data["hint"] = self.hint
        return data


class ConfigurationError(OpenRouterError):
    """The server's own configuration prevents the call."""

    kind = "configuration"


class MissingApiKeyError(ConfigurationError):
    """The tool needs an OpenRouter API key and none is configured."""

    kind = "missing_api_key"

    def __init__(self, what: str = "This call") -> None:
        super().__init__(
            f"{what} needs an OpenRouter API key. Run `openrouter-mcp login` to sign in with OpenRouter (the "
            "key goes to your OS keychain), or set OPENROUTER_API_KEY in the MCP server's environment (the "
            "`env` block of your host's mcpServers entry), or OPENROUTER_API_KEY_FILE to a file readable only "
            "by you; then restart the server. The server looks in that order: OPENROUTER_API_KEY, "
            "OPENROUTER_API_KEY_FILE, the stored key. Keys: https://openrouter.ai/settings/keys"
        )


class PersonaError(OpenRouterError):
    """A personas file that cannot be used, or a persona name that names none; the message says how to fix it.

    Not retryable: the same name or file fails the same way until someone changes it.
    """

    kind = "invalid_persona"


class AuditError(OpenRouterError):
    """The audit log cannot be written or read (disk full, another writer held the lock too long)."""

    kind = "audit"


class LedgerUnavailableError(AuditError):
    """A paid call under a budget was refused before anything was sent: the ledger cannot hold its reservation.

    Fail closed: a budget that cannot be counted is not enforced by guessing. Retryable once the storage
    recovers (a lock released, space freed, the database back).
    """

    kind = "ledger_unavailable"
    retryable = True
    hint = "The spend ledger is unavailable, so budgeted calls are refused for now; retry in a little while."


class AuditSetupError(AuditError, ConfigurationError):
    """The audit log's path or file is unusable: cannot be created, is not our log, or has a newer schema.

    A configuration mistake, unlike a storage fault: it is both an `AuditError` (the audit CLI and the
    request paths that open the log catch those) and a `ConfigurationError` (start-up reports those).
    """

    kind = "audit"


class NotAllowedError(OpenRouterError):
    """The call is outside what this session's persona may do; nothing was sent upstream."""

    kind = "not_allowed"


class BudgetExceededError(NotAllowedError):
    """The persona has spent its budget for the period; nothing was sent upstream."""

    kind = "budget_exceeded"


class TooBusyError(NotAllowedError):
    """The user already has as many calls running as allowed; nothing was sent upstream."""

    kind = "too_busy"
    retryable = True
    hint = "Wait for one of your running calls to finish, then retry."

    def __init__(self, user: str, running: int, limit: int, *, waited: float = 0.0) -> None:
        waited_for = f", and none finished within {waited:g} s" if waited > 0 else ""
        super().__init__(
            f"Too many calls at once for {user!r}: {running} running, the limit is {limit} per client{waited_for}. "
            "This call was not started; retry when one of the running calls finishes."
        )
        self.user = user
        self.running = running
        self.limit = limit
        self.waited = waited


class RoutingFailed(OpenRouterError):
    """No candidate answered: carries the last upstream error and the full record of attempts.

    Its `kind`, `retryable`, `hint` and `retry_after` are the last error's, so the caller learns what
    finally went wrong; without one (no model fits) it is `no_model_fits`.
    """

    def __init__(self, message: str, record: RoutingRecord, last: OpenRouterError | None = None) -> None:
        super().__init__(message)
        self.record = record
        self.last = last
        self.kind = last.kind if last is not None else "no_model_fits"
        self.retryable = last.retryable if last is not None else False
        self.hint = last.hint if last is not None else None

    @property
    def retry_after(self) -> float | None:
        return self.last.retry_after if self.last is not None else None

    def payload(self) -> dict[str, Any]:
        data = self.last.payload() if self.last is not None else super().payload()
        data["message"] = self.message
        data["routing"] = self.record.as_dict()
        return data


class InvalidRequestError(OpenRouterError, ValueError):
    """The HTTP client refused to build the request from these values (a URL or header it cannot send).

    Nothing was sent. Most values are checked before a request is built (`upstream/url_parts.py`); this is
    the backstop for what slips past, so the caller reads what was refused instead of a generic failure.
    """

    kind = "invalid_arguments"


class TransportError(OpenRouterError):
    """No HTTP response was received from OpenRouter."""

    kind = "transport"
    retryable = True


class UpstreamTimeout(TransportError):
    """OpenRouter did not answer within the configured timeout."""

    kind = "timeout"


class DeadlineExceededError(UpstreamTimeout):
    """A persona's `deadline_seconds` ran out before any of its attempts answered.

    Retryable: the models may answer in time later, and the routing record says what was tried.
    """

    kind = "deadline_exceeded"
    hint = "Retry later, or raise the persona's fallback.deadline_seconds if its models are slow."


class UpstreamConnectionError(TransportError):
    """The connection to OpenRouter could not be made or was lost."""

    kind = "connection"


class MalformedResponseError(OpenRouterError):
    """OpenRouter answered with something we could not parse."""

    kind = "malformed_response"
    retryable = True


class ResponseTooLargeError(MalformedResponseError):
    """OpenRouter's answer is larger than the cap on what is read into memory; reading stopped at the cap.

    Not retryable: the same request gets the same answer; a narrower request (filters) or a larger cap may fit.
    """

    kind = "response_too_large"
    retryable = False


class APIStatusError(OpenRouterError):
    """OpenRouter answered with an error status (or an error inside a 200).

    Attributes mirror OpenRouter's error envelope: `error.code`, `error.message`,
    `error.metadata.error_type`, `error.metadata.provider_code`, `error.availability`.
    """

    kind = "api_error"
    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        provider_code: int | str | None = None,
        availability: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        retry_after: float | None = None,
        rate_limit: dict[str, str] | None = None,
        generation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.provider_code = provider_code
        self.availability = availability
        self.metadata = metadata
        self._retry_after = retry_after
        self.rate_limit = rate_limit
        self.generation_id = generation_id

    @property
    def retry_after(self) -> float | None:
        if self._retry_after is not None:
            return self._retry_after
        if self.availability and isinstance(self.availability.get("retry_after"), int | float):
            return float(self.availability["retry_after"])
        return None

    @property
    def account_wide(self) -> bool:
        """True for OpenRouter's own (account-wide) limits rather than one provider's.

        OpenRouter sends `X-RateLimit-*` only on its own platform limits, and sets
        `provider_code` only when a provider produced the error.
        """
        return bool(self.rate_limit) and self.provider_code is None

    def payload(self) -> dict[str, Any]:
        data = super().payload()
        data["status"] = self.status_code
        if self.error_type:
            data["error_type"] = self.error_type
        if self.provider_code is not None:
            data["provider_code"] = self.provider_code
        if self.availability:
            data["availability"] = self.availability
        if self.rate_limit:
            data["rate_limit"] = self.rate_limit
        if self.generation_id:
            data["generation_id"] = self.generation_id
        return data


class BadRequestError(APIStatusError):
    kind = "bad_request"
    status_code = 400


class AuthenticationError(APIStatusError):
    kind = "authentication"
    status_code = 401
    hint = "The API key was rejected: check OPENROUTER_API_KEY (it may be disabled or expired)."


class PaymentRequiredError(APIStatusError):
    kind = "payment_required"
    status_code = 402
    hint = "Out of credits or over the key's limit: add credits at https://openrouter.ai/settings/credits."


class PermissionDeniedError(APIStatusError):
    kind = "permission_denied"
    status_code = 403


class NotFoundError(APIStatusError):
    kind = "not_found"
    status_code = 404


class RequestTimeoutError(APIStatusError):
    kind = "request_timeout"
    status_code = 408
    retryable = True


class GoneError(APIStatusError):
    kind = "gone"
    status_code = 410


class PayloadTooLargeError(APIStatusError):
    kind = "payload_too_large"
    status_code = 413


class UnprocessableEntityError(APIStatusError):
    kind = "unprocessable"
    status_code = 422


class RateLimitError(APIStatusError):
    kind = "rate_limited"
    status_code = 429
    retryable = True


class InternalServerError(APIStatusError):
    kind = "server_error"
    status_code = 500
    retryable = True


class BadGatewayError(InternalServerError):
    kind = "bad_gateway"
    status_code = 502


class ServiceUnavailableError(InternalServerError):
    kind = "unavailable"
    status_code = 503


class EdgeTimeoutError(InternalServerError):
    kind = "edge_timeout"
    status_code = 524


class ProviderOverloadedError(InternalServerError):
    kind = "provider_overloaded"
    status_code = 529


class MidStreamError(APIStatusError):
    """A streamed completion ended with an error chunk after HTTP 200, or ended incomplete.

    Incomplete means neither a `finish_reason` nor `[DONE]` arrived (`error_type` "incomplete_stream").

    `partial_text` holds what had arrived before the error, so it is reported rather than lost.
    """

    kind = "mid_stream_error"
    retryable = True

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.partial_text = partial_text

    def payload(self) -> dict[str, Any]:
        data = super().payload()
        data["partial_text"] = self.partial_text
        return data


class ErrorInResponseError(APIStatusError):
    """HTTP 200 whose body reports a failure (a choice with finish_reason "error")."""

    kind = "error_in_response"
    retryable = True


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PaymentRequiredError,
        PermissionDeniedError,
        NotFoundError,
        RequestTimeoutError,
        GoneError,
        PayloadTooLargeError,
        UnprocessableEntityError,
        RateLimitError,
        InternalServerError,
        BadGatewayError,
        ServiceUnavailableError,
        EdgeTimeoutError,
        ProviderOverloadedError,
    )
}

#: Every status OpenRouter documents for its endpoints.
DOCUMENTED_STATUSES = (400, 401, 402, 403, 404, 408, 410, 413, 422, 429, 500, 502, 503, 524, 529)


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status; unknown 5xx are server errors."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError
