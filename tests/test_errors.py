"""The status -> exception table is complete, and every transport failure has its class."""

from __future__ import annotations

import email.utils
import time

import httpx2
import pytest
from pydantic import SecretStr

from openrouter_mcp import errors
from openrouter_mcp.config import Settings
from openrouter_mcp.upstream.client import OpenRouterClient

KEY = "sk-or-v1-unit-test-key-0123456789"

EXPECTED = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    402: errors.PaymentRequiredError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    408: errors.RequestTimeoutError,
    410: errors.GoneError,
    413: errors.PayloadTooLargeError,
    422: errors.UnprocessableEntityError,
    429: errors.RateLimitError,
    500: errors.InternalServerError,
    502: errors.BadGatewayError,
    503: errors.ServiceUnavailableError,
    524: errors.EdgeTimeoutError,
    529: errors.ProviderOverloadedError,
}


def test_every_documented_status_has_its_own_class() -> None:
    assert set(EXPECTED) == set(errors.DOCUMENTED_STATUSES)
    for status, cls in EXPECTED.items():
        assert errors.status_error_class(status) is cls
        assert cls.status_code == status


def test_unknown_statuses_fall_back_by_family() -> None:
    assert errors.status_error_class(599) is errors.InternalServerError
    assert errors.status_error_class(418) is errors.APIStatusError


def _client(handler: httpx2.MockTransport) -> OpenRouterClient:
    settings = Settings(api_key=SecretStr(KEY), base_url="http://upstream.test/api/v1")
    return OpenRouterClient(settings, httpx2.AsyncClient(transport=handler))


@pytest.mark.anyio
@pytest.mark.parametrize("status", sorted(EXPECTED))
async def test_each_status_answer_raises_its_class_with_the_envelope_parsed(status: int) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        body = {
            "error": {
                "code": status,
                "message": f"failure {status}",
                "metadata": {"error_type": "some_type", "provider_code": 7},
            }
        }
        return httpx2.Response(status, json=body, headers={"Retry-After": "3"})

    with pytest.raises(EXPECTED[status]) as caught:
        await _client(httpx2.MockTransport(answer)).get_credits()
    assert caught.value.status_code == status
    assert caught.value.message == f"failure {status}"
    assert caught.value.error_type == "some_type"
    assert caught.value.provider_code == 7
    assert caught.value.retry_after == 3.0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx2.ConnectTimeout("connect timed out"), errors.UpstreamTimeout),
        (httpx2.ReadTimeout("read timed out"), errors.UpstreamTimeout),
        (httpx2.WriteTimeout("write timed out"), errors.UpstreamTimeout),
        (httpx2.PoolTimeout("pool timed out"), errors.UpstreamTimeout),
        (httpx2.ConnectError("refused"), errors.UpstreamConnectionError),
        (httpx2.ReadError("reset"), errors.UpstreamConnectionError),
        (httpx2.WriteError("broken pipe"), errors.UpstreamConnectionError),
        (httpx2.RemoteProtocolError("peer closed"), errors.UpstreamConnectionError),
        (httpx2.DecodingError("bad gzip"), errors.MalformedResponseError),
        (httpx2.UnsupportedProtocol("ftp"), errors.TransportError),
        (httpx2.ProxyError("proxy"), errors.TransportError),
        (httpx2.TooManyRedirects("loop"), errors.TransportError),
    ],
)
async def test_every_transport_failure_maps_to_our_tree(exc: Exception, expected: type[Exception]) -> None:
    def fail(request: httpx2.Request) -> httpx2.Response:
        raise exc

    with pytest.raises(expected):
        await _client(httpx2.MockTransport(fail)).list_providers()


@pytest.mark.anyio
async def test_an_upstream_message_echoing_the_key_is_redacted() -> None:
    def leak(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"error": {"code": 401, "message": f"bad key {KEY}", "metadata": {"k": KEY}}})

    with pytest.raises(errors.AuthenticationError) as caught:
        await _client(httpx2.MockTransport(leak)).get_current_key()
    assert KEY not in str(caught.value.payload())
    assert "[redacted]" in caught.value.message


@pytest.mark.anyio
async def test_error_type_directly_under_error_is_read_like_the_docs_examples() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(503, json={"error": {"message": "overloaded", "error_type": "provider_overloaded"}})

    with pytest.raises(errors.ServiceUnavailableError) as caught:
        await _client(httpx2.MockTransport(answer)).list_providers()
    assert caught.value.error_type == "provider_overloaded"


