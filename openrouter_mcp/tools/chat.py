"""Inference tools: `create_chat_completion` (OpenAI format, streaming) and `create_message` (Anthropic format).

Both spend credits, so they are neither read-only nor idempotent. Every result reports what
OpenRouter reports: served model and provider, generation id, tokens and `usage.cost`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic_core
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_serializer

from openrouter_mcp.errors import MidStreamError, UpstreamTimeout
from openrouter_mcp.routing.fallback import RoutingRecord
from openrouter_mcp.routing.plan import RouteRequest
from openrouter_mcp.routing.pricing import provider_preferences
from openrouter_mcp.serving.scopes import persona_for
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.progress import ProgressReporter
from openrouter_mcp.tools.registry import ToolInput, ToolOutput, ToolSpec
from openrouter_mcp.tools.routed_call import PERSONA_FIELD, TASK_FIELD, call_routed, plan_for, require_key, reserve_for

if TYPE_CHECKING:
    from openrouter_mcp.upstream.models import ChatCompletion, MessagesResult

SPENDS_CREDITS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ProviderPreferences(_Strict):
    """OpenRouter's `provider` routing object."""

    order: list[str] | None = Field(None, description="Provider slugs, tried in order.")
    allow_fallbacks: bool | None = None
    require_parameters: bool | None = None
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    quantizations: list[str] | None = None
    sort: str | dict[str, Any] | None = Field(None, description="price, throughput or latency")
    max_price: dict[str, float | str] | None = Field(None, description="USD per million tokens: {prompt, completion}")

    @field_serializer("max_price")
    def _prices_as_strings(self, prices: dict[str, float | str] | None) -> dict[str, str] | None:
        # OpenRouter's spec types each ceiling as a decimal string; callers may give numbers for ease.
        return (
            None
            if prices is None
            else {kind: f"{value:g}" if isinstance(value, float | int) else value for kind, value in prices.items()}
        )


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = Field(None, description="Text or content parts.")
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Reasoning(_Strict):
    effort: Literal["max", "xhigh", "high", "medium", "low", "minimal", "none"] | None = None
    max_tokens: int | None = Field(None, ge=1)
    exclude: bool | None = None
    enabled: bool | None = None


# Nested objects are still validated strictly by their models, but published with a one-line schema:
# hosts resend every tool schema to the model each turn, and these two would otherwise cost ~1 KB each.
ProviderArg = Annotated[
    ProviderPreferences | None,
    WithJsonSchema(
        {
            "type": "object",
            "description": "Provider routing: order, only, ignore (slug lists), sort (price|throughput|latency), "
            "data_collection (allow|deny), zdr, quantizations, allow_fallbacks, require_parameters, "
            "max_price {prompt, completion} USD/M",
        }
    ),
]
ReasoningArg = Annotated[
    Reasoning | None,
    WithJsonSchema(
        {"type": "object", "description": "{effort: none|minimal|low|medium|high|xhigh|max, max_tokens, exclude}"}
    ),
]


class ChatCompletionInput(ToolInput):
    messages: Annotated[
        list[ChatMessage],
        Field(min_length=1),
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "required": ["role"]},
                "description": "The conversation, oldest first: {role: system|developer|user|assistant|tool, "
                "content: text or parts, name?, tool_call_id? (tool), tool_calls? (assistant)}",
            }
        ),
    ]
    persona: str | None = PERSONA_FIELD
    task: str | None = TASK_FIELD
    model: str | None = Field(None, description="e.g. 'openai/gpt-4o' (see list_available_models)")
    models: list[str] | None = Field(None, max_length=3, description="Fallbacks if `model` fails")
    stream: bool = Field(False, description="Progress notifications as text arrives")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = Field(
        None,
        description="[{'type':'function','function':{name,description,parameters}}]",
    )
    tool_choice: str | dict[str, Any] | None = Field(None, description="auto, none, required, or a function")
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = Field(None, description="{'type':'json_schema','json_schema':{...}}")
    reasoning: ReasoningArg = None
    provider: ProviderArg = None
    plugins: list[dict[str, Any]] | None = Field(None, description="e.g. [{'id':'web'}]")
    user: str | None = None
    session_id: str | None = Field(None, max_length=256)
    metadata: dict[str, str] | None = None


class ToolCallOut(ToolOutput):
    id: str
    name: str
    arguments: str = Field(description="JSON")


class UsageOut(ToolOutput):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = Field(None, description="USD")


class ChatCompletionOutput(ToolOutput):
    text: str = Field(description="The answer")
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: Annotated[
        list[ToolCallOut] | None,
        WithJsonSchema({"type": "array", "items": {"type": "object"}, "description": "[{id, name, arguments (JSON)}]"}),
    ] = None
    finish_reason: str | None = None
    model: str = Field(description="The model that answered")
    provider: str | None = None
    generation_id: str = Field(description="For get_generation")
    usage: Annotated[
        UsageOut | None,
        WithJsonSchema({"type": "object", "description": "prompt_tokens, completion_tokens, total_tokens, cost (USD)"}),
    ] = None
    streamed: bool = False
    routing: dict[str, Any] | None = None


