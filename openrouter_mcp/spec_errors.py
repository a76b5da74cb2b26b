"""JSON-RPC error codes the spec asks for where the SDK would answer code 0.

The SDK turns any exception from a `prompts/get` handler into an error with code 0 (a JSON-RPC
compatibility choice of its dispatcher). The spec answers an unknown prompt or missing required
arguments with -32602 (invalid params), and other failures with -32603 (internal error).
`PromptErrors` checks the request first and maps what is left.
"""

from __future__ import annotations

from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS

from openrouter_mcp._sdk import CallNext, HandlerResult


class PromptErrors:
    """Middleware: `prompts/get` failures carry the spec's error codes and say what to do instead."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self._server = server

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "prompts/get":
            return await call_next(ctx)
        params = ctx.params or {}
        name = params.get("name")
        arguments = params.get("arguments") or {}
        prompts = {prompt.name: prompt for prompt in await self._server.list_prompts()}
        prompt = prompts.get(name) if isinstance(name, str) else None
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {name!r}. List the prompts with prompts/list.")
        if isinstance(arguments, dict):
            missing = [a.name for a in prompt.arguments or () if a.required and a.name not in arguments]
            if missing:
                raise MCPError(INVALID_PARAMS, f"Prompt {name!r} is missing required argument(s): {', '.join(missing)}")
        try:
            return await call_next(ctx)
        except MCPError:
            raise
        except ValueError as exc:
            # The SDK wraps every rendering failure in a ValueError; what is left after the checks is ours.
            raise MCPError(INTERNAL_ERROR, f"Could not render prompt {name!r}: {exc}") from exc
