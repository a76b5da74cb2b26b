"""Budgets that hold under concurrency, end to end: the real MCP client in memory, the simulator on loopback,
real SQLite files; and what a broken ledger does to paid calls (fail closed) and answers (spooled, replayed).
"""

from __future__ import annotations

import getpass
import math
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest
from mcp import Client
from mcp.types import CallToolResult

from openrouter_mcp.audit.log import AuditLog
from openrouter_mcp.config import Settings
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.routing import personas
from openrouter_mcp.routing.personas import Budget
from openrouter_mcp.routing.reservations import Prices, worst_case
from openrouter_mcp.server import build_server
from openrouter_mcp.serving.auth import HashedTokenVerifier, parse_tokens
from openrouter_mcp.simulator import Fault, Simulator
from openrouter_mcp.state import AppState
from openrouter_mcp.tools.chat import ChatCompletionInput, _estimate_tokens

# slow: bursts of concurrent paid calls and deliberate lock waits.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MINI = "openai/gpt-4o-mini"  # 0.15 / 0.6 USD per million tokens in the simulator's catalog
TEXT = "Say something short about budgets."
HELLO = [{"role": "user", "content": TEXT}]
MAX_TOKENS = 40
#: The reservation of one call of HELLO with MAX_TOKENS on MINI, computed as the server computes it.
WORST = worst_case(Prices(0.15e-6, 0.6e-6), prompt_tokens=_estimate_tokens(HELLO, None)).cost(MAX_TOKENS)
ADMITS = 10
BUDGET = WORST * (ADMITS + 0.5)


def config(**extra: Any) -> personas.PersonasConfig:
    return personas.parse(
        {
            "default": "free",
            "personas": {
                "free": {"models": [MINI], "rank_by": []},
                "capped": {"models": [MINI], "rank_by": [], "budget": {"daily": BUDGET}},
            },
            **extra,
        }
    )


