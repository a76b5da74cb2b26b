"""Validate request and response bodies against OpenRouter's official OpenAPI 3.1 spec.

The spec is vendored at ``tests/data/openrouter/openapi.json`` (see the README there; refreshed with
``python -m tests.data.refresh``), and that copy is the only one read. Should it be missing, every validation
raises :class:`SpecNotFoundError`: contract tests then fail, never skip.

Usage::

    validate_response("GET", "/models", 200, response.json())
    validate_response("POST", "/chat/completions", 429, body)
    validate_request("POST", "/chat/completions", request_body)
    validate_stream_chunk(json.loads(sse_data))
    validate_query("GET", "/models", {"limit": "10", "sort": "newest"})

Paths are templates without ``/api/v1`` (``/models/{author}/{slug}/endpoints``). The whole spec document is
registered as one resource (``urn:openapi``) so every internal ``$ref`` resolves, and each check validates
against a JSON pointer into it with ``Draft202012Validator``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.data import OPENROUTER_DATA

__all__ = [
    "ContractError",
    "SpecNotFoundError",
    "spec",
    "spec_path",
    "validate_query",
    "validate_request",
    "validate_response",
    "validate_stream_chunk",
]

#: The vendored spec; the one file this module reads.
SPEC_FILE = OPENROUTER_DATA / "openapi.json"
SPEC_URI = "urn:openapi"

# The component each error status uses throughout the spec, for statuses an operation does not declare.
ERROR_COMPONENTS: dict[int, str] = {
    400: "BadRequestResponse",
    401: "UnauthorizedResponse",
    402: "PaymentRequiredResponse",
    403: "ForbiddenResponse",
    404: "NotFoundResponse",
    408: "RequestTimeoutResponse",
    409: "ConflictResponse",
    410: "GoneResponse",
    413: "PayloadTooLargeResponse",
    422: "UnprocessableEntityResponse",
    429: "TooManyRequestsResponse",
    500: "InternalServerResponse",
    502: "BadGatewayResponse",
    503: "ServiceUnavailableResponse",
    524: "EdgeNetworkTimeoutResponse",
    529: "ProviderOverloadedResponse",
}

# POST /credits/coinbase lost its request body when it was deprecated (spec of 2026-04-07); this is the
# CreateChargeRequest of the spec as of 2026-03-27 (typescript-sdk f1a2289c), see API.md §2.14.
LEGACY_REQUEST_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/credits/coinbase"): {
        "type": "object",
        "properties": {
            "amount": {"type": "number"},
            "sender": {"type": "string"},
            "chain_id": {"type": "integer", "enum": [1, 137, 8453]},
        },
        "required": ["amount", "sender", "chain_id"],
    },
}


class SpecNotFoundError(FileNotFoundError):
    """The OpenAPI spec could not be found; contract checks cannot run."""


class ContractError(AssertionError):
    """A body does not match the spec (or the spec has nothing to check it against)."""


def spec_path() -> Path:
    """Locate openapi.json: the vendored copy.

    Raises:
        SpecNotFoundError: the vendored copy is missing.
    """
    if SPEC_FILE.is_file():
        return SPEC_FILE
    raise SpecNotFoundError(
        f"OpenRouter OpenAPI spec not found at {SPEC_FILE}: restore it from git, or copy it in with "
        "`python -m tests.data.refresh`. Contract tests cannot run without it."
    )


@functools.cache
def spec() -> dict[str, Any]:
    """The parsed spec document (cached).

    Raises:
        SpecNotFoundError: the spec file cannot be found.
    """
    loaded: dict[str, Any] = json.loads(spec_path().read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _registry() -> Registry:
    resource: Resource[Any] = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(SPEC_URI, resource)
    return registry


@functools.cache
def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=_registry())


@functools.cache
def _extra_validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), registry=_registry())


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _operation(method: str, path_template: str) -> tuple[str, dict[str, Any]]:
    paths = spec()["paths"]
    if path_template not in paths:
        raise ContractError(f"{path_template!r} is not a path in the spec")
    operation = paths[path_template].get(method.lower())
    if not isinstance(operation, dict):
        raise ContractError(f"{method.upper()} {path_template} is not an operation in the spec")
    return f"/paths/{_escape(path_template)}/{method.lower()}", operation


def _check(validator: Draft202012Validator, instance: Any, what: str) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.path), list(map(str, e.path))))
    if not errors:
        return
    lines = [f"{what}: {len(errors)} schema violation(s)"]
    for error in errors[:8]:
        lines.append(f"  at {_where(error)}: {_short(error)}")
    raise ContractError("\n".join(lines))


def _where(error: ValidationError) -> str:
    return "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)


def _short(error: ValidationError) -> str:
    # oneOf/anyOf failures carry the useful detail in their best-matching sub-error.
    if error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return f"{str(error.message)[:200]} (e.g. {str(best.message)[:200]})"
    return str(error.message)[:300]


def validate_response(
    method: str,
    path_template: str,
    status: int,
    body: Any,
    *,
    content_type: str = "application/json",
    allow_undocumented_status: bool = False,
) -> None:
    """Check a response body against the spec's schema for the operation, status and content type.

    With ``allow_undocumented_status``, a status the operation does not declare is checked against the
    component the spec uses for that status everywhere else (``TooManyRequestsResponse`` for 429, or
    ``AnthropicMessagesErrorResponse`` on ``/messages``), because the live API returns such statuses anyway.

    Raises:
        ContractError: the body does not match, or there is no schema to check it against.
        SpecNotFoundError: the spec file cannot be found.
    """
    base, operation = _operation(method, path_template)
    responses = operation.get("responses", {})
    what = f"{method.upper()} {path_template} -> {status}"
    if str(status) in responses:
        content = responses[str(status)].get("content") or {}
        if content_type not in content:
            raise ContractError(f"{what}: the spec declares no {content_type!r} body (has {sorted(content)})")
        pointer = f"{base}/responses/{status}/content/{_escape(content_type)}/schema"
    elif allow_undocumented_status and status >= 400:
        name = "AnthropicMessagesErrorResponse" if path_template == "/messages" else ERROR_COMPONENTS.get(status)
        if name is None:
            raise ContractError(f"{what}: no shared error component for status {status}")
        pointer = f"/components/schemas/{name}"
        what += f" (undocumented; checked as {name})"
    else:
        raise ContractError(f"{what}: status {status} is not documented (documented: {sorted(responses)})")
    _check(_validator(pointer), body, what)


def validate_request(method: str, path_template: str, body: Any, *, content_type: str = "application/json") -> None:
    """Check a request body against the spec's ``requestBody`` schema for the operation.

    Raises:
        ContractError: the body does not match, or the operation takes no such body.
        SpecNotFoundError: the spec file cannot be found.
    """
    base, operation = _operation(method, path_template)
    what = f"request {method.upper()} {path_template}"
    request_body = operation.get("requestBody")
    if request_body is None:
        legacy = LEGACY_REQUEST_SCHEMAS.get((method.lower(), path_template))
        if legacy is not None:
            _check(_extra_validator(json.dumps(legacy, sort_keys=True)), body, what + " (legacy schema)")
            return
        if body is None:
            return
        raise ContractError(f"{what}: the operation takes no request body")
    content = request_body.get("content") or {}
    if content_type not in content:
        raise ContractError(f"{what}: the spec declares no {content_type!r} request body")
    _check(_validator(f"{base}/requestBody/content/{_escape(content_type)}/schema"), body, what)


def validate_query(method: str, path_template: str, params: dict[str, Any]) -> None:
    """Check query parameters (as sent: strings or numbers) against the operation's parameter schemas.

    String values are converted to the declared type first (``"10"`` -> ``10`` for an integer parameter).

    Raises:
        ContractError: an unknown parameter, a missing required one, or a value that does not match.
        SpecNotFoundError: the spec file cannot be found.
    """
    base, operation = _operation(method, path_template)
    declared = {p["name"]: (i, p) for i, p in enumerate(operation.get("parameters", [])) if p.get("in") == "query"}
    what = f"query of {method.upper()} {path_template}"
    for name in params:
        if name not in declared:
            raise ContractError(f"{what}: {name!r} is not a documented query parameter ({sorted(declared)})")
    for name, (_, parameter) in declared.items():
        if parameter.get("required") and name not in params:
            raise ContractError(f"{what}: required parameter {name!r} is missing")
    for name, value in params.items():
        index, parameter = declared[name]
        schema = parameter.get("schema", {})
        _check(_validator(f"{base}/parameters/{index}/schema"), _coerce(value, schema), f"{what}, {name}")


def _coerce(value: Any, schema: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return value
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    for kind, convert in (("integer", int), ("number", float)):
        if kind in kinds:
            try:
                return convert(value)
            except ValueError:
                return value
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    return value


def validate_stream_chunk(chunk: Any) -> None:
    """Check one parsed SSE ``data:`` payload of a chat stream against ``ChatStreamChunk``.

    Raises:
        ContractError: the chunk does not match.
        SpecNotFoundError: the spec file cannot be found.
    """
    _check(_validator("/components/schemas/ChatStreamChunk"), chunk, "chat stream chunk")
