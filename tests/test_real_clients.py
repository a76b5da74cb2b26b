"""Clients we did not write: the official MCP conformance suite and the MCP Inspector CLI, against `--demo`.

Both are Node 22 programs, pinned in `tests/conformance/package-lock.json` (Node itself as the npm package `node`)
and installed by `tests/conformance/install.sh`, which `.ci/run` calls; `OPENROUTER_MCP_NODE_TOOLS` names the folder
it installed into (default: `~/.cache/openrouter-mcp/node-tools`). In CI (`CI` set) a missing install fails these
tests; elsewhere they are skipped with the command that installs them.

The conformance suite drives a server over streamable HTTP only (`conformance server --url`); the Inspector CLI
drives it over stdio and over streamable HTTP. Every conformance scenario that does not need the suite's own fixture
tools must pass; `tests/conformance/expected-failures.yml` lists the others, each with its reason, and the suite
itself fails a run where a listed scenario passes (the list would be stale) or an unlisted one fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.processes import SERVER, http_server, server_env

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "conformance" / "expected-failures.yml"
NODE_MAJOR = "v22."
#: Bounds for one run of a Node client: the whole conformance suite takes a few seconds alone on 2 cores.
SUITE_TIMEOUT = 300.0
INSPECTOR_TIMEOUT = 90.0


def node_tools() -> Path:
    """The folder `tests/conformance/install.sh` installed into, checked.

    Raises:
        pytest.fail.Exception: in CI (`CI` set), when the tools are missing.
        pytest.skip.Exception: elsewhere, when the tools are missing.
    """
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openrouter-mcp" / "node-tools"
    folder = Path(os.environ.get("OPENROUTER_MCP_NODE_TOOLS", default))
    missing = [str(path) for path in (node_binary(folder), conformance_script(folder), inspector_script(folder))]
    missing = [path for path in missing if not Path(path).is_file()]
    if missing:
        why = (
            f"the pinned Node 22 clients are not installed in {folder} (missing {', '.join(missing)}); "
            "run `bash tests/conformance/install.sh` (it prints the folder for OPENROUTER_MCP_NODE_TOOLS)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real clients: {why}")
        pytest.skip(why)
    version = subprocess.run([node_binary(folder), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert version.startswith(NODE_MAJOR), f"{node_binary(folder)} is Node {version.strip()}, not 22"
    return folder


def node_binary(folder: Path) -> Path:
    return folder / "node_modules" / "node" / "bin" / "node"


def conformance_script(folder: Path) -> Path:
    return folder / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


def inspector_script(folder: Path) -> Path:
    return folder / "node_modules" / "@modelcontextprotocol" / "inspector" / "cli" / "build" / "cli.js"


def run_node(folder: Path, script: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # Node 22 first on PATH: the Inspector starts its CLI part as a plain `node` child process.
    env = server_env(None) | {"PATH": f"{node_binary(folder).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(node_binary(folder)), str(script), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_every_conformance_scenario_passes_over_streamable_http_but_those_needing_the_suites_fixtures(
    tmp_path: Path,
) -> None:
    folder = node_tools()
    # Each scenario opens a session and leaves it open: more than the default 32 per client.
    with http_server("--demo", "--max-sessions-per-client", "100", env=server_env(None)) as served:
        run = run_node(
            folder,
            conformance_script(folder),
            "server",
            "--url",
            f"{served.url}/mcp",
            "--suite",
            "all",
            "--expected-failures",
            str(BASELINE),
            "--output-dir",
            str(tmp_path),
            timeout=SUITE_TIMEOUT,
        )
        log = served.log()
    report = f"{run.stdout}\n{run.stderr}\n--- server log ---\n{log}"
    assert run.returncode == 0, report
    assert "Baseline check passed" in run.stdout, report
    # The suite ran every scenario it knows, and each passing one checked something.
    listing = run_node(folder, conformance_script(folder), "list", "--server", timeout=60).stdout
    scenarios = {line.split()[1] for line in listing.splitlines() if line.startswith("  - ")}
    assert len(scenarios) >= 30 and all(f"{name}: " in run.stdout for name in scenarios), report
    assert "tools-call-simple-text: 1 passed, 0 failed" in run.stdout, report
    assert "Traceback" not in log, log


def inspect(folder: Path, target: list[str], method: str, *args: str) -> dict[str, Any]:
    """What the Inspector CLI prints for one call of `method`, as JSON."""
    run = run_node(
        folder, inspector_script(folder), "--cli", *target, "--method", method, *args, timeout=INSPECTOR_TIMEOUT
    )
    assert run.returncode == 0, f"{method}: status {run.returncode}\n{run.stdout}\n{run.stderr}"
    answer: dict[str, Any] = json.loads(run.stdout)
    return answer


def check_with_the_inspector(folder: Path, target: list[str]) -> None:
    tools = inspect(folder, target, "tools/list")["tools"]
    assert {"get_models_count", "list_available_models", "create_chat_completion"} <= {t["name"] for t in tools}
    called = inspect(folder, target, "tools/call", "--tool-name", "get_models_count")
    assert called["isError"] is False and called["structuredContent"]["count"] > 0, called
    resources = inspect(folder, target, "resources/list")["resources"]
    assert "openrouter://models" in {r["uri"] for r in resources}
    contents = inspect(folder, target, "resources/read", "--uri", "openrouter://models")["contents"]
    assert contents[0]["uri"] == "openrouter://models" and json.loads(contents[0]["text"]), contents
    prompts = inspect(folder, target, "prompts/list")["prompts"]
    assert prompts and all(p["name"].startswith("persona-") for p in prompts), prompts


def test_the_inspector_cli_lists_calls_and_reads_over_stdio() -> None:
    folder = node_tools()
    check_with_the_inspector(folder, [*SERVER, "--demo"])


def test_the_inspector_cli_lists_calls_and_reads_over_streamable_http() -> None:
    folder = node_tools()
    with http_server("--demo", env=server_env(None)) as served:
        check_with_the_inspector(folder, [f"{served.url}/mcp", "--transport", "http"])
        log = served.log()
    assert "Traceback" not in log, log
