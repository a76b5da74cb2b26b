"""The deterministic catalog: models, endpoints and providers generated from a seed.

The hand-written models of :mod:`.catalog_data` come first; random but realistic models fill the catalog
up to ``model_count``, drawn from a ``random.Random`` seeded with ``seed``, so a seed always yields the
same catalog.
"""

from __future__ import annotations

import pickle
import random
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from .asgi import API_PREFIX, JSON
from .catalog_data import (
    AUTHORS,
    CHAT_BASE,
    FIXED_SPECS,
    OPEN_HOSTS,
    PARAMETERS,
    PROVIDER_ROWS,
    REASONING_PARAMS,
    Spec,
)

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


def _random_spec(rng: random.Random, used: set[str]) -> Spec:
    author = rng.choices(AUTHORS, weights=[a.weight for a in AUTHORS])[0]
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
    params: set[str] = set(CHAT_BASE)
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
            params |= set(REASONING_PARAMS)
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
        hosts = [h for h in OPEN_HOSTS if h not in providers]
        providers = tuple(providers) + tuple(rng.sample(hosts, 3))
    elif not providers:
        providers = tuple(rng.sample(OPEN_HOSTS, 2))

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
    return Spec(
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


def _free_twin(spec: Spec, rng: random.Random) -> Spec:
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
class Catalog:
    models: list[JSON]
    endpoints: dict[str, list[JSON]]
    providers: list[JSON]
    categories: dict[str, tuple[str, ...]]
    popularity: dict[str, float]
    tool_success: dict[str, float]


def _build_providers() -> list[JSON]:
    providers: list[JSON] = []
    for name, slug, hq, datacenters, _zdr in PROVIDER_ROWS:
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


def _materialize(spec: Spec, rng: random.Random, provider_slugs: dict[str, str]) -> tuple[JSON, list[JSON]]:
    prompt = Decimal(spec.prompt_per_m)
    completion = Decimal(spec.completion_per_m)
    params = [p for p in PARAMETERS if p in spec.params]

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


def build_catalog(model_count: int, seed: int) -> Catalog:
    """The simulated catalog for `(model_count, seed)`: always the same, and each call a fresh copy to mutate.

    Built once per pair and then unpickled (~3 ms) rather than rebuilt (~25 ms): tests make a simulator each.
    """
    pickled = _pickled_catalogs.get((model_count, seed))
    if pickled is None:
        pickled = _pickled_catalogs[(model_count, seed)] = pickle.dumps(_build_catalog(model_count, seed))
    catalog: Catalog = pickle.loads(pickled)
    return catalog


_pickled_catalogs: dict[tuple[int, int], bytes] = {}


def _build_catalog(model_count: int, seed: int) -> Catalog:
    rng = random.Random(f"openrouter-sim-catalog:{seed}")
    specs: list[Spec] = list(FIXED_SPECS)
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

    provider_slugs = {row[0]: row[1] for row in PROVIDER_ROWS}
    catalog = Catalog([], {}, _build_providers(), {}, {}, {})
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
