"""server.json, the entry for the official MCP Registry: valid, and in step with the package and the bundle.

Validated against the registry's schema vendored in tests/data/mcp-registry/ (see its README for the source).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from openrouter_mcp import __version__
from openrouter_mcp.config import AUDIT_PRIVACY_MODES, ENVIRONMENT
from scripts import bundle

SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "mcp-registry" / "server.schema.json"
README_PATH = bundle.ROOT / "README.md"


def server_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(bundle.SERVER_JSON_PATH.read_text(encoding="utf-8"))
    return loaded


def package(registry_type: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in server_json()["packages"] if p["registryType"] == registry_type]
    (only,) = found
    return only


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_server_json_is_valid_against_the_registry_schema() -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(server_json())]
    assert errors == []


def test_the_schema_check_rejects_what_the_registry_would() -> None:
    broken = server_json() | {"name": "no-namespace", "description": "x" * 101}
    broken["packages"] = [package("pypi") | {"version": "latest"}]

    messages = " ".join(error.message for error in validator().iter_errors(broken))
    assert "does not match" in messages and "is too long" in messages and "should not be valid" in messages


def test_server_json_names_the_schema_it_is_checked_against() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert server_json()["$schema"] == schema["$id"]


def test_every_version_in_server_json_is_the_packages_version() -> None:
    data = server_json()

    assert bundle.version() == __version__
    assert [data["version"], *(p["version"] for p in data["packages"])] == [__version__] * 3


def test_the_pypi_package_is_this_distribution_served_over_stdio() -> None:
    pypi = package("pypi")

    assert pypi["identifier"] == bundle.pyproject()["name"]
    assert pypi["transport"] == {"type": "stdio"}
    assert server_json()["repository"]["url"] == bundle.REPOSITORY_URL


def test_the_registry_can_verify_the_pypi_package_through_the_readme() -> None:
    # The registry accepts a PyPI package only if its README (the long description on PyPI) names the server.
    assert f"mcp-name: {server_json()['name']}" in README_PATH.read_text(encoding="utf-8")


def test_every_environment_variable_it_names_is_one_the_server_reads_and_only_the_key_is_secret() -> None:
    variables = {v["name"]: v for v in package("pypi")["environmentVariables"]}

    assert set(variables) <= {variable.name for variable in ENVIRONMENT}
    assert {name for name, v in variables.items() if v.get("isSecret")} == {"OPENROUTER_API_KEY"}
    privacy = variables["OPENROUTER_MCP_AUDIT_PRIVACY"]
    assert (privacy["choices"], privacy["default"]) == (list(AUDIT_PRIVACY_MODES), AUDIT_PRIVACY_MODES[0])


def test_the_mcpb_package_is_the_bundle_the_build_makes_for_this_version() -> None:
    mcpb = package("mcpb")

    assert mcpb["identifier"] == f"{bundle.REPOSITORY_URL}/releases/download/v{__version__}/{bundle.bundle_name()}"
    assert mcpb["transport"] == {"type": "stdio"}


def test_recording_a_built_bundle_sets_its_sha256_and_changes_nothing_else(tmp_path: Path) -> None:
    copy = tmp_path / "server.json"
    shutil.copy(bundle.SERVER_JSON_PATH, copy)
    built = tmp_path / "openrouter-mcp.mcpb"
    built.write_bytes(b"a bundle")

    bundle.record_in_server_json(built, copy)

    recorded = json.loads(copy.read_text(encoding="utf-8"))
    expected = server_json()
    (mcpb,) = [p for p in expected["packages"] if p["registryType"] == "mcpb"]
    mcpb["fileSha256"] = hashlib.sha256(b"a bundle").hexdigest()
    assert recorded == expected


@pytest.mark.parametrize("path", [bundle.SERVER_JSON_PATH, bundle.MANIFEST_PATH])
def test_the_json_files_are_written_as_the_tools_write_them(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"
