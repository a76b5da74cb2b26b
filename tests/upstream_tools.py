"""Every tool that calls OpenRouter, with arguments that make it call, and the upstream path it calls: for the
tests that walk all of them (deadlines, the fault matrix)."""

from __future__ import annotations

from typing import Any

HELLO = [{"role": "user", "content": "Say hello to the deadline tests."}]
CHAT_ARGS: dict[str, Any] = {"messages": HELLO, "model": "openai/gpt-4o"}

#: Every tool that calls OpenRouter: (tool, arguments, the upstream path it calls).
UPSTREAM_TOOLS: list[tuple[str, dict[str, Any], str]] = [
    ("get_credits", {}, "/credits"),
    ("get_current_key", {}, "/key"),
    ("get_generation", {"id": "gen-0000-missing"}, "/generation"),
    ("create_coinbase_charge", {"amount": 10, "sender": "0x" + "ab" * 20, "chain_id": 8453}, "/credits/coinbase"),
    ("list_available_models", {}, "/models"),
    ("list_available_models", {"sort": "pricing-low-to-high"}, "/models"),
    ("list_user_models", {}, "/models/user"),
    ("list_embedding_models", {}, "/embeddings/models"),
    ("list_model_endpoints", {"model": "openai/gpt-4o"}, "/models/openai/gpt-4o/endpoints"),
    ("list_zdr_endpoints", {}, "/endpoints/zdr"),
    ("list_providers", {}, "/providers"),
    ("get_models_count", {}, "/models/count"),
    ("route_request", {"model": "openai/gpt-4o"}, "/models"),
    ("create_chat_completion", CHAT_ARGS, "/chat/completions"),
    ("create_chat_completion", {**CHAT_ARGS, "stream": True}, "/chat/completions"),
    ("create_message", {"messages": HELLO, "model": "anthropic/claude-sonnet-4", "max_tokens": 50}, "/messages"),
]
