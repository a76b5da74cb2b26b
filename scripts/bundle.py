"""The MCP Bundle (`.mcpb`) for Claude Desktop: its manifest, and the build that packs it.

    python -m scripts.bundle                 # check manifest.json is current, stage, `mcpb pack` into dist/
    python -m scripts.bundle manifest        # regenerate manifest.json (version, tools, prompts)
    python -m scripts.bundle stage DIR       # only lay out the bundle's files in DIR
    python -m scripts.bundle --server-json   # also record the packed bundle's SHA-256 in server.json

The bundle is of server type `uv`: it holds `pyproject.toml` and the package's source, and the host runs
`uv run --directory <bundle> openrouter-mcp`, so uv installs Python (>= 3.11) and the dependencies for the
user's own platform on first start. The alternative, type `python` with the dependencies vendored, cannot be
one file for every platform: pydantic-core is compiled, per OS, CPU and Python version, and Claude Desktop
ships no Python of its own to match it against.

`manifest.json` at the repository root is generated here (its version from pyproject.toml, its tools and
prompts from the tool registry) and kept in step by tests/test_bundle.py. `mcpb` is the npm package
`@anthropic-ai/mcpb` (`npm install --prefix DIR @anthropic-ai/mcpb@2.1.2`; `.ci/run` installs that version).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = ROOT / "manifest.json"
SERVER_JSON_PATH = ROOT / "server.json"
PYPROJECT_PATH = ROOT / "pyproject.toml"
DIST = ROOT / "dist"
REPOSITORY_URL = "https://github.com/openrouter-mcp/openrouter-mcp"
#: The files and folders of the repository that go into the bundle: what `uv run` needs to build and run it.
BUNDLED = ("pyproject.toml", "README.md", "openrouter_mcp")
MCPB_VERSION = "2.1.2"

#: The host asks for these when the bundle is installed; `sensitive` values live in the OS keychain. Optional ones
#: default to "", which the server reads as unset: without a default the host would pass `${user_config.X}` as is.
USER_CONFIG: dict[str, dict[str, Any]] = {
    "openrouter_api_key": {
        "type": "string",
        "title": "OpenRouter API key",
        "description": (
            "Your key from https://openrouter.ai/settings/keys (sk-or-v1-...), kept in the OS keychain. "
            "Leave it empty if you signed in with `openrouter-mcp login`; without any key the catalog tools "
            "still work and paid tools say how to add one."
        ),
        "sensitive": True,
        "required": False,
        "default": "",
    },
    "personas_file": {
        "type": "file",
        "title": "Personas file (optional)",
        "description": (
            "A TOML file of personas: which models may answer, at what price, with which tools "
            "(see openrouter_mcp/routing/personas.example.toml). Empty: ~/.config/openrouter-mcp/personas.toml "
            "if it exists, else one default persona with every model and tool."
        ),
        "required": False,
        "default": "",
    },
    "audit_privacy": {
        "type": "string",
        "title": "Audit log privacy",
        "description": (
            "What the local audit log keeps of prompts and answers: full (the text), hashes (SHA-256 only) or "
            "metadata (neither; models, tokens and cost only)."
        ),
        "required": False,
        "default": "full",
    },
}
#: The environment the server gets, from the user's answers.
ENV = {
    "OPENROUTER_API_KEY": "${user_config.openrouter_api_key}",
    "OPENROUTER_MCP_PERSONAS": "${user_config.personas_file}",
    "OPENROUTER_MCP_AUDIT_PRIVACY": "${user_config.audit_privacy}",
}

LONG_DESCRIPTION = """\
The whole OpenRouter API in Claude: chat with any of hundreds of models (streaming, tool calls, reasoning), \
Anthropic-format messages, the model catalog with filters and paging (also as resources), account credits and \
key limits, generation cost lookups, and a local audit log of every call and its cost.

**Personas** decide which models may answer, in what order, at what price ceiling, and with which tools; a failed \
model falls back to the next one, never to a pricier one. Each persona is offered as a prompt.