class Opener:
    """Opens the ledger's file on first use, as `LazyAudit` does (its `path` places the spool beside it)."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0, on_open: Callable[[], None] | None = None) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.on_open = on_open

    def __call__(self) -> AuditLog:
        log = AuditLog(self.path, busy_timeout=self.busy_timeout)
        if self.on_open is not None:
            self.on_open()
        return log


def text_of(result: CallToolResult) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT outcome, cost, charged, record_id, error FROM calls ORDER BY id").fetchall()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.sqlite3"


@pytest.fixture
def slow_sim(sim: Simulator) -> Iterator[Simulator]:
    """Upstream answers after 0.2 s, so concurrent calls are really in flight together."""
    sim.latency = 0.2
    yield sim
    sim.latency = 0.0


async def test_fifty_concurrent_paid_calls_never_settle_more_than_the_budget(
    settings: Settings, slow_sim: Simulator, db: Path
) -> None:
    server = build_server(settings, personas=config(), audit=Opener(db))
    results: list[CallToolResult] = []
    async with Client(server) as client:

        async def one() -> None:
            arguments = {"messages": HELLO, "persona": "capped", "max_tokens": MAX_TOKENS}
            results.append(await client.call_tool("create_chat_completion", arguments))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for _ in range(50):
                    group.start_soon(one)
    answered = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert all("budget_exceeded" in text_of(r) and "daily budget" in text_of(r) for r in refused)
    # Every reservation holds WORST and the calls settle below it, so at least ADMITS fit; never more spend.
    assert len(answered) >= ADMITS and len(answered) + len(refused) == 50
    assert slow_sim.count("/chat/completions") == len(answered)
    recorded = rows(db)
    assert len(recorded) == 50
    assert sum(cost for outcome, cost, *_ in recorded if outcome == "ok") <= BUDGET
    assert [outcome for outcome, *_ in recorded].count("refused") == len(refused)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM reservations").fetchone()[0] == 0  # every one settled


async def test_a_budgeted_call_without_max_tokens_gets_one_that_fits_and_a_price_cap(
    settings: Settings, sim: Simulator, db: Path
) -> None:
    server = build_server(settings, personas=config(), audit=Opener(db))
    async with Client(server) as client:
        result = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"})
        assert not result.is_error, text_of(result)
        unbudgeted = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "free"})
        assert not unbudgeted.is_error
    capped, free = [r.body for r in sim.requests if r.path == "/chat/completions"]
    assert isinstance(capped, dict) and isinstance(free, dict)
    fixed = worst_case(Prices(0.15e-6, 0.6e-6), prompt_tokens=_estimate_tokens(HELLO, None)).fixed
    assert capped["max_tokens"] == min(4096, math.floor((BUDGET - fixed) / 0.6e-6 + 1e-9))
    assert capped["provider"]["max_price"] == {"prompt": "0.15", "completion": "0.6", "request": "0", "image": "0"}
    assert "max_tokens" not in free and "provider" not in free  # no budget: sent as the caller asked


async def test_the_audit_row_keeps_the_callers_arguments_not_what_the_server_added_to_the_request(
    settings: Settings, sim: Simulator, db: Path
) -> None:
    # The request body and the audit row start from one dump of the arguments (`ToolInput.as_json`): what routing
    # adds to the body (the persona's system prompt, a token cap and price ceiling for its budget) stays out of it.
    persona = {"models": [MINI], "rank_by": [], "budget": {"daily": BUDGET}, "system_prompt": "Be brief."}
    prompted = personas.parse({"default": "capped", "personas": {"capped": persona}})
    arguments = {"messages": HELLO, "persona": "capped", "temperature": 0.5}
    server = build_server(settings, personas=prompted, audit=Opener(db))
    async with Client(server) as client:
        result = await client.call_tool("create_chat_completion", arguments)
        assert not result.is_error, text_of(result)
    [sent] = [r.body for r in sim.requests if r.path == "/chat/completions"]
    assert isinstance(sent, dict) and sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "max_tokens" in sent and "max_price" in sent["provider"]
    with AuditLog(db) as log:
        [row] = log.tail(1)
    assert row["arguments"] == ChatCompletionInput.model_validate(arguments).model_dump(mode="json", exclude_none=True)
    assert row["arguments"]["messages"] == HELLO and "max_tokens" not in row["arguments"]


async def test_the_server_and_user_budgets_apply_to_every_persona(settings: Settings, sim: Simulator, db: Path) -> None:
    for extra, who in (
        ({"budget": {"daily": 1e-9}}, "the server has spent"),
        ({"users": {getpass.getuser(): {"budget": {"monthly": 1e-9}}}}, f"user {getpass.getuser()!r} has spent"),
    ):
        server = build_server(settings, personas=config(**extra), audit=Opener(db))
        async with Client(server) as client:
            result = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "free"})
        assert result.is_error and who in text_of(result) and "budget_exceeded" in text_of(result)
    assert sim.count("/chat/completions") == 0


async def test_a_budgeted_call_to_an_unbounded_model_choice_is_refused_before_sending(
    settings: Settings, sim: Simulator, db: Path
) -> None:
    server = build_server(
        settings,
        personas=personas.parse({"budget": {"daily": 5.0}, "personas": {"open": {"rank_by": []}}}),
        audit=Opener(db),
    )  # no models, no ranking, no max_price: OpenRouter's default model would answer, at any price
    async with Client(server) as client:
        result = await client.call_tool("create_chat_completion", {"messages": HELLO})
    assert result.is_error and "cannot be bounded" in text_of(result)
    assert sim.count("/chat/completions") == 0


async def test_a_stream_cut_before_its_usage_keeps_the_reservation_as_spent_and_a_refused_request_charges_nothing(
    settings: Settings, sim: Simulator, db: Path
) -> None:
    server = build_server(settings, personas=config(), audit=Opener(db))
    arguments = {"messages": HELLO, "persona": "capped", "max_tokens": MAX_TOKENS}
    async with Client(server) as client:
        sim.model_faults[MINI] = Fault(status=402)
        unpaid = await client.call_tool("create_chat_completion", arguments)
        sim.model_faults[MINI] = Fault(mid_stream_error=True)
        cut = await client.call_tool("create_chat_completion", {**arguments, "stream": True})
        cooling = await client.call_tool("create_chat_completion", arguments)  # the cut model now cools down
    assert cut.is_error and unpaid.is_error, text_of(cut)
    assert cooling.is_error and "no_model_fits" in text_of(cooling)  # routing's answer, not a budget refusal
    (unpaid_outcome, _, unpaid_charged, *_), (cut_outcome, cut_cost, cut_charged, *_), _ = rows(db)
    assert (cut_outcome, cut_cost) == ("error", None) and cut_charged == pytest.approx(WORST)
    assert (unpaid_outcome, unpaid_charged) == ("error", 0.0)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM reservations").fetchone()[0] == 0
        [[spent]] = conn.execute("SELECT amount FROM spend_days WHERE scope = 'persona' AND name = 'capped'")
    assert spent == pytest.approx(WORST)


# --- a ledger that cannot be used ------------------------------------------------------------------


async def test_a_ledger_path_that_is_a_directory_refuses_budgeted_calls_and_spools_answers(
    settings: Settings, sim: Simulator, db: Path
) -> None:
    db.mkdir(parents=True)
    server = build_server(settings, personas=config(), audit=Opener(db))
    async with Client(server) as client:
        refused = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"})
        assert refused.is_error and "ledger_unavailable" in text_of(refused) and '"retryable":true' in text_of(refused)
        assert sim.count("/chat/completions") == 0  # fail closed: nothing was sent
        answered = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "free"})
        assert not answered.is_error and answered.structured_content is not None
        assert "kept for a retried write" in answered.structured_content["warning"]
        assert "warning" in text_of(answered)
        spool = db.with_name("audit.sqlite3.spool.jsonl")
        assert len(spool.read_text().splitlines()) == 2  # the refusal's record and the answer's
        db.rmdir()  # the fault is fixed: the next write replays the spool
        again = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "free"})
        assert not again.is_error and again.structured_content is not None
        assert "warning" not in again.structured_content
    recorded = rows(db)
    assert sorted(r[0] for r in recorded) == ["error", "ok", "ok"]
    assert len({r[3] for r in recorded}) == 3 and spool.read_text() == ""
    assert "ledger_unavailable" in next(r[4] for r in recorded if r[0] == "error")


@pytest.fixture
def locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection holding the write lock of the ledger's file until the test commits."""
    AuditLog(db).close()
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    if holder.in_transaction:
        holder.execute("COMMIT")
    holder.close()


