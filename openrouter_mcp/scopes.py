"""Persona scopes and persona prompts: what a session may see and call, and personas as slash commands.

A session bound to a persona (stdio: `--persona NAME` at start) lists only the tools that persona
may use; a call to any other tool is refused with a clear error before anything is sent upstream.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, UserMessage
from mcp.types import ListToolsResult

from openrouter_mcp.errors import NotAllowedError
from openrouter_mcp.personas import Persona, PersonasConfig
from openrouter_mcp.state import AppState


def session_persona(state: AppState, ctx: ServerRequestContext[Any, Any] | None = None) -> Persona | None:
    """The persona this request's session is bound to, if any (today: the process-wide `--persona`)."""
    return state.bound_persona


def check_tool_allowed(state: AppState, tool: str, ctx: ServerRequestContext[Any, Any] | None = None) -> None:
    """Raises:
    NotAllowedError: the session's persona may not use `tool`.
    """
    persona = session_persona(state, ctx)
    if persona is not None and not persona.allows_tool(tool):
        raise NotAllowedError(
            f"{tool} is not available to persona {persona.name!r}; its tools: {', '.join(persona.tools or [])}"
        )


class ToolScope:
    """Middleware: `tools/list` shows a bound session only the tools its persona may use."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or not isinstance(ctx.lifespan_context, AppState):
            return result
        persona = session_persona(ctx.lifespan_context, ctx)
        if persona is None or persona.tools is None:
            return result
        # The handler's result arrives already shaped for the wire: a dict whose `tools` are dicts.
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            return {**result, "tools": [t for t in result["tools"] if persona.allows_tool(str(t.get("name")))]}
        if isinstance(result, ListToolsResult):
            return result.model_copy(update={"tools": [t for t in result.tools if persona.allows_tool(t.name)]})
        return result


def register_persona_prompts(server: MCPServer[Any], personas: PersonasConfig, bound: Persona | None) -> None:
    """One prompt per persona (only the bound one for a bound session), for hosts to offer as slash commands."""
    for persona in [bound] if bound is not None else list(personas.personas.values()):
        server.add_prompt(_persona_prompt(persona))


def _persona_prompt(persona: Persona) -> Prompt:
    def render(request: str = "") -> list[UserMessage]:
        lines = [persona.system_prompt or persona.description or f"Act as the {persona.name} persona."]
        lines.append(
            f'When you call create_chat_completion or create_message, pass persona="{persona.name}" '
            "so that its models, price ceiling and provider settings apply."
        )
        if request:
            lines += ["", request]
        return [UserMessage("\n".join(lines))]

    return Prompt.from_function(
        render,
        name=f"persona-{persona.name}",
        title=f"Persona: {persona.name}",
        description=persona.description or f"Work as the {persona.name} persona.",
    )
