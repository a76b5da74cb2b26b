"""A faithful simulated OpenRouter API, served as an ASGI app under ``/api/v1``.

Used three ways: in-process by ``openrouter-mcp --demo`` (through ``httpx.ASGITransport``), by tests and
benchmarks on a real loopback server (:func:`serve_in_thread`), and from another process with
``python -m openrouter_mcp.simulator --port N``.

What it reproduces (sources: ``shared/openrouter/API.md`` and the OpenAPI spec it cites):

- the 13 operations of openrouter-mcp, with bodies that validate against the spec for their status;
- a deterministic catalog (``seed``) of realistic models, endpoints and providers;
- OpenRouter's error envelope ``{"error": {code, message, metadata}, "user_id": null}``, the Anthropic
  envelope on ``/messages``, ``Retry-After`` and ``X-RateLimit-*`` headers, ``error.availability``;
- chat streaming exactly as on the wire: ``: OPENROUTER PROCESSING`` comments, a role chunk, content and
  tool-call deltas, a finish chunk, a usage chunk with empty ``choices``, ``data: [DONE]``, mid-stream
  error chunks, and cancellation when the client goes away;
- the ``models`` fallback array (a model with an active error fault is skipped, the last error wins);
- generations stored for ``GET /generation``, and usage that adds up in ``/credits`` and ``/key``.

Deliberate limits, each where the real API is unknown or out of scope:

- ``POST /messages`` with ``stream: true`` answers 400 "streaming not supported by the simulator".
- ``POST /embeddings``, ``/responses`` and the management APIs are not served (404).
- ``GET /generation`` without ``id`` answers 400 with OpenRouter's envelope plus the Zod markers
  (``success: false``, ``error.name``) that a live probe showed, so that both parsers are exercised.
- Endpoint latency/throughput stats are ``null`` for unauthenticated requests, as the spec documents.
- The ``/models`` filters ``category`` and ``region`` filter loosely (categories are synthetic).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import math
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio

__all__ = ["Fault", "RecordedRequest", "Simulator", "main", "serve_in_thread"]

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v1"
DEFAULT_MODEL = "openai/gpt-4o-mini"
KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
COINBASE_GONE_MESSAGE = (
    "The Coinbase APIs used by this endpoint have been deprecated, so the Coinbase Commerce credits API has "
    "been removed. Use the web credits purchase flow instead."
)
DOCS_ERRORS_URL = "https://openrouter.ai/docs/errors"

# Paths that need a key when the simulator has one (API.md §1.1); everything else is public.
AUTH_PATHS = frozenset(
    {"/chat/completions", "/messages", "/credits", "/key", "/auth/key", "/generation", "/models/user"}
    | {"/credits/coinbase"}
)

# HTTP status -> error.metadata.error_type (API.md §1.4 and the brief's 503 -> provider_overloaded).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request",
    401: "authentication",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    410: "not_found",
    412: "precondition_failed",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limit_exceeded",
    500: "server",
    502: "provider_unavailable",
    503: "provider_overloaded",
    504: "timeout",
    524: "timeout",
    529: "provider_overloaded",
}

# HTTP status -> Anthropic error.type on /messages (errors-and-debugging.mdx mapping table).
ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    524: "timeout_error",
    529: "overloaded_error",
}

STATUS_MESSAGES: dict[int, str] = {
    400: "Invalid request parameters",
    401: "User not found.",
    402: "Insufficient credits. This account never purchased credits. Add more at https://openrouter.ai/settings/credits",
    403: "Forbidden",
    404: "No endpoints found for this model.",
    408: "Request timed out",
    410: "This endpoint has been removed.",
    413: "Payload too large",
    422: "Unprocessable entity",
    429: "Rate limit exceeded: free-models-per-min.",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No available model provider that meets your routing requirements",
    504: "Gateway timeout",
    524: "Edge network timeout",
    529: "Provider is overloaded",
}


@dataclass
class Fault:
    """A fault injected for one model (or one path).

    Attributes:
        status: answer with this HTTP status and OpenRouter's error envelope (401, 402, 404, 429, 5xx...).
        retry_after: seconds; sets ``Retry-After`` on the error response.
        latency: seconds to wait before answering.
        mid_stream_error: streaming: a couple of content chunks, then the mid-stream error chunk (HTTP 200).
        malformed: answer 200 with a body that is not valid JSON.
        error_in_200: non-streaming chat: HTTP 200 whose ``choices[0]`` has ``finish_reason: "error"``.
        error_type: ``error.metadata.error_type``; derived from ``status`` when None.
        provider_code: ``error.metadata.provider_code`` for upstream errors; None = OpenRouter's own error.
        rate_limit_headers: add ``X-RateLimit-Limit/Remaining/Reset`` (OpenRouter's own limit).
        availability: the ``error.availability`` object to include.
        times: apply this many times, then stop; None = forever.
    """

    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    mid_stream_error: bool = False
    malformed: bool = False
    error_in_200: bool = False
    error_type: str | None = None
    provider_code: int | str | None = None
    rate_limit_headers: bool = False
    availability: dict[str, Any] | None = None
    times: int | None = None

    @property
    def active(self) -> bool:
        """Whether the fault still applies (``times`` not used up)."""
        return self.times is None or self.times > 0

    def consume(self) -> None:
        """Count one application against ``times``."""
        if self.times is not None:
            self.times -= 1


@dataclass
class RecordedRequest:
    """One request as the simulator received it.

    ``path`` has no ``/api/v1`` prefix (a request outside the API keeps its full path); ``headers`` have
    lower-case names; ``body`` is parsed JSON or None (also when the body was not valid JSON).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


# --------------------------------------------------------------------------------------------------
# Catalog: providers, authors and the deterministic model list
# --------------------------------------------------------------------------------------------------

# name (ProviderName enum value), slug, headquarters, datacenters, zero-data-retention
_PROVIDER_ROWS: tuple[tuple[str, str, str, str, bool], ...] = (
    ("OpenAI", "openai", "US", "US", True),
    ("Anthropic", "anthropic", "US", "US", True),
    ("Google", "google-vertex", "US", "US BE NL", True),
    ("Google AI Studio", "google-ai-studio", "US", "US", False),
    ("Amazon Bedrock", "amazon-bedrock", "US", "US DE IE", True),
    ("Azure", "azure", "US", "US SE NL", True),
    ("DeepInfra", "deepinfra", "US", "US", True),
    ("Together", "together", "US", "US", True),
    ("Fireworks", "fireworks", "US", "US", True),
    ("Groq", "groq", "US", "US", True),
    ("Cerebras", "cerebras", "US", "US", True),
    ("SambaNova", "sambanova", "US", "US", True),
    ("Mistral", "mistral", "FR", "FR SE", True),
    ("Cohere", "cohere", "CA", "CA US", True),
    ("DeepSeek", "deepseek", "CN", "CN", False),
    ("Alibaba", "alibaba", "CN", "CN SG", False),
    ("xAI", "xai", "US", "US", True),
    ("Novita", "novita", "SG", "US", False),
    ("Parasail", "parasail", "US", "US", True),
    ("Nebius", "nebius", "NL", "FI NL", True),
    ("Venice", "venice", "US", "US", True),
    ("Chutes", "chutes", "US", "US", False),
    ("Friendli", "friendli", "KR", "US KR", True),
    ("Crusoe", "crusoe", "US", "US", True),
    ("Cloudflare", "cloudflare", "US", "US", True),
    ("Nvidia", "nvidia", "US", "US", True),
    ("BaseTen", "baseten", "US", "US", True),
    ("AtlasCloud", "atlas-cloud", "US", "US", False),
    ("SiliconFlow", "siliconflow", "CN", "CN", False),
    ("Moonshot AI", "moonshotai", "CN", "CN", False),
    ("Z.AI", "z-ai", "CN", "CN SG", False),
    ("Minimax", "minimax", "CN", "CN", False),
    ("Inception", "inception", "US", "US", True),
    ("Liquid", "liquid", "US", "US", True),
    ("Perplexity", "perplexity", "US", "US", False),
    ("AI21", "ai21", "IL", "US", True),
    ("Reka", "reka", "US", "US", False),
    ("Inflection", "inflection", "US", "US", False),
    ("Featherless", "featherless", "US", "US", True),
    ("Infermatic", "infermatic", "US", "US", False),
    ("Mancer 2", "mancer", "US", "US", False),
    ("Cirrascale", "cirrascale", "US", "US", True),
    ("Clarifai", "clarifai", "US", "US", True),
    ("Databricks", "databricks", "US", "US", True),
    ("DigitalOcean", "digitalocean", "US", "US NL", True),
    ("GMICloud", "gmicloud", "US", "US", True),
    ("Modal", "modal", "US", "US", True),
    ("Phala", "phala", "US", "US", True),
    ("StepFun", "stepfun", "CN", "CN", False),
    ("Tencent", "tencent", "CN", "CN", False),
    ("Baidu", "baidu", "CN", "CN", False),
    ("Xiaomi", "xiaomi", "CN", "CN", False),
    ("Upstage", "upstage", "KR", "KR US", True),
    ("Morph", "morph", "US", "US", False),
    ("Relace", "relace", "US", "US", False),
    ("WandB", "wandb", "US", "US", True),
    ("Ionstream", "ionstream", "US", "US", True),
    ("NextBit", "nextbit", "US", "US", False),
    ("OpenInference", "open-inference", "US", "US", False),
    ("Arcee AI", "arcee-ai", "US", "US", True),
    ("Amazon Nova", "amazon-nova", "US", "US", True),
    ("CoreWeave", "coreweave", "US", "US", True),
    ("Seed", "seed", "CN", "CN", False),
)

# Hosts of open-weight models, in rough order of how often OpenRouter routes to them.
_OPEN_HOSTS: tuple[str, ...] = (
    "DeepInfra", "Together", "Fireworks", "Novita", "Parasail", "Nebius", "Chutes", "Groq", "Cerebras",
    "SambaNova", "Friendli", "Crusoe", "BaseTen", "AtlasCloud", "SiliconFlow", "Nvidia", "Cloudflare",
    "Featherless", "GMICloud", "Phala", "NextBit", "Ionstream", "WandB", "DigitalOcean", "Infermatic",
    "Mancer 2", "CoreWeave", "Modal", "Clarifai", "Cirrascale", "Databricks", "Venice", "OpenInference",
)  # fmt: skip

# Canonical order of the spec's Parameter enum; supported_parameters are listed in this order.
_PARAMETERS: tuple[str, ...] = (
    "temperature", "top_p", "top_k", "min_p", "top_a", "frequency_penalty", "presence_penalty",
    "repetition_penalty", "max_tokens", "max_completion_tokens", "logit_bias", "logprobs", "top_logprobs",
    "prediction", "seed", "response_format", "structured_outputs", "stop", "tools", "tool_choice",
    "parallel_tool_calls", "include_reasoning", "reasoning", "reasoning_effort", "web_search_options", "verbosity",
)  # fmt: skip

_CATEGORIES: tuple[str, ...] = (
    "programming", "roleplay", "marketing", "marketing/seo", "technology", "science", "translation", "legal",
    "finance", "health", "trivia", "academia",
)  # fmt: skip

_EU_COUNTRIES = frozenset({"AT", "BE", "DE", "DK", "ES", "FI", "FR", "IE", "IT", "NL", "PL", "PT", "SE"})


@dataclass(frozen=True)
class _Author:
    slug: str
    display: str
    tokenizer: str
    instruct_type: str | None
    providers: tuple[str, ...]
    families: tuple[str, ...]
    open_weights: bool
    weight: float
    premium: bool = False


_AUTHORS: tuple[_Author, ...] = (
    _Author("openai", "OpenAI", "GPT", None, ("OpenAI", "Azure"),
            ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano", "o3", "o3-mini",
             "o4-mini", "gpt-4-turbo", "gpt-3.5-turbo", "gpt-4o-audio-preview", "gpt-image-1",
             "text-embedding-3-large", "text-embedding-ada-002"), False, 3.0, True),
    _Author("anthropic", "Anthropic", "Claude", None, ("Anthropic", "Amazon Bedrock", "Google"),
            ("claude-opus-4", "claude-opus-4.1", "claude-3.7-sonnet", "claude-3.5-haiku", "claude-haiku-4.5",
             "claude-sonnet-4.5", "claude-3.5-sonnet"), False, 2.0, True),
    _Author("google", "Google", "Gemini", None, ("Google AI Studio", "Google"),
            ("gemini-2.5-pro", "gemini-2.0-flash", "gemini-2.5-flash-lite", "gemini-2.5-flash-image",
             "gemini-embedding-001", "gemma-3-27b-it", "gemma-3-12b-it", "gemma-3n-e4b-it"), False, 2.5, True),
    _Author("meta-llama", "Meta", "Llama3", "llama3", (),
            ("llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "llama-3.1-405b-instruct", "llama-4-maverick",
             "llama-4-scout", "llama-3.2-3b-instruct", "llama-3.2-11b-vision-instruct", "llama-guard-4-12b"),
            True, 2.5),
    _Author("mistralai", "Mistral", "Mistral", "mistral", ("Mistral",),
            ("mistral-large", "mistral-medium-3.1", "mistral-small-3.2-24b-instruct", "codestral",
             "devstral-medium", "ministral-8b", "pixtral-large", "mixtral-8x22b-instruct", "magistral-medium",
             "mistral-embed"), True, 2.5),
    _Author("deepseek", "DeepSeek", "DeepSeek", "deepseek-v3.1", ("DeepSeek",),
            ("deepseek-chat-v3.1", "deepseek-r1", "deepseek-r1-distill-llama-70b", "deepseek-v3.2-exp",
             "deepseek-prover-v2", "deepseek-chat"), True, 2.0),
    _Author("qwen", "Qwen", "Qwen3", "qwen3", ("Alibaba",),
            ("qwen3-235b-a22b", "qwen3-coder", "qwen3-32b", "qwen3-30b-a3b", "qwen-2.5-72b-instruct",
             "qwen2.5-vl-72b-instruct", "qwq-32b", "qwen3-max", "qwen3-next-80b-a3b", "qwen3-embedding-8b"),
            True, 2.5),
    _Author("x-ai", "xAI", "Grok", None, ("xAI",),
            ("grok-4", "grok-3", "grok-3-mini", "grok-code-fast-1", "grok-4-fast"), False, 1.2, True),
    _Author("cohere", "Cohere", "Cohere", None, ("Cohere",),
            ("command-r-plus", "command-r", "command-a", "command-r7b", "embed-v4"), False, 0.8),
    _Author("microsoft", "Microsoft", "Other", "phi3", ("Azure",),
            ("phi-4", "phi-4-reasoning-plus", "mai-ds-r1", "wizardlm-2-8x22b"), True, 0.8),
    _Author("nvidia", "NVIDIA", "Llama3", "nemotron", ("Nvidia",),
            ("llama-3.1-nemotron-70b-instruct", "nemotron-nano-9b-v2", "llama-3.3-nemotron-super-49b"), True, 0.7),
    _Author("amazon", "Amazon", "Nova", None, ("Amazon Bedrock",),
            ("nova-pro-v1", "nova-lite-v1", "nova-micro-v1", "nova-premier-v1"), False, 0.6),
    _Author("moonshotai", "MoonshotAI", "Other", None, ("Moonshot AI",),
            ("kimi-k2", "kimi-k2-thinking", "kimi-dev-72b"), True, 0.8),
    _Author("z-ai", "Z.AI", "Other", None, ("Z.AI",), ("glm-4.5", "glm-4.5-air", "glm-4.6", "glm-4.5v"), True, 0.8),
    _Author("minimax", "MiniMax", "Other", None, ("Minimax",), ("minimax-m1", "minimax-m2", "minimax-01"), True, 0.5),
    _Author("perplexity", "Perplexity", "Other", None, ("Perplexity",),
            ("sonar", "sonar-pro", "sonar-reasoning", "sonar-deep-research"), False, 0.5),
    _Author("ai21", "AI21", "Other", None, ("AI21",), ("jamba-large-1.7", "jamba-mini-1.7"), True, 0.3),
    _Author("nousresearch", "Nous", "Llama3", "chatml", (),
            ("hermes-4-405b", "hermes-4-70b", "hermes-3-llama-3.1-70b"), True, 0.5),
    _Author("liquid", "Liquid", "Other", None, ("Liquid",), ("lfm-7b", "lfm-3b", "lfm2-8b-a1b"), False, 0.3),
    _Author("inception", "Inception", "Other", None, ("Inception",), ("mercury", "mercury-coder"), False, 0.3),
    _Author("baidu", "Baidu", "Other", None, ("Baidu",), ("ernie-4.5-300b-a47b", "ernie-4.5-21b-a3b"), True, 0.3),
    _Author("arcee-ai", "Arcee AI", "Other", None, ("Arcee AI",),
            ("virtuoso-large", "coder-large", "maestro-reasoning"), True, 0.3),
    _Author("baai", "BAAI", "Other", None, (), ("bge-m3", "bge-large-en-v1.5"), True, 0.2),
)  # fmt: skip

