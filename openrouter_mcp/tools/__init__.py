"""MCP tools as thin adapters over OpenRouterClient: one module per area."""

from __future__ import annotations

from typing import Any

from openrouter_mcp.tools.account import ACCOUNT_TOOLS
from openrouter_mcp.tools.catalog import CATALOG_TOOLS
from openrouter_mcp.tools.chat import CHAT_TOOLS
from openrouter_mcp.tools.registry import ToolSpec
from openrouter_mcp.tools.route import ROUTING_TOOLS
from openrouter_mcp.tools.usage import USAGE_TOOLS

ALL_TOOLS: list[ToolSpec[Any, Any]] = [*CHAT_TOOLS, *ROUTING_TOOLS, *ACCOUNT_TOOLS, *CATALOG_TOOLS, *USAGE_TOOLS]
