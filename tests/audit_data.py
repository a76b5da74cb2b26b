"""Audit-log test data shared by test modules: the v1 schema as it shipped, a raw SQLite connection, and the calls
both ledger engines must report alike."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from openrouter_mcp.audit import CallRecord

MAR_1 = datetime(2025, 3, 1, tzinfo=UTC).timestamp()

# The v1 schema exactly as it shipped: a frozen copy, so that editing MIGRATIONS[0] (history) shows up.
V1_DDL = [
    """CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        user TEXT NOT NULL,
        persona TEXT,
        tool TEXT NOT NULL,
        outcome TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        requested_model TEXT,
        served_model TEXT,
        provider TEXT,
        generation_id TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost REAL,
        attempts TEXT,
        error TEXT,
        privacy TEXT NOT NULL,
        arguments_json TEXT,
        arguments_sha256 TEXT,
        response_json TEXT,
        response_sha256 TEXT
    )""",
    "CREATE INDEX calls_ts ON calls (ts)",
    f"PRAGMA application_id = {0x4F524D43}",
    "PRAGMA user_version = 1",
]


def raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(path))


PARITY_RECORDS = [
    CallRecord(ts=MAR_1 - 60, user="alice", tool="list_available_models", outcome="ok", latency_ms=3.0),
    CallRecord(
        ts=MAR_1 + 10,
        user="alice",
        tool="create_chat_completion",
        outcome="ok",
        latency_ms=812.25,
        persona="frugal",
        transport="streamable-http",
        arguments={"messages": [{"role": "user", "content": "Résumé Hamlet"}], "max_tokens": 50},
        response={"content": "Everyone dies.", "usage": {"cost": 0.00042}},
        requested_model="openai/gpt-4o",
        served_model="openai/gpt-4o-mini",
        provider="OpenAI",
        generation_id="gen-1",
        prompt_tokens=21,
        completion_tokens=11,
        cost=0.00042,
        attempts=[{"model": "openai/gpt-4o", "outcome": "rate_limited"}, {"model": "openai/gpt-4o-mini"}],
    ),
    CallRecord(
        ts=MAR_1 + 20,
        user="bob",
        tool="create_message",
        outcome="error",
        latency_ms=40.0,
        persona="coder",
        requested_model="anthropic/claude-sonnet-4",
        cost=0.0125,
        prompt_tokens=400,
        completion_tokens=0,
        error="mid_stream: the stream was cut",
    ),
    CallRecord(
        ts=MAR_1 + 30,
        user="bob",
        tool="create_chat_completion",
        outcome="refused",
        latency_ms=0.5,
        persona="frugal",
        error="budget_exceeded: spent",
    ),
    CallRecord(
        ts=MAR_1 + 86_400 + 5,
        user="carol",
        tool="create_chat_completion",
        outcome="ok",
        latency_ms=99.0,
        persona=None,
        served_model="openai/gpt-4o-mini",
        prompt_tokens=5,
        completion_tokens=7,
        cost=0.0001,
    ),
]
PRIVACY = ["full", "full", "hashes", "metadata", "full"]