_SUFFIXES: tuple[str, ...] = ("", "", "", "", "-preview", "-latest", "-turbo", "-exp", "-fast", "-instruct", "-0925")
_VERSION_TAGS: tuple[str, ...] = ("2407", "2409", "2411", "2501", "2503", "2505", "2507", "2509", "2512")
_PRICES_PER_M: tuple[str, ...] = (
    "0.02", "0.04", "0.05", "0.07", "0.1", "0.13", "0.15", "0.2", "0.25", "0.3", "0.4", "0.5", "0.6", "0.8", "1",
    "1.25", "2", "2.5", "3", "5", "10", "15",
)  # fmt: skip
_COMPLETION_FACTORS: tuple[str, ...] = ("1", "2", "3", "4", "4", "5", "8")
_CONTEXTS: tuple[int, ...] = (8192, 32768, 65536, 128000, 131072, 163840, 200000, 262144, 400000, 1000000, 1048576)
_MAX_OUTPUTS: tuple[int, ...] = (4096, 8192, 16384, 32768, 65536, 128000)
_STRENGTHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("coding and agentic tool use", ("programming", "technology")),
    ("multilingual chat and translation", ("translation", "trivia")),
    ("long-document reasoning and analysis", ("academia", "legal", "finance")),
    ("fast, low-cost assistance", ("marketing", "marketing/seo", "trivia")),
    ("vision and document understanding", ("technology", "health")),
    ("math and science reasoning", ("science", "academia")),
    ("creative writing and roleplay", ("roleplay", "marketing")),
    ("structured data extraction", ("technology", "finance", "legal")),
)
_REASONING_FAMILY = re.compile(
    r"(^o\d|r1|reason|think|magistral|qwq|gpt-5|grok-4|opus-4|sonnet-4|3\.7-sonnet|2\.5-pro|glm-4\.[56]|minimax-m|prover)"
)
_WORD_CASE = {"gpt": "GPT", "glm": "GLM", "oss": "OSS", "it": "IT", "vl": "VL", "r1": "R1", "ai": "AI", "bge": "BGE"}


@dataclass(frozen=True)
class _Spec:
    """Everything needed to materialise one Model and its endpoints."""

    id: str
    name: str
    created: int
    context: int
    max_output: int | None
    prompt_per_m: str
    completion_per_m: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: tuple[str, ...]
    providers: tuple[str, ...]
    tokenizer: str
    instruct_type: str | None
    description: str
    categories: tuple[str, ...]
    reasoning: JSON | None = None
    benchmarks: tuple[float, float, float] | None = None
    knowledge_cutoff: str | None = None
    hugging_face_id: str | None = None
    moderated: bool = False
    open_weights: bool = False
    popularity: float = 0.5
    cache_pricing: bool = False


_CHAT_BASE = ("max_tokens", "temperature", "top_p", "stop", "frequency_penalty", "presence_penalty", "seed")
_OPENAI_PARAMS = _CHAT_BASE + (
    "logit_bias", "logprobs", "top_logprobs", "response_format", "structured_outputs", "tools", "tool_choice",
    "parallel_tool_calls", "web_search_options",
)  # fmt: skip
_REASONING_PARAMS = ("reasoning", "include_reasoning")

_FIXED_SPECS: tuple[_Spec, ...] = (
    _Spec(
        id="openai/gpt-4o", name="OpenAI: GPT-4o", created=1715367049, context=128000, max_output=16384,
        prompt_per_m="2.5", completion_per_m="10", inputs=("text", "image", "file"), outputs=("text",),
        params=_OPENAI_PARAMS, providers=("OpenAI", "Azure"), tokenizer="GPT", instruct_type=None,
        description="GPT-4o (\"o\" for \"omni\") is OpenAI's flagship multimodal model: text and image inputs, "
        "text outputs, strong at coding, vision and multilingual chat.",
        categories=("programming", "technology", "translation"), benchmarks=(41.3, 36.8, 30.2),
        knowledge_cutoff="2023-10-01", moderated=True, popularity=0.97, cache_pricing=True,
    ),
    _Spec(
        id="openai/gpt-4o-mini", name="OpenAI: GPT-4o-mini", created=1721260800, context=128000, max_output=16384,
        prompt_per_m="0.15", completion_per_m="0.6", inputs=("text", "image", "file"), outputs=("text",),
        params=_OPENAI_PARAMS, providers=("OpenAI", "Azure"), tokenizer="GPT", instruct_type=None,
        description="GPT-4o mini is OpenAI's small, fast and cheap multimodal model for everyday tasks, "
        "with tool calling and structured outputs.",
        categories=("marketing", "trivia", "technology"), benchmarks=(35.7, 28.1, 24.9),
        knowledge_cutoff="2023-10-01", moderated=True, popularity=0.99, cache_pricing=True,
    ),
    _Spec(
        id="anthropic/claude-sonnet-4", name="Anthropic: Claude Sonnet 4", created=1747930371, context=200000,
        max_output=64000, prompt_per_m="3", completion_per_m="15", inputs=("text", "image", "file"),
        outputs=("text",),
        params=("max_tokens", "temperature", "top_p", "top_k", "stop", "tools", "tool_choice", "reasoning",
                "include_reasoning", "response_format", "structured_outputs"),
        providers=("Anthropic", "Amazon Bedrock", "Google"), tokenizer="Claude", instruct_type=None,
        description="Claude Sonnet 4 balances capability and speed: state-of-the-art coding, agentic tool use "
        "and extended thinking with a 200K context window.",
        categories=("programming", "technology", "academia"),
        reasoning={"mandatory": False, "supported_efforts": None, "default_enabled": False,
                   "supports_max_tokens": True},
        benchmarks=(58.6, 52.4, 61.0), knowledge_cutoff="2025-03-01", moderated=True, popularity=0.95,
        cache_pricing=True,
    ),
    _Spec(
        id="google/gemini-2.5-flash", name="Google: Gemini 2.5 Flash", created=1750172488, context=1048576,
        max_output=65535, prompt_per_m="0.3", completion_per_m="2.5", inputs=("text", "image", "file", "audio"),
        outputs=("text",),
        params=("max_tokens", "temperature", "top_p", "stop", "frequency_penalty", "presence_penalty", "seed",
                "response_format", "structured_outputs", "tools", "tool_choice", "reasoning", "include_reasoning"),
        providers=("Google AI Studio", "Google"), tokenizer="Gemini", instruct_type=None,
        description="Gemini 2.5 Flash is Google's workhorse thinking model for reasoning, coding, math and "
        "multimodal understanding, with a 1M-token context.",
        categories=("programming", "science", "technology"),
        reasoning={"mandatory": False, "supported_efforts": ["high", "medium", "low"], "default_effort": "medium",
                   "default_enabled": True, "supports_max_tokens": True},
        benchmarks=(54.1, 45.0, 47.3), knowledge_cutoff="2025-01-31", popularity=0.96, cache_pricing=True,
    ),
    _Spec(
        id="meta-llama/llama-3.3-70b-instruct", name="Meta: Llama 3.3 70B Instruct", created=1733506137,
        context=131072, max_output=16384, prompt_per_m="0.13", completion_per_m="0.4", inputs=("text",),
        outputs=("text",),
        params=("max_tokens", "temperature", "top_p", "top_k", "min_p", "stop", "frequency_penalty",
                "presence_penalty", "repetition_penalty", "seed", "response_format", "tools", "tool_choice"),
        providers=("DeepInfra", "Together", "Groq", "Fireworks"), tokenizer="Llama3", instruct_type="llama3",
        description="Llama 3.3 70B Instruct is Meta's multilingual instruction-tuned model, optimised for "
        "dialogue and competitive with much larger open models.",
        categories=("translation", "roleplay", "trivia"), benchmarks=(27.9, 19.6, 14.2),
        knowledge_cutoff="2023-12-01", hugging_face_id="meta-llama/Llama-3.3-70B-Instruct", open_weights=True,
        popularity=0.9,
    ),
    _Spec(
        id="meta-llama/llama-3.3-70b-instruct:free", name="Meta: Llama 3.3 70B Instruct (free)", created=1733506137,
        context=65536, max_output=None, prompt_per_m="0", completion_per_m="0", inputs=("text",), outputs=("text",),
        params=("max_tokens", "temperature", "top_p", "top_k", "stop", "frequency_penalty", "presence_penalty",
                "repetition_penalty", "seed", "tools", "tool_choice"),
        providers=("Venice", "OpenInference"), tokenizer="Llama3", instruct_type="llama3",
        description="Llama 3.3 70B Instruct is Meta's multilingual instruction-tuned model, optimised for "
        "dialogue. This free variant is rate limited (20 requests/minute).",
        categories=("translation", "roleplay", "trivia"), knowledge_cutoff="2023-12-01",
        hugging_face_id="meta-llama/Llama-3.3-70B-Instruct", open_weights=True, popularity=0.88,
    ),
    _Spec(
        id="openai/text-embedding-3-small", name="OpenAI: Text Embedding 3 Small", created=1706140800, context=8192,
        max_output=None, prompt_per_m="0.02", completion_per_m="0", inputs=("text",), outputs=("embeddings",),
        params=(), providers=("OpenAI",), tokenizer="GPT", instruct_type=None,
        description="text-embedding-3-small is OpenAI's efficient embedding model for search, clustering and "
        "retrieval.",
        categories=("technology",), popularity=0.8,
    ),
)  # fmt: skip