Needs an OpenRouter API key (https://openrouter.ai/settings/keys). The key is kept in the OS keychain and never \
appears in results, errors or logs."""


def pyproject() -> dict[str, Any]:
    with PYPROJECT_PATH.open("rb") as file:
        project: dict[str, Any] = tomllib.load(file)["project"]
    return project


def version() -> str:
    """The package's version, as pyproject.toml declares it."""
    return str(pyproject()["version"])


def bundle_name(package_version: str | None = None) -> str:
    """`openrouter-mcp-<version>.mcpb`."""
    return f"openrouter-mcp-{package_version or version()}.mcpb"


async def _listings() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    from openrouter_mcp.config import Settings
    from openrouter_mcp.routing import personas
    from openrouter_mcp.server import build_server

    # The built-in personas only: the manifest must not depend on the files of whoever builds it.
    server = build_server(Settings(), personas=personas.load(None))
    tools = [{"name": tool.name, "description": tool.description or tool.name} for tool in await server.list_tools()]
    prompts: list[dict[str, Any]] = []
    for prompt in await server.list_prompts():
        arguments = [argument.name for argument in prompt.arguments or []]
        # The host fills `${arguments.NAME}`; rendering with those placeholders gives the prompt's text.
        rendered = await server.get_prompt(prompt.name, {name: f"${{arguments.{name}}}" for name in arguments})
        text = "\n".join(getattr(message.content, "text", "") for message in rendered.messages)
        prompts.append(
            {"name": prompt.name, "description": prompt.description or "", "arguments": arguments, "text": text}
        )
    return tools, prompts


def render_manifest() -> dict[str, Any]:
    """The bundle's manifest.json: MCPB manifest_version 0.4, from pyproject.toml and the tool registry."""
    project = pyproject()
    tools, prompts = anyio.run(_listings)
    return {
        "manifest_version": "0.4",
        "name": project["name"],
        "display_name": "OpenRouter",
        "version": project["version"],
        "description": project["description"],
        "long_description": LONG_DESCRIPTION,
        "author": {"name": "openrouter-mcp contributors", "url": REPOSITORY_URL},
        "repository": {"type": "git", "url": REPOSITORY_URL},
        "homepage": REPOSITORY_URL,
        "documentation": f"{REPOSITORY_URL}#readme",
        "support": f"{REPOSITORY_URL}/issues",
        "license": project["license"],
        "keywords": ["openrouter", "llm", "models", "chat", "routing", "fallback"],
        "privacy_policies": ["https://openrouter.ai/privacy"],
        "server": {
            "type": "uv",
            "entry_point": "openrouter_mcp/__main__.py",
            "mcp_config": {
                "command": "uv",
                "args": ["run", "--directory", "${__dirname}", "openrouter-mcp"],
                "env": ENV,
            },
        },
        "tools": tools,
        "tools_generated": False,
        # The default persona's prompt; a personas file adds one prompt per persona.
        "prompts": prompts,
        "prompts_generated": True,
        "user_config": USER_CONFIG,
        "compatibility": {
            "platforms": ["darwin", "win32", "linux"],
            "runtimes": {"python": project["requires-python"]},
        },
    }


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def write_manifest() -> Path:
    MANIFEST_PATH.write_text(manifest_text(render_manifest()), encoding="utf-8")
    return MANIFEST_PATH


def stage(dest: Path) -> Path:
    """Lay out the bundle's files in `dest` (created; must not exist): the manifest and `BUNDLED`.

    Raises:
        FileExistsError: `dest` exists.
    """
    dest.mkdir(parents=True)
    shutil.copy2(MANIFEST_PATH, dest / "manifest.json")
    for name in BUNDLED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def mcpb(*args: str, executable: str = "mcpb") -> str:
    """Run the mcpb CLI; its output.

    Raises:
        FileNotFoundError: no `executable` on PATH.
        subprocess.CalledProcessError: mcpb failed (its output is in the exception).
    """
    path = shutil.which(executable)
    if path is None:
        raise FileNotFoundError(
            f"{executable} not found: npm install --prefix DIR @anthropic-ai/mcpb@{MCPB_VERSION}, "
            "then put DIR/node_modules/.bin on PATH"
        )
    done = subprocess.run([path, *args], capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def build(out_dir: Path = DIST, *, work: Path, executable: str = "mcpb") -> Path:
    """Validate the manifest, stage the bundle under `work` and pack it as `out_dir/openrouter-mcp-<v>.mcpb`.

    Raises:
        ValueError: manifest.json is not what `render_manifest()` makes (run `python -m scripts.bundle manifest`).
        FileNotFoundError, subprocess.CalledProcessError: as `mcpb`.
    """
    if MANIFEST_PATH.read_text(encoding="utf-8") != manifest_text(render_manifest()):
        raise ValueError("manifest.json is out of date: run `python -m scripts.bundle manifest` and commit it")
    mcpb("validate", str(MANIFEST_PATH), executable=executable)
    staged = stage(work / "bundle")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / bundle_name()
    mcpb("pack", str(staged), str(target), executable=executable)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_in_server_json(bundle: Path, path: Path = SERVER_JSON_PATH) -> None:
    """Set the SHA-256 of the MCPB package in server.json (`path`) to `bundle`'s: the file a release attaches.

    `mcpb pack` stamps the time into the zip, so every build has its own hash: record the one you publish.
    """
    server = json.loads(path.read_text(encoding="utf-8"))
    for package in server["packages"]:
        if package["registryType"] == "mcpb":
            package["fileSha256"] = sha256(bundle)
    path.write_text(json.dumps(server, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=["build", "manifest", "stage"], default="build")
    parser.add_argument("dir", nargs="?", type=Path, help="stage: where to lay out the bundle")
    parser.add_argument("--out", type=Path, default=DIST, help="build: the folder for the .mcpb (default dist/)")
    parser.add_argument("--mcpb", default="mcpb", help="the mcpb executable (default: mcpb on PATH)")
    parser.add_argument("--server-json", action="store_true", help="build: record the bundle's SHA-256 in server.json")
    args = parser.parse_args(argv)
    if args.command == "manifest":
        sys.stderr.write(f"wrote {write_manifest()}\n")
        return 0
    if args.command == "stage":
        if args.dir is None:
            parser.error("stage needs a DIR")
        sys.stderr.write(f"staged {stage(args.dir)}\n")
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        try:
            bundle = build(args.out, work=Path(work), executable=args.mcpb)
        except (ValueError, FileNotFoundError) as error:
            sys.stderr.write(f"{error}\n")
            return 1
        except subprocess.CalledProcessError as error:
            sys.stderr.write(f"mcpb {error.cmd[1]} failed:\n{error.stdout}{error.stderr}")
            return 1
    if args.server_json:
        record_in_server_json(bundle)
    sys.stderr.write(f"built {bundle} ({bundle.stat().st_size} bytes, sha256 {sha256(bundle)})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
