"""The read-only `route_request` tool: which models a chat request would try, in order and why.

Calls no model: it plans exactly as the chat tools do (`routed_call.plan_for`) and reports the plan.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from pydantic import Field

from openrouter_mcp.routing.plan import RouteRequest
from openrouter_mcp.serving.scopes import persona_for
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.registry import READ_ONLY, ToolInput, ToolOutput, ToolSpec, one_line_schema
from openrouter_mcp.tools.routed_call import PERSONA_FIELD, TASK_FIELD, plan_for


class RouteInput(ToolInput):
    persona: str | None = PERSONA_FIELD
    task: str | None = TASK_FIELD
    model: str | None = None
    needs_tools: bool = False
    needs_structured_output: bool = False
    has_images: bool = False
    prompt_tokens: int = Field(0, ge=0)
    max_tokens: int | None = Field(None, ge=1)


class RouteOutput(ToolOutput):
    model_config = one_line_schema(
        "candidates in try order (model, why, prices per 1M), exclusions (model, reason, detail), ranked_out"
    )

    persona: str
    task: str | None = None
    candidates: list[dict[str, Any]]
    exclusions: list[dict[str, Any]]
    ranked_out: dict[str, int] | None = None
    openrouter_default: bool = False


async def route_request(args: RouteInput, state: AppState, ctx: Context) -> RouteOutput:
    persona = persona_for(state, args.persona, "create_chat_completion")
    request = RouteRequest(
        requested_model=args.model,
        task=args.task,
        needs_tools=args.needs_tools,
        needs_structured_output=args.needs_structured_output,
        has_images=args.has_images,
        prompt_tokens=args.prompt_tokens,
        max_tokens=args.max_tokens,
    )
    route = await plan_for(state, persona, request)
    return RouteOutput(
        persona=route.persona,
        task=route.task,
        candidates=[
            {"model": c.model_id, "why": c.why, "prompt_per_m": c.prompt_per_m, "completion_per_m": c.completion_per_m}
            for c in route.candidates
        ],
        exclusions=[{"model": x.model_id, "reason": x.reason, "detail": x.detail} for x in route.exclusions],
        ranked_out=route.ranked_out or None,
        openrouter_default=route.openrouter_default,
    )


ROUTING_TOOLS: list[ToolSpec[Any, Any]] = [
    ToolSpec(
        name="route_request",
        title="Which model would answer",
        description="Which models a chat request would try, in order and why, and what is excluded. Calls no model.",
        input_model=RouteInput,
        output_model=RouteOutput,
        annotations=READ_ONLY,
        handler=route_request,
    )
]
