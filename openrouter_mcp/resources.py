"""Placeholder: catalog resources are being written."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer


def register_resources(server: MCPServer[Any]) -> None:
    """Add the catalog resources, templates and completions to `server`."""
