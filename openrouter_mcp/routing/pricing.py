"""The price ceiling sent upstream: a persona's `provider` preferences merged with the caller's, capped.

Candidate planning (`plan.py`) keeps models over the persona's ceiling out of the candidates; this
module makes OpenRouter hold the same line among a model's endpoints, through the `max_price` of
the `provider` object. Pure: no mcp, no httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openrouter_mcp.routing.personas import Persona


def provider_preferences(persona: Persona, caller: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The `provider` object to send: the caller's, over the persona's defaults, under the persona's ceiling.

    The ceiling goes upstream as `max_price` too, so OpenRouter itself never routes to a pricier
    endpoint of an allowed model; a caller's own `max_price` can only lower it. None when there is
    nothing to send.
    """
    provider, ceiling = _persona_defaults(persona)
    if not caller and not ceiling:
        return {**provider} or None
    merged = {**provider, **(caller or {})}
    if ceiling:
        prices = dict(merged.get("max_price") or {})
        for kind, limit in ceiling.items():
            prices[kind] = f"{min(float(prices.get(kind, limit)), limit):g}"
        merged["max_price"] = prices
    return merged or None


#: By persona: its `provider` settings and its ceiling as dicts (read-only), so that a call does not dump them again.
#: A persona is frozen; the entry holds it, so its id cannot be reused by another while cached.
_DEFAULTS: dict[int, tuple[Persona, dict[str, Any], dict[str, float]]] = {}


def _persona_defaults(persona: Persona) -> tuple[dict[str, Any], dict[str, float]]:
    cached = _DEFAULTS.get(id(persona))
    if cached is not None and cached[0] is persona:
        return cached[1], cached[2]
    provider = persona.provider.model_dump(exclude_none=True)
    ceiling = persona.max_price.model_dump(exclude_none=True)
    if len(_DEFAULTS) >= 64:  # personas come from one file, but tests and reloads make new ones
        _DEFAULTS.clear()
    _DEFAULTS[id(persona)] = (persona, provider, ceiling)
    return provider, ceiling
