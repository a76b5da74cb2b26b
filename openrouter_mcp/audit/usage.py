"""What the audit log says about spend: calls, errors, tokens and USD by persona, model and UTC day.

Read by the `get_usage` tool and the `openrouter://usage` resource alike, scoped to the personas the
caller may see. The caller's state is passed in (the log, the scope, the time), so this stays free
of mcp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openrouter_mcp.errors import ConfigurationError, NotAllowedError

if TYPE_CHECKING:
    from openrouter_mcp.audit.ledger import Ledger

DAY = 86_400


async def usage_summary(
    audit: Ledger | None,
    *,
    days: int,
    persona: str | None,
    allowed: frozenset[str] | None,
    now: float,
) -> dict[str, Any]:
    """The log's summary of the `days` up to `now`, limited to the `allowed` personas (None: any).

    A caller allowed a single persona sees that persona without naming it; one allowed several must
    name one of them, so no total mixes in spend it may not see.

    Raises:
        ConfigurationError: the audit log is off, so nothing was recorded.
        NotAllowedError: `persona` is outside the caller's scope, or a scoped caller named none of several.
        AuditError: the log cannot be read.
    """
    if audit is None:
        raise ConfigurationError("the audit log is off (OPENROUTER_MCP_AUDIT=off), so no usage was recorded")
    if allowed is not None:
        if persona is None and len(allowed) == 1:
            persona = next(iter(allowed))
        elif persona not in allowed:
            raise NotAllowedError(f"name one of this client's personas to see its usage: {', '.join(sorted(allowed))}")
    # The window ends just after now: a call that started this very instant belongs in it.
    return (await audit.usage(since=now - days * DAY, until=now + 0.001, persona=persona)).as_dict()
