"""`openrouter-mcp audit tail|export|usage`: read the audit log from the command line.

```
openrouter-mcp audit tail   [-n N] [WHERE]                      the newest calls, one line each
openrouter-mcp audit export [--since ISO-DATE | --days N] [WHERE]   every row as JSON Lines
openrouter-mcp audit usage  [--days N] [--persona NAME] [WHERE]     totals and groupings as JSON
```
where WHERE is `--db PATH` (an SQLite log) or `--database-url URL` (a PostgreSQL ledger).

Reports go to stdout; problems go to stderr with exit status 1 (no log at that path) or 2 (the log
cannot be used). The log's location defaults to `default_audit_path()`; a PostgreSQL ledger
(`--database-url`, else `$OPENROUTER_MCP_DATABASE_URL`) is read instead when one is named, with the same output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from openrouter_mcp.audit import AuditError, AuditLog
from openrouter_mcp.audit.database import open_database, resolve_database_url
from openrouter_mcp.config import AUDIT_DB_ENV, DATABASE_URL_ENV, database_url, default_audit_path
from openrouter_mcp.errors import ConfigurationError

DAY = 86_400.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="openrouter-mcp audit", description="Read the audit log of tool calls.")
    db = argparse.ArgumentParser(add_help=False)
    where = db.add_mutually_exclusive_group()
    where.add_argument(
        "--db", type=Path, metavar="PATH", help=f"the audit log (default: ${AUDIT_DB_ENV}, else XDG data dir)"
    )
    where.add_argument(
        "--database-url",
        metavar="URL",
        help=f"a PostgreSQL ledger instead (default: ${DATABASE_URL_ENV}); no password here: the variable or ~/.pgpass",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{tail,export,usage}")

    tail = commands.add_parser("tail", parents=[db], help="the newest calls, one line each, oldest first")
    tail.add_argument("-n", type=int, default=20, metavar="N", help="how many calls (default 20)")

    export = commands.add_parser("export", parents=[db], help="rows as JSON Lines, oldest first")
    window = export.add_mutually_exclusive_group()
    window.add_argument("--since", type=_iso_date, metavar="ISO-DATE", help="from this date/time (UTC unless stated)")
    window.add_argument("--days", type=_days, metavar="N", help="the last N days")

    usage = commands.add_parser("usage", parents=[db], help="calls, tokens and cost as JSON")
    usage.add_argument("--days", type=_days, default=30.0, metavar="N", help="the last N days (default 30)")
    usage.add_argument("--persona", metavar="NAME", help="only this persona's calls")
    return parser.parse_args(argv)


def main(argv: list[str], *, clock: Callable[[], float] = time.time, environ: Mapping[str, str] | None = None) -> int:
    """Run one audit command; returns the exit status. `argv` is what follows `audit` (a leading "audit" is ignored)."""
    if argv[:1] == ["audit"]:
        argv = argv[1:]
    args = parse_args(argv)
    try:
        url = None if args.db is not None else resolve_database_url(args.database_url, database_url(environ))
    except ConfigurationError as exc:
        sys.stderr.write(f"openrouter-mcp audit: {exc.message}\n")
        return 2
    if url is not None:
        return anyio.run(_from_database, args, url, clock)
    path: Path = args.db if args.db is not None else default_audit_path(environ)
    if not path.exists():
        sys.stderr.write(f"openrouter-mcp audit: no audit log at {path} (nothing recorded yet, or wrong --db)\n")
        return 1
    try:
        with AuditLog(path, clock=clock) as log:
            if args.command == "tail":
                _write(_line(row) for row in log.tail(args.n))
            elif args.command == "export":
                since = args.since
                if args.days is not None:
                    since = clock() - args.days * DAY
                _write(json.dumps(row, ensure_ascii=False) for row in log.export(since=since))
            else:
                summary = log.usage(since=clock() - args.days * DAY, persona=args.persona)
                _write([json.dumps(summary.as_dict(), indent=2, ensure_ascii=False)])
    except AuditError as exc:
        sys.stderr.write(f"openrouter-mcp audit: {exc.message}\n")
        return 2
    except BrokenPipeError:
        # `... | head`: the reader has all it wanted. Point stdout at /dev/null so the flush at exit is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


async def _from_database(args: argparse.Namespace, url: str, clock: Callable[[], float]) -> int:
    """The command, read from the PostgreSQL ledger at `url`: the same output as from an SQLite log."""
    try:
        ledger = await open_database(url, spooled=False)
    except ConfigurationError as exc:
        sys.stderr.write(f"openrouter-mcp audit: {exc.message}\n")
        return 2
    try:
        if args.command == "tail":
            _write(_line(row) for row in await ledger.tail(args.n))
        elif args.command == "export":
            since = args.since
            if args.days is not None:
                since = clock() - args.days * DAY
            async for row in ledger.export(since=since):
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            now = clock()
            summary = await ledger.usage(since=now - args.days * DAY, until=now, persona=args.persona)
            _write([json.dumps(summary.as_dict(), indent=2, ensure_ascii=False)])
    except AuditError as exc:
        sys.stderr.write(f"openrouter-mcp audit: {exc.message}\n")
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        with anyio.CancelScope(shield=True):
            await ledger.aclose()
    return 0


def _write(lines: Any) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _line(row: Mapping[str, Any]) -> str:
    """`time user persona tool model outcome cost latency`, in columns, "-" for what is unknown."""
    when = datetime.fromtimestamp(row["ts"], UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    model = row["served_model"] or row["requested_model"] or "-"
    cost = "-" if row["cost"] is None else f"${row['cost']:.6f}"
    fields = (
        f"{when}",
        f"{row['user']:<12}",
        f"{row['persona'] or '-':<12}",
        f"{row['tool']:<24}",
        f"{model:<32}",
        f"{row['outcome']:<7}",
        f"{cost:>10}",
        f"{row['latency_ms']:>9.0f} ms",
    )
    return "  ".join(fields)


def _iso_date(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date (like 2025-01-31 or 2025-01-31T12:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if days < 0:
        raise argparse.ArgumentTypeError("the number of days cannot be negative")
    return days
