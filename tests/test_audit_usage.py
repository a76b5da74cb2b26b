"""What the audit log says about spend, scoped to the personas a caller may see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openrouter_mcp.audit import AuditLog, CallRecord
from openrouter_mcp.audit.sqlite_ledger import SqliteLedger
from openrouter_mcp.audit.usage import usage_summary
from openrouter_mcp.errors import ConfigurationError, NotAllowedError

NOW = 1_780_000_000.0
DAY = 86_400

pytestmark = pytest.mark.anyio


def call(persona: str, cost: float, *, ts: float = NOW - 60) -> CallRecord:
    return CallRecord(
        ts=ts, user="alice", tool="create_chat_completion", outcome="ok", latency_ms=10.0, persona=persona,
        served_model="openai/gpt-4o", cost=cost, prompt_tokens=10, completion_tokens=5,
    )  # fmt: skip


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit" / "audit.sqlite3", clock=lambda: NOW) as opened:
        opened.record(call("coder", 0.25))
        opened.record(call("writer", 0.5))
        opened.record(call("coder", 4.0, ts=NOW - 10 * DAY))
        yield opened


@pytest.fixture
def ledger(log: AuditLog) -> SqliteLedger:
    return SqliteLedger(log)


async def test_an_unscoped_caller_sees_every_persona_within_the_window(log: AuditLog, ledger: SqliteLedger) -> None:
    summary = await usage_summary(ledger, days=1, persona=None, allowed=None, now=NOW)
    assert summary["calls"] == 2 and summary["cost"] == pytest.approx(0.75)
    assert {row["persona"] for row in summary["by_persona"]} == {"coder", "writer"}
    assert (await usage_summary(ledger, days=30, persona=None, allowed=None, now=NOW))["cost"] == pytest.approx(4.75)


async def test_a_call_that_started_this_very_instant_is_counted(log: AuditLog, ledger: SqliteLedger) -> None:
    log.record(call("coder", 1.0, ts=NOW))
    assert (await usage_summary(ledger, days=1, persona="coder", allowed=None, now=NOW))["cost"] == pytest.approx(1.25)


async def test_a_caller_scoped_to_one_persona_sees_it_without_naming_it(log: AuditLog, ledger: SqliteLedger) -> None:
    summary = await usage_summary(ledger, days=1, persona=None, allowed=frozenset({"writer"}), now=NOW)
    assert summary["calls"] == 1 and summary["by_persona"] == [{"persona": "writer", "calls": 1, "cost": 0.5}]


async def test_a_caller_scoped_to_several_personas_must_name_one_of_them(log: AuditLog, ledger: SqliteLedger) -> None:
    allowed = frozenset({"coder", "writer"})
    with pytest.raises(NotAllowedError, match="name one of this client's personas to see its usage: coder, writer"):
        await usage_summary(ledger, days=1, persona=None, allowed=allowed, now=NOW)
    with pytest.raises(NotAllowedError):
        await usage_summary(ledger, days=1, persona="admin", allowed=allowed, now=NOW)
    assert (await usage_summary(ledger, days=1, persona="coder", allowed=allowed, now=NOW))["cost"] == pytest.approx(
        0.25
    )


async def test_without_an_audit_log_there_is_no_usage_to_report() -> None:
    with pytest.raises(ConfigurationError, match="the audit log is off"):
        await usage_summary(None, days=1, persona=None, allowed=None, now=NOW)
