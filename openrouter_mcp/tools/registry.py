"""How a tool is declared: a strict input model, an open output model, annotations, a handler.

MCPServer derives a tool's input schema from a function signature; we want one pydantic model
per tool instead (its field descriptions are what the calling model reads, and `extra="forbid"`
turns a misspelt argument into a clear error). So `build_tool` assembles the SDK's `Tool` from
our `ToolSpec` directly, and turns our errors into `isError` results the model can act on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict

from openrouter_mcp.errors import OpenRouterError
from openrouter_mcp.state import AppState

logger = logging.getLogger(__name__)


class ToolInput(ArgModelBase):
    """Base of every tool's arguments: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class ToolOutput(BaseModel):
    """Base of every tool's structured result; open, like the wire models it is built from."""

    model_config = ConfigDict(extra="allow")


InT = TypeVar("InT", bound=ToolInput)
OutT = TypeVar("OutT", bound=ToolOutput)

Handler = Callable[[InT, AppState, Context], Awaitable[OutT]]

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)


@dataclass(frozen=True)
class ToolSpec(Generic[InT, OutT]):
    name: str
    title: str
    description: str
    input_model: type[InT]
    output_model: type[OutT]
    annotations: ToolAnnotations
    handler: Handler[InT, OutT]


def build_tool(spec: ToolSpec[Any, Any]) -> Tool:
    """The SDK `Tool` for `spec`: our schema in, our result (or a readable error) out."""

    async def run(ctx: Context, **fields: Any) -> CallToolResult:
        # The SDK already validated `fields` against `input_model`; rebuild the model without re-validating.
        args = spec.input_model.model_construct(**fields)
        state: AppState = ctx.request_context.lifespan_context
        try:
            result = await spec.handler(args, state, ctx)
        except OpenRouterError as exc:
            return error_result(spec.name, exc)
        except ValueError as exc:
            # Our own argument checks beyond the schema (e.g. an id that cannot be a model id).
            return CallToolResult(
                content=[TextContent(type="text", text=f"{spec.name}: invalid arguments: {exc}")], is_error=True
            )
        structured = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    return Tool(
        fn=run,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=spec.input_model.model_json_schema(by_alias=True),
        fn_metadata=FuncMetadata(arg_model=spec.input_model, output_model=spec.output_model),
        is_async=True,
        context_kwarg="ctx",
        annotations=spec.annotations,
    )


def error_result(tool: str, exc: OpenRouterError) -> CallToolResult:
    """An `isError` result saying what failed, the upstream status and type, and whether/when to retry."""
    payload = {"tool": tool, **exc.payload()}
    status = f" (HTTP {payload['status']})" if "status" in payload else ""
    advice = "Do not retry unchanged."
    if exc.retryable:
        wait = exc.retry_after
        advice = f"Retry after {wait:g} s." if wait is not None else "Retrying may succeed."
    headline = f"OpenRouter {exc.kind} error{status}: {exc.message} {advice}"
    logger.info("tool %s failed: %s%s", tool, exc.kind, status)
    text = headline + "\n" + json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
