"""Account tools: credits, the current key, one generation's stats, and the retired Coinbase charge."""

from __future__ import annotations

import logging
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from openrouter_mcp.errors import GoneError
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.registry import READ_ONLY, ToolInput, ToolOutput, ToolSpec

logger = logging.getLogger(__name__)

#: Creating a charge commits the account to a payment intent: destructive, and never safe to repeat.
MAKES_A_CHARGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)

BUY_CREDITS_HINT = (
    "OpenRouter retired the Coinbase Commerce credits API (it answers 410 Gone). Buy credits, including "
    "with crypto, in the web flow at https://openrouter.ai/settings/credits; check the balance with get_credits."
)


class NoInput(ToolInput):
    pass


class CreditsOutput(ToolOutput):
    total_credits: float = Field(description="USD ever purchased")
    total_usage: float = Field(description="USD ever spent")
    remaining: float
    warning: str | None = None


async def get_credits(args: NoInput, state: AppState, ctx: Context) -> CreditsOutput:
    credits = await state.client.get_credits()
    remaining = round(credits.total_credits - credits.total_usage, 10)
    return CreditsOutput(
        total_credits=credits.total_credits,
        total_usage=credits.total_usage,
        remaining=remaining,
        warning=low_balance_warning(state, "the account's remaining credit", remaining),
    )


def low_balance_warning(state: AppState, what: str, remaining: float | None) -> str | None:
    """A warning when OpenRouter reports less than the configured threshold left (None when unlimited)."""
    threshold = state.settings.low_balance_usd
    if remaining is None or remaining >= threshold:
        return None
    message = f"{what} is ${remaining:.2f}, below ${threshold:g}: paid calls will soon fail with 402"
    logger.warning("%s", message)
    return message


class KeyOutput(ToolOutput):
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
    warning: str | None = None


async def get_current_key(args: NoInput, state: AppState, ctx: Context) -> KeyOutput:
    key = await state.client.get_current_key()
    warning = low_balance_warning(state, "the key's remaining limit", key.limit_remaining)
    return KeyOutput.model_validate({**key.model_dump(exclude={"rate_limit"}), "warning": warning})


class GenerationInput(ToolInput):
    id: str = Field(min_length=1, description="Generation id ('gen-...') from a chat result's generation_id.")


class GenerationOutput(ToolOutput):
    id: str
    model: str | None = None
    provider_name: str | None = None
    total_cost: float | None = Field(None, description="USD")
    tokens_prompt: int | None = None
    tokens_completion: int | None = None
    finish_reason: str | None = None
    latency: float | None = Field(None, description="ms")


async def get_generation(args: GenerationInput, state: AppState, ctx: Context) -> GenerationOutput:
    generation = await state.client.get_generation(args.id)
    return GenerationOutput.model_validate(generation.model_dump())


class CoinbaseChargeInput(ToolInput):
    amount: float = Field(gt=0, le=2000, description="USD of credits to buy (up to 2000).")
    sender: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="The paying EVM wallet address (0x...).")
    chain_id: Literal[1, 137, 8453] = Field(description="1 Ethereum, 137 Polygon, 8453 Base.")


class CoinbaseChargeOutput(ToolOutput):
    id: str
    created_at: str | None = None
    expires_at: str | None = None
    web3_data: dict[str, Any] | None = Field(None, description="Calldata to sign and send.")


async def create_coinbase_charge(args: CoinbaseChargeInput, state: AppState, ctx: Context) -> CoinbaseChargeOutput:
    try:
        charge = await state.client.create_coinbase_charge(args.model_dump())
    except GoneError as exc:
        exc.hint = BUY_CREDITS_HINT
        raise
    return CoinbaseChargeOutput.model_validate(charge.model_dump())


ACCOUNT_TOOLS: list[ToolSpec[Any, Any]] = [
    ToolSpec(
        name="get_credits",
        title="Credits",
        description="The account's purchased credits, total usage and remaining balance in USD.",
        input_model=NoInput,
        output_model=CreditsOutput,
        annotations=READ_ONLY,
        handler=get_credits,
    ),
    ToolSpec(
        name="get_current_key",
        title="Current API key",
        description="The key's label, spending limit (none = unlimited), remaining limit and USD usage by period.",
        input_model=NoInput,
        output_model=KeyOutput,
        annotations=READ_ONLY,
        handler=get_current_key,
    ),
    ToolSpec(
        name="get_generation",
        title="Generation stats",
        description="Cost, tokens, latency, model and provider of one past generation, by its id.",
        input_model=GenerationInput,
        output_model=GenerationOutput,
        annotations=READ_ONLY,
        handler=get_generation,
    ),
    ToolSpec(
        name="create_coinbase_charge",
        title="Coinbase charge (retired)",
        description="Buy credits with crypto via Coinbase Commerce. Retired by OpenRouter: answers how to buy instead.",
        input_model=CoinbaseChargeInput,
        output_model=CoinbaseChargeOutput,
        annotations=MAKES_A_CHARGE,
        handler=create_coinbase_charge,
    ),
]
