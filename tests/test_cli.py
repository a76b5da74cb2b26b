"""The command line: --help tells what the server reads and serves, options arrive typed, the demo and the
audit log are set up as the settings say."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from pydantic import SecretStr

import openrouter_mcp
from openrouter_mcp.__main__ import (
    DEMO_BASE_URL,
    SUBCOMMANDS,
    demo_upstream,
    http_options,
    main,
    parse_args,
)
from openrouter_mcp.audit.lazy import LazyAudit, open_audit
from openrouter_mcp.config import AUDIT_DB_ENV, ENVIRONMENT, Settings
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.serving.http import HTTP_PATHS, HttpOptions, exposure_problem, own_url
from openrouter_mcp.simulator import Simulator
from openrouter_mcp.upstream.client import OpenRouterClient, build_http_client
from tests.processes import fresh_interpreter

PACKAGE = Path(openrouter_mcp.__file__).parent


def help_text(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int = 100) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit) as exited:
        parse_args(["--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_environment_variable_with_its_meaning_and_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = " ".join(help_text(capsys, monkeypatch).split())
    for variable in ENVIRONMENT:
        assert f"{variable.name} {variable.meaning} (default: {variable.default})" in flat


def test_help_shows_the_defaults_of_transport_and_log_level(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = " ".join(help_text(capsys, monkeypatch).split())
    assert "stdio (default)" in flat
    assert "(default WARNING)" in flat
    assert (parse_args([]).transport, parse_args([]).log_level) == ("stdio", "WARNING")


def test_help_names_the_url_path_of_each_http_transport(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = " ".join(help_text(capsys, monkeypatch).split())
    assert HTTP_PATHS == {"streamable-http": "/mcp", "sse": "/sse"}
    assert "http://HOST:PORT/mcp (streamable-http)" in flat
    assert "http://HOST:PORT/sse (sse)" in flat


def test_help_lists_the_subcommands_and_each_one_answers_its_own_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = help_text(capsys, monkeypatch)
    assert "audit tail|export|usage" in text
    for name, command in SUBCOMMANDS.items():
        assert f"  {name} {command.synopsis}".rstrip() in text
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        assert exited.value.code == 0
        assert f"usage: openrouter-mcp {name}" in capsys.readouterr().out


def test_help_wraps_long_lines_under_their_column_on_a_narrow_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = help_text(capsys, monkeypatch, columns=80).splitlines()
    lines = text[[n for n, line in enumerate(text) if line.startswith("environment variables")][0] + 1 :]
    assert len(lines) > len(ENVIRONMENT)  # some lines did wrap
    column = len("  OPENROUTER_HEARTBEAT_INTERVAL  ")
    for line in lines:
        # a continuation starts at the meaning column; only a default with no space in it may overflow
        assert line.startswith("  OPENROUTER_") or line[:column].isspace(), line
        assert len(line) <= 78 or " " not in line.strip(), line


def test_parsed_arguments_become_typed_serving_options() -> None:
    args = parse_args(
        [
            "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "9001",
            "--allowed-host", "mcp.example.com:*", "--allowed-host", "other.example.com",
            "--allowed-origin", "https://app.example.com", "--max-request-bytes", "2048",
            "--max-concurrent-per-client", "2", "--stateless", "--insecure-no-auth", "--log-level", "INFO",
        ]
    )  # fmt: skip
    assert http_options(args) == HttpOptions(
        transport="streamable-http",
        host="0.0.0.0",
        port=9001,
        allowed_hosts=("mcp.example.com:*", "other.example.com"),
        allowed_origins=("https://app.example.com",),
        max_request_bytes=2048,
        max_concurrent_per_client=2,
        stateless=True,
        insecure_no_auth=True,
        log_level="INFO",
    )
    assert http_options(parse_args([])) == HttpOptions()


def test_own_url_brackets_an_ipv6_host_and_exposure_is_judged_on_typed_options() -> None:
    assert own_url(HttpOptions(transport="sse", host="::1", port=8123)) == "http://[::1]:8123"
    assert own_url(HttpOptions(transport="sse", host="127.0.0.1", port=8123)) == "http://127.0.0.1:8123"
    wide_open = HttpOptions(transport="sse", host="0.0.0.0")
    assert exposure_problem(wide_open, authenticated=False) is not None
    assert exposure_problem(dataclasses.replace(wide_open, insecure_no_auth=True), authenticated=False) is None
    assert exposure_problem(dataclasses.replace(wide_open, transport="stdio"), authenticated=False) is None


# ------------------------------------------------------------------------------------------------
# Start-up cost, one HTTP client factory
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_starting_the_cli_imports_neither_sqlite_nor_the_upstream_client_until_they_are_used() -> None:
    # The SDK itself imports httpx2 at start-up; what stays out is our client module (and httpx 0.28, gone).
    modules = "('sqlite3', 'httpx', 'openrouter_mcp.upstream.client')"
    before = f"import sys, openrouter_mcp.__main__; print(sorted(m for m in {modules} if m in sys.modules))"
    assert fresh_interpreter(before) == "[]"
    after = "import sys; from openrouter_mcp.audit import AuditLog; print('sqlite3' in sys.modules)"
    assert fresh_interpreter(after) == "True"


HTTP_STACKS = {"httpx", "httpx2", "httpcore", "httpcore2"}


@pytest.mark.slow
def test_only_the_upstream_client_imports_httpx2_at_run_time() -> None:
    importers = set()
    for source in PACKAGE.rglob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        type_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
            for statement in block.body
            for node in ast.walk(statement)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import) and any(alias.name.split(".")[0] in HTTP_STACKS for alias in node.names):
                importers.add(source.relative_to(PACKAGE).as_posix())
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in HTTP_STACKS:
                importers.add(source.relative_to(PACKAGE).as_posix())
    assert importers == {"upstream/client.py"}


@pytest.mark.slow
def test_no_module_of_the_project_imports_httpx_0_28_which_is_not_a_dependency() -> None:
    # httpx2 is the one HTTP stack (the SDK's): the package, its tests and benchmarks use it. httpx itself is not
    # installed by pyproject, so a module importing it would pass on a machine that happens to have it and fail
    # on a fresh one.
    old_stack = {"httpx", "httpcore"}
    importers = set()
    for source in [
        *PACKAGE.rglob("*.py"),
        *(PACKAGE.parent / "tests").rglob("*.py"),
        *(PACKAGE.parent / "bench").rglob("*.py"),
    ]:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(name.split(".")[0] in old_stack for name in names):
                importers.add(source.relative_to(PACKAGE.parent).as_posix())
    assert importers == set()


def test_the_client_factory_applies_the_settings_timeouts() -> None:
    http = build_http_client(Settings(connect_timeout=3.0, read_timeout=42.0))
    assert (http.timeout.connect, http.timeout.read) == (3.0, 42.0)


@pytest.mark.anyio
async def test_the_demo_keeps_every_setting_but_the_key_and_base_url_and_reaches_the_simulator() -> None:
    real_key = "sk-or-v1-real-key-that-must-stay-home"
    settings = Settings(
        api_key=SecretStr(real_key),
        app_title="my-app",
        read_timeout=42.0,
        connect_timeout=3.0,
        extra_headers={"X-Team": "blue"},
        low_balance_usd=7.0,
    )
    sim = Simulator()
    demo, http = demo_upstream(settings, app=sim)
    try:
        assert demo.base_url == DEMO_BASE_URL
        assert demo.api_key is not None and demo.api_key.get_secret_value() != real_key
        assert (demo.app_title, demo.extra_headers, demo.low_balance_usd) == ("my-app", {"X-Team": "blue"}, 7.0)
        assert (http.timeout.connect, http.timeout.read) == (3.0, 42.0)
        credits = await OpenRouterClient(demo, http).get_credits()
    finally:
        await http.aclose()
    assert credits.total_credits == sim.total_credits
    [request] = sim.requests
    assert request.path == "/credits"
    assert request.headers["x-team"] == "blue" and request.headers["x-openrouter-title"] == "my-app"
    assert real_key not in str(request.headers)


# ------------------------------------------------------------------------------------------------
# The audit log, opened on first use
# ------------------------------------------------------------------------------------------------


def test_the_audit_log_is_created_on_first_use_not_at_start(tmp_path: Path) -> None:
    path = tmp_path / "private" / "audit.sqlite3"
    audit = open_audit(Settings(audit_db=str(path), audit_privacy="metadata"), demo=False)
    assert isinstance(audit, LazyAudit)
    assert path.parent.is_dir() and (path.parent.stat().st_mode & 0o777) == 0o700
    assert not path.exists() and audit.log is None
    log = audit()
    try:
        assert audit.log is log and path.exists()
    finally:
        audit.close()


def test_no_audit_log_when_it_is_off_and_a_named_database_for_a_demo_that_names_one(tmp_path: Path) -> None:
    assert open_audit(Settings(audit_enabled=False, audit_db=str(tmp_path / "a.sqlite3")), demo=False) is None
    assert open_audit(Settings(audit_enabled=False), demo=True) is None
    named = open_audit(Settings(audit_db=str(tmp_path / "a.sqlite3")), demo=True)
    assert isinstance(named, LazyAudit) and named.path == tmp_path / "a.sqlite3" and named.throwaway is None


def test_an_audit_folder_that_cannot_be_created_fails_at_start_naming_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match=AUDIT_DB_ENV):
        open_audit(Settings(audit_db=str(blocker / "sub" / "audit.sqlite3")), demo=False)
