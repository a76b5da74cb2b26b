"""The MCP Bundle for Claude Desktop: its manifest is current and valid, and the packed bundle really starts.

The fast tests check `manifest.json` against the tool registry, pyproject.toml and the MCPB 0.4 schema (vendored
in tests/data/mcpb/). The slow one does what CI must prove: `mcpb validate`, `mcpb pack`, `mcpb unpack` into a
temporary folder, then the server started exactly as the manifest's `mcp_config` says, its variables filled by
mcpb's own `getMcpConfigForManifest` (the host's substitution code), plus `--demo`, and its tools listed over
stdio. It needs node, mcpb and uv: in CI (`CI` set) their absence fails the test, elsewhere it skips. uv runs
offline (`UV_OFFLINE=1`) so the test sends nothing over the network: `.ci/run` fills uv's cache beforehand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import jsonschema
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from openrouter_mcp import __version__
from openrouter_mcp.config import AUDIT_PRIVACY_MODES, ENVIRONMENT
from openrouter_mcp.tools import ALL_TOOLS
from scripts import bundle

SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "mcpb" / "mcpb-manifest-v0.4.schema.json"


def committed_manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(bundle.MANIFEST_PATH.read_text(encoding="utf-8"))
    return loaded


def test_the_committed_manifest_is_the_one_the_tool_registry_and_pyproject_make() -> None:
    assert committed_manifest() == bundle.render_manifest(), "run `python -m scripts.bundle manifest` and commit it"


def test_the_manifest_is_valid_against_the_mcpb_0_4_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    checker = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)

    assert [error.message for error in checker.iter_errors(committed_manifest())] == []
    assert committed_manifest()["manifest_version"] == "0.4"


def test_the_manifest_lists_every_tool_the_server_serves_and_its_version() -> None:
    manifest = committed_manifest()

    assert [tool["name"] for tool in manifest["tools"]] == [spec.name for spec in ALL_TOOLS]
    assert all(tool["description"] for tool in manifest["tools"])
    assert manifest["version"] == __version__
    assert [prompt["name"] for prompt in manifest["prompts"]] == ["persona-default"]


def test_the_key_is_a_sensitive_setting_that_reaches_the_server_only_through_its_environment() -> None:
    manifest = committed_manifest()
    config = manifest["server"]["mcp_config"]

    assert manifest["user_config"]["openrouter_api_key"]["sensitive"] is True
    assert config["env"]["OPENROUTER_API_KEY"] == "${user_config.openrouter_api_key}"
    assert not any("user_config" in arg for arg in config["args"])


def test_every_variable_the_manifest_sets_is_one_the_server_reads() -> None:
    env = committed_manifest()["server"]["mcp_config"]["env"]

    assert set(env) <= {variable.name for variable in ENVIRONMENT}


def test_every_optional_setting_has_a_default_so_no_placeholder_reaches_the_server() -> None:
    # A host leaves `${user_config.X}` as it is when X has neither a value nor a default.
    user_config = committed_manifest()["user_config"]

    assert all("default" in option for option in user_config.values() if not option.get("required"))
    assert user_config["personas_file"]["type"] == "file"
    assert user_config["audit_privacy"]["default"] in AUDIT_PRIVACY_MODES


def test_the_bundle_runs_with_uv_on_every_platform_and_the_python_pyproject_requires() -> None:
    manifest = committed_manifest()

    assert manifest["server"]["type"] == "uv"
    assert manifest["server"]["mcp_config"]["command"] == "uv"
    assert manifest["compatibility"] == {
        "platforms": ["darwin", "win32", "linux"],
        "runtimes": {"python": bundle.pyproject()["requires-python"]},
    }


def test_staging_lays_out_the_manifest_the_project_and_the_package_without_caches(tmp_path: Path) -> None:
    staged = bundle.stage(tmp_path / "bundle")

    assert {path.name for path in staged.iterdir()} == {
        "manifest.json",
        "pyproject.toml",
        "README.md",
        "openrouter_mcp",
    }
    assert (staged / "openrouter_mcp" / "__main__.py").is_file()
    assert (staged / "openrouter_mcp" / "tools" / "schemas.json").is_file()
    assert not list(staged.rglob("__pycache__"))
    assert (staged / "manifest.json").read_bytes() == bundle.MANIFEST_PATH.read_bytes()


def test_building_without_mcpb_fails_and_says_how_to_install_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert bundle.main(["--mcpb", "mcpb-that-is-not-installed"]) == 1
    assert "npm install --prefix DIR @anthropic-ai/mcpb@" in capsys.readouterr().err


# --- The packed bundle, unpacked and started as a host would ------------------------------------------------

#: Resolves the manifest's mcp_config with mcpb's own code, as the host does; prints the JSON.
HOST_CONFIG_JS = """
import { readFileSync } from "node:fs";
const [, indexUrl, extensionPath, userConfigJson] = process.argv;  // -e: no script path in argv
const { getMcpConfigForManifest } = await import(indexUrl);
const manifest = JSON.parse(readFileSync(`${extensionPath}/manifest.json`, "utf8"));
const config = await getMcpConfigForManifest({
  manifest, extensionPath, systemDirs: {}, userConfig: JSON.parse(userConfigJson), pathSeparator: "/",
});
process.stdout.write(JSON.stringify(config));
"""

PERSONAS_TOML = """
[personas.frugal]
description = "Cheap models only."
models = ["openai/gpt-4o-mini"]
"""


def required_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def host_config(node: str, mcpb: str, unpacked: Path, user_config: dict[str, Any]) -> dict[str, Any]:
    """The command, args and env a host would start the unpacked bundle with, given the user's settings."""
    # The mcpb executable is a link to dist/cli/cli.js in its package; dist/index.js exports the config helpers.
    index = Path(mcpb).resolve().parent.parent / "index.js"
    done = subprocess.run(
        [node, "--input-type=module", "-e", HOST_CONFIG_JS, index.as_uri(), str(unpacked), json.dumps(user_config)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    config: dict[str, Any] = json.loads(done.stdout)
    return config


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_packed_bundle_unpacks_and_starts_as_its_manifest_says_and_lists_its_tools(tmp_path: Path) -> None:
    node = required_tool("node")
    mcpb = required_tool("mcpb")
    required_tool("uv")
    assert "validation passes" in bundle.mcpb("validate", str(bundle.MANIFEST_PATH), executable=mcpb)

    # In a thread: the build renders the manifest with an event loop of its own.
    packed = await anyio.to_thread.run_sync(lambda: bundle.build(tmp_path / "dist", work=tmp_path, executable=mcpb))
    assert packed.name == f"openrouter-mcp-{__version__}.mcpb"
    unpacked = tmp_path / "installed"
    bundle.mcpb("unpack", str(packed), str(unpacked), executable=mcpb)
    personas_file = tmp_path / "personas.toml"
    personas_file.write_text(PERSONAS_TOML, encoding="utf-8")
    config = host_config(node, mcpb, unpacked, {"personas_file": str(personas_file), "audit_privacy": "hashes"})

    assert config["command"] == "uv" and config["args"] == ["run", "--directory", str(unpacked), "openrouter-mcp"]
    assert config["env"] == {
        "OPENROUTER_API_KEY": "",
        "OPENROUTER_MCP_PERSONAS": str(personas_file),
        "OPENROUTER_MCP_AUDIT_PRIVACY": "hashes",
    }
    # The host's environment is the user's; here a minimal one, offline, with a throwaway audit database.
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "SYSTEMROOT") if name in os.environ}
    env |= {"UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never", "OPENROUTER_MCP_AUDIT_DB": str(tmp_path / "a.db")}
    params = StdioServerParameters(
        command=config["command"], args=[*config["args"], "--demo"], env=env | config["env"], cwd=str(tmp_path)
    )
    with (tmp_path / "stderr.txt").open("w") as errlog, anyio.fail_after(180):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = await client.list_tools()
            prompts = await client.list_prompts()
            answer = await client.call_tool(
                "create_chat_completion", {"messages": [{"role": "user", "content": "hi"}], "persona": "frugal"}
            )

    stderr = (tmp_path / "stderr.txt").read_text(encoding="utf-8")
    assert [tool.name for tool in tools.tools] == [tool["name"] for tool in committed_manifest()["tools"]], stderr
    assert [prompt.name for prompt in prompts.prompts] == ["persona-frugal"], "the personas file reached the server"
    assert not answer.is_error, answer.content
    assert answer.structured_content is not None and answer.structured_content["model"] == "openai/gpt-4o-mini"
    assert (unpacked / ".venv").is_dir(), "uv made the bundle's environment inside it"