def _chat_output(completion: ChatCompletion, *, streamed: bool, record: RoutingRecord) -> dict[str, Any]:
    """The result as `ChatCompletionOutput` would dump it, built directly (see `registry.Handler`)."""
    choice = completion.choices[0] if completion.choices else None
    message = choice.message if choice else None
    content = message.content if message else None
    if isinstance(content, list):
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    usage = completion.usage
    calls = [
        {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
        for call in ((message.tool_calls if message else None) or [])
    ]
    return _without_none(
        text=content or "",
        reasoning=message.reasoning if message else None,
        refusal=message.refusal if message else None,
        tool_calls=calls or None,
        finish_reason=choice.finish_reason if choice else None,
        model=completion.model,
        provider=completion.provider,
        generation_id=completion.id,
        usage=usage.model_dump(mode="json", exclude_none=True) if usage else None,
        streamed=streamed,
        routing=record.as_dict(),
    )


def _without_none(**fields: Any) -> dict[str, Any]:
    # As the output models dump (exclude_none): an absent field is left out, not sent as null.
    return {name: value for name, value in fields.items() if value is not None}


async def create_chat_completion(args: ChatCompletionInput, state: AppState, ctx: Context) -> dict[str, Any]:
    persona = persona_for(state, args.persona, "create_chat_completion")
    require_key(state, "create_chat_completion")
    body = args.json_without("stream", "persona", "task")
    if persona.system_prompt and not any(m.role in ("system", "developer") for m in args.messages):
        body["messages"] = [{"role": "system", "content": persona.system_prompt}, *body["messages"]]
    if provider := provider_preferences(persona, body.get("provider")):
        body["provider"] = provider
    images = _images(args.messages)
    request = _chat_route_request(args, body, images)
    route = await plan_for(state, persona, request)
    await reserve_for(state, persona, route, request, body, images=images)
    label = route.candidates[0].model_id if route.candidates else (args.model or "the default model")
    async with ProgressReporter(ctx, state.settings.heartbeat_interval, label) as progress:

        async def once(aimed: dict[str, Any]) -> ChatCompletion:
            if not args.stream:
                return await state.client.create_chat_completion(aimed, router_metadata="models" in aimed)
            return await _streamed(state, aimed, progress)

        completion, record = await call_routed(state, persona, route, body, once, lambda c: c.model, _router_attempts)
    return _chat_output(completion, streamed=args.stream, record=record)


async def _streamed(state: AppState, body: dict[str, Any], progress: ProgressReporter) -> ChatCompletion:
    from openrouter_mcp.upstream.streaming import ChatStreamAggregator  # with the wire models: not needed at start-up

    aggregator = ChatStreamAggregator()
    try:
        async with state.client.stream_chat_completion(body, router_metadata="models" in body) as chunks:
            async for chunk in chunks:
                new_text = aggregator.add(chunk)
                if new_text:
                    await progress.text(new_text, aggregator.chars)
    except MidStreamError as exc:
        # Text already streamed to the client is reported, never silently dropped or restarted elsewhere.
        exc.partial_text = aggregator.text
        raise
    except UpstreamTimeout as exc:
        if not aggregator.text:
            raise  # nothing shown yet: another model may still answer in time
        # A deadline cut the stream after text went out: the same rule, so the text is reported, not restarted.
        raise MidStreamError(
            f"{exc.message}; the answer is incomplete",
            status_code=200,
            error_type="timeout",
            generation_id=aggregator.id,
            partial_text=aggregator.text,
        ) from None
    return aggregator.result()


def _router_attempts(completion: ChatCompletion) -> list[dict[str, Any]]:
    attempts = (completion.openrouter_metadata or {}).get("attempts")
    return [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []


def _chat_route_request(args: ChatCompletionInput, body: dict[str, Any], images: int) -> RouteRequest:
    # Tokens from `body`, the plain dicts about to be sent (a persona's system prompt included), not the models.
    response_type = (args.response_format or {}).get("type")
    return RouteRequest(
        requested_model=args.model,
        fallback_models=tuple(args.models or ()),
        task=args.task,
        needs_tools=bool(args.tools) and args.tool_choice != "none",
        needs_structured_output=response_type in ("json_object", "json_schema"),
        has_images=images > 0,
        prompt_tokens=_estimate_tokens(body["messages"], body.get("tools")),
        max_tokens=args.max_tokens,
    )


def _is_image(part: dict[str, Any]) -> bool:
    return part.get("type") in ("image_url", "image")


def _images(messages: list[ChatMessage] | list[AnthropicMessage]) -> int:
    """How many image parts the messages carry (a budget bounds their per-image price)."""
    return sum(_is_image(part) for m in messages if isinstance(m.content, list) for part in m.content)


def _estimate_tokens(*parts: Any) -> int:
    # About four characters a token: only used to rule out models whose context is clearly too small.
    return len(pydantic_core.to_json(parts, exclude_none=True, fallback=str)) // 4


class AnthropicMessage(_Strict):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]] = Field(description="Text or content blocks")


