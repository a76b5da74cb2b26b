"""`get_usage`: spend and calls by persona, model and day, from the audit log (read-only, no upstream call).

The summary itself is `audit/usage.py`, shared with the `openrouter://usage` resource.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

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


async def get_usage(args: UsageInput, state: AppState, ctx: Context) -> UsageOutput:
    from openrouter_mcp.audit.usage import usage_summary  # the audit package loads SQLite: not at start-up

    summary = await usage_summary(
        state.ledger, days=args.days, persona=args.persona, allowed=allowed_personas(state), now=state.clock()
    )
    return UsageOutput.model_validate(summary)


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
