"""What a call must not do once the server is warm: look for modules on disk.

A failed `import` is not cached: Python searches sys.path again each time, tens of microseconds of
`stat` calls. httpcore imports sniffio on every upstream request to learn which event loop runs;
without sniffio installed (anyio no longer brings it) that was four searches a request. This test
catches that, and any lazy import of ours that keeps missing, on the whole path of a tool call.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

import pytest
from mcp import Client

from openrouter_mcp.simulator import Simulator

pytestmark = pytest.mark.anyio


class SearchRecorder(importlib.abc.MetaPathFinder):
    """First on sys.meta_path: sees every import that sys.modules could not answer, and finds nothing."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.searched.append(fullname)
        return None


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_chat_completion", {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}),
    (
        "create_chat_completion",
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True},
    ),
    ("create_message", {"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": "Hi"}]}),
    ("list_available_models", {"limit": 3}),
    ("get_credits", {}),
]


async def test_warm_tool_calls_search_for_no_module(client: Client, sim: Simulator) -> None:
    for name, arguments in CALLS:  # warm-up: lazy imports happen here, once
        assert not (await client.call_tool(name, arguments)).is_error
    recorder = SearchRecorder()
    sys.meta_path.insert(0, recorder)
    try:
        for name, arguments in CALLS:
            assert not (await client.call_tool(name, arguments)).is_error
    finally:
        sys.meta_path.remove(recorder)
    assert recorder.searched == []
