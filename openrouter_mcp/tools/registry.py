"""How a tool is declared: a strict input model, an open output model, annotations, a handler.

MCPServer derives a tool's input schema from a function signature; we want one pydantic model
per tool instead (its field descriptions are what the calling model reads, and `extra="forbid"`
turns a misspelt argument into a clear error). So `build_tool` assembles the SDK's `Tool` from
our `ToolSpec` directly (through `_sdk.whole_arguments_tool`, which hands the handler that model
whole), and turns our errors into `isError` results the model can act on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import anyio
import pydantic_core
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, PrivateAttr

from openrouter_mcp._sdk import ToolInputBase, whole_arguments_tool
from openrouter_mcp.errors import NotAllowedError, OpenRouterError
from openrouter_mcp.serving.limits import limit_key
from openrouter_mcp.serving.scopes import caller, check_tool_allowed
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.argument_errors import InvalidArguments, validate_or_refuse
from openrouter_mcp.tools.recording import record_call

logger = logging.getLogger(__name__)


class ToolInput(ToolInputBase):
    """Base of every tool's arguments: unknown fields are errors, not silently dropped."""

    # defer_build: validators are built on first use, not at start-up (schemas ship in schemas.json).
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    _json: dict[str, Any] | None = PrivateAttr(default=None)  # `as_json()`, once made

    def as_json(self) -> dict[str, Any]:
        """These arguments as JSON values, fields that are None left out: the audit row keeps them, and a
        handler may build its upstream request from them (`json_without`). Dumped once per call, not once for
        each. Shared, so never changed in place."""
        if self._json is None:
            self._json = self.model_dump(mode="json", exclude_none=True)
        return self._json

    def json_without(self, *fields: str) -> dict[str, Any]:
        """`as_json()` less `fields`, as a new dict whose keys may be set or removed freely; the values in it are
        `as_json()`'s own, so replace them rather than change them in place."""
        return {key: value for key, value in self.as_json().items() if key not in fields}


class ToolOutput(BaseModel):
    """Base of every tool's structured result; open, like the wire models it is built from."""

    model_config = ConfigDict(extra="allow", defer_build=True)


def one_line_schema(description: str) -> ConfigDict:
    """Model config that publishes a result model as one described object, its required fields kept.

    For results whose field names say what they hold: hosts resend every schema to the model each
    turn, and a full property list would cost a few hundred bytes a tool for little.
    """

    def rewrite(schema: dict[str, Any]) -> None:
        required = schema.get("required")
        schema.clear()
        schema.update({"type": "object", "description": description})
        if required:
            schema["required"] = required

    return ConfigDict(extra="allow", json_schema_extra=rewrite, defer_build=True)


InT = TypeVar("InT", bound=ToolInput)
OutT = TypeVar("OutT", bound=ToolOutput)

#: A handler returns its output model, or, on a hot path (the paid tools), the dict that model would dump to,
#: built directly: validating values that came from validated wire models, then dumping them, costs every call.
#: Either way the SDK client checks the result against the published schema, as every end-to-end test does.
Handler = Callable[[InT, AppState, Context], Awaitable[OutT | dict[str, Any]]]

# destructiveHint is left out: the spec gives it meaning only for tools that are not read-only.
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True)


@dataclass(frozen=True)
class ToolSpec(Generic[InT, OutT]):
    name: str
    title: str
    description: str
    input_model: type[InT]
    output_model: type[OutT]
    annotations: ToolAnnotations
    handler: Handler[InT, OutT]
    #: Spends credits: its audit rows carry model, tokens and cost, which budgets and usage count.
    paid: bool = False


#: The published schemas of every tool, generated from the models by `write_schemas()` and kept in step with
#: them by a test: generating them takes ~17 ms of every start-up, loading them well under one.
SCHEMAS_PATH = Path(__file__).with_name("schemas.json")


def tool_schemas(spec: ToolSpec[Any, Any]) -> dict[str, Any]:
    """`spec`'s published input and result schemas, generated from its models."""
    return {
        "input": lean_schema(spec.input_model.model_json_schema(by_alias=True)),
        "output": lean_schema(spec.output_model.model_json_schema(by_alias=True, mode="serialization"), result=True),
    }


def load_schemas() -> dict[str, dict[str, Any]]:
    """The shipped schemas by tool name ({} if the file is missing: every tool then generates its own)."""
    try:
        with SCHEMAS_PATH.open(encoding="utf-8") as file:
            return cast(dict[str, dict[str, Any]], json.load(file))
    except FileNotFoundError:
        return {}


