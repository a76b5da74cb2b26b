"""The README's host blocks: well formed, in step with the repository, and the uvx one really starts the server.

The slow test runs the README's `mcpServers` block as a host would, with one change: `--from` names this checkout
instead of the repository's URL (tests send nothing beyond loopback; uv runs offline from the cache `.ci/run`
fills). It needs uv: in CI (`CI` set) its absence fails the test, elsewhere it skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from openrouter_mcp.tools import ALL_TOOLS
from scripts import bundle

README = (bundle.ROOT / "README.md").read_text(encoding="utf-8")
GIT_SOURCE = f"git+{bundle.REPOSITORY_URL}"


def host_section_blocks() -> list[dict[str, Any]]:
    """The JSON blocks of the README's "Add it to a host" section, parsed."""
    section = README.split("## Add it to a host\n", 1)[1].split("\n## ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)]


def test_the_host_section_shows_an_mcp_servers_block_and_a_vs_code_block_that_run_uvx_from_the_repository() -> None:
    generic, vscode = host_section_blocks()

    assert generic["mcpServers"]["openrouter"] == {"command": "uvx", "args": ["--from", GIT_SOURCE, "openrouter-mcp"]}
    server = vscode["servers"]["openrouter"]
    assert (server["type"], server["command"], server["args"]) == (
        "stdio",
        "uvx",
        ["--from", GIT_SOURCE, "openrouter-mcp"],
    )


def test_the_vs_code_block_asks_for_the_key_as_a_password_and_passes_it_only_in_the_environment() -> None:
    _, vscode = host_section_blocks()
    (prompt,) = vscode["inputs"]
    server = vscode["servers"]["openrouter"]

    assert prompt["password"] is True
    assert server["env"] == {"OPENROUTER_API_KEY": f"${{input:{prompt['id']}}}"}
    assert not any("input:" in arg for arg in server["args"])


def test_every_install_command_in_the_readme_names_this_repository() -> None:
    sources = set(re.findall(r"git\+https://[^\s`\"]+", README))

    assert sources == {GIT_SOURCE}


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_readme_uvx_block_starts_the_server_from_a_checkout_and_lists_its_tools(tmp_path: Path) -> None:
    if shutil.which("uv") is None:
        if os.environ.get("CI"):
            pytest.fail("uv is not installed (.ci/run installs it)")
        pytest.skip("uv is not installed (.ci/run installs it)")
    generic, _ = host_section_blocks()
    block = generic["mcpServers"]["openrouter"]
    args = [str(bundle.ROOT) if arg == GIT_SOURCE else arg for arg in block["args"]]
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "SYSTEMROOT") if name in os.environ}
    env |= {"UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never", "OPENROUTER_MCP_AUDIT_DB": str(tmp_path / "a.db")}
    params = StdioServerParameters(command=block["command"], args=[*args, "--demo"], env=env, cwd=str(tmp_path))

    with (tmp_path / "stderr.txt").open("w") as errlog, anyio.fail_after(180):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = await client.list_tools()

    assert [tool.name for tool in tools.tools] == [spec.name for spec in ALL_TOOLS], (
        tmp_path / "stderr.txt"
    ).read_text()
