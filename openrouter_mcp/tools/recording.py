"""Turning one finished tool call into an audit record, and writing it before the result goes back.

The record is committed to the ledger before the tool returns (by its writer; on stdio, when the writer has
nothing queued, on the event loop's thread at once: `audit/thread_writer.py`): a crash or a kill after the
client received a result can therefore never lose its record. The row also settles the call's
budget reservation, if it held one (what it charged: `charged_for`). A failed write does not take back an
answer the user has already paid for: the record goes to the spool (fsync'd, replayed into the ledger
once it works again), the result carries a `warning`, and the loss is logged with what was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

from openrouter_mcp.errors import AuditError
from openrouter_mcp.routing.personas import PersonaError, Privacy
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.argument_errors import InvalidArguments
from openrouter_mcp.tools.routed_call import Hold, current_hold

if TYPE_CHECKING:
    from openrouter_mcp.audit.ledger import Ledger
    from openrouter_mcp.audit.log import CallRecord
    from openrouter_mcp.tools.registry import ToolInput

logger = logging.getLogger(__name__)

#: The audit outcomes a call's own outcome is kept under; anything else is an error.
_OUTCOMES: dict[str, Literal["ok", "refused", "invalid_arguments"]] = {
    "ok": "ok",
    "refused": "refused",
    "invalid_arguments": "invalid_arguments",
}


#: Error kinds that mean OpenRouter charged nothing: it refused the request before generating (or we did).
NOTHING_CHARGED = frozenset(
    {
        "bad_request", "authentication", "payment_required", "permission_denied", "not_found", "gone",
        "payload_too_large", "unprocessable", "rate_limited", "server_error", "bad_gateway", "unavailable",
        "edge_timeout", "provider_overloaded", "request_timeout", "no_model_fits", "not_allowed",
        "budget_exceeded", "too_busy", "ledger_unavailable", "configuration", "missing_api_key",
        "invalid_persona", "invalid_arguments",
    }
)  # fmt: skip


def charged_for(hold: Hold | None, outcome: str, cost: float | None, error_kind: str | None) -> float | None:
    """What a finished call counts against its budgets: OpenRouter's `cost` when reported; else, for a call
    that held a reservation, 0 when the failure charged nothing and the reserved amount when it is unknown
    (a stream cut before its usage block, a timeout after sending, a crash). None: count `cost`.
    """
    if cost is not None or hold is None:
        return None
    if outcome != "ok" and error_kind in NOTHING_CHARGED:
        return 0.0
    return hold.reservation.amount


def record_call(
    state: AppState,
    *,
    tool: str,
    paid: bool,
    user: str,
    started: float,
    latency_ms: float,
    outcome: str,
    arguments: ToolInput | InvalidArguments,
    data: dict[str, Any] | None,
    error: str | None,
) -> Awaitable[str | None]:
    """Write the audit row of one call, settling its reservation (no-op when the audit log is off).

    The write starts now (on SQLite; on PostgreSQL when awaited); await the result before the reply leaves. When
    there is nothing to wait for (no log, or the row written already), the result is a future already done.

    `data` is the structured result, or the error payload; for a `paid` tool (one that spends credits)
    the model, provider, generation, tokens and cost are read from it. `arguments` are dumped only when a
    log is on, so a server without one pays nothing per call. Returns a warning for the caller when the
    ledger could not take the row (it was spooled, or lost and logged); None when it was written. Arguments
    the input model refused (`InvalidArguments`) are kept by name only, under outcome `invalid_arguments`.
    """
    hold = current_hold.get()
    current_hold.set(None)
    ledger = state.ledger
    if ledger is None:
        return _settled(None)
    args = arguments.audit_arguments() if isinstance(arguments, InvalidArguments) else arguments.as_json()
    from openrouter_mcp.audit.log import CallRecord  # with SQLite: loaded once the log is in use

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
        reservation_id=hold.reservation.id if hold is not None else None,
        charged=charged_for(hold, outcome, usage.get("cost"), error.partition(":")[0] if error else None),
    )
    try:
        privacy = state.personas.get(persona_name).audit if persona_name else None
    except PersonaError:
        privacy = None
    try:
        writing = ledger.record(record, privacy=privacy)
    except AuditError as exc:
        return _spool(ledger, record, privacy, exc)
    if isinstance(writing, asyncio.Future) and writing.done() and not writing.cancelled() and not writing.exception():
        return _settled(None)  # written already (on stdio, at once: `audit/thread_writer.py`)
    return _written(writing, ledger, record, privacy)


def _settled(warning: str | None) -> asyncio.Future[str | None]:
    """A recording already over: the caller takes its warning without waiting, and without a shielded scope
    around a wait that cannot happen."""
    done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    done.set_result(warning)
    return done


async def _written(writing: Awaitable[None], ledger: object, record: CallRecord, privacy: Privacy | None) -> str | None:
    """None once the ledger has `record`; else the warning, with the record spooled."""
    try:
        await writing
    except AuditError as exc:
        return await _spool(ledger, record, privacy, exc)
    return None


async def _spool(ledger: object, record: CallRecord, privacy: Privacy | None, exc: AuditError) -> str:
    """Keep a record the ledger refused in the spool; the warning the caller gets."""
    what = (
        f"the {record.tool} call {record.record_id} by {record.user} (persona {record.persona}, "
        f"model {record.served_model or record.requested_model}, outcome {record.outcome}, cost {record.cost})"
    )
    spool = getattr(ledger, "spool", None)
    if spool is None:
        logger.error("LOST the audit record of %s: the ledger failed (%s) and there is no spool", what, exc.message)
        return f"the audit ledger could not record this call ({exc.message}); its record was lost"
    try:
        path = await anyio.to_thread.run_sync(spool.append, record, privacy)
    except AuditError as spool_exc:
        logger.error("LOST the audit record of %s: %s; %s", what, exc.message, spool_exc.message)
        return f"the audit ledger could not record this call ({exc.message}); its record was lost"
    note = getattr(ledger, "note_spooled", None)
    if note is not None:
        note()
    logger.error("could not write the audit record of %s (%s); spooled to %s for replay", what, exc.message, path)
    return f"the audit ledger could not record this call ({exc.message}); its record is kept for a retried write"


def recording_refusals(state: AppState, then: Callable[[str], None] | None) -> Callable[[str], None]:
    """A callback for refused HTTP requests (bad or missing token): `then(reason)` (the log line), and a `refused`
    row in the ledger (either engine), written in the background so the 401 never waits on it. Its reason never
    holds the token."""

    def refused(reason: str) -> None:
        if then is not None:
            then(reason)
        ledger = state.ledger
        if ledger is None:
            return
        from openrouter_mcp.audit.log import CallRecord

        record = CallRecord(
            ts=state.clock(), user="(unauthenticated)", tool="(authentication)", outcome="refused", latency_ms=0.0,
            transport=state.transport, error=reason,
        )  # fmt: skip
        state.in_background(_record_refusal(ledger, record))

    return refused


async def _record_refusal(ledger: Ledger, record: CallRecord) -> None:
    try:
        await ledger.record(record)
    except AuditError as exc:
        # The refusal stands either way; a ledger that cannot be written must not turn it into a 500.
        logger.error("could not record a refused request in the audit log: %s", exc.message)
