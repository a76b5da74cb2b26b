"""The facts the catalog is built from: providers, model authors, and the hand-written models tests rely on."""

from __future__ import annotations

from dataclasses import dataclass

from .asgi import JSON

# name (ProviderName enum value), slug, headquarters, datacenters, zero-data-retention
PROVIDER_ROWS: tuple[tuple[str, str, str, str, bool], ...] = (
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
OPEN_HOSTS: tuple[str, ...] = (
    "DeepInfra", "Together", "Fireworks", "Novita", "Parasail", "Nebius", "Chutes", "Groq", "Cerebras",
    "SambaNova", "Friendli", "Crusoe", "BaseTen", "AtlasCloud", "SiliconFlow", "Nvidia", "Cloudflare",
    "Featherless", "GMICloud", "Phala", "NextBit", "Ionstream", "WandB", "DigitalOcean", "Infermatic",
    "Mancer 2", "CoreWeave", "Modal", "Clarifai", "Cirrascale", "Databricks", "Venice", "OpenInference",
)  # fmt: skip

# Canonical order of the spec's Parameter enum; supported_parameters are listed in this order.
PARAMETERS: tuple[str, ...] = (
    "temperature", "top_p", "top_k", "min_p", "top_a", "frequency_penalty", "presence_penalty",
    "repetition_penalty", "max_tokens", "max_completion_tokens", "logit_bias", "logprobs", "top_logprobs",
    "prediction", "seed", "response_format", "structured_outputs", "stop", "tools", "tool_choice",
    "parallel_tool_calls", "include_reasoning", "reasoning", "reasoning_effort", "web_search_options", "verbosity",
)  # fmt: skip

CATEGORIES: tuple[str, ...] = (
    "programming", "roleplay", "marketing", "marketing/seo", "technology", "science", "translation", "legal",
    "finance", "health", "trivia", "academia",
)  # fmt: skip

EU_COUNTRIES = frozenset({"AT", "BE", "DE", "DK", "ES", "FI", "FR", "IE", "IT", "NL", "PL", "PT", "SE"})


@dataclass(frozen=True)
class Author:
    slug: str
    display: str
    tokenizer: str
    instruct_type: str | None
    providers: tuple[str, ...]
    families: tuple[str, ...]
    open_weights: bool
    weight: float
    premium: bool = False


AUTHORS: tuple[Author, ...] = (
    Author("openai", "OpenAI", "GPT", None, ("OpenAI", "Azure"),
            ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano", "o3", "o3-mini",
             "o4-mini", "gpt-4-turbo", "gpt-3.5-turbo", "gpt-4o-audio-preview", "gpt-image-1",
             "text-embedding-3-large", "text-embedding-ada-002"), False, 3.0, True),
    Author("anthropic", "Anthropic", "Claude", None, ("Anthropic", "Amazon Bedrock", "Google"),
            ("claude-opus-4", "claude-opus-4.1", "claude-3.7-sonnet", "claude-3.5-haiku", "claude-haiku-4.5",
             "claude-sonnet-4.5", "claude-3.5-sonnet"), False, 2.0, True),
    Author("google", "Google", "Gemini", None, ("Google AI Studio", "Google"),
            ("gemini-2.5-pro", "gemini-2.0-flash", "gemini-2.5-flash-lite", "gemini-2.5-flash-image",
             "gemini-embedding-001", "gemma-3-27b-it", "gemma-3-12b-it", "gemma-3n-e4b-it"), False, 2.5, True),
    Author("meta-llama", "Meta", "Llama3", "llama3", (),
            ("llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "llama-3.1-405b-instruct", "llama-4-maverick",
             "llama-4-scout", "llama-3.2-3b-instruct", "llama-3.2-11b-vision-instruct", "llama-guard-4-12b"),
            True, 2.5),
    Author("mistralai", "Mistral", "Mistral", "mistral", ("Mistral",),
            ("mistral-large", "mistral-medium-3.1", "mistral-small-3.2-24b-instruct", "codestral",
             "devstral-medium", "ministral-8b", "pixtral-large", "mixtral-8x22b-instruct", "magistral-medium",
             "mistral-embed"), True, 2.5),
    Author("deepseek", "DeepSeek", "DeepSeek", "deepseek-v3.1", ("DeepSeek",),
            ("deepseek-chat-v3.1", "deepseek-r1", "deepseek-r1-distill-llama-70b", "deepseek-v3.2-exp",
             "deepseek-prover-v2", "deepseek-chat"), True, 2.0),
    Author("qwen", "Qwen", "Qwen3", "qwen3", ("Alibaba",),
            ("qwen3-235b-a22b", "qwen3-coder", "qwen3-32b", "qwen3-30b-a3b", "qwen-2.5-72b-instruct",
             "qwen2.5-vl-72b-instruct", "qwq-32b", "qwen3-max", "qwen3-next-80b-a3b", "qwen3-embedding-8b"),
            True, 2.5),
    Author("x-ai", "xAI", "Grok", None, ("xAI",),
            ("grok-4", "grok-3", "grok-3-mini", "grok-code-fast-1", "grok-4-fast"), False, 1.2, True),
    Author("cohere", "Cohere", "Cohere", None, ("Cohere",),
            ("command-r-plus", "command-r", "command-a", "command-r7b", "embed-v4"), False, 0.8),
    Author("microsoft", "Microsoft", "Other", "phi3", ("Azure",),
            ("phi-4", "phi-4-reasoning-plus", "mai-ds-r1", "wizardlm-2-8x22b"), True, 0.8),
    Author("nvidia", "NVIDIA", "Llama3", "nemotron", ("Nvidia",),
            ("llama-3.1-nemotron-70b-instruct", "nemotron-nano-9b-v2", "llama-3.3-nemotron-super-49b"), True, 0.7),
    Author("amazon", "Amazon", "Nova", None, ("Amazon Bedrock",),
            ("nova-pro-v1", "nova-lite-v1", "nova-micro-v1", "nova-premier-v1"), False, 0.6),
    Author("moonshotai", "MoonshotAI", "Other", None, ("Moonshot AI",),
            ("kimi-k2", "kimi-k2-thinking", "kimi-dev-72b"), True, 0.8),
    Author("z-ai", "Z.AI", "Other", None, ("Z.AI",), ("glm-4.5", "glm-4.5-air", "glm-4.6", "glm-4.5v"), True, 0.8),
    Author("minimax", "MiniMax", "Other", None, ("Minimax",), ("minimax-m1", "minimax-m2", "minimax-01"), True, 0.5),
    Author("perplexity", "Perplexity", "Other", None, ("Perplexity",),
            ("sonar", "sonar-pro", "sonar-reasoning", "sonar-deep-research"), False, 0.5),
    Author("ai21", "AI21", "Other", None, ("AI21",), ("jamba-large-1.7", "jamba-mini-1.7"), True, 0.3),
    Author("nousresearch", "Nous", "Llama3", "chatml", (),
            ("hermes-4-405b", "hermes-4-70b", "hermes-3-llama-3.1-70b"), True, 0.5),
    Author("liquid", "Liquid", "Other", None, ("Liquid",), ("lfm-7b", "lfm-3b", "lfm2-8b-a1b"), False, 0.3),
    Author("inception", "Inception", "Other", None, ("Inception",), ("mercury", "mercury-coder"), False, 0.3),
    Author("baidu", "Baidu", "Other", None, ("Baidu",), ("ernie-4.5-300b-a47b", "ernie-4.5-21b-a3b"), True, 0.3),
    Author("arcee-ai", "Arcee AI", "Other", None, ("Arcee AI",),
            ("virtuoso-large", "coder-large", "maestro-reasoning"), True, 0.3),
    Author("baai", "BAAI", "Other", None, (), ("bge-m3", "bge-large-en-v1.5"), True, 0.2),
)  # fmt: skip


