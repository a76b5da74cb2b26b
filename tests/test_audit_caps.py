"""One audit row holds at most a capped amount of arguments and response; what was cut keeps its size and hash."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from openrouter_mcp.audit import AuditLog, CallRecord, canonical_json
from openrouter_mcp.audit.log import MAX_STORED_JSON_BYTES
from openrouter_mcp.config import Settings
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Simulator


def call(**fields: Any) -> CallRecord:
    return CallRecord(ts=1.0, user="u", tool="create_chat_completion", outcome="ok", latency_ms=1.0, **fields)


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


HUGE_ANSWER = {"text": "ha" * (MAX_STORED_JSON_BYTES // 2 + 1000), "model": "m/x"}
HUGE_PROMPT = {"messages": [{"role": "user", "content": "é" * MAX_STORED_JSON_BYTES}]}


def test_a_response_over_the_cap_is_stored_as_its_size_and_hash(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.sqlite3") as log:
        log.record(call(arguments={"model": "m/x"}, response=HUGE_ANSWER))
        [row] = log.tail(1)
    assert row["response"] == {
        "truncated": {
            "size_bytes": len(canonical_json(HUGE_ANSWER).encode()),
            "sha256": sha256_of(HUGE_ANSWER),
            "cap_bytes": MAX_STORED_JSON_BYTES,
        }
    }
    assert row["response_sha256"] == sha256_of(HUGE_ANSWER)
    # The small field beside it is untouched.
    assert row["arguments"] == {"model": "m/x"} and row["arguments_sha256"] is None


def test_arguments_over_the_cap_are_cut_the_same_way_counting_bytes_not_characters(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.sqlite3") as log:
        log.record(call(arguments=HUGE_PROMPT, response={"text": "ok"}))
        [row] = log.tail(1)
    # Half the cap in characters, but "é" is two bytes in UTF-8: over the cap.
    assert row["arguments"]["truncated"]["sha256"] == sha256_of(HUGE_PROMPT) == row["arguments_sha256"]
    assert row["arguments"]["truncated"]["size_bytes"] > MAX_STORED_JSON_BYTES
    assert row["response"] == {"text": "ok"}


def test_a_value_at_the_cap_is_stored_whole(tmp_path: Path) -> None:
    value = {"text": "x" * 100}
    size = len(canonical_json(value).encode())
    with AuditLog(tmp_path / "a.sqlite3", max_field_bytes=size) as log:
        log.record(call(response=value))
        [row] = log.tail(1)
    assert row["response"] == value and row["response_sha256"] is None


def test_four_huge_answers_keep_the_file_small(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    with AuditLog(path) as log:
        for _ in range(4):
            log.record(call(arguments=HUGE_PROMPT, response=HUGE_ANSWER, error="x" * (MAX_STORED_JSON_BYTES * 2)))
        [row] = log.tail(1)
    assert row["error"].startswith("x" * 100) and row["error"].endswith(
        f"[cut: {MAX_STORED_JSON_BYTES * 2} characters in all]"
    )
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("a.sqlite3"))
    # Uncapped, each row would hold ~1.5 MB; capped, the four rows hold well under 2 MB together (WAL included).
    assert on_disk < 2 * 1024 * 1024


@pytest.mark.parametrize("privacy", ["hashes", "metadata"])
def test_the_other_privacy_modes_are_unchanged_by_the_cap(tmp_path: Path, privacy: str) -> None:
    with AuditLog(tmp_path / "a.sqlite3", privacy=privacy) as log:  # type: ignore[arg-type]
        log.record(call(arguments=HUGE_PROMPT, response=HUGE_ANSWER))
        [row] = log.tail(1)
    assert row["arguments"] is None and row["response"] is None
    if privacy == "hashes":
        # The same hashes a cut "full" row keeps: the two modes can be compared.
        assert row["arguments_sha256"] == sha256_of(HUGE_PROMPT)
        assert row["response_sha256"] == sha256_of(HUGE_ANSWER)
    else:
        assert row["arguments_sha256"] is None and row["response_sha256"] is None


@pytest.mark.anyio
async def test_a_tool_result_over_the_cap_is_audited_as_its_hash(
    settings: Settings, sim: Simulator, tmp_path: Path
) -> None:
    log = AuditLog(tmp_path / "a.sqlite3", max_field_bytes=4096)
    async with Client(build_server(settings, audit=log)) as client:
        result = await client.call_tool("list_available_models", {"limit": 100, "detail": "full"})
    assert not result.is_error and result.structured_content is not None
    [row] = log.tail(1)
    assert row["response"]["truncated"]["sha256"] == sha256_of(result.structured_content) == row["response_sha256"]
    assert row["arguments"] == {"limit": 100, "offset": 0, "detail": "full"}
