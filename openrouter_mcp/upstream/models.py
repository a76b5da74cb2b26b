"""Wire models: what OpenRouter sends us.

Every model accepts unknown fields (`extra="allow"`) and enums are plain strings, so OpenRouter
adding a field or an enum value never breaks parsing. Only what we read is declared; required
fields are those OpenRouter has always sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- catalog -----------------------------------------------------------------------------------


class Pricing(Wire):
    # Decimal strings in USD per token (or per unit); "0" is free, "-1" marks variable-price routers.
    prompt: str = "0"
    completion: str = "0"
    request: str | None = None
    image: str | None = None


class Architecture(Wire):
    modality: str | None = None
    input_modalities: list[str] = Field(default_factory=list)
    output_modalities: list[str] = Field(default_factory=list)
    tokenizer: str | None = None


class TopProvider(Wire):
    context_length: int | None = None
    max_completion_tokens: int | None = None
    is_moderated: bool | None = None


class Model(Wire):
    id: str
    name: str = ""
    canonical_slug: str | None = None
    created: int | None = None
    description: str | None = None
    context_length: int | None = None
    architecture: Architecture = Field(default_factory=Architecture)
    pricing: Pricing = Field(default_factory=Pricing)
    top_provider: TopProvider | None = None
    supported_parameters: list[str] = Field(default_factory=list)
    benchmarks: dict[str, Any] | None = None
    expiration_date: str | None = None


class ModelsPage(Wire):
    data: list[Model]
    total_count: int | None = None
    links: dict[str, Any] | None = None


class ModelsCount(Wire):
    count: int


class Endpoint(Wire):
    name: str = ""
    model_id: str | None = None
    model_name: str | None = None
    provider_name: str = ""
    tag: str | None = None
    context_length: int | None = None
    max_completion_tokens: int | None = None
    max_prompt_tokens: int | None = None
    pricing: Pricing = Field(default_factory=Pricing)
    quantization: str | None = None
    supported_parameters: list[str] = Field(default_factory=list)
    status: int | None = None
    uptime_last_30m: float | None = None
    latency_last_30m: dict[str, Any] | None = None
    throughput_last_30m: dict[str, Any] | None = None


class ModelEndpoints(Wire):
    id: str
    name: str = ""
    description: str | None = None
    architecture: Architecture = Field(default_factory=Architecture)
    endpoints: list[Endpoint] = Field(default_factory=list)


class Provider(Wire):
    slug: str
    name: str = ""
    privacy_policy_url: str | None = None
    terms_of_service_url: str | None = None
    status_page_url: str | None = None
    headquarters: str | None = None
    datacenters: list[str] | None = None


# --- account -----------------------------------------------------------------------------------


class Credits(Wire):
    total_credits: float
    total_usage: float


class KeyInfo(Wire):
    label: str | None = None
    limit: float | None = None
    limit_remaining: float | None = None
    limit_reset: str | None = None
    usage: float | None = None
    usage_daily: float | None = None
    usage_weekly: float | None = None
    usage_monthly: float | None = None
    is_free_tier: bool | None = None
    is_management_key: bool | None = None
    expires_at: str | None = None


class Generation(Wire):
    id: str
    model: str | None = None
    provider_name: str | None = None
    created_at: str | None = None
    total_cost: float | None = None
    tokens_prompt: int | None = None
    tokens_completion: int | None = None
    finish_reason: str | None = None
    latency: float | None = None
    streamed: bool | None = None


class AuthKey(Wire):
    """POST /auth/keys: the key sign-in created (a secret: its repr never shows it)."""

    key: SecretStr
    user_id: str | None = None


class CoinbaseCharge(Wire):
    id: str
    created_at: str | None = None
    expires_at: str | None = None
    web3_data: dict[str, Any] | None = None


# --- inference ---------------------------------------------------------------------------------


class FunctionCall(Wire):
    name: str = ""
    arguments: str = ""


class ToolCall(Wire):
    id: str = ""
    type: str = "function"
    function: FunctionCall = Field(default_factory=FunctionCall)


class AssistantMessage(Wire):
    role: str = "assistant"
    content: str | list[Any] | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(Wire):
    index: int = 0
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    message: AssistantMessage = Field(default_factory=AssistantMessage)
    error: dict[str, Any] | None = None


class Usage(Wire):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    prompt_tokens_details: dict[str, Any] | None = None
    completion_tokens_details: dict[str, Any] | None = None


class ChatCompletion(Wire):
    id: str
    model: str
    created: int | None = None
    provider: str | None = None
    choices: list[ChatChoice] = Field(default_factory=list)
    usage: Usage | None = None
    openrouter_metadata: dict[str, Any] | None = None


class ToolCallDelta(Wire):
    index: int = 0
    id: str | None = None
    type: str | None = None
    function: dict[str, Any] | None = None


class ChunkDelta(Wire):
    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(Wire):
    index: int = 0
    delta: ChunkDelta = Field(default_factory=ChunkDelta)
    finish_reason: str | None = None
    native_finish_reason: str | None = None


class ChatChunk(Wire):
    id: str | None = None
    model: str | None = None
    provider: str | None = None
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None
    error: dict[str, Any] | None = None


class MessagesResult(Wire):
    id: str
    model: str
    role: str = "assistant"
    content: list[dict[str, Any]] = Field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: dict[str, Any] | None = None
    provider: str | None = None
