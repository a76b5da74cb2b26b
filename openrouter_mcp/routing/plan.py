"""Which models may answer a request, and in what order: the candidates, and why every other one is out.

Pure and fast: no mcp, no httpx, no I/O. `plan_candidates` turns a persona, a request and the catalog
into ordered candidates plus a reason for every model it left out. What happens when a candidate
fails is `decisions.py`; which models are cooling down is `cooldowns.py`; trying the candidates in
turn is `fallback.py`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from openrouter_mcp.routing.cooldowns import Cooldowns
from openrouter_mcp.routing.personas import Persona
from openrouter_mcp.upstream.catalog import ModelEntry

#: How many catalog models a persona's ranking contributes when none of its own models fit.
RANKED_CANDIDATES = 6

ExclusionReason = Literal[
    "not_in_catalog",
    "no_tool_support",
    "no_structured_output",
    "no_image_input",
    "context_too_small",
    "over_price_ceiling",
    "price_unknown",
    "cooling_down",
    "excluded_by_privacy",
    "pricier_than_primary",
]


@dataclass(frozen=True)
class RouteRequest:
    """What routing needs to know about one request."""

    requested_model: str | None = None
    #: Fallback model ids the caller named (OpenRouter's `models`), tried after the requested one.
    fallback_models: tuple[str, ...] = ()
    task: str | None = None
    needs_tools: bool = False
    needs_structured_output: bool = False
    has_images: bool = False
    prompt_tokens: int = 0
    max_tokens: int | None = None


@dataclass(frozen=True)
class Candidate:
    model_id: str
    why: str
    prompt_per_m: float | None
    completion_per_m: float | None


@dataclass(frozen=True)
class Exclusion:
    model_id: str
    reason: ExclusionReason
    detail: str


@dataclass(frozen=True)
class Route:
    persona: str
    task: str | None
    candidates: list[Candidate]
    exclusions: list[Exclusion]
    #: How many catalog models each filter passed over while ranking (they are not listed one by one).
    ranked_out: dict[str, int] = field(default_factory=dict)
    #: True when nothing chose a model and nothing bounds its price: OpenRouter's default model answers.
    openrouter_default: bool = False


def plan_candidates(
    persona: Persona,
    request: RouteRequest,
    catalog: Mapping[str, ModelEntry],
    *,
    cooldowns: Cooldowns | None = None,
    zdr_models: frozenset[str] | None = None,
) -> Route:
    """Ordered candidates for `request` under `persona`, and why each other considered model is out.

    Order: the requested model, the caller's fallbacks, the persona's models for the task, its
    general models. Then catalog models ranked by the persona's strengths: as the whole list when
    none of those fit, else as extra fallbacks no pricier than the first candidate, so falling back
    never raises the price. Every candidate meets the request's needs, the persona's requirements,
    its price ceiling and its privacy settings. When no model is named anywhere and the persona
    bounds no price, we pick none: OpenRouter's default model answers (`openrouter_default`).
    """
    exclusions: list[Exclusion] = []
    candidates: list[Candidate] = []
    considered: list[tuple[str, str]] = []
    if request.requested_model:
        considered.append((request.requested_model, "requested"))
    considered += [(model_id, f"caller fallback #{n}") for n, model_id in enumerate(request.fallback_models, 1)]
    for rank, model_id in enumerate(persona.preferred(request.task), start=1):
        scope = f"for task {request.task!r}" if request.task and model_id in persona.tasks.get(request.task, []) else ""
        considered.append((model_id, f"persona preference #{rank} {scope}".strip()))
    fit = _Fit(persona, request, cooldowns, zdr_models)
    seen: set[str] = set()
    for model_id, why in considered:
        if model_id in seen:
            continue
        seen.add(model_id)
        entry = catalog.get(model_id)
        if entry is None:
            close = difflib.get_close_matches(model_id, list(catalog), n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            exclusions.append(Exclusion(model_id, "not_in_catalog", f"no such model in OpenRouter's catalog{hint}"))
            continue
        problem = fit.problem(entry)
        if problem is not None:
            exclusions.append(Exclusion(model_id, *problem))
            continue
        candidates.append(_candidate(entry, why))
    ceiling = persona.max_price
    if not considered and ceiling.prompt is None and ceiling.completion is None:
        return Route(persona.name, request.task, [], exclusions, openrouter_default=True)
    room = RANKED_CANDIDATES - len(candidates)
    if room <= 0 or not persona.rank_by:
        return Route(persona.name, request.task, candidates, exclusions)
    cap = (candidates[0].prompt_per_m, candidates[0].completion_per_m) if candidates else None
    ranked, ranked_out = _ranked(persona, catalog, seen, fit, cap, room)
    return Route(persona.name, request.task, candidates + ranked, exclusions, ranked_out)


def _candidate(entry: ModelEntry, why: str) -> Candidate:
    return Candidate(entry.id, why, entry.prompt_per_m, entry.completion_per_m)


class _Fit:
    """What every model must meet to answer one request: worked out once per plan, then checked model by model."""

    __slots__ = ("ceilings", "context", "cooldowns", "images", "structured_output", "tools", "zdr_models")

    def __init__(
        self, persona: Persona, request: RouteRequest, cooldowns: Cooldowns | None, zdr_models: frozenset[str] | None
    ) -> None:
        needs = persona.requires
        self.tools = request.needs_tools or needs.tools
        self.structured_output = request.needs_structured_output or needs.structured_output
        self.images = request.has_images or needs.image_input
        self.context = max(needs.min_context, request.prompt_tokens + (request.max_tokens or 0))
        ceiling = persona.max_price
        #: (kind, whether it is the prompt price, the persona's ceiling), for the ceilings the persona sets.
        self.ceilings: tuple[tuple[str, bool, float], ...] = ()
        if ceiling.prompt is not None:
            self.ceilings += (("prompt", True, ceiling.prompt),)
        if ceiling.completion is not None:
            self.ceilings += (("completion", False, ceiling.completion),)
        self.zdr_models = zdr_models if persona.provider.zdr else None
        self.cooldowns = cooldowns

    def problem(self, entry: ModelEntry) -> tuple[ExclusionReason, str] | None:
        """Why `entry` cannot answer (the reason and its detail), or None when it can."""
        if self.tools and "tools" not in entry.parameters:
            return "no_tool_support", "does not support tool calling"
        if self.structured_output and not ({"response_format", "structured_outputs"} & entry.parameters):
            return "no_structured_output", "does not support response_format / structured outputs"
        if self.images and "image" not in entry.input_modalities:
            return "no_image_input", "does not accept image input"
        if entry.context_length is not None and entry.context_length < self.context:
            return "context_too_small", f"context {entry.context_length} < {self.context} tokens needed"
        for kind, is_prompt, limit in self.ceilings:
            price = entry.prompt_per_m if is_prompt else entry.completion_per_m
            if price is None:
                return "price_unknown", f"{kind} price unknown, and the persona caps it at ${limit:g}/M"
            if price > limit + 1e-12:
                return "over_price_ceiling", f"{kind} ${price:g}/M is over the persona's ${limit:g}/M"
        # ZDR endpoints name their model by permaslug (`canonical_slug`), not by routable id: accept either.
        zdr = self.zdr_models
        if zdr is not None and entry.id not in zdr and entry.model.canonical_slug not in zdr:
            return "excluded_by_privacy", "no Zero-Data-Retention endpoint, and the persona requires ZDR"
        if self.cooldowns is not None:
            blocked = self.cooldowns.blocking(entry.id)
            if blocked is not None:
                key, left = blocked
                shared = "" if key == entry.id else f" (shared limit {key})"
                return "cooling_down", f"failed recently; cooling down {math.ceil(left)} s more{shared}"
        return None


def _ranked(
    persona: Persona,
    catalog: Mapping[str, ModelEntry],
    skip: set[str],
    fit: _Fit,
    cap: tuple[float | None, float | None] | None,
    room: int,
) -> tuple[list[Candidate], dict[str, int]]:
    """The best-ranked models that fit, up to `room`; `ranked_out` counts the ones passed over on the way."""
    picked: list[Candidate] = []
    ranked_out: dict[str, int] = {}
    label = f"ranked by {', '.join(persona.rank_by)}"
    prompt_cap, completion_cap = cap or (None, None)
    for entry in _rank_order(catalog, tuple(persona.rank_by)):
        if len(picked) >= room:
            break
        if entry.id in skip:
            continue
        problem = fit.problem(entry)
        if problem is None and cap is not None and _pricier(entry, prompt_cap, completion_cap):
            problem = ("pricier_than_primary", "")
        if problem is None:
            picked.append(_candidate(entry, label))
        else:
            ranked_out[problem[0]] = ranked_out.get(problem[0], 0) + 1
    return picked, ranked_out


#: Ranked catalog orders by (catalog object, strengths); a catalog object lives until the next refresh.
_ORDERS: dict[tuple[int, tuple[str, ...]], tuple[Mapping[str, ModelEntry], list[ModelEntry]]] = {}


def _rank_order(catalog: Mapping[str, ModelEntry], strengths: tuple[str, ...]) -> list[ModelEntry]:
    """Text-output models, best first by `strengths`: sorted once per catalog, not once per request."""
    key = (id(catalog), strengths)
    cached = _ORDERS.get(key)
    if cached is not None and cached[0] is catalog:
        return cached[1]
    # The catalog may map several keys (id, canonical slug) to one entry: rank each model once.
    unique = {entry.id: entry for entry in catalog.values() if "text" in entry.output_modalities}
    order = sorted(unique.values(), key=lambda entry: _strength_key(entry, strengths), reverse=True)
    if len(_ORDERS) >= 8:
        _ORDERS.clear()
    _ORDERS[key] = (catalog, order)  # holding `catalog` keeps its id from being reused while cached
    return order


def _pricier(entry: ModelEntry, prompt_cap: float | None, completion_cap: float | None) -> bool:
    """Whether `entry` costs more than the primary candidate on either side (unknown prices count as more)."""
    if prompt_cap is not None and (entry.prompt_per_m is None or entry.prompt_per_m > prompt_cap + 1e-12):
        return True
    return completion_cap is not None and (
        entry.completion_per_m is None or entry.completion_per_m > completion_cap + 1e-12
    )


def _strength_key(entry: ModelEntry, strengths: Iterable[str]) -> tuple[float, ...]:
    indexes = (entry.model.benchmarks or {}).get("artificial_analysis") or {}
    key: list[float] = []
    for strength in strengths:
        if strength in ("intelligence", "coding", "agentic"):
            value = indexes.get(f"{strength}_index")
            key.append(float(value) if isinstance(value, int | float) else -1.0)
        elif strength == "cheap":
            total = (entry.prompt_per_m or 0.0) + (entry.completion_per_m or 0.0)
            key.append(-total)
        elif strength == "context":
            key.append(float(entry.context_length or 0))
    return tuple(key)
