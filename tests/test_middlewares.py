"""`serving/middleware.py`: our middlewares as one layer of the SDK's chain, each run for its own methods only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from openrouter_mcp.serving.middleware import Middlewares

pytestmark = pytest.mark.anyio


def layer(name: str, seen: list[str]) -> Any:
    async def middleware(ctx: Any, call_next: Any) -> Any:
        seen.append(f"{name} in")
        result = await call_next(SimpleNamespace(method=ctx.method, tag=[*ctx.tag, name]))
        seen.append(f"{name} out")
        return [*result, name]

    return middleware


async def test_each_middleware_runs_for_its_own_methods_in_the_order_added_and_sees_what_the_outer_ones_passed() -> (
    None
):
    seen: list[str] = []
    ours = Middlewares()
    ours.add(layer("scope", seen), methods=["tools/list", "prompts/get"])
    ours.add(layer("logs", seen))
    ours.add(layer("prompts", seen), methods=["prompts/get"])

    async def handler(ctx: Any) -> list[str]:
        seen.append(f"handler {ctx.method} {ctx.tag}")
        return []

    called: Any = await ours(SimpleNamespace(method="tools/call", tag=[]), handler)  # type: ignore[arg-type]
    assert called == ["logs"]
    assert seen == ["logs in", "handler tools/call ['logs']", "logs out"]
    seen.clear()
    got: Any = await ours(SimpleNamespace(method="prompts/get", tag=[]), handler)  # type: ignore[arg-type]
    assert got == ["prompts", "logs", "scope"]
    assert seen == [
        "scope in", "logs in", "prompts in", "handler prompts/get ['scope', 'logs', 'prompts']",
        "prompts out", "logs out", "scope out",
    ]  # fmt: skip


async def test_a_method_nobody_asked_for_goes_straight_to_the_handler() -> None:
    ours = Middlewares()
    ours.add(layer("scope", []), methods=["tools/list"])

    async def handler(ctx: Any) -> str:
        return f"handled {ctx.method}"

    answer: Any = await ours(SimpleNamespace(method="no/such/method"), handler)  # type: ignore[arg-type]
    assert answer == "handled no/such/method"
