"""`get_usage`: spend and calls by persona, model and day, from the audit log (read-only, no upstream call)."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from openrouter_mcp.errors import ConfigurationError, NotAllowedError
from openrouter_mcp.serving.scopes import allowed_personas
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.registry import ToolInput, ToolOutput, ToolSpec, one_line_schema

#: Reads our own log only: nothing leaves the machine.
LOCAL_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


class UsageInput(ToolInput):
    days: int = Field(30, ge=1, le=366, description="The window, ending now")
    persona: str | None = None


class UsageOutput(ToolOutput):
    model_config = one_line_schema("calls, errors, cost (USD), tokens; by_persona, by_model, by_day (UTC)")


def usage_summary(state: AppState, days: int, persona: str | None) -> dict[str, Any]:
    """The audit log's summary over the last `days`, limited to what the caller's scope may see.

    Raises:
        ConfigurationError: the audit log is off, so nothing was recorded.
        NotAllowedError: `persona` is outside the caller's scope, or a scoped caller named none of several.
    """
    if state.audit is None:
        raise ConfigurationError("the audit log is off (OPENROUTER_MCP_AUDIT=off), so no usage was recorded")
    allowed = allowed_personas(state)
    if allowed is not None:
        if persona is None and len(allowed) == 1:
            persona = next(iter(allowed))
        elif persona not in allowed:
            raise NotAllowedError(f"name one of this client's personas to see its usage: {', '.join(sorted(allowed))}")
    now = state.clock()
    # The window ends just after now: a call that started this very instant belongs in it.
    return state.audit.usage(since=now - days * 86_400, until=now + 0.001, persona=persona).as_dict()


async def get_usage(args: UsageInput, state: AppState, ctx: Context) -> UsageOutput:
    return UsageOutput.model_validate(usage_summary(state, args.days, args.persona))


USAGE_TOOLS: list[ToolSpec[Any, Any]] = [
    ToolSpec(
        name="get_usage",
        title="Usage and spend",
        description="Calls, errors, tokens and USD spent via this server, by persona, model, day.",
        input_model=UsageInput,
        output_model=UsageOutput,
        annotations=LOCAL_READ,
        handler=get_usage,
    )
]