@dataclass(frozen=True)
class Spec:
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


CHAT_BASE = ("max_tokens", "temperature", "top_p", "stop", "frequency_penalty", "presence_penalty", "seed")
_OPENAI_PARAMS = CHAT_BASE + (
    "logit_bias", "logprobs", "top_logprobs", "response_format", "structured_outputs", "tools", "tool_choice",
    "parallel_tool_calls", "web_search_options",
)  # fmt: skip
REASONING_PARAMS = ("reasoning", "include_reasoning")

FIXED_SPECS: tuple[Spec, ...] = (
    Spec(
        id="openai/gpt-4o", name="OpenAI: GPT-4o", created=1715367049, context=128000, max_output=16384,
        prompt_per_m="2.5", completion_per_m="10", inputs=("text", "image", "file"), outputs=("text",),
        params=_OPENAI_PARAMS, providers=("OpenAI", "Azure"), tokenizer="GPT", instruct_type=None,
        description="GPT-4o (\"o\" for \"omni\") is OpenAI's flagship multimodal model: text and image inputs, "
        "text outputs, strong at coding, vision and multilingual chat.",
        categories=("programming", "technology", "translation"), benchmarks=(41.3, 36.8, 30.2),
        knowledge_cutoff="2023-10-01", moderated=True, popularity=0.97, cache_pricing=True,
    ),
    Spec(
        id="openai/gpt-4o-mini", name="OpenAI: GPT-4o-mini", created=1721260800, context=128000, max_output=16384,
        prompt_per_m="0.15", completion_per_m="0.6", inputs=("text", "image", "file"), outputs=("text",),
        params=_OPENAI_PARAMS, providers=("OpenAI", "Azure"), tokenizer="GPT", instruct_type=None,
        description="GPT-4o mini is OpenAI's small, fast and cheap multimodal model for everyday tasks, "
        "with tool calling and structured outputs.",
        categories=("marketing", "trivia", "technology"), benchmarks=(35.7, 28.1, 24.9),
        knowledge_cutoff="2023-10-01", moderated=True, popularity=0.99, cache_pricing=True,
    ),
    Spec(
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
    Spec(
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
    Spec(
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
    Spec(
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
    Spec(
        id="openai/text-embedding-3-small", name="OpenAI: Text Embedding 3 Small", created=1706140800, context=8192,
        max_output=None, prompt_per_m="0.02", completion_per_m="0", inputs=("text",), outputs=("embeddings",),
        params=(), providers=("OpenAI",), tokenizer="GPT", instruct_type=None,
        description="text-embedding-3-small is OpenAI's efficient embedding model for search, clustering and "
        "retrieval.",
        categories=("technology",), popularity=0.8,
    ),
)  # fmt: skip
