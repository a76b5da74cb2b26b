"""Placeholder: tools for this area are being written."""

from __future__ import annotations

from typing import Any

from openrouter_mcp.tools.registry import ToolSpec

ACCOUNT_TOOLS: list[ToolSpec[Any, Any]] = []