def _per_token(per_million: Decimal) -> str:
    """Format a $/M-token price as OpenRouter's per-token decimal string ("2.5" -> "0.0000025")."""
    value = (per_million / Decimal(1_000_000)).normalize()
    return format(value, "f")


def _title(slug: str) -> str:
    words = re.split(r"[-_]", slug)
    return " ".join(_WORD_CASE.get(w, w[:1].upper() + w[1:]) for w in words if w)


def _kind_of(family: str) -> str:
    if "embed" in family or family.startswith("bge"):
        return "embeddings"
    if "image" in family:
        return "image"
    if "audio" in family:
        return "audio"
    return "text"


def _random_spec(rng: random.Random, used: set[str]) -> _Spec:
    author = rng.choices(_AUTHORS, weights=[a.weight for a in _AUTHORS])[0]
    family = rng.choice(author.families)
    kind = _kind_of(family)
    suffix = "" if kind == "embeddings" else rng.choice(_SUFFIXES)
    slug = family + suffix
    attempt = 0
    while f"{author.slug}/{slug}" in used:
        attempt += 1
        tag = rng.choice(_VERSION_TAGS) if attempt < 8 else f"v{attempt}"
        slug = f"{family}{suffix}-{tag}"
    model_id = f"{author.slug}/{slug}"
    created = rng.randint(1672531200, 1756684800)  # 2023-01-01 .. 2025-09-01

    prices = _PRICES_PER_M[8:] if author.premium else _PRICES_PER_M[:16]
    prompt = Decimal(rng.choice(prices))
    completion = prompt * Decimal(rng.choice(_COMPLETION_FACTORS))
    context = rng.choice(_CONTEXTS)
    max_output: int | None = rng.choice([*[m for m in _MAX_OUTPUTS if m <= context], None])
    strength, categories = rng.choice(_STRENGTHS)
    if "coder" in family or "code" in family or "devstral" in family:
        strength, categories = _STRENGTHS[0]

    inputs: list[str] = ["text"]
    outputs: list[str] = ["text"]
    params: set[str] = set(_CHAT_BASE)
    reasoning: JSON | None = None
    if kind == "embeddings":
        outputs, params, context, max_output = ["embeddings"], set(), 8192, None
        completion = Decimal(0)
        strength, categories = "semantic search and retrieval embeddings", ("technology",)
    else:
        if any(
            k in family for k in ("vision", "vl", "pixtral", "4.5v", "gemini", "gpt-4", "gpt-5", "claude", "llama-4")
        ):
            inputs.append("image")
        elif rng.random() < 0.3:
            inputs.append("image")
        if "image" in inputs and rng.random() < 0.4:
            inputs.append("file")
        if kind == "audio" or ("gemini" in family and rng.random() < 0.6):
            inputs.append("audio")
        if kind == "image":
            outputs = ["image", "text"]
        if kind == "audio":
            outputs = ["text", "audio"]
        if rng.random() < 0.8:
            params |= {"tools", "tool_choice"}
            if rng.random() < 0.5:
                params.add("parallel_tool_calls")
        if rng.random() < 0.6:
            params.add("response_format")
            if rng.random() < 0.6:
                params.add("structured_outputs")
        if author.open_weights:
            params |= {"top_k", "repetition_penalty", "min_p"}
        if rng.random() < 0.25:
            params |= {"logit_bias", "logprobs", "top_logprobs"}
        if _REASONING_FAMILY.search(family) or rng.random() < 0.1:
            params |= set(_REASONING_PARAMS)
            mandatory = bool(re.search(r"(^o\d|r1|qwq|thinking|reasoning)", family))
            reasoning = {
                "mandatory": mandatory,
                "supported_efforts": ["high", "medium", "low"] if rng.random() < 0.6 else None,
                "default_enabled": mandatory,
            }
            if author.slug in ("anthropic", "google"):
                reasoning["supports_max_tokens"] = True
            strength = "math and science reasoning" if strength == "fast, low-cost assistance" else strength

    providers = author.providers
    if author.open_weights:
        hosts = [h for h in _OPEN_HOSTS if h not in providers]
        providers = tuple(providers) + tuple(rng.sample(hosts, 3))
    elif not providers:
        providers = tuple(rng.sample(_OPEN_HOSTS, 2))

    benchmarks = None
    if kind == "text" and rng.random() < 0.45:
        benchmarks = (
            round(rng.uniform(18, 72), 1),
            round(rng.uniform(10, 68), 1),
            round(rng.uniform(8, 66), 1),
        )
    cutoff_ts = created - rng.randint(120, 420) * 86400
    knowledge_cutoff = datetime.fromtimestamp(cutoff_ts, UTC).strftime("%Y-%m-01") if rng.random() < 0.6 else None
    size = rng.choice(("compact", "mid-sized", "large", "frontier-class", "efficient"))
    name = f"{author.display}: {_title(slug)}"
    description = (
        f"{_title(slug)} is a {size} {'embedding' if kind == 'embeddings' else 'language'} model from "
        f"{author.display}, tuned for {strength}. It supports a {context // 1000}K-token context window."
    )
    return _Spec(
        id=model_id,
        name=name,
        created=created,
        context=context,
        max_output=max_output,
        prompt_per_m=str(prompt),
        completion_per_m=str(completion.normalize()),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        params=tuple(params),
        providers=providers,
        tokenizer="Gemma" if family.startswith("gemma") else author.tokenizer,
        instruct_type=author.instruct_type,
        description=description,
        categories=categories,
        reasoning=reasoning,
        benchmarks=benchmarks,
        knowledge_cutoff=knowledge_cutoff,
        hugging_face_id=f"{author.slug}/{_title(slug).replace(' ', '-')}" if author.open_weights else None,
        moderated=author.premium and rng.random() < 0.5,
        open_weights=author.open_weights,
        popularity=rng.random() * (0.9 if author.premium else 0.7),
        cache_pricing=author.premium or author.slug == "deepseek",
    )


def _free_twin(spec: _Spec, rng: random.Random) -> _Spec:
    hosts = tuple(rng.sample(("Chutes", "Venice", "OpenInference", "NextBit", "AtlasCloud"), rng.randint(1, 2)))
    return replace(
        spec,
        id=f"{spec.id}:free",
        name=f"{spec.name} (free)",
        prompt_per_m="0",
        completion_per_m="0",
        providers=hosts,
        context=min(spec.context, 65536),
        benchmarks=None,
        popularity=spec.popularity * 0.9,
        cache_pricing=False,
    )


@dataclass
class _Catalog:
    models: list[JSON]
    endpoints: dict[str, list[JSON]]
    providers: list[JSON]
    categories: dict[str, tuple[str, ...]]
    popularity: dict[str, float]
    tool_success: dict[str, float]


def _build_providers() -> list[JSON]:
    providers: list[JSON] = []
    for name, slug, hq, datacenters, _zdr in _PROVIDER_ROWS:
        domain = slug.replace("-", "") + ".com"
        providers.append(
            {
                "name": name,
                "slug": slug,
                "privacy_policy_url": f"https://{domain}/privacy",
                "terms_of_service_url": f"https://{domain}/terms",
                "status_page_url": f"https://status.{domain}" if len(slug) % 2 == 0 else None,
                "headquarters": hq,
                "datacenters": datacenters.split(),
            }
        )
    return providers


def _materialize(spec: _Spec, rng: random.Random, provider_slugs: dict[str, str]) -> tuple[JSON, list[JSON]]:
    prompt = Decimal(spec.prompt_per_m)
    completion = Decimal(spec.completion_per_m)
    params = [p for p in _PARAMETERS if p in spec.params]

    def pricing(factor: Decimal) -> JSON:
        price: JSON = {
            "prompt": _per_token(prompt * factor),
            "completion": _per_token(completion * factor),
            "request": "0",
        }
        if "image" in spec.inputs:
            price["image"] = "0"
        if spec.cache_pricing and prompt > 0:
            price["input_cache_read"] = _per_token(prompt * factor / 10)
            if spec.tokenizer == "Claude":
                price["input_cache_write"] = _per_token(prompt * factor * Decimal("1.25"))
        if spec.reasoning is not None and completion > 0:
            price["internal_reasoning"] = price["completion"]
        return price

    modality = "+".join(spec.inputs) + "->" + "+".join(spec.outputs)
    model: JSON = {
        "id": spec.id,
        "canonical_slug": spec.id.split(":")[0],
        "hugging_face_id": spec.hugging_face_id,
        "name": spec.name,
        "created": spec.created,
        "description": spec.description,
        "context_length": spec.context,
        "architecture": {
            "modality": modality,
            "input_modalities": list(spec.inputs),
            "output_modalities": list(spec.outputs),
            "tokenizer": spec.tokenizer,
            "instruct_type": spec.instruct_type,
        },
        "pricing": pricing(Decimal(1)),
        "top_provider": {
            "context_length": spec.context,
            "max_completion_tokens": spec.max_output,
            "is_moderated": spec.moderated,
        },
        "per_request_limits": None,
        "supported_parameters": params,
        "default_parameters": (
            {"temperature": 0.6, "top_p": 0.95, "frequency_penalty": None} if spec.open_weights else None
        ),
        "supported_voices": None,
        "knowledge_cutoff": spec.knowledge_cutoff,
        "expiration_date": None,
        "links": {"details": f"{API_PREFIX}/models/{spec.id}/endpoints"},
    }
    if spec.reasoning is not None:
        model["reasoning"] = dict(spec.reasoning)
    if spec.benchmarks is not None:
        intelligence, coding, agentic = spec.benchmarks
        model["benchmarks"] = {
            "artificial_analysis": {
                "intelligence_index": intelligence,
                "coding_index": coding,
                "agentic_index": agentic,
            },
            "design_arena": [],
        }

    count = min(len(spec.providers), rng.randint(1, 4))
    # The first provider is the top provider; the model's listed price is its price.
    chosen = [spec.providers[0], *rng.sample(spec.providers[1:], count - 1)]
    short_name = spec.name.split(": ", 1)[-1]
    endpoints: list[JSON] = []
    for index, provider in enumerate(chosen):
        factor = Decimal(1) if index == 0 else Decimal(rng.choice(("1", "1.1", "1.2", "1.5")))
        quantization = rng.choice(("bf16", "fp8", "fp8", "fp16", "int4", "unknown")) if spec.open_weights else None
        slug = provider_slugs.get(provider, provider.lower().replace(" ", "-"))
        p50_latency = round(rng.uniform(180, 2200), 1)
        p50_throughput = round(rng.uniform(15, 260), 1)
        endpoints.append(
            {
                "name": f"{provider} | {spec.id.split(':')[0]}",
                "model_id": model["canonical_slug"],
                "model_name": short_name,
                "context_length": spec.context,
                "pricing": pricing(factor),
                "provider_name": provider,
                "tag": f"{slug}/{quantization}" if quantization in ("fp8", "int4") else slug,
                "quantization": quantization,
                "max_completion_tokens": spec.max_output,
                "max_prompt_tokens": None,
                "supported_parameters": params,
                "status": 0,
                "uptime_last_30m": round(rng.uniform(92, 100), 2),
                "uptime_last_5m": round(rng.uniform(88, 100), 2),
                "uptime_last_1d": round(rng.uniform(95, 100), 2),
                "supports_implicit_caching": spec.cache_pricing or rng.random() < 0.2,
                "supports_voice_cloning": False,
                "latency_last_30m": {
                    "p50": p50_latency,
                    "p75": round(p50_latency * 1.3, 1),
                    "p90": round(p50_latency * 1.8, 1),
                    "p99": round(p50_latency * 3.2, 1),
                },
                "throughput_last_30m": {
                    "p50": p50_throughput,
                    "p75": round(p50_throughput * 0.85, 1),
                    "p90": round(p50_throughput * 0.65, 1),
                    "p99": round(p50_throughput * 0.35, 1),
                },
            }
        )
    return model, endpoints


