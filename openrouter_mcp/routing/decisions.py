"""Which failure switches model, which retries the same one, and which fails the request at once.

`decide` is the one decision table: rate limits, outages and timeouts switch model (after a short
same-model retry when the upstream asked for a brief wait); request errors fail fast, since every
other model would fail the same way. Pure: no mcp, no httpx.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from openrouter_mcp.errors import (
    APIStatusError,
    BadRequestError,
    ConfigurationError,
    ErrorInResponseError,
    InternalServerError,
    MalformedResponseError,
    MidStreamError,
    NotFoundError,
    OpenRouterError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    TransportError,
)
from openrouter_mcp.routing.cooldowns import ACCOUNT, FREE_TIER
from openrouter_mcp.routing.personas import FallbackPolicy

#: Availability codes that mean "this model cannot serve this request": another model might.
_MODEL_SCOPED_AVAILABILITY = {
    "model_not_found",
    "wrong_endpoint",
    "no_endpoints",
    "model_deprecated",
    "model_unavailable_upstream",
    "capacity_exhausted",
    "temporarily_unavailable",
    "region_restricted",
    "privacy_restricted",
    "constraint_filtered",
    "free_variant_ended",
}
#: Error types of a 400 that depend on the model, not on the request.
_MODEL_SCOPED_400 = {"context_length_exceeded", "max_tokens_exceeded", "token_limit_exceeded"}


class Action(Enum):
    RETRY_SAME = "retry_same_model"
    SWITCH = "switch_model"
    FAIL = "fail"


@dataclass(frozen=True)
class Decision:
    action: Action
    #: Limits to cool down: model ids, FREE_TIER or ACCOUNT.
    cool: tuple[str, ...] = ()
    wait: float = 0.0
    why: str = ""


def decide(error: OpenRouterError, model_id: str, policy: FallbackPolicy, *, retried: bool = False) -> Decision:
    """What to do after `model_id` failed with `error`.

    Rate limits, outages and timeouts switch model (after a short same-model retry when the
    upstream asked for a brief wait); request errors (bad request, moderation, auth, credits) fail
    fast, since every other model would fail the same way and cost an attempt each.
    """
    if isinstance(error, ConfigurationError):
        return Decision(Action.FAIL, why="the server is not configured for this call")
    if isinstance(error, ResponseTooLargeError):
        # Paid for already, and another model's answer to the same request would be as long.
        return Decision(Action.FAIL, cool=(), why="the answer was larger than the size cap")
    if isinstance(error, MidStreamError) and error.partial_text:
        return Decision(Action.FAIL, cool=(model_id,), why="the stream failed after text was delivered")
    if isinstance(error, RateLimitError):
        if error.account_wide:
            if model_id.endswith(":free"):
                return Decision(Action.SWITCH, cool=(FREE_TIER,), why="free-tier limit shared by every :free model")
            return Decision(Action.FAIL, cool=(ACCOUNT,), why="OpenRouter's account-wide rate limit applies to all")
        wait = error.retry_after
        if wait is not None and wait <= policy.retry_same_model_within and not retried:
            return Decision(Action.RETRY_SAME, wait=wait, why=f"rate limited; asked to retry in {wait:g} s")
        return Decision(Action.SWITCH, cool=(model_id,), why="rate limited by the model's provider")
    if isinstance(error, APIStatusError) and _model_scoped(error):
        return Decision(
            Action.SWITCH, cool=(model_id,), why=f"model unavailable ({_availability(error) or error.kind})"
        )
    if isinstance(
        error,
        InternalServerError | TransportError | RequestTimeoutError | MalformedResponseError | ErrorInResponseError,
    ) or isinstance(error, MidStreamError):
        return Decision(Action.SWITCH, cool=(model_id,), why=f"upstream failure ({error.kind})")
    return Decision(Action.FAIL, why=f"request error ({error.kind}): another model would fail the same way")


def _availability(error: APIStatusError) -> str | None:
    code = (error.availability or {}).get("code")
    return str(code) if code else None


def _model_scoped(error: APIStatusError) -> bool:
    """Whether the error is about this model (so another may work) rather than about the request."""
    if _availability(error) in _MODEL_SCOPED_AVAILABILITY:
        return True
    if isinstance(error, NotFoundError):
        return True
    if isinstance(error, BadRequestError):
        return error.error_type in _MODEL_SCOPED_400
    if isinstance(error, PermissionDeniedError):
        return _availability(error) == "region_restricted"
    return False