class MessageInput(ToolInput):
    messages: Annotated[
        list[AnthropicMessage],
        Field(min_length=1),
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "required": ["role", "content"]},
                "description": "The conversation, oldest first: {role: user|assistant, content: text or blocks}",
            }
        ),
    ]
    model: str | None = Field(None, description="e.g. 'anthropic/claude-sonnet-4'; or let the persona choose")
    persona: str | None = PERSONA_FIELD
    task: str | None = TASK_FIELD
    max_tokens: int | None = Field(None, ge=1)
    system: str | list[dict[str, Any]] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    stop_sequences: list[str] | None = None
    tools: list[dict[str, Any]] | None = Field(None, description="[{name, description, input_schema}]")
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = Field(None, description="{'type':'enabled','budget_tokens':N}")
    metadata: dict[str, Any] | None = None
    models: list[str] | None = Field(None, max_length=3, description="Fallback model ids")
    provider: ProviderArg = None
    plugins: list[dict[str, Any]] | None = None
    user: str | None = None
    session_id: str | None = Field(None, max_length=256)


class MessageUsageOut(ToolOutput):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = Field(None, description="USD")


class MessageOutput(ToolOutput):
    text: str = Field(description="The text blocks, joined")
    content: list[dict[str, Any]]
    stop_reason: str | None = None
    model: str = Field(description="The model that answered")
    provider: str | None = None
    generation_id: str = Field(description="For get_generation")
    usage: Annotated[
        MessageUsageOut | None,
        WithJsonSchema({"type": "object", "description": "input_tokens, output_tokens, cost (USD)"}),
    ] = None
    routing: dict[str, Any] | None = None


def _message_output(result: MessagesResult, record: RoutingRecord) -> dict[str, Any]:
    """The result as `MessageOutput` would dump it, built directly (see `registry.Handler`)."""
    text = "".join(str(block.get("text", "")) for block in result.content if block.get("type") == "text")
    return _without_none(
        text=text,
        content=result.content,
        stop_reason=result.stop_reason,
        model=result.model,
        provider=result.provider,
        generation_id=result.id,
        usage=_without_none(**result.usage) if result.usage else None,
        routing=record.as_dict(),
    )


async def create_message(args: MessageInput, state: AppState, ctx: Context) -> dict[str, Any]:
    persona = persona_for(state, args.persona, "create_message")
    require_key(state, "create_message")
    body = args.json_without("persona", "task")
    if persona.system_prompt and args.system is None:
        body["system"] = persona.system_prompt
    if provider := provider_preferences(persona, body.get("provider")):
        body["provider"] = provider
    images = _images(args.messages)
    request = _message_route_request(args, body, images)
    route = await plan_for(state, persona, request)
    if route.openrouter_default:
        raise ValueError("create_message needs `model`, or a persona that lists models or sets max_price")
    await reserve_for(state, persona, route, request, body, images=images)
    label = route.candidates[0].model_id if route.candidates else "the model"
    async with ProgressReporter(ctx, state.settings.heartbeat_interval, label):

        async def once(aimed: dict[str, Any]) -> MessagesResult:
            return await state.client.create_message(aimed, router_metadata="models" in aimed)

        result, record = await call_routed(state, persona, route, body, once, lambda r: r.model, lambda r: [])
    return _message_output(result, record)


def _message_route_request(args: MessageInput, body: dict[str, Any], images: int) -> RouteRequest:
    return RouteRequest(
        requested_model=args.model,
        fallback_models=tuple(args.models or ()),
        task=args.task,
        needs_tools=bool(args.tools) and (args.tool_choice or {}).get("type") != "none",
        needs_structured_output=False,
        has_images=images > 0,
        prompt_tokens=_estimate_tokens(body.get("system"), body["messages"], body.get("tools")),
        max_tokens=args.max_tokens,
    )


CHAT_TOOLS: list[ToolSpec[Any, Any]] = [
    ToolSpec(
        name="create_chat_completion",
        title="Chat completion",
        description=(
            "Chat with OpenRouter models (OpenAI format), with fallback: answer, tool calls, reasoning, "
            "who answered, cost. Spends credits."
        ),
        input_model=ChatCompletionInput,
        output_model=ChatCompletionOutput,
        annotations=SPENDS_CREDITS,
        handler=create_chat_completion,
        paid=True,
    ),
    ToolSpec(
        name="create_message",
        title="Anthropic-format message",
        description="Chat in Anthropic Messages format (blocks, tool_use, thinking), with fallback. Spends credits.",
        input_model=MessageInput,
        output_model=MessageOutput,
        annotations=SPENDS_CREDITS,
        handler=create_message,
        paid=True,
    ),
]
