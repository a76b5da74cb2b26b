"""How much a paid call may cost at worst, so a budget can reserve it before the call goes upstream.

The bound must hold, not be hoped for, so every term of it is also sent upstream where OpenRouter enforces
it: `max_tokens` bounds the answer, and `provider.max_price` keeps OpenRouter off any endpoint pricier
than the prices the bound was computed with.

    worst case = padded prompt tokens x highest prompt price among the candidates
               + max_tokens x highest completion price
               + highest per-request price + images x highest per-image price

The prompt estimate (about four characters of JSON a token) is padded by `PROMPT_MARGIN_FACTOR` and
`PROMPT_MARGIN_TOKENS`. One reservation covers every fallback attempt: only the attempt that answers is
charged, and it is one of the candidates whose highest prices were used. Pure: no mcp, no httpx.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openrouter_mcp.routing.personas import Persona

#: The prompt estimate is multiplied by this, then `PROMPT_MARGIN_TOKENS` added (tokenizers differ from ours).
PROMPT_MARGIN_FACTOR = 1.25
PROMPT_MARGIN_TOKENS = 16
#: `max_tokens` sent with a budgeted call that sets none, when the remaining budget allows that many.
DEFAULT_MAX_TOKENS = 4096
#: How long after a persona's deadline a reservation of a process that died stops counting.
LEASE_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class Prices:
    """USD per prompt token, per completion token, per request and per image (0 when not charged)."""

    prompt: float
    completion: float
    request: float = 0.0
    image: float = 0.0


@dataclass(frozen=True)
class WorstCase:
    """The bound of one call: `fixed` whatever the answer's length, plus `per_token` per answer token."""

    fixed: float
    per_token: float
    prices: Prices

    def cost(self, max_tokens: int) -> float:
        return self.fixed + self.per_token * max_tokens

    def tokens_within(self, amount: float, cap: int) -> int:
        """The most answer tokens (at most `cap`) whose worst case fits `amount` (0 if not even one)."""
        if self.per_token <= 0:
            return cap if amount >= self.fixed else 0
        return max(0, min(cap, math.floor((amount - self.fixed) / self.per_token + 1e-9)))


def padded_prompt_tokens(estimate: int) -> int:
    """The prompt tokens a budget assumes for an estimate of `estimate`."""
    return math.ceil(max(estimate, 0) * PROMPT_MARGIN_FACTOR) + PROMPT_MARGIN_TOKENS


def bounding_prices(prices: Iterable[Prices]) -> Prices:
    """The highest price of each kind among the candidates' prices.

    Raises:
        ValueError: no prices at all.
    """
    items = list(prices)
    if not items:
        raise ValueError("no candidate prices to bound the cost with")
    return Prices(
        prompt=max(p.prompt for p in items),
        completion=max(p.completion for p in items),
        request=max(p.request for p in items),
        image=max(p.image for p in items),
    )


def worst_case(prices: Prices, *, prompt_tokens: int, images: int = 0) -> WorstCase:
    """The worst case of a call with a prompt estimated at `prompt_tokens` and `images` images."""
    fixed = padded_prompt_tokens(prompt_tokens) * prices.prompt + prices.request + images * prices.image
    return WorstCase(fixed=fixed, per_token=prices.completion, prices=prices)


def lease_seconds(persona: Persona) -> float:
    """How long a reservation counts if its process never settles it: the persona's deadline plus a margin."""
    return persona.fallback.deadline_seconds + LEASE_MARGIN_SECONDS


def capped_provider(provider: Mapping[str, Any] | None, prices: Prices) -> dict[str, Any]:
    """`provider` with `max_price` no higher than `prices`, so OpenRouter holds the bound upstream.

    `max_price` is in USD per million tokens for prompt and completion, per unit for request and image;
    a lower ceiling already there is kept.
    """
    merged = dict(provider or {})
    ceiling = dict(merged.get("max_price") or {})
    bounds = {
        "prompt": prices.prompt * 1_000_000,
        "completion": prices.completion * 1_000_000,
        "request": prices.request,
        "image": prices.image,
    }
    for kind, bound in bounds.items():
        current = ceiling.get(kind)
        value = bound if current is None else min(float(current), bound)
        ceiling[kind] = f"{value:.12g}"
    merged["max_price"] = ceiling
    return merged


def per_token(price: str | None) -> float | None:
    """A catalog price (a decimal string, USD per unit) as a float; None when unknown or variable ("-1")."""
    if price is None:
        return 0.0
    try:
        value = float(price)
    except ValueError:
        return None
    return None if value < 0 or not math.isfinite(value) else value
