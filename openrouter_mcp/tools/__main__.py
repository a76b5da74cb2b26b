"""`python -m openrouter_mcp.tools`: regenerate the shipped tool schemas after changing a tool's models."""

from openrouter_mcp.tools import ALL_TOOLS
from openrouter_mcp.tools.registry import SCHEMAS_PATH, write_schemas

write_schemas(ALL_TOOLS)
print(f"wrote {SCHEMAS_PATH}")  # noqa: T201 - a developer command, not the server
