"""Who is calling, which personas they may act as, and so which tools they see and may call.

A session is scoped when the process is bound to one persona (stdio: `--persona NAME`) or when
its authenticated HTTP client's token names personas. A scoped caller lists only the tools its
personas may use; any other tool, or a call naming a persona outside its scope, is refused with a
clear error before anything is sent upstream. Each persona is also offered as an MCP prompt, and
prompts, resources and completions are scoped the same way as tools (`Scope`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mcp import MCPError
from mcp.server import ServerRequestContext
from mcp.server.mcpserver import MCPServer, UserMessage
from mcp.server.mcpserver.prompts import Prompt
from mcp.types import INVALID_PARAMS, CompleteResult, Completion

from openrouter_mcp._sdk import CallNext, HandlerResult
from openrouter_mcp.errors import NotAllowedError
from openrouter_mcp.routing.personas import Persona, PersonasConfig
from openrouter_mcp.serving.auth import current_identity
from openrouter_mcp.state import AppState


def caller(state: AppState) -> str:
    """The user behind the current request: the authenticated client over HTTP, else the OS user."""
    identity = current_identity()
    return identity.user if identity is not None else state.os_user


def allowed_personas(state: AppState) -> frozenset[str] | None:
    """The personas the current caller may act as; None when unscoped (any persona)."""
    if state.bound_persona is not None:
        return frozenset({state.bound_persona.name})
    identity = current_identity()
    return identity.personas if identity is not None else None


def persona_for(state: AppState, name: str | None, tool: str) -> Persona:
    """The persona a call runs under: the one it names, within the caller's scope, allowed to use `tool`.

    Raises:
        NotAllowedError: the name is outside the caller's scope, or the persona may not use `tool`.
        PersonaError: no persona has that name.
    """
    allowed = allowed_personas(state)
    if allowed is not None:
        if name is None:
            name = state.personas.default if state.personas.default in allowed else min(allowed)
        elif name not in allowed:
            bound = state.bound_persona
            if bound is not None:
                raise NotAllowedError(f"this session is bound to persona {bound.name!r}; it cannot act as {name!r}")
            raise NotAllowedError(
                f"persona {name!r} is outside this client's scope; it may use: {', '.join(sorted(allowed))}"
            )
    persona = state.personas.get(name)
    if not persona.allows_tool(tool):
        raise NotAllowedError(
            f"persona {persona.name!r} may not use {tool}; it may use: {', '.join(persona.tools or [])}"
        )
    return persona


def visible_tools(state: AppState) -> frozenset[str] | None:
    """The tools the caller may see and call: the union over its personas' tools (None = every tool)."""
    allowed = allowed_personas(state)
    if allowed is None:
        return None
    tools: set[str] = set()
    for name in allowed:
        persona = state.personas.get(name)
        if persona.tools is None:
            return None
        tools.update(persona.tools)
    return frozenset(tools)


def check_tool_allowed(state: AppState, tool: str) -> None:
    """Raises:
    NotAllowedError: the caller's personas may not use `tool`.
    """
    visible = visible_tools(state)
    if visible is not None and tool not in visible:
        raise NotAllowedError(
            f"{tool} is not available in this session's scope; its tools: {', '.join(sorted(visible))}"
        )


#: Persona prompts are named `persona-NAME`: a scoped caller sees only those of its own personas.
PROMPT_PREFIX = "persona-"


def visible_prompt(state: AppState, name: str) -> bool:
    """Whether the caller may list and get prompt `name` (a persona prompt only within its scope)."""
    allowed = allowed_personas(state)
    return allowed is None or not name.startswith(PROMPT_PREFIX) or name[len(PROMPT_PREFIX) :] in allowed


#: The methods `Scope` acts on (`tools/call` is the tool registry's to check).
SCOPED_METHODS = frozenset(
    {
        "tools/list", "prompts/list", "prompts/get", "resources/list", "resources/templates/list",
        "resources/read", "completion/complete",
    }
)  # fmt: skip


class Scope:
    """Middleware: a scoped caller sees and uses only what its personas may.

    - `tools/list`: only the tools its personas may use (`tools/call` is checked by the tool registry);
    - `prompts/list` and `prompts/get`: only its own personas' prompts, so no token reads another
      persona's system prompt;
    - `resources/list`, `resources/templates/list`, `resources/read` and `completion/complete`: only
      resources whose data a visible tool serves (`resource_tool` names that tool for a URI or template).
    What is hidden is refused as unknown, exactly as if it did not exist.
    """

    def __init__(self, resource_tool: Callable[[str], str | None]) -> None:
        self._resource_tool = resource_tool

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        state = ctx.lifespan_context
        if not isinstance(state, AppState) or allowed_personas(state) is None:
            return await call_next(ctx)
        params = ctx.params or {}
        if ctx.method == "prompts/get" and not visible_prompt(state, str(params.get("name"))):
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.get('name')}")
        if ctx.method == "resources/read" and not self._resource_visible(state, str(params.get("uri"))):
            raise MCPError(INVALID_PARAMS, f"Unknown resource: {params.get('uri')}", {"uri": params.get("uri")})
        if ctx.method == "completion/complete" and not self._reference_visible(state, params.get("ref")):
            return CompleteResult(completion=Completion(values=[], has_more=False))
        result = await call_next(ctx)
        # Handlers' results arrive already shaped for the wire: dicts whose items are dicts.
        if not isinstance(result, dict):
            return result
        if ctx.method == "tools/list":
            visible = visible_tools(state)
            return _kept(result, "tools", lambda tool: visible is None or str(tool.get("name")) in visible)
        if ctx.method == "prompts/list":
            return _kept(result, "prompts", lambda prompt: visible_prompt(state, str(prompt.get("name"))))
        if ctx.method == "resources/list":
            return _kept(result, "resources", lambda item: self._resource_visible(state, str(item.get("uri"))))
        if ctx.method == "resources/templates/list":
            return _kept(
                result, "resourceTemplates", lambda item: self._resource_visible(state, str(item.get("uriTemplate")))
            )
        return result

    def _resource_visible(self, state: AppState, uri: str) -> bool:
        tool = self._resource_tool(uri)
        visible = visible_tools(state)
        return tool is None or visible is None or tool in visible

    def _reference_visible(self, state: AppState, ref: Any) -> bool:
        if not isinstance(ref, Mapping):
            return True
        if ref.get("type") == "ref/prompt":
            return visible_prompt(state, str(ref.get("name")))
        return self._resource_visible(state, str(ref.get("uri")))


def _kept(result: dict[str, Any], key: str, keep: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    items = result.get(key)
    if not isinstance(items, list):
        return result
    return {**result, key: [item for item in items if not isinstance(item, dict) or keep(item)]}


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
