"""Cooldowns shared through the ledger: a model rate-limited for one server is skipped by another on the same file."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import anyio
import pytest
from mcp import Client

from openrouter_mcp.audit.ledger import Cooldown, Ledger
from openrouter_mcp.audit.log import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.routing import personas
from openrouter_mcp.routing.cooldowns import Cooldowns
from openrouter_mcp.routing.personas import FallbackPolicy
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.routed_call import COOLDOWN_PULL_SECONDS, pull_cooldowns

pytestmark = pytest.mark.anyio

CONFIG = personas.parse(
    {"personas": {"team": {"models": ["openai/gpt-4o", "anthropic/claude-sonnet-4"], "rank_by": []}}}
)
HELLO = [{"role": "user", "content": "Who answers?"}]


def models_named(sim: Simulator) -> list[str]:
    return [
        m for r in sim.requests if r.path == "/chat/completions" for m in [r.body["model"], *r.body.get("models", [])]
    ]


async def test_a_429_served_to_one_server_makes_another_on_the_same_ledger_skip_that_model(
    settings: Settings, sim: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "audit" / "audit.sqlite3"
    first = build_server(settings, personas=CONFIG, audit=lambda: AuditLog(db))
    second = build_server(settings, personas=CONFIG, audit=lambda: AuditLog(db))  # its own state and connection
    sim.model_faults["openai/gpt-4o"] = Fault(status=429, retry_after=30, provider_code=429)
    async with Client(first) as a:
        answered = await a.call_tool("create_chat_completion", {"messages": HELLO})
        assert not answered.is_error
    assert models_named(sim).count("openai/gpt-4o") == 1
    sim.requests.clear()
    async with Client(second) as b:
        result = await b.call_tool("create_chat_completion", {"messages": HELLO})
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["model"] == "anthropic/claude-sonnet-4"
    assert "openai/gpt-4o" not in models_named(sim)  # zero upstream requests named the cooled model


def test_an_adopted_cooldown_never_shortens_a_longer_local_one_and_failures_are_taken_once() -> None:
    now = [100.0]
    cooldowns = Cooldowns(clock=lambda: now[0])
    cooldowns.fail("m/x", FallbackPolicy(cooldown_seconds=60))
    assert cooldowns.take_failures() == [("m/x", 60.0, 1)] and cooldowns.take_failures() == []
    cooldowns.adopt("m/x", 10.0, 1)
    assert cooldowns.remaining("m/x") == 60.0
    cooldowns.adopt("m/y", 5.0, 3)
    cooldowns.adopt("m/z", -1.0, 1)  # expired elsewhere already
    assert cooldowns.blocking("m/y") == ("m/y", 5.0) and cooldowns.blocking("m/z") is None
    assert cooldowns.take_failures() == []  # adopted cooldowns are not shared back


class HeldLedger:
    """A ledger sharing one cooldown, whose reads of them wait until `release` is set; counts the reads."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.reads = 0

    async def cooldowns(self, *, now: float) -> list[Cooldown]:
        self.reads += 1
        await self.release.wait()
        return [Cooldown("m/x", now + 30, 1)]

    async def aclose(self) -> None:
        return None


def remaining(state: AppState) -> float | None:
    blocking = state.cooldowns.blocking("m/x")
    return None if blocking is None else blocking[1]


def state_pulled_ago(settings: Settings, ledger: HeldLedger, seconds: float) -> AppState:
    state = AppState(settings, audit=cast(Ledger, ledger))
    state.cooldowns = Cooldowns(clock=lambda: 1000.0)
    state.cooldowns_pulled = 1000.0 - seconds
    return state


async def test_a_call_plans_with_a_copy_past_half_its_age_and_has_it_read_again_in_the_background(
    settings: Settings,
) -> None:
    ledger = HeldLedger()
    state = state_pulled_ago(settings, ledger, 0.7)
    with anyio.fail_after(5):
        await pull_cooldowns(state)  # returns while the read waits: this call does not wait on the ledger
        await pull_cooldowns(state)  # nor does the next, which starts no second read
        await anyio.wait_all_tasks_blocked()  # the read has started, and waits
        assert ledger.reads == 1 and state.cooldowns.blocking("m/x") is None
        ledger.release.set()
        while state.background:
            await anyio.sleep(0.001)
    assert remaining(state) == pytest.approx(30, abs=1)


async def test_a_call_whose_copy_is_a_whole_window_old_reads_the_shared_cooldowns_before_it_plans(
    settings: Settings,
) -> None:
    ledger = HeldLedger()
    ledger.release.set()
    state = state_pulled_ago(settings, ledger, COOLDOWN_PULL_SECONDS)
    with anyio.fail_after(5):
        await pull_cooldowns(state)
    assert ledger.reads == 1 and remaining(state) == pytest.approx(30, abs=1)
    assert not state.background