def _build_catalog(model_count: int, seed: int) -> _Catalog:
    rng = random.Random(f"openrouter-sim-catalog:{seed}")
    specs: list[_Spec] = list(_FIXED_SPECS)
    used = {spec.id for spec in specs}
    while len(specs) < model_count:
        spec = _random_spec(rng, used)
        specs.append(spec)
        used.add(spec.id)
        free_ok = spec.open_weights and spec.outputs == ("text",)
        if free_ok and len(specs) < model_count and rng.random() < 0.15 and f"{spec.id}:free" not in used:
            twin = _free_twin(spec, rng)
            specs.append(twin)
            used.add(twin.id)

    provider_slugs = {row[0]: row[1] for row in _PROVIDER_ROWS}
    catalog = _Catalog([], {}, _build_providers(), {}, {}, {})
    for spec in specs:
        model, endpoints = _materialize(spec, rng, provider_slugs)
        catalog.models.append(model)
        catalog.endpoints[spec.id] = endpoints
        catalog.categories[spec.id] = spec.categories
        catalog.popularity[spec.id] = spec.popularity
        if "tools" in spec.params:
            catalog.tool_success[spec.id] = round(rng.uniform(0.6, 0.99), 3)
    # The live list comes newest first.
    catalog.models.sort(key=lambda m: (-int(m["created"]), str(m["id"])))
    return catalog


# --------------------------------------------------------------------------------------------------
# Deterministic "generation" helpers
# --------------------------------------------------------------------------------------------------


def _tokens(text: str) -> int:
    """Approximate token count: about four characters per token, like most BPE tokenizers on English."""
    return math.ceil(len(text) / 4) if text else 0


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif part.get("type") == "tool_result":
                    parts.append(_text_of(part.get("content")))
        return " ".join(parts)
    return ""


