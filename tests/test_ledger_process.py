"""The SQLite ledger's writer process: what it inherits, how it dies and comes back, how it stops.

Every `Ledger` behaviour is also run against it in `test_ledger_sqlite.py` (its `ledger` fixture takes both
writers); these are the parts only a process has. Real processes, real files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from openrouter_mcp.audit.lazy import LazyAudit
from openrouter_mcp.audit.ledger_file import MAX_BATCH
from openrouter_mcp.audit.log import AuditLog, CallRecord
from openrouter_mcp.audit.process_writer import _groups
from openrouter_mcp.audit.spool import Spool
from openrouter_mcp.audit.sqlite_ledger import SqliteLedger
from openrouter_mcp.config import Settings
from openrouter_mcp.errors import AuditError
from openrouter_mcp.state import AppState

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-or-v1-" + "5" * 64


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.sqlite3"


@pytest.fixture
async def ledger(db: Path) -> AsyncIterator[SqliteLedger]:
    opened = SqliteLedger.in_child_process(db, privacy="full", spool=Spool.beside(db))
    yield opened
    await opened.aclose()


def row(tool: str = "create_chat_completion") -> CallRecord:
    return CallRecord(ts=time.time(), user="ann", tool=tool, outcome="ok", latency_ms=5.0, arguments={"n": 1})


async def running_pid(ledger: SqliteLedger) -> int:
    await ledger.start()
    pid = ledger.writer_pid
    assert pid is not None
    return pid


async def until_gone(pid: int) -> None:
    """Until process `pid` is gone (reaped by its parent); bounded."""
    with anyio.fail_after(10):
        while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
            await anyio.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


async def test_the_writer_process_inherits_no_secret_and_names_nothing_in_its_arguments(
    ledger: SqliteLedger, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_MCP_DATABASE_URL", "postgresql://u:hunter2@localhost/db")
    pid = await running_pid(ledger)
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert KEY.encode() not in environ and b"hunter2" not in environ and b"OPENROUTER" not in environ
    assert str(db).encode() not in argv and KEY.encode() not in argv
    await ledger.record(row())
    assert [r["tool"] for r in AuditLog(db).tail(5)] == ["create_chat_completion"]


async def test_operations_a_killed_writer_had_not_answered_fail_and_the_next_one_starts_another(
    ledger: SqliteLedger, db: Path
) -> None:
    await ledger.record(row("before"))
    pid = await running_pid(ledger)
    os.kill(pid, signal.SIGSTOP)  # it cannot answer what comes next
    waiting = ledger.record(row("lost"))
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(AuditError, match="writer process ended"):
        await waiting
    await ledger.record(row("after"))
    assert ledger.writer_pid not in (None, pid)
    assert [r["tool"] for r in AuditLog(db).tail(5)] == ["before", "after"]


async def test_a_full_queue_fails_at_once_while_the_writer_is_stuck(db: Path) -> None:
    ledger = SqliteLedger.in_child_process(db, privacy="full", max_queue=2)
    pid = await running_pid(ledger)
    os.kill(pid, signal.SIGSTOP)  # a disk that does not answer
    try:
        first, second = ledger.record(row()), ledger.record(row())
        with pytest.raises(AuditError, match="backed up"):
            ledger.record(row())
    finally:
        os.kill(pid, signal.SIGCONT)
    await first
    await second
    await ledger.aclose()
    assert len(AuditLog(db).tail(10)) == 2


async def test_closing_answers_everything_already_sent_before_the_writer_exits(ledger: SqliteLedger, db: Path) -> None:
    pid = await running_pid(ledger)
    sent = [ledger.record(row(f"t{i}")) for i in range(300)]
    await ledger.aclose()
    assert all(done.done() and done.exception() is None for done in sent)
    await until_gone(pid)
    assert len(AuditLog(db).tail(1000)) == 300


async def test_a_writer_that_cannot_be_started_fails_the_operation_with_a_clear_error(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(db.parent / "no-such-python"))
    ledger = SqliteLedger.in_child_process(db, privacy="full")
    with pytest.raises(AuditError, match="could not be started"):
        await ledger.record(row())
    monkeypatch.undo()
    await ledger.record(row())  # the next operation tries again
    await ledger.aclose()


def test_the_writer_ends_by_itself_when_the_server_is_killed(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys, time\n"
        "from pathlib import Path\n"
        "from openrouter_mcp.audit.log import CallRecord\n"
        "from openrouter_mcp.audit.sqlite_ledger import SqliteLedger\n"
        "async def main():\n"
        "    ledger = SqliteLedger.in_child_process(Path(sys.argv[1]), privacy='full')\n"
        "    await ledger.record(CallRecord(ts=time.time(), user='u', tool='t', outcome='ok', latency_ms=1.0))\n"
        "    print(ledger.writer_pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "audit.sqlite3")], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        writer = int(server.stdout.readline())
    finally:
        server.kill()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{writer}").exists() and _state(writer) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not Path(f"/proc/{writer}").exists() or _state(writer) == "Z"  # ended (a zombie until init reaps it)


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_a_server_over_http_starts_its_writer_with_it_and_stops_it_when_it_stops(
    tmp_path: Path, transport: str
) -> None:
    state = AppState(Settings(), audit=LazyAudit(tmp_path / "audit.sqlite3", "full"), transport=transport)
    async with state.running():
        ledger = state.ledger
        assert isinstance(ledger, SqliteLedger)
        with anyio.fail_after(10):
            while (pid := ledger.writer_pid) is None:  # started without any call asking for it
                await anyio.sleep(0.01)
    await until_gone(pid)


def test_records_are_grouped_in_order_and_every_other_request_goes_alone() -> None:
    def request(i: int, name: str) -> tuple[int, str, tuple[object, ...], dict[str, object]]:
        return (i, name, (), {})

    requests = [request(0, "record"), request(1, "record"), request(2, "tail")]
    requests += [request(3 + i, "record") for i in range(MAX_BATCH + 1)]
    groups = [[r[0] for r in group] for group in _groups(requests)]
    assert groups == [[0, 1], [2], list(range(3, 3 + MAX_BATCH)), [3 + MAX_BATCH]]


async def test_a_server_over_stdio_writes_from_a_thread_and_closes_the_log_when_it_stops(tmp_path: Path) -> None:
    audit = LazyAudit(tmp_path / "audit.sqlite3", "full")
    state = AppState(Settings(), audit=audit, transport="stdio")
    async with state.running():
        ledger = state.ledger
        assert isinstance(ledger, SqliteLedger)
        await ledger.record(row())
        assert ledger.writer_pid is None and ledger.log is not None
        log = ledger.log
    assert ledger.log is None  # closed with the server
    with pytest.raises(AuditError, match="closed"):
        log.tail(1)
    assert len(AuditLog(tmp_path / "audit.sqlite3").tail(5)) == 1