@pytest.mark.anyio
async def test_account_wide_rate_limit_is_told_apart_from_a_provider_one() -> None:
    def own_limit(request: httpx2.Request) -> httpx2.Response:
        headers = {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1767225600000"}
        return httpx2.Response(429, json={"error": {"code": 429, "message": "slow down"}}, headers=headers)

    def provider_limit(request: httpx2.Request) -> httpx2.Response:
        body = {"error": {"code": 429, "message": "upstream busy", "metadata": {"provider_code": 429}}}
        return httpx2.Response(429, json=body)

    with pytest.raises(errors.RateLimitError) as own:
        await _client(httpx2.MockTransport(own_limit)).get_credits()
    with pytest.raises(errors.RateLimitError) as provider:
        await _client(httpx2.MockTransport(provider_limit)).get_credits()
    assert own.value.account_wide and own.value.rate_limit == {
        "limit": "20",
        "remaining": "0",
        "reset": "1767225600000",
    }
    assert not provider.value.account_wide


@pytest.mark.anyio
async def test_retry_after_as_http_date_and_availability_hint_are_both_understood() -> None:
    def dated(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(503, json={"error": {"code": 503, "message": "x"}}, headers={"Retry-After": "junk"})

    def availability(request: httpx2.Request) -> httpx2.Response:
        body = {
            "error": {"code": 429, "message": "x", "availability": {"code": "capacity_exhausted", "retry_after": 4}}
        }
        return httpx2.Response(429, json=body)

    with pytest.raises(errors.ServiceUnavailableError) as junk:
        await _client(httpx2.MockTransport(dated)).get_credits()
    assert junk.value.retry_after is None

    def http_date(request: httpx2.Request) -> httpx2.Response:
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        return httpx2.Response(429, json={"error": {"code": 429, "message": "x"}}, headers={"Retry-After": when})

    with pytest.raises(errors.RateLimitError) as dated_error:
        await _client(httpx2.MockTransport(http_date)).get_credits()
    assert dated_error.value.retry_after is not None and 25 <= dated_error.value.retry_after <= 31
    with pytest.raises(errors.RateLimitError) as hinted:
        await _client(httpx2.MockTransport(availability)).get_credits()
    assert hinted.value.retry_after == 4.0
    assert hinted.value.availability == {"code": "capacity_exhausted", "retry_after": 4}


@pytest.mark.anyio
async def test_a_200_that_carries_an_error_envelope_is_an_error() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"error": {"code": 502, "message": "provider fell over"}})

    with pytest.raises(errors.ErrorInResponseError) as caught:
        await _client(httpx2.MockTransport(answer)).list_models()
    assert caught.value.message == "provider fell over"


@pytest.mark.anyio
async def test_invalid_json_is_a_malformed_response() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"<html>gateway</html>")

    with pytest.raises(errors.MalformedResponseError):
        await _client(httpx2.MockTransport(answer)).get_credits()


@pytest.mark.anyio
async def test_calls_that_need_a_key_fail_before_sending_when_none_is_set() -> None:
    sent: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(200, json={"data": []})

    client = OpenRouterClient(
        Settings(base_url="http://upstream.test/api/v1"), httpx2.AsyncClient(transport=httpx2.MockTransport(record))
    )
    with pytest.raises(errors.MissingApiKeyError, match="OPENROUTER_API_KEY"):
        await client.get_credits()
    assert sent == []
    await client.list_providers()
    assert "authorization" not in sent[0].headers


def _tree_classes() -> set[str]:
    """Class names drawn in the module docstring's tree."""
    assert errors.__doc__ is not None
    drawing = errors.__doc__.split("```")[1]
    return {line.lstrip("│├└─ ").split()[0] for line in drawing.strip().splitlines()}


def test_every_exception_class_in_the_module_is_drawn_in_its_tree() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.OpenRouterError) and value.__module__ == errors.__name__
    }
    assert defined == _tree_classes()
    assert defined <= set(errors.__all__)


def test_the_tree_drawing_nests_each_class_under_its_real_parent() -> None:
    assert errors.__doc__ is not None
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.split("```")[1].strip().splitlines():
        name = line.lstrip("│├└─ ").split()[0]
        depth = len(line) - len(line.lstrip("│├└─ "))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            assert issubclass(getattr(errors, name), getattr(errors, stack[-1][1])), (name, stack[-1][1])
        stack.append((depth, name))


def test_a_storage_fault_in_the_audit_log_is_not_a_configuration_error() -> None:
    assert not issubclass(errors.AuditError, errors.ConfigurationError)
    # A bad path or a foreign file is a configuration mistake, and still caught as an audit error.
    assert issubclass(errors.AuditSetupError, errors.AuditError)
    assert issubclass(errors.AuditSetupError, errors.ConfigurationError)


def test_a_persona_error_is_a_clear_non_retryable_error_of_the_tree() -> None:
    from openrouter_mcp.routing.personas import PersonaError

    assert PersonaError is errors.PersonaError
    error = PersonaError("unknown persona 'ghost'; available: default")
    assert not isinstance(error, ValueError)
    assert error.payload() == {
        "error": "invalid_persona",
        "message": "unknown persona 'ghost'; available: default",
        "retryable": False,
    }


def test_too_busy_and_routing_failed_are_defined_once_in_the_tree() -> None:
    from openrouter_mcp.routing import fallback
    from openrouter_mcp.serving import limits

    assert limits.TooBusyError is errors.TooBusyError and issubclass(errors.TooBusyError, errors.NotAllowedError)
    assert fallback.RoutingFailed is errors.RoutingFailed