def write_schemas(specs: list[ToolSpec[Any, Any]]) -> None:
    """Regenerate `schemas.json` after changing a tool's models: `python -m openrouter_mcp.tools`."""
    data = {spec.name: tool_schemas(spec) for spec in specs}
    SCHEMAS_PATH.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def build_tool(spec: ToolSpec[Any, Any], schemas: dict[str, Any] | None = None) -> Tool:
    """The SDK `Tool` for `spec`: our schema in, our result (or a readable error) out.

    `schemas` are `spec`'s shipped schemas, if any; without them they are generated from the models.
    """
    schemas = schemas or tool_schemas(spec)

    async def run(ctx: Context, args: ToolInput | InvalidArguments) -> CallToolResult:
        state = cast(AppState, ctx.request_context.lifespan_context)
        started, clock = state.clock(), time.perf_counter()
        user = caller(state)
        reply: CallToolResult | None = None
        outcome: str = "error"
        data: dict[str, Any] | None = None
        error: str | None = "cancelled or crashed"
        refusal: str | None = None
        recording: Awaitable[str | None] | None = None

        def record() -> Awaitable[str | None]:
            return record_call(
                state,
                tool=spec.name,
                paid=spec.paid,
                user=user,
                started=started,
                latency_ms=(time.perf_counter() - clock) * 1000,
                outcome=outcome,
                arguments=args,
                data=data,
                error=error,
            )

        try:
            check_tool_allowed(state, spec.name)
            if isinstance(args, InvalidArguments):
                raise ValueError(args.message)
            # Only calls that spend credits count against a client's limit: they hold an upstream request for
            # seconds, while the catalog and account tools answer from cache or in one quick round trip.
            limits = state.limits if spec.paid else None
            async with limits.slot(limit_key(ctx.request_context.request, user)) if limits else nullcontext():
                result = await spec.handler(args, state, ctx)
            data = (
                result if isinstance(result, dict) else result.model_dump(mode="json", by_alias=True, exclude_none=True)
            )
            outcome, error = "ok", None
            # The row is handed to the ledger's writer, which writes it while the reply is built here (or, on stdio
            # with nothing queued for the writer, written here and now); awaited below.
            recording = record()
            text = pydantic_core.to_json(data).decode()  # compact UTF-8 JSON, as json.dumps but in Rust
            reply = CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)
            return reply
        except OpenRouterError as exc:
            reply = error_result(spec.name, exc)
            data = exc.payload()
            outcome, error = ("refused" if isinstance(exc, NotAllowedError) else "error"), f"{exc.kind}: {exc.message}"
            refusal = exc.kind if isinstance(exc, NotAllowedError) else None
            return reply
        except ValueError as exc:
            # The input model refused the arguments, or our own checks beyond it (an id that cannot be a model id).
            outcome, error = "invalid_arguments", f"invalid_arguments: {exc}"
            return CallToolResult(
                content=[TextContent(type="text", text=f"{spec.name}: invalid arguments: {exc}")], is_error=True
            )
        finally:
            if state.metrics is not None:
                state.metrics.tool_call(state, spec.name, outcome, args, data, paid=spec.paid, refusal=refusal)
            # Before the result leaves (shielded: a cancelled call is recorded too): an answered call is never
            # missing from the log. An answer whose record went to the spool says so in a `warning`. With no log,
            # or the row written already, there is nothing to wait for, nor to shield.
            recording = recording or record()
            if isinstance(recording, asyncio.Future) and recording.done():
                warning = recording.result()
            else:
                with anyio.CancelScope(shield=True):
                    warning = await recording
            if warning and reply is not None:
                _add_warning(reply, warning)

    return whole_arguments_tool(
        run,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_model=spec.input_model,
        input_schema=schemas["input"],
        output_schema=schemas["output"],
        annotations=spec.annotations,
        validate=validate_or_refuse,
    )


def _add_warning(reply: CallToolResult, warning: str) -> None:
    """Add `warning` to an answered call's result, in its structured content and its text alike."""
    if reply.structured_content is not None:
        reply.structured_content["warning"] = warning
        reply.content = [TextContent(type="text", text=pydantic_core.to_json(reply.structured_content).decode())]


def lean_schema(schema: Any, *, result: bool = False) -> Any:
    """The same JSON Schema with pydantic's verbosity removed, since hosts send it to the model every turn.

    Drops generated `title`s, `default: null` and `additionalProperties: true` (the JSON Schema
    default), and folds `anyOf: [T, {type: null}]` into `T`: an optional argument is one you may
    leave out (pydantic still accepts an explicit null), and results leave absent fields out. For a
    `result` schema, defaults go too: a result always carries its values. Validation is unchanged:
    pydantic still checks arguments and results against the models themselves.
    """
    if isinstance(schema, list):
        return [lean_schema(item, result=result) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        noise = (key == "title" and isinstance(value, str)) or (key == "default" and (value is None or result))
        if noise or (key, value) == ("additionalProperties", True):
            continue
        if key == "properties" and isinstance(value, dict):
            # Property names are data, not keywords: keep every one, lean their schemas.
            out[key] = {name: lean_schema(sub, result=result) for name, sub in value.items()}
            continue
        out[key] = lean_schema(value, result=result)
    branches = out.get("anyOf")
    if isinstance(branches, list) and {"type": "null"} in branches:
        others = [branch for branch in branches if branch != {"type": "null"}]
        del out["anyOf"]
        out.update(others[0] if len(others) == 1 else {"anyOf": others})
    if isinstance(out.get("type"), list) and "null" in out["type"]:
        kinds = [kind for kind in out["type"] if kind != "null"]
        out["type"] = kinds[0] if len(kinds) == 1 else kinds
    return out


def error_result(tool: str, exc: OpenRouterError) -> CallToolResult:
    """An `isError` result saying what failed, the upstream status and type, and whether/when to retry."""
    payload = {"tool": tool, **exc.payload()}
    status = f" (HTTP {payload['status']})" if "status" in payload else ""
    advice = "Do not retry unchanged."
    if exc.retryable:
        wait = exc.retry_after
        advice = f"Retry after {wait:g} s." if wait is not None else "Retrying may succeed."
    headline = f"{tool} failed: {exc.kind}{status}: {exc.message} {advice}"
    logger.info("tool %s failed: %s%s", tool, exc.kind, status)
    text = headline + "\n" + json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
