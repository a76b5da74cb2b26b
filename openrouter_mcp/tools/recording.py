"""Turning one finished tool call into an audit record, and writing it before the result goes back.

The record is committed synchronously, on the event loop, before the tool returns: a crash or a kill
after the client received a result can therefore never lose its record. A failed write is logged
loudly but does not take back an answer the user has already paid for.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel

from openrouter_mcp.routing.personas import PersonaError
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.argument_errors import InvalidArguments

logger = logging.getLogger(__name__)

#: The audit outcomes a call's own outcome is kept under; anything else is an error.
_OUTCOMES: dict[str, Literal["ok", "refused", "invalid_arguments"]] = {
    "ok": "ok",
    "refused": "refused",
    "invalid_arguments": "invalid_arguments",
}


def record_call(
    state: AppState,
    *,
    tool: str,
    paid: bool,
    user: str,
    started: float,
    latency_ms: float,
    outcome: str,
    arguments: BaseModel | InvalidArguments,
    data: dict[str, Any] | None,
    error: str | None,
) -> None:
    """Write the audit row of one call (no-op when the audit log is off).

    `data` is the structured result, or the error payload; for a `paid` tool (one that spends credits)
    the model, provider, generation, tokens and cost are read from it. `arguments` are dumped only when a
    log is on, so a server without one pays nothing per call. Arguments the input model refused
    (`InvalidArguments`) are kept by name only, under outcome `invalid_arguments`.
    """
    audit = state.audit
    if audit is None:
        return
    args: dict[str, Any] = (
        arguments.audit_arguments()
        if isinstance(arguments, InvalidArguments)
        else arguments.model_dump(mode="json", exclude_none=True)
    )
    from openrouter_mcp.audit import AuditError, CallRecord  # with SQLite: loaded once the log is in use

    data = data or {}
    routing: dict[str, Any] = data["routing"] if isinstance(data.get("routing"), dict) else {}
    persona_name = routing.get("persona") or args.get("persona")
    if persona_name is None and state.bound_persona is not None:
        persona_name = state.bound_persona.name
    usage: dict[str, Any] = data["usage"] if paid and isinstance(data.get("usage"), dict) else {}
    record = CallRecord(
        ts=started,
        user=user,
        tool=tool,
        outcome=_OUTCOMES.get(outcome, "error"),
        latency_ms=round(latency_ms, 3),
        persona=persona_name,
        transport=state.transport,
        arguments=args,
        response=data,
        requested_model=args.get("model") if paid else None,
        served_model=data.get("model") if paid and outcome == "ok" else None,
        provider=data.get("provider") if paid else None,
        generation_id=data.get("generation_id") if paid else None,
        prompt_tokens=usage.get("prompt_tokens", usage.get("input_tokens")),
        completion_tokens=usage.get("completion_tokens", usage.get("output_tokens")),
        cost=usage.get("cost"),
        attempts=routing.get("attempts"),
        error=error,
    )
    try:
        privacy = state.personas.get(persona_name).audit if persona_name else None
    except PersonaError:
        privacy = None
    try:
        audit.record(record, privacy=privacy)
    except AuditError as exc:
        logger.error("could not write the audit record of a %s call: %s", tool, exc)