async def test_a_locked_ledger_refuses_budgeted_calls_and_replays_spooled_answers_once_free(
    settings: Settings, sim: Simulator, db: Path, locked: sqlite3.Connection
) -> None:
    server = build_server(settings, personas=config(), audit=Opener(db, busy_timeout=0.2))
    async with Client(server) as client:
        refused = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"})
        assert refused.is_error and "ledger_unavailable" in text_of(refused) and "locked" in text_of(refused)
        answered = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "free"})
        assert not answered.is_error and answered.structured_content is not None
        assert "warning" in answered.structured_content
        assert sim.count("/chat/completions") == 1
        locked.execute("COMMIT")
        after = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"})
        assert not after.is_error, text_of(after)
    recorded = rows(db)
    assert len(recorded) == 3 and len({r[3] for r in recorded}) == 3
    assert sorted(r[0] for r in recorded) == ["error", "ok", "ok"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_write_waiting_on_a_lock_never_blocks_the_event_loop(
    settings: Settings, sim: Simulator, db: Path, locked: sqlite3.Connection
) -> None:
    opened = anyio.Event()
    loop = anyio.lowlevel.current_token()

    # Runs in the ledger's thread: the ledger's first write comes next, and waits on the lock.
    opener = Opener(db, busy_timeout=60.0, on_open=lambda: anyio.from_thread.run_sync(opened.set, token=loop))
    server = build_server(settings, personas=config(), audit=opener)
    done: list[CallToolResult] = []
    async with Client(server) as client:

        async def paid() -> None:
            done.append(await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "capped"}))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(paid)
                await opened.wait()
                # The loop still serves other requests while the reservation waits on the other process's lock.
                tools = await client.list_tools()
                prompts = await client.list_prompts()
                assert tools.tools and prompts is not None and not done  # answered while the write still waits
                locked.execute("COMMIT")
        [result] = done
        assert not result.is_error, text_of(result)
    assert [r[0] for r in rows(db)] == ["ok"]


def test_every_budget_field_of_the_personas_file_is_validated() -> None:
    with pytest.raises(personas.PersonaError, match="budget"):
        personas.parse({"budget": {"daily": -1}})
    with pytest.raises(personas.PersonaError, match="users"):
        personas.parse({"users": {"ann": {"budget": {"weekly": 1}}}})


def test_a_token_entry_can_carry_a_user_budget_that_wins_over_the_personas_files() -> None:
    tokens = {
        "tokens": [{"user": "ann", "sha256": "a" * 64, "budget": {"daily": 1.5}}, {"user": "bo", "sha256": "b" * 64}]
    }
    entries = parse_tokens(tokens)
    assert entries[0].budget == Budget(daily=1.5) and entries[1].budget is None
    verifier = HashedTokenVerifier(entries)
    assert verifier.budgets() == {"ann": Budget(daily=1.5)}
    state = AppState(
        Settings(),
        personas=config(users={"ann": {"budget": {"daily": 9.0}}, "bo": {"budget": {"monthly": 3.0}}}),
        audit=lambda: AuditLog(Path("/nonexistent/never-opened.sqlite3")),
        user_budgets=verifier.budgets(),
    )
    assert state.user_budgets == {"ann": Budget(daily=1.5), "bo": Budget(monthly=3.0)}
    with pytest.raises(ConfigurationError, match="field 'budget'"):
        parse_tokens({"tokens": [{"user": "ann", "sha256": "a" * 64, "budget": {"daily": -1}}]})


def test_a_budget_without_an_audit_log_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="user ann, the server \\(\\[budget\\]\\) have budgets"):
        AppState(Settings(), personas=config(budget={"daily": 1.0}), user_budgets={"ann": Budget(daily=1.0)})