def _snippet(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _example_value(schema: Any, hint: str, depth: int = 0) -> Any:
    """A value that satisfies a (simple) JSON schema, used for tool arguments and JSON-mode answers."""
    if not isinstance(schema, dict) or depth > 5:
        return hint
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _example_value(schema[key][0], hint, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        raw_props = schema.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        raw_required = schema.get("required")
        required: list[Any] = raw_required if isinstance(raw_required, list) else list(props)
        return {k: _example_value(props[k], hint, depth + 1) for k in required if k in props}
    if kind == "array":
        return [_example_value(schema.get("items"), hint, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return hint


def _split_text(text: str, words_per_chunk: int = 3) -> list[str]:
    words = re.findall(r"\S+\s*", text)
    return ["".join(words[i : i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)]


def _split_string(text: str, parts: int) -> list[str]:
    if not text:
        return [""]
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _neg(value: float | None) -> float | None:
    return None if value is None else -value


@dataclass
class _ToolCall:
    id: str
    name: str
    arguments: JSON


@dataclass
class _Plan:
    """What the simulated model answers, computed once for both wire formats."""

    text: str
    reasoning: str | None
    show_reasoning: bool
    tool_calls: list[_ToolCall]
    finish_reason: str
    stop_sequence: str | None
    prompt_tokens: int
    reasoning_tokens: int

    @property
    def completion_tokens(self) -> int:
        arguments = sum(_tokens(json.dumps(c.arguments)) + _tokens(c.name) for c in self.tool_calls)
        return _tokens(self.text) + self.reasoning_tokens + arguments


@dataclass
class _Served:
    """Fault flags that shape a successful answer (merged from the model's and the path's faults)."""

    malformed: bool = False
    mid_stream_error: bool = False
    error_in_200: bool = False
    error_type: str | None = None
    provider_code: int | str | None = None

    @classmethod
    def merge(cls, *faults: Fault | None) -> _Served:
        served = cls()
        for fault in faults:
            if fault is None:
                continue
            served.malformed |= fault.malformed
            served.mid_stream_error |= fault.mid_stream_error
            served.error_in_200 |= fault.error_in_200
            served.error_type = served.error_type or fault.error_type
            served.provider_code = served.provider_code if served.provider_code is not None else fault.provider_code
        return served


# --------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------


@dataclass
class _Incoming:
    method: str
    path: str  # without the /api/v1 prefix (the full path when the request is outside the API)
    in_api: bool
    raw_path: bytes
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    body_invalid: bool

    @property
    def encoded_slash(self) -> bool:
        return b"%2f" in self.raw_path.lower()


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


@dataclass
class _Event:
    delay: float
    data: bytes
    tokens: int = 0


@dataclass
class _StreamReply:
    headers: list[tuple[str, str]]
    events: list[_Event]
    on_done: Callable[[bool, int], None]


Handler = Callable[[_Incoming, dict[str, str], Fault | None], Awaitable[_Reply | _StreamReply]]


class _BadQuery(ValueError):
    """A query parameter the spec would reject."""


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _json(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> _Reply:
    return _Reply(status, _dumps(obj), headers or [])


def _error_body(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    provider_code: int | str | None = None,
    provider_name: str | None = None,
    availability: JSON | None = None,
    with_metadata: bool = True,
) -> JSON:
    metadata: JSON | None = None
    if with_metadata:
        metadata = {"error_type": error_type or ERROR_TYPES.get(status, "unmapped")}
        if provider_code is not None:
            metadata["provider_code"] = provider_code
            if provider_name is not None:
                metadata["provider_name"] = provider_name
    error: JSON = {"code": status, "message": message, "metadata": metadata}
    if availability is not None:
        error["availability"] = availability
    return {"error": error, "user_id": None}


def _anthropic_error_body(status: int, message: str, *, error_type: str | None = None, request_id: str | None) -> JSON:
    return {
        "type": "error",
        "error": {
            "type": ANTHROPIC_ERROR_TYPES.get(status, "api_error"),
            "message": message,
            "error_type": error_type or ERROR_TYPES.get(status, "unmapped"),
        },
        "request_id": request_id,
    }


def _malformed(headers: list[tuple[str, str]] | None = None) -> _Reply:
    # A truncated body, as seen when an upstream connection dies mid-response behind a proxy.
    return _Reply(
        200, b'{"id":"gen-truncated","object":"chat.completion","choices":[{"index":0,"message":{"rol', headers or []
    )


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _mask_key(token: str | None) -> str:
    """A label like OpenRouter's (``sk-or-v1-abc...xyz``) that never contains the key itself."""
    if token and len(token) >= 24:
        return f"{token[:12]}...{token[-3:]}"
    digest = hashlib.sha256((token or "anonymous").encode()).hexdigest()
    return f"sk-or-v1-{digest[:3]}...{digest[-3:]}"


async def _read_request(scope: Scope, receive: Receive) -> _Incoming:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            break
    raw = b"".join(chunks)
    body: Any = None
    invalid = False
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            invalid = True
    full_path: str = scope.get("path", "")
    raw_path = (scope.get("raw_path") or full_path.encode()).split(b"?")[0]
    in_api = full_path.startswith(API_PREFIX + "/")
    path = full_path[len(API_PREFIX) :] if in_api else full_path
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return _Incoming(scope.get("method", "GET"), path, in_api, raw_path, query, headers, body, invalid)


# --------------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------------


class Simulator:
    """A simulated OpenRouter API; the instance is the ASGI app.

    Inject faults through ``model_faults`` (by model id, for chat and messages) and ``path_faults`` (by path
    without ``/api/v1``); inspect traffic through ``requests``, :meth:`count`, ``generations`` and
    ``cancelled_streams``. ``latency`` and ``stream_chunk_delay`` can be changed at any time.
    """

    def __init__(
        self,
        *,
        model_count: int = 320,
        seed: int = 0,
        api_key: str | None = None,
        latency: float = 0.0,
        stream_chunk_delay: float = 0.0,
        keepalive_comments: int = 2,
    ) -> None:
        catalog = _build_catalog(model_count, seed)
        self.catalog: list[JSON] = catalog.models
        self.providers: list[JSON] = catalog.providers
        self.endpoints: dict[str, list[JSON]] = catalog.endpoints
        self.model_faults: dict[str, Fault] = {}
        self.path_faults: dict[str, Fault] = {}
        self.requests: list[RecordedRequest] = []
        self.generations: dict[str, JSON] = {}
        self.latency = latency
        self.stream_chunk_delay = stream_chunk_delay
        self.keepalive_comments = keepalive_comments
        self.total_credits = 100.0
        self.total_usage = 0.0
        self._api_key = api_key
        self._categories = catalog.categories
        self._popularity = catalog.popularity
        self._tool_success = catalog.tool_success
        self._zdr_providers = {row[0] for row in _PROVIDER_ROWS if row[4]}
        self._provider_regions = {row[0]: set(row[3].split()) for row in _PROVIDER_ROWS}
        self._ids = random.Random(f"openrouter-sim-ids:{seed}")
        # A Condition, not an int alone, so a test on another thread can wait for a cancellation.
        self._cancelled = threading.Condition()
        self._cancelled_streams = 0
        self._routes: dict[str, dict[str, Handler]] = {
            "/models": {"GET": self._list_models},
            "/models/count": {"GET": self._models_count},
            "/models/user": {"GET": self._list_models},
            "/embeddings/models": {"GET": self._embeddings_models},
            "/endpoints/zdr": {"GET": self._endpoints_zdr},
            "/providers": {"GET": self._list_providers},
            "/credits": {"GET": self._credits},
            "/credits/coinbase": {"POST": self._coinbase},
            "/key": {"GET": self._key},
            "/auth/key": {"GET": self._key},
            "/generation": {"GET": self._generation},
            "/chat/completions": {"POST": self._chat},
            "/messages": {"POST": self._messages},
        }

    # ---- public helpers ---------------------------------------------------------------------------

    @property
    def cancelled_streams(self) -> int:
        """How many streamed responses ended because the client went away."""
        with self._cancelled:
            return self._cancelled_streams

    def wait_for_cancelled_streams(self, count: int, timeout: float) -> bool:
        """Block (in a worker thread) until ``cancelled_streams >= count``; False on timeout.

        Never call this from the event loop that serves the simulator: it blocks the thread.
        """
        with self._cancelled:
            return self._cancelled.wait_for(lambda: self._cancelled_streams >= count, timeout)

    def count(self, path: str, method: str | None = None) -> int:
        """How many requests hit ``path`` (without ``/api/v1``), optionally only with ``method``."""
        return sum(1 for r in self.requests if r.path == path and (method is None or r.method == method.upper()))

    def reset(self) -> None:
        """Clear faults, the request log and the cancelled-stream counter."""
        self.model_faults.clear()
        self.path_faults.clear()
        self.requests.clear()
        with self._cancelled:
            self._cancelled_streams = 0

    # ---- ASGI entry point -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: HTTP requests, and lifespan events so any server can host it."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await _read_request(scope, receive)
        try:
            reply = await self._handle(request)
        except Exception:
            logger.exception("simulator failed on %s %s", request.method, request.path)
            reply = _json(500, _error_body(500, "Internal Server Error"))
        if isinstance(reply, _StreamReply):
            await self._send_stream(reply, receive, send)
        else:
            headers = [
                (b"content-type", reply.content_type.encode()),
                (b"content-length", str(len(reply.body)).encode()),
                *[(k.lower().encode(), v.encode()) for k, v in reply.headers],
            ]
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": reply.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send_stream(self, reply: _StreamReply, receive: Receive, send: Send) -> None:
        sent = 0
        finished = False

        def finish(completed: bool) -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            if not completed:
                with self._cancelled:
                    self._cancelled_streams += 1
                    self._cancelled.notify_all()
            reply.on_done(completed, sent)

        headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            *[(k.lower().encode(), v.encode()) for k, v in reply.headers],
        ]
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        group.cancel_scope.cancel()
                        return

            group.start_soon(watch_disconnect)
            try:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                for index, event in enumerate(reply.events):
                    if event.delay > 0:
                        await anyio.sleep(event.delay)
                    if index == len(reply.events) - 1:
                        # Record the generation before the terminal event, so a client that reads
                        # [DONE] and asks /generation at once finds it.
                        sent = index + 1
                        finish(True)
                    await send({"type": "http.response.body", "body": event.data, "more_body": True})
                    sent = index + 1
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                # uvicorn raises an OSError subclass when writing to a closed connection.
                pass
            finally:
                # Runs on cancellation too (the client went away): no awaits here.
                finish(False)
            group.cancel_scope.cancel()

    # ---- dispatch ---------------------------------------------------------------------------------

    async def _handle(self, req: _Incoming) -> _Reply | _StreamReply:
        self.requests.append(RecordedRequest(req.method, req.path, dict(req.query), dict(req.headers), req.body))
        if self.latency > 0:
            await anyio.sleep(self.latency)
        anthropic = req.path == "/messages"
        # The live API 404s a model path whose "/" is percent-encoded (API.md §2.8).
        if req.encoded_slash or not req.in_api:
            return _json(404, _error_body(404, "Not Found", with_metadata=False))
        handler, params = self._route(req)
        if handler is None:
            return self._not_routed(req)
        if req.path in AUTH_PATHS and not self._authorized(req):
            message = "No auth credentials found" if "authorization" not in req.headers else "User not found."
            if anthropic:
                return _json(401, _anthropic_error_body(401, message, request_id=None))
            return _json(401, _error_body(401, message, with_metadata=False))
        fault = self.path_faults.get(req.path)
        if fault is not None and fault.active:
            fault.consume()
            if fault.latency > 0:
                await anyio.sleep(fault.latency)
            if fault.status is not None:
                return self._fault_reply(fault, anthropic=anthropic)
            if fault.malformed and req.path not in ("/chat/completions", "/messages"):
                return _malformed()
        else:
            fault = None
        return await handler(req, params, fault)

    def _route(self, req: _Incoming) -> tuple[Handler | None, dict[str, str]]:
        methods = self._routes.get(req.path)
        if methods is not None:
            return methods.get(req.method), {}
        match = re.fullmatch(r"/models/([^/]+)/([^/]+)/endpoints", req.path)
        if match and req.method == "GET":
            return self._model_endpoints, {"author": match[1], "slug": match[2]}
        match = re.fullmatch(r"/model/([^/]+)/([^/]+)", req.path)
        if match and req.method == "GET":
            return self._get_model, {"author": match[1], "slug": match[2]}
        return None, {}

    def _not_routed(self, req: _Incoming) -> _Reply:
        methods = self._routes.get(req.path)
        if methods:
            allow = ", ".join(sorted(methods))
            return _json(405, _error_body(405, "Method Not Allowed", with_metadata=False), [("Allow", allow)])
        return _json(404, _error_body(404, "Not Found", with_metadata=False))

    def _authenticated(self, req: _Incoming) -> bool:
        header = req.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return False
        return self._api_key is None or hmac.compare_digest(header[7:].strip(), self._api_key)

    def _authorized(self, req: _Incoming) -> bool:
        return self._api_key is None or self._authenticated(req)

    def _fault_reply(
        self,
        fault: Fault,
        *,
        anthropic: bool,
        model: str | None = None,
        provider: str | None = None,
        request_id: str | None = None,
    ) -> _Reply:
        status = fault.status or 500
        message = STATUS_MESSAGES.get(status, "Error")
        if model is not None and fault.provider_code is not None:
            message = f"{model} is temporarily unavailable upstream: {STATUS_MESSAGES.get(status, 'error').lower()}"
            if status == 429:
                message = (
                    f"{model} is temporarily rate-limited upstream. Please retry shortly, or add your own key to "
                    "accumulate your rate limits: https://openrouter.ai/settings/integrations"
                )
        headers: list[tuple[str, str]] = []
        if fault.retry_after is not None:
            headers.append(("Retry-After", _format_seconds(fault.retry_after)))
        if fault.rate_limit_headers:
            reset_ms = int((time.time() + (fault.retry_after or 60.0)) * 1000)
            headers += [
                ("X-RateLimit-Limit", "20"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", str(reset_ms)),
            ]
        if anthropic:
            body = _anthropic_error_body(status, message, error_type=fault.error_type, request_id=request_id)
        else:
            body = _error_body(
                status,
                message,
                error_type=fault.error_type,
                provider_code=fault.provider_code,
                provider_name=provider,
                availability=fault.availability,
            )
        return _json(status, body, headers)

    def _bad_request(self, message: str, *, anthropic: bool = False, availability: JSON | None = None) -> _Reply:
        if anthropic:
            return _json(400, _anthropic_error_body(400, message, request_id=None))
        return _json(400, _error_body(400, message, availability=availability))

    def _new_id(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return f"gen-{int(time.time())}-{''.join(self._ids.choices(alphabet, k=20))}"

    # ---- catalog lookups --------------------------------------------------------------------------

    def _model(self, model_id: str) -> JSON | None:
        # A scan, not a dict: tests may edit ``catalog`` in place and must see their edits.
        return next((m for m in self.catalog if m.get("id") == model_id), None)

    def _endpoints_for(self, model: JSON) -> list[JSON]:
        endpoints = self.endpoints.get(model["id"])
        if endpoints:
            return endpoints
        # A model a test added without endpoints gets one synthetic endpoint priced like the model.
        return [
            {
                "name": f"OpenAI | {model['id']}",
                "model_id": model["id"],
                "model_name": model.get("name", model["id"]),
                "context_length": model.get("context_length") or 8192,
                "pricing": model.get("pricing", {"prompt": "0", "completion": "0"}),
                "provider_name": "OpenAI",
                "tag": "openai",
                "quantization": None,
                "max_completion_tokens": None,
                "max_prompt_tokens": None,
                "supported_parameters": model.get("supported_parameters", []),
                "status": 0,
                "uptime_last_30m": 100.0,
                "uptime_last_5m": 100.0,
                "uptime_last_1d": 100.0,
                "supports_implicit_caching": False,
                "latency_last_30m": None,
                "throughput_last_30m": None,
            }
        ]

    def _public_endpoints(self, req: _Incoming, endpoints: list[JSON]) -> list[JSON]:
        if self._authenticated(req):
            return endpoints
        # The spec: percentile stats "return null for unauthenticated requests".
        return [{**e, "latency_last_30m": None, "throughput_last_30m": None} for e in endpoints]

    # ---- /models and friends ----------------------------------------------------------------------

    @staticmethod
    def _int_param(query: dict[str, str], name: str, low: int, high: int | None = None) -> int | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise _BadQuery(f"Invalid query parameter '{name}': expected an integer") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise _BadQuery(f"Invalid query parameter '{name}': must be {bounds}")
        return value

    @staticmethod
    def _float_param(query: dict[str, str], name: str, high: float | None = None) -> float | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise _BadQuery(f"Invalid query parameter '{name}': expected a number") from None
        if value < 0 or (high is not None and value > high) or math.isnan(value):
            raise _BadQuery(f"Invalid query parameter '{name}': out of range")
        return value

    @staticmethod
    def _enum_param(query: dict[str, str], name: str, allowed: Sequence[str]) -> str | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        if raw not in allowed:
            raise _BadQuery(f"Invalid query parameter '{name}': expected one of {', '.join(allowed)}")
        return raw

    @staticmethod
    def _csv(query: dict[str, str], name: str) -> list[str]:
        return [v.strip().lower() for v in query.get(name, "").split(",") if v.strip()]

    @staticmethod
    def _price(model: JSON, key: str) -> Decimal:
        """A per-token price as an exact Decimal (float sums would reorder near-equal prices)."""
        try:
            return Decimal(str(model["pricing"].get(key, "0")))
        except ArithmeticError:
            return Decimal(0)

    def _price_per_m(self, model: JSON, key: str) -> float:
        return float(self._price(model, key) * 1_000_000)

    def _benchmark(self, model: JSON, key: str) -> float | None:
        value = model.get("benchmarks", {}).get("artificial_analysis", {}).get(key)
        return float(value) if isinstance(value, int | float) else None

    def _top_stat(self, model: JSON, key: str) -> float | None:
        stats = self._endpoints_for(model)[0].get(key)
        return float(stats["p50"]) if isinstance(stats, dict) else None

    def _output_filter(self, query: dict[str, str]) -> Callable[[JSON], bool]:
        wanted = self._csv(query, "output_modalities") or ["text"]
        if "all" in wanted:
            return lambda m: True
        return lambda m: bool(set(m["architecture"]["output_modalities"]) & set(wanted))

    def _filter_models(self, query: dict[str, str]) -> list[JSON]:
        """Apply the /models query parameters.

        Raises:
            _BadQuery: a parameter is malformed or out of the spec's range.
        """
        sorts = (
            "most-popular", "newest", "top-weekly", "pricing-low-to-high", "pricing-high-to-low",
            "context-high-to-low", "throughput-high-to-low", "latency-low-to-high", "intelligence-high-to-low",
            "coding-high-to-low", "agentic-high-to-low", "design-arena-elo-high-to-low",
        )  # fmt: skip
        sort = self._enum_param(query, "sort", sorts)
        category = self._enum_param(query, "category", _CATEGORIES)
        distillable = self._enum_param(query, "distillable", ("true", "false"))
        zdr = self._enum_param(query, "zdr", ("true",))
        region = self._enum_param(query, "region", ("eu", "us"))
        context = self._int_param(query, "context", 1)
        min_age = self._int_param(query, "min_age_days", 0)
        max_age = self._int_param(query, "max_age_days", 0)
        ranges = {
            name: (self._float_param(query, f"min_{name}"), self._float_param(query, f"max_{name}"))
            for name in ("price", "output_price", "intelligence_index", "coding_index", "agentic_index")
        }
        tool_range = (
            self._float_param(query, "min_tool_success_rate", 1.0),
            self._float_param(query, "max_tool_success_rate", 1.0),
        )
        wants_output = self._output_filter(query)
        inputs = set(self._csv(query, "input_modalities"))
        params = set(self._csv(query, "supported_parameters"))
        terms = query.get("q", "").lower().split()
        authors = set(self._csv(query, "model_authors"))
        hosts = set(self._csv(query, "providers"))
        arch = query.get("arch", "").lower()
        now = time.time()

        def within(value: float | None, bounds: tuple[float | None, float | None]) -> bool:
            low, high = bounds
            if low is None and high is None:
                return True
            if value is None:
                return False
            return (low is None or value >= low) and (high is None or value <= high)

        def keep(model: JSON) -> bool:
            arch_info = model["architecture"]
            if not wants_output(model):
                return False
            if inputs and not inputs <= set(arch_info["input_modalities"]):
                return False
            if params and not params <= set(model["supported_parameters"]):
                return False
            if terms:
                haystack = f"{model['id']} {model['name']} {model.get('description', '')}".lower()
                if not all(t in haystack for t in terms):
                    return False
            if context is not None and (model.get("context_length") or 0) < context:
                return False
            if category is not None and category not in self._categories.get(model["id"], ()):
                return False
            if authors and model["id"].split("/")[0] not in authors:
                return False
            if arch and str(arch_info.get("tokenizer", "")).lower() != arch:
                return False
            endpoints = self._endpoints_for(model)
            if hosts and not any({e["provider_name"].lower(), e["tag"].split("/")[0]} & hosts for e in endpoints):
                return False
            if zdr and not any(e["provider_name"] in self._zdr_providers for e in endpoints):
                return False
            if region is not None:
                regions = set().union(*(self._provider_regions.get(e["provider_name"], set()) for e in endpoints))
                if not (regions & _EU_COUNTRIES if region == "eu" else "US" in regions):
                    return False
            # Loose: open-weight models (those with a Hugging Face id) count as distillable.
            if distillable is not None and (distillable == "true") != bool(model.get("hugging_face_id")):
                return False
            age_days = (now - model["created"]) / 86400
            if (min_age is not None and age_days < min_age) or (max_age is not None and age_days > max_age):
                return False
            if not within(self._price_per_m(model, "prompt"), ranges["price"]):
                return False
            if not within(self._price_per_m(model, "completion"), ranges["output_price"]):
                return False
            for name in ("intelligence_index", "coding_index", "agentic_index"):
                if not within(self._benchmark(model, name), ranges[name]):
                    return False
            return within(self._tool_success.get(model["id"]), tool_range)

        models = [m for m in self.catalog if keep(m)]
        if sort is None:
            return models
        keys: dict[str, Callable[[JSON], float | Decimal | None]] = {
            "most-popular": lambda m: -self._popularity.get(m["id"], 0.0),
            "top-weekly": lambda m: -self._popularity.get(m["id"], 0.0),
            "newest": lambda m: -float(m["created"]),
            "pricing-low-to-high": lambda m: self._price(m, "prompt") + self._price(m, "completion"),
            "pricing-high-to-low": lambda m: -(self._price(m, "prompt") + self._price(m, "completion")),
            "context-high-to-low": lambda m: -float(m.get("context_length") or 0),
            "throughput-high-to-low": lambda m: _neg(self._top_stat(m, "throughput_last_30m")),
            "latency-low-to-high": lambda m: self._top_stat(m, "latency_last_30m"),
            "intelligence-high-to-low": lambda m: _neg(self._benchmark(m, "intelligence_index")),
            "coding-high-to-low": lambda m: _neg(self._benchmark(m, "coding_index")),
            "agentic-high-to-low": lambda m: _neg(self._benchmark(m, "agentic_index")),
            "design-arena-elo-high-to-low": lambda m: None,
        }
        key = keys[sort]
        # Models without a score for the chosen key go last, as the spec says.
        return sorted(models, key=lambda m: (key(m) is None, key(m) or 0.0))

    def _page(self, req: _Incoming, models: list[JSON]) -> _Reply:
        total = len(models)
        try:
            offset = self._int_param(req.query, "offset", 0)
            limit = self._int_param(req.query, "limit", 1, 1000)
        except _BadQuery as exc:
            return self._bad_request(str(exc))
        if offset is None and limit is None:
            return _json(200, {"data": models, "total_count": total, "links": {"next": None}})
        offset = offset or 0
        limit = limit or 500
        next_link = None
        if offset + limit < total:
            query = {**req.query, "offset": str(offset + limit), "limit": str(limit)}
            next_link = f"{API_PREFIX}{req.path}?{urlencode(query)}"
        return _json(200, {"data": models[offset : offset + limit], "total_count": total, "links": {"next": next_link}})

    async def _list_models(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        try:
            models = self._filter_models(req.query)
        except _BadQuery as exc:
            return self._bad_request(str(exc))
        return self._page(req, models)

    async def _models_count(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        wants = self._output_filter(req.query)
        return _json(200, {"data": {"count": sum(1 for m in self.catalog if wants(m))}})

    async def _embeddings_models(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        models = [m for m in self.catalog if "embeddings" in m["architecture"]["output_modalities"]]
        return self._page(req, models)

    async def _get_model(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        model = self._model(f"{params['author']}/{params['slug']}")
        if model is None:
            return _json(404, _error_body(404, "Model not found", with_metadata=False))
        return _json(200, {"data": model})

    async def _model_endpoints(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        model_id = f"{params['author']}/{params['slug']}"
        model = self._model(model_id)
        if model is None:
            return _json(404, _error_body(404, f"No endpoints found for {model_id}", with_metadata=False))
        arch = model["architecture"]
        data = {
            "id": model["id"],
            "name": model["name"],
            "created": model["created"],
            "description": model.get("description", ""),
            "architecture": {
                "modality": arch.get("modality"),
                "input_modalities": arch["input_modalities"],
                "output_modalities": arch["output_modalities"],
                "tokenizer": arch.get("tokenizer"),
                "instruct_type": arch.get("instruct_type"),
            },
            "endpoints": self._public_endpoints(req, self._endpoints_for(model)),
        }
        return _json(200, {"data": data})

    async def _endpoints_zdr(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        endpoints = [
            e for m in self.catalog for e in self._endpoints_for(m) if e["provider_name"] in self._zdr_providers
        ]
        return _json(200, {"data": self._public_endpoints(req, endpoints)})

    async def _list_providers(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        return _json(200, {"data": self.providers})

    # ---- account ----------------------------------------------------------------------------------

    async def _credits(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        return _json(200, {"data": {"total_credits": self.total_credits, "total_usage": round(self.total_usage, 9)}})

    async def _key(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        header = req.headers.get("authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else None
        usage = round(self.total_usage, 9)
        limit = 50.0
        data = {
            "label": _mask_key(token),
            "limit": limit,
            "limit_remaining": round(max(0.0, limit - usage), 9),
            "limit_reset": "monthly",
            "include_byok_in_limit": False,
            "usage": usage,
            "usage_daily": usage,
            "usage_weekly": usage,
            "usage_monthly": usage,
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
            "is_free_tier": False,
            "is_management_key": False,
            "is_provisioning_key": False,
            "creator_user_id": "user_2sim0000000000000000000000",
            "expires_at": None,
            "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},
        }
        return _json(200, {"data": data})

    async def _generation(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        gen_id = req.query.get("id", "")
        if not gen_id:
            issue = json.dumps(
                [
                    {
                        "code": "invalid_type",
                        "expected": "string",
                        "received": "undefined",
                        "path": ["id"],
                        "message": "Required",
                    }
                ]
            )
            # OpenRouter's envelope plus the Zod markers a live probe showed (see the module docstring).
            body = {"success": False, "error": {"code": 400, "name": "ZodError", "message": issue, "metadata": None}}
            return _json(400, {**body, "user_id": None})
        generation = self.generations.get(gen_id)
        if generation is None:
            return _json(404, {"error": {"message": f"Generation {gen_id} not found", "code": 404}})
        return _json(200, {"data": generation})

    async def _coinbase(self, req: _Incoming, params: dict[str, str], fault: Fault | None) -> _Reply:
        body = req.body
        problems: list[str] = []
        if not isinstance(body, dict):
            problems.append("body must be a JSON object")
        else:
            amount = body.get("amount")
            if not isinstance(amount, int | float) or isinstance(amount, bool) or amount <= 0:
                problems.append("amount must be a positive number")
            if not isinstance(body.get("sender"), str) or not body["sender"]:
                problems.append("sender must be a string")
            chain = body.get("chain_id")
            if isinstance(chain, bool) or chain not in (1, 137, 8453):
                problems.append("chain_id must be one of 1, 137, 8453")
        if problems:
            return self._bad_request("Invalid credit amount or request body: " + "; ".join(problems))
        return _json(410, {"error": {"code": 410, "message": COINBASE_GONE_MESSAGE}})

    # ---- inference: shared ------------------------------------------------------------------------

    def _candidates(self, primary: Any, extra: Any, *, anthropic: bool) -> list[str] | _Reply:
        """The models to try, in order; or the 400 the live API gives for a bad model list."""
        if primary is not None and not isinstance(primary, str):
            return self._bad_request("'model' must be a string", anthropic=anthropic)
        if extra is not None and (not isinstance(extra, list) or not all(isinstance(m, str) for m in extra)):
            return self._bad_request("'models' must be an array of strings", anthropic=anthropic)
        if extra and len(extra) > 3:
            return self._bad_request("'models' array must have 3 items or fewer.", anthropic=anthropic)
        ids: list[str] = list(dict.fromkeys(([primary] if primary else []) + list(extra or [])))
        ids = ids or [DEFAULT_MODEL]
        unknown = [m for m in ids if self._model(m) is None]
        if unknown:
            availability = {
                "code": "model_not_found",
                "retryable": False,
                "requested_models": ids,
                "docs_url": f"{DOCS_ERRORS_URL}#model_not_found",
            }
            return self._bad_request(
                f"{unknown[0]} is not a valid model ID", anthropic=anthropic, availability=availability
            )
        for model_id in ids:
            model = self._model(model_id)
            if model is not None and "embeddings" in model["architecture"]["output_modalities"]:
                availability = {
                    "code": "wrong_endpoint",
                    "retryable": False,
                    "requested_models": ids,
                    "docs_url": f"{DOCS_ERRORS_URL}#wrong_endpoint",
                }
                message = f"{model_id} is an embeddings model; use {API_PREFIX}/embeddings"
                return self._bad_request(message, anthropic=anthropic, availability=availability)
        return ids

    def _pick_endpoint(self, model: JSON, prefs: Any) -> JSON | None:
        """Honour ``provider.order/only/ignore/sort/allow_fallbacks`` the simple way; None if all are excluded."""
        endpoints = self._endpoints_for(model)
        if not isinstance(prefs, dict):
            return endpoints[0]

        def names(endpoint: JSON) -> set[str]:
            tag = str(endpoint.get("tag", "")).lower()
            return {tag, tag.split("/")[0], str(endpoint.get("provider_name", "")).lower()}

        def lowered(key: str) -> list[str]:
            value = prefs.get(key)
            return [str(v).lower() for v in value] if isinstance(value, list) else []

        only, ignore, order = set(lowered("only")), set(lowered("ignore")), lowered("order")
        candidates = [e for e in endpoints if (not only or names(e) & only) and not names(e) & ignore]
        sort = prefs.get("sort")
        sort_by = sort.get("by") if isinstance(sort, dict) else sort
        if sort_by == "price":
            candidates.sort(key=lambda e: self._price(e, "prompt"))
        elif sort_by in ("throughput", "latency"):
            stat = "throughput_last_30m" if sort_by == "throughput" else "latency_last_30m"
            sign = -1.0 if sort_by == "throughput" else 1.0
            candidates.sort(key=lambda e: sign * float((e.get(stat) or {}).get("p50", 0.0)))
        if order:
            rank = {name: i for i, name in enumerate(order)}
            candidates.sort(key=lambda e: min((rank[n] for n in names(e) if n in rank), default=len(order)))
            if prefs.get("allow_fallbacks") is False:
                candidates = [e for e in candidates if names(e) & set(order)]
        return candidates[0] if candidates else None

    def _plan(
        self,
        model: JSON,
        *,
        prompt_text: str,
        prompt_tokens: int,
        last_role: str,
        tools: list[tuple[str, Any]],
        tool_mode: str | tuple[str, str],
        parallel: bool,
        reasoning: tuple[bool, bool],
        max_tokens: Any,
        stop: Any,
        json_schema: Any,
    ) -> _Plan:
        snippet = _snippet(prompt_text) or "(empty prompt)"
        short_model = model["id"].split("/")[-1]
        calls: list[_ToolCall] = []
        if tools and tool_mode != "none":
            by_name = dict(tools)
            chosen: list[str] = []
            if isinstance(tool_mode, tuple):
                chosen = [tool_mode[1]] if tool_mode[1] in by_name else []
            elif last_role == "user" or tool_mode == "required":
                mentioned = [name for name, _ in tools if name.lower() in prompt_text.lower()]
                if tool_mode == "required":
                    chosen = mentioned or [tools[0][0]]
                elif mentioned:
                    chosen = mentioned
                elif re.search(r"\btools?\b", prompt_text.lower()):
                    chosen = [tools[0][0]]
            if not parallel:
                chosen = chosen[:1]
            hint = _snippet(prompt_text, 40) or "example"
            for name in chosen:
                arguments = _example_value(by_name[name], hint)
                call_id = "call_" + "".join(self._ids.choices("abcdef0123456789", k=24))
                calls.append(_ToolCall(call_id, name, arguments if isinstance(arguments, dict) else {}))

        if calls:
            text = ""
        elif last_role == "tool":
            text = f"The tool returned: {snippet} That completes the request."
        elif json_schema is not None:
            value = _example_value(json_schema, snippet) if isinstance(json_schema, dict) else {"answer": snippet}
            text = json.dumps(value if isinstance(value, dict) else {"answer": value})
        else:
            text = (
                f'Simulated reply from {short_model}. You said: "{snippet}". '
                "This answer is deterministic, so the same prompt always yields the same words."
            )

        finish = "tool_calls" if calls else "stop"
        stop_sequence = None
        stops = (
            [stop]
            if isinstance(stop, str)
            else [s for s in stop if isinstance(s, str)]
            if isinstance(stop, list)
            else []
        )
        for sequence in stops:
            if sequence and sequence in text:
                text = text[: text.index(sequence)]
                stop_sequence = sequence
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0 and not calls:
            if _tokens(text) > max_tokens:
                text = text[: max_tokens * 4]
                finish = "length"

        produce, show = reasoning
        reasoning_text = None
        if produce:
            reasoning_text = f'The user asked: "{snippet}". I should answer directly and keep the reply deterministic.'
        return _Plan(
            text=text,
            reasoning=reasoning_text,
            show_reasoning=show,
            tool_calls=calls,
            finish_reason=finish,
            stop_sequence=stop_sequence,
            prompt_tokens=prompt_tokens,
            reasoning_tokens=_tokens(reasoning_text or ""),
        )

    @staticmethod
    def _cost(endpoint: JSON, prompt_tokens: int, completion_tokens: int) -> tuple[float, float, float]:
        pricing = endpoint.get("pricing", {})
        prompt_cost = Decimal(str(pricing.get("prompt", "0"))) * prompt_tokens
        completion_cost = Decimal(str(pricing.get("completion", "0"))) * completion_tokens
        request_cost = Decimal(str(pricing.get("request", "0")))
        return float(prompt_cost + completion_cost + request_cost), float(prompt_cost), float(completion_cost)

    def _record_generation(
        self,
        *,
        gen_id: str,
        req: _Incoming,
        model: JSON,
        endpoint: JSON,
        plan: _Plan,
        finish_reason: str,
        completion_tokens: int,
        attempts: list[JSON],
        streamed: bool,
        cancelled: bool,
        started: float,
    ) -> None:
        cost, _, _ = self._cost(endpoint, plan.prompt_tokens, completion_tokens)
        self.total_usage += cost
        elapsed_ms = round((anyio.current_time() - started) * 1000, 1)
        body = req.body if isinstance(req.body, dict) else {}
        user = body.get("user")
        session = body.get("session_id") or req.headers.get("x-session-id")
        responses = [
            {"provider_name": a["provider"], "status": a["status"], "latency": 0.0, "is_byok": False,
             "model_permaslug": a["model"]}
            for a in attempts
        ] + [
            {"provider_name": endpoint["provider_name"], "status": 200, "latency": elapsed_ms, "is_byok": False,
             "model_permaslug": model.get("canonical_slug", model["id"]), "id": f"chatcmpl-{gen_id[-12:]}"}
        ]  # fmt: skip
        self.generations[gen_id] = {
            "id": gen_id,
            "upstream_id": f"chatcmpl-{gen_id[-12:]}",
            "request_id": f"req-{gen_id[4:]}",
            "session_id": session if isinstance(session, str) else None,
            "created_at": datetime.now(UTC).isoformat(),
            "model": model["id"],
            "provider_name": endpoint["provider_name"],
            "router": None,
            "api_type": "completions",
            "app_id": None,
            "http_referer": req.headers.get("http-referer"),
            "origin": req.headers.get("http-referer", ""),
            "user_agent": req.headers.get("user-agent"),
            "external_user": user if isinstance(user, str) else None,
            "preset_id": None,
            "workspace_id": None,
            "data_region": "global",
            "streamed": streamed,
            "cancelled": cancelled,
            "finish_reason": finish_reason,
            "native_finish_reason": finish_reason,
            "tokens_prompt": plan.prompt_tokens,
            "tokens_completion": completion_tokens,
            "native_tokens_prompt": plan.prompt_tokens,
            "native_tokens_completion": completion_tokens,
            "native_tokens_completion_images": 0,
            "native_tokens_reasoning": plan.reasoning_tokens,
            "native_tokens_cached": 0,
            "num_media_prompt": 0,
            "num_input_audio_prompt": 0,
            "num_media_completion": 0,
            "num_search_results": 0,
            "num_fetches": 0,
            "web_search_engine": None,
            "total_cost": cost,
            "usage": cost,
            "upstream_inference_cost": None,
            "cache_discount": None,
            "is_byok": False,
            "latency": elapsed_ms,
            "generation_time": elapsed_ms,
            "moderation_latency": None,
            "service_tier": None,
            "response_cache_source_id": None,
            "provider_responses": responses,
        }

    async def _route_inference(
        self, candidates: list[str], prefs: Any, *, anthropic: bool
    ) -> tuple[JSON, JSON, Fault | None, list[JSON]] | _Reply:
        """Walk the fallback chain: skip models whose fault fails them, like OpenRouter; the last error wins."""
        attempts: list[JSON] = []
        last_error: _Reply | None = None
        for model_id in candidates:
            model = self._model(model_id)
            assert model is not None  # _candidates() rejected unknown ids
            endpoint = self._pick_endpoint(model, prefs)
            if endpoint is None:
                availability = {
                    "code": "constraint_filtered",
                    "retryable": False,
                    "requested_models": candidates,
                    "excluded_by": ["allowed_providers"],
                    "docs_url": f"{DOCS_ERRORS_URL}#constraint_filtered",
                }
                message = f"No endpoints found for {model_id} that match your provider preferences."
                if anthropic:
                    last_error = _json(404, _anthropic_error_body(404, message, request_id=None))
                else:
                    last_error = _json(404, _error_body(404, message, availability=availability))
                continue
            fault = self.model_faults.get(model_id)
            if fault is not None and not fault.active:
                fault = None
            if fault is not None:
                fault.consume()
                if fault.latency > 0:
                    await anyio.sleep(fault.latency)
                if fault.status is not None:
                    attempts.append({"model": model_id, "provider": endpoint["provider_name"], "status": fault.status})
                    last_error = self._fault_reply(
                        fault,
                        anthropic=anthropic,
                        model=model_id,
                        provider=endpoint["provider_name"],
                        request_id=self._new_id() if anthropic else None,
                    )
                    continue
            return model, endpoint, fault, attempts
        assert last_error is not None
        return last_error

    @staticmethod
    def _wants_reasoning(model: JSON, reasoning: Any, effort: Any, include: Any) -> tuple[bool, bool]:
        """(produce reasoning, show it in the response) for a request's reasoning options."""
        if "reasoning" not in model.get("supported_parameters", []):
            return False, False
        mandatory = bool(model.get("reasoning", {}).get("mandatory", False))
        wanted = mandatory
        exclude = False
        if isinstance(reasoning, dict):
            disabled = reasoning.get("enabled") is False or reasoning.get("effort") == "none"
            wanted = mandatory or not disabled
            exclude = reasoning.get("exclude") is True
        if isinstance(effort, str) and effort != "none":
            wanted = True
        if include is True:
            wanted = True
        return wanted, wanted and not exclude

    # ---- POST /chat/completions -------------------------------------------------------------------

    async def _chat(self, req: _Incoming, params: dict[str, str], path_fault: Fault | None) -> _Reply | _StreamReply:
        started = anyio.current_time()
        body = req.body
        if req.body_invalid or not isinstance(body, dict):
            return self._bad_request("Invalid JSON body: expected an object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._bad_request("'messages' is required and must be a non-empty array")
        roles = {"system", "user", "assistant", "tool", "developer"}
        for index, item in enumerate(messages):
            if not isinstance(item, dict) or item.get("role") not in roles:
                return self._bad_request(f"messages[{index}]: invalid message (role must be one of {sorted(roles)})")
        if body.get("tools") is not None and not isinstance(body["tools"], list):
            return self._bad_request("'tools' must be an array")
        candidates = self._candidates(body.get("model"), body.get("models"), anthropic=False)
        if isinstance(candidates, _Reply):
            return candidates
        routed = await self._route_inference(candidates, body.get("provider"), anthropic=False)
        if isinstance(routed, _Reply):
            return routed
        model, endpoint, model_fault, attempts = routed
        served = _Served.merge(model_fault, path_fault)

        last = messages[-1]
        last_role = str(last.get("role"))
        user_texts = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        prompt_text = _text_of(last.get("content")) if last_role in ("user", "tool") else (user_texts or [""])[-1]
        tools: list[tuple[str, Any]] = []
        for tool in body.get("tools") or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                tools.append((function["name"], function.get("parameters")))
        choice = body.get("tool_choice")
        tool_mode: str | tuple[str, str] = "auto"
        if choice in ("none", "required"):
            tool_mode = str(choice)
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            tool_mode = ("named", str(choice["function"].get("name")))
        response_format = body.get("response_format")
        json_schema: Any = None
        if isinstance(response_format, dict) and response_format.get("type") == "json_object":
            json_schema = True
        elif isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            json_schema = (response_format.get("json_schema") or {}).get("schema") or True
        prompt_tokens = sum(4 + _tokens(_text_of(m.get("content"))) for m in messages)
        prompt_tokens += _tokens(json.dumps(body["tools"])) if body.get("tools") else 0
        plan = self._plan(
            model,
            prompt_text=prompt_text,
            prompt_tokens=prompt_tokens,
            last_role=last_role,
            tools=tools,
            tool_mode=tool_mode,
            parallel=body.get("parallel_tool_calls") is not False,
            reasoning=self._wants_reasoning(
                model, body.get("reasoning"), body.get("reasoning_effort"), body.get("include_reasoning")
            ),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            stop=body.get("stop"),
            json_schema=json_schema,
        )
        gen_id = self._new_id()
        headers = [("X-Generation-Id", gen_id)]
        if body.get("stream") is True:
            return self._chat_stream(req, model, endpoint, plan, served, attempts, gen_id, headers, started)
        if served.malformed:
            return _malformed(headers)

        text = plan.text
        finish = plan.finish_reason
        completion_tokens = plan.completion_tokens
        message: JSON = {"role": "assistant", "content": text, "refusal": None}
        if plan.reasoning is not None and plan.show_reasoning:
            message["reasoning"] = plan.reasoning
            message["reasoning_details"] = [
                {"type": "reasoning.text", "text": plan.reasoning, "format": "unknown", "index": 0}
            ]
        if plan.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in plan.tool_calls
            ]
        choice_obj: JSON = {
            "index": 0,
            "logprobs": None,
            "finish_reason": finish,
            "native_finish_reason": finish,
            "message": message,
        }
        if served.error_in_200:
            # Documented partial failure: the provider died after some output; HTTP stays 200.
            text = " ".join(text.split()[: max(1, len(text.split()) // 2)])
            message["content"] = text
            message.pop("tool_calls", None)
            finish = "error"
            completion_tokens = _tokens(text) + plan.reasoning_tokens
            choice_obj["finish_reason"] = choice_obj["native_finish_reason"] = finish
            choice_obj["error"] = self._mid_stream_error(served)
        cost, prompt_cost, completion_cost = self._cost(endpoint, plan.prompt_tokens, completion_tokens)
        result: JSON = {
            "id": gen_id,
            "provider": endpoint["provider_name"],
            "model": model["id"],
            "object": "chat.completion",
            "created": int(time.time()),
            "choices": [choice_obj],
            "system_fingerprint": None,
            "usage": self._chat_usage(plan, completion_tokens, cost, prompt_cost, completion_cost),
        }
        if req.headers.get("x-openrouter-metadata", "").lower() == "enabled":
            result["openrouter_metadata"] = self._router_metadata(candidates, model, endpoint, attempts)
        self._record_generation(
            gen_id=gen_id, req=req, model=model, endpoint=endpoint, plan=plan, finish_reason=finish,
            completion_tokens=completion_tokens, attempts=attempts, streamed=False, cancelled=False, started=started,
        )  # fmt: skip
        return _json(200, result, headers)

    @staticmethod
    def _chat_usage(
        plan: _Plan, completion_tokens: int, cost: float, prompt_cost: float, completion_cost: float
    ) -> JSON:
        return {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": plan.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
            "cost": cost,
            "is_byok": False,
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": prompt_cost,
                "upstream_inference_completions_cost": completion_cost,
            },
        }

    def _router_metadata(self, candidates: list[str], model: JSON, endpoint: JSON, attempts: list[JSON]) -> JSON:
        endpoints = self._endpoints_for(model)
        return {
            "requested": candidates[0],
            "strategy": "fallback" if len(candidates) > 1 else "direct",
            "region": None,
            "summary": f"Routed {candidates[0]} to {endpoint['provider_name']} ({model['id']})",
            "attempt": len(attempts) + 1,
            "is_byok": False,
            "endpoints": {
                "total": len(endpoints),
                "available": [
                    {"provider": e["provider_name"], "model": model["id"], "selected": e is endpoint} for e in endpoints
                ],
            },
            "attempts": [*attempts, {"model": model["id"], "provider": endpoint["provider_name"], "status": 200}],
        }

    @staticmethod
    def _mid_stream_error(served: _Served) -> JSON:
        metadata: JSON = {"error_type": served.error_type or "provider_unavailable"}
        if served.provider_code is not None:
            # The stream chunk schema types provider_code as a string.
            metadata["provider_code"] = str(served.provider_code)
        return {"code": 502, "message": "Provider disconnected unexpectedly", "metadata": metadata}

    def _chat_stream(
        self,
        req: _Incoming,
        model: JSON,
        endpoint: JSON,
        plan: _Plan,
        served: _Served,
        attempts: list[JSON],
        gen_id: str,
        headers: list[tuple[str, str]],
        started: float,
    ) -> _StreamReply:
        created = int(time.time())
        delay = self.stream_chunk_delay
        base = {"id": gen_id, "provider": endpoint["provider_name"], "model": model["id"],
                "object": "chat.completion.chunk", "created": created}  # fmt: skip

        def data(obj: Any) -> bytes:
            return b"data: " + _dumps(obj) + b"\n\n"

        def chunk(delta: JSON, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish,
                      "logprobs": None}  # fmt: skip
            return data({**base, "choices": [choice]})

        events = [_Event(delay if i else 0.0, KEEPALIVE) for i in range(self.keepalive_comments)]
        events.append(_Event(delay if events else 0.0, chunk({"role": "assistant", "content": ""})))
        failed = served.mid_stream_error or served.error_in_200
        finish = "error" if failed else plan.finish_reason
        if served.malformed:
            events.append(
                _Event(delay, b'data: {"id":"' + gen_id.encode() + b'","choices":[{"delta":{"content":"Sim\n\n')
            )
            events.append(_Event(delay, b"data: [DONE]\n\n"))
        else:
            if plan.reasoning is not None and plan.show_reasoning:
                for piece in _split_text(plan.reasoning, 6):
                    detail = [{"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}]
                    delta = {"role": "assistant", "content": "", "reasoning": piece, "reasoning_details": detail}
                    events.append(_Event(delay, chunk(delta), _tokens(piece)))
            for index, piece in enumerate(_split_text(plan.text)):
                if failed and index == 2:
                    break
                events.append(_Event(delay, chunk({"role": "assistant", "content": piece}), _tokens(piece)))
            if failed:
                choice = {
                    "index": 0,
                    "delta": {"content": ""},
                    "finish_reason": "error",
                    "native_finish_reason": "error",
                }
                events.append(
                    _Event(delay, data({**base, "error": self._mid_stream_error(served), "choices": [choice]}))
                )
            else:
                for index, call in enumerate(plan.tool_calls):
                    head = {"index": index, "id": call.id, "type": "function",
                            "function": {"name": call.name, "arguments": ""}}  # fmt: skip
                    events.append(_Event(delay, chunk({"role": "assistant", "content": None, "tool_calls": [head]})))
                    for piece in _split_string(json.dumps(call.arguments), 3):
                        part = {"index": index, "function": {"arguments": piece}}
                        events.append(
                            _Event(delay, chunk({"role": "assistant", "content": None, "tool_calls": [part]}))
                        )
                events.append(_Event(delay, chunk({"role": "assistant", "content": ""}, plan.finish_reason)))
                cost, prompt_cost, completion_cost = self._cost(endpoint, plan.prompt_tokens, plan.completion_tokens)
                usage = self._chat_usage(plan, plan.completion_tokens, cost, prompt_cost, completion_cost)
                events.append(_Event(delay, data({**base, "choices": [], "usage": usage})))
                events.append(_Event(0.0, b"data: [DONE]\n\n"))

        def on_done(completed: bool, sent: int) -> None:
            if completed and not failed and not served.malformed:
                tokens = plan.completion_tokens
            else:
                tokens = sum(e.tokens for e in events[:sent])
            self._record_generation(
                gen_id=gen_id, req=req, model=model, endpoint=endpoint, plan=plan,
                finish_reason=finish if completed else "cancelled", completion_tokens=tokens, attempts=attempts,
                streamed=True, cancelled=not completed, started=started,
            )  # fmt: skip

        return _StreamReply(headers, events, on_done)

    # ---- POST /messages ---------------------------------------------------------------------------

    async def _messages(self, req: _Incoming, params: dict[str, str], path_fault: Fault | None) -> _Reply:
        started = anyio.current_time()
        body = req.body
        if req.body_invalid or not isinstance(body, dict):
            return self._bad_request("Invalid request: body must be a JSON object", anthropic=True)
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self._bad_request("Invalid request: model field is required", anthropic=True)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._bad_request("Invalid request: messages field is required", anthropic=True)
        if body.get("tools") is not None and not isinstance(body["tools"], list):
            return self._bad_request("Invalid request: tools must be an array", anthropic=True)
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
                return self._bad_request(f"Invalid request: messages[{index}].role is invalid", anthropic=True)
        if body.get("stream") is True:
            return self._bad_request("streaming not supported by the simulator", anthropic=True)
        extra: Any = body.get("models")
        fallbacks = body.get("fallbacks")
        if fallbacks is not None:
            if extra is not None:
                return self._bad_request(
                    "Invalid request: 'fallbacks' cannot be combined with 'models'", anthropic=True
                )
            if not isinstance(fallbacks, list) or not all(
                isinstance(f, dict) and set(f) == {"model"} for f in fallbacks
            ):
                return self._bad_request(
                    "Invalid request: 'fallbacks' entries must be {\"model\": ...}", anthropic=True
                )
            extra = [f["model"] for f in fallbacks]
        candidates = self._candidates(body["model"], extra, anthropic=True)
        if isinstance(candidates, _Reply):
            return candidates
        routed = await self._route_inference(candidates, body.get("provider"), anthropic=True)
        if isinstance(routed, _Reply):
            return routed
        model, endpoint, model_fault, attempts = routed
        served = _Served.merge(model_fault, path_fault)
        gen_id = self._new_id()
        headers = [("X-Generation-Id", gen_id)]
        if served.malformed:
            return _malformed(headers)

        last = messages[-1]
        content = last.get("content")
        has_tool_result = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )
        last_role = "tool" if has_tool_result else str(last.get("role"))
        tools = [
            (t["name"], t.get("input_schema"))
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("name"), str) and t.get("type", "custom") == "custom"
        ]
        choice = body.get("tool_choice")
        tool_mode: str | tuple[str, str] = "auto"
        if isinstance(choice, dict):
            kind = choice.get("type")
            if kind == "any":
                tool_mode = "required"
            elif kind == "none":
                tool_mode = "none"
            elif kind == "tool":
                tool_mode = ("named", str(choice.get("name")))
        parallel = not (isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True)
        thinking = body.get("thinking")
        wants_thinking = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        system_text = _text_of(body.get("system"))
        prompt_tokens = _tokens(system_text) + sum(4 + _tokens(_text_of(m.get("content"))) for m in messages)
        prompt_tokens += _tokens(json.dumps(body["tools"])) if body.get("tools") else 0
        plan = self._plan(
            model,
            prompt_text=_text_of(content),
            prompt_tokens=prompt_tokens,
            last_role=last_role,
            tools=tools,
            tool_mode=tool_mode,
            parallel=parallel,
            reasoning=self._wants_reasoning(model, {"enabled": wants_thinking}, None, None),
            max_tokens=body.get("max_tokens"),
            stop=body.get("stop_sequences"),
            json_schema=None,
        )
        blocks: list[JSON] = []
        if plan.reasoning is not None:
            blocks.append({"type": "thinking", "thinking": plan.reasoning, "signature": f"sim-{gen_id[-12:]}"})
        if plan.text or not plan.tool_calls:
            blocks.append({"type": "text", "text": plan.text, "citations": None})
        for call in plan.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": "toolu_" + call.id[5:],
                    "name": call.name,
                    "input": call.arguments,
                    "caller": {"type": "direct"},
                }
            )
        stop_reason = {"tool_calls": "tool_use", "length": "max_tokens"}.get(plan.finish_reason, "end_turn")
        if plan.stop_sequence is not None:
            stop_reason = "stop_sequence"
        cost, prompt_cost, completion_cost = self._cost(endpoint, plan.prompt_tokens, plan.completion_tokens)
        result: JSON = {
            "id": gen_id,
            "type": "message",
            "role": "assistant",
            "model": model["id"],
            "provider": endpoint["provider_name"],
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": plan.stop_sequence,
            "stop_details": None,
            "container": None,
            "usage": {
                "input_tokens": plan.prompt_tokens,
                "output_tokens": plan.completion_tokens,
                "output_tokens_details": {"thinking_tokens": plan.reasoning_tokens} if plan.reasoning else None,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": None,
                "cache_creation": None,
                "inference_geo": None,
                "server_tool_use": None,
                "service_tier": "standard",
                "cost": cost,
                "is_byok": False,
                "cost_details": {
                    "upstream_inference_cost": None,
                    "upstream_inference_prompt_cost": prompt_cost,
                    "upstream_inference_completions_cost": completion_cost,
                },
            },
        }
        self._record_generation(
            gen_id=gen_id, req=req, model=model, endpoint=endpoint, plan=plan, finish_reason=plan.finish_reason,
            completion_tokens=plan.completion_tokens, attempts=attempts, streamed=False, cancelled=False,
            started=started,
        )  # fmt: skip
        return _json(200, result, headers)


# --------------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------------


@contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yield the base URL ``http://host:port/api/v1``.

    Port 0 picks a free port (the socket is bound here, so the real port is known before uvicorn starts).
    The server stops, and the thread is joined, when the context exits.

    Raises:
        RuntimeError: uvicorn exited before it was ready.
        TimeoutError: uvicorn did not become ready within 10 seconds.
    """
    import uvicorn  # here, not at the top: the in-process demo never needs a server

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off only on sockets it knows are TCP,
    # and with it on, every small two-write response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", access_log=False, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="openrouter-simulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10.0
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited before it was ready")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start within 10 seconds")
            time.sleep(0.005)  # uvicorn offers no readiness event; this is a plain thread, not async code
        bound_port = sock.getsockname()[1]
        netloc = f"[{host}]:{bound_port}" if family == socket.AF_INET6 else f"{host}:{bound_port}"
        yield f"http://{netloc}{API_PREFIX}"
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
        sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulator: ``python -m openrouter_mcp.simulator --port 8765``."""
    import uvicorn  # only needed when serving from the command line

    parser = argparse.ArgumentParser(prog="python -m openrouter_mcp.simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (0 = any free port)")
    parser.add_argument("--models", type=int, default=320, help="number of models in the catalog")
    parser.add_argument("--seed", type=int, default=0, help="catalog seed")
    parser.add_argument("--api-key", default=None, help="require this bearer key on authenticated endpoints")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--stream-chunk-delay", type=float, default=0.0, help="seconds between SSE events")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    simulator = Simulator(
        model_count=args.models,
        seed=args.seed,
        api_key=args.api_key,
        latency=args.latency,
        stream_chunk_delay=args.stream_chunk_delay,
    )
    logger.info(
        "simulated OpenRouter at http://%s:%d%s (%d models)", args.host, args.port, API_PREFIX, len(simulator.catalog)
    )
    # log_config=None: uvicorn's own loggers then go through the root logger above, i.e. to stderr.
    uvicorn.run(
        simulator, host=args.host, port=args.port, log_level=args.log_level, log_config=None, lifespan="off", ws="none"
    )


if __name__ == "__main__":
    main()
