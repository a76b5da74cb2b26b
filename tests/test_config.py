"""Settings come from the environment, every variable listed in one table; the key file must be private."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import openrouter_mcp
from openrouter_mcp import config
from openrouter_mcp.__main__ import parse_args
from openrouter_mcp.config import (
    DEFAULT_BASE_URL,
    ENVIRONMENT,
    PERSONAS_ENV,
    XDG_DATA_HOME_ENV,
    Settings,
    default_audit_path,
)
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.routing import personas
from openrouter_mcp.serving import auth


def test_defaults_need_no_environment_at_all() -> None:
    settings = Settings.from_env({})
    assert settings.api_key is None
    assert settings.base_url == DEFAULT_BASE_URL


def test_the_key_comes_from_the_environment_and_never_prints() -> None:
    settings = Settings.from_env({"OPENROUTER_API_KEY": " sk-or-v1-secret \n"})
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "sk-or-v1-secret"
    assert "sk-or-v1-secret" not in repr(settings) and "sk-or-v1-secret" not in str(settings)


def test_a_private_key_file_is_read(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-or-v1-from-file\n")
    key_file.chmod(0o600)
    settings = Settings.from_env({"OPENROUTER_API_KEY_FILE": str(key_file)})
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "sk-or-v1-from-file"


def test_a_key_file_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-or-v1-from-file\n")
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600") as caught:
        Settings.from_env({"OPENROUTER_API_KEY_FILE": str(key_file)})
    assert "sk-or-v1-from-file" not in str(caught.value)


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        Settings.from_env({"OPENROUTER_API_KEY_FILE": str(tmp_path / "absent")})


@pytest.mark.parametrize("value", ["soon", "-1", "0"])
def test_a_bad_timeout_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigurationError, match="OPENROUTER_READ_TIMEOUT"):
        Settings.from_env({"OPENROUTER_READ_TIMEOUT": value})


def test_the_command_line_has_no_way_to_pass_a_key() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--api-key", "sk-or-v1-x"])
    assert parse_args([]).transport == "stdio"


# ------------------------------------------------------------------------------------------------
# One table of environment variables: what the server reads, what the README says
# ------------------------------------------------------------------------------------------------

PACKAGE = Path(openrouter_mcp.__file__).parent
README = PACKAGE.parent / "README.md"


class RecordingEnvironment(Mapping[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def readme_configuration_table() -> dict[str, str]:
    """{variable: default} from the first table of README.md's Configuration section, backticks dropped."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, str] = {}
    for row in rows:
        name, default = (cell.strip() for cell in row.strip("|").split("|")[:2])
        table[name.strip("`")] = default.strip("`")
    return table


def test_the_server_reads_exactly_the_variables_in_the_table_and_xdg_data_home() -> None:
    env = RecordingEnvironment()
    Settings.from_env(env)
    default_audit_path(env)
    personas.resolve_path(None, env)
    auth.resolve_tokens_path(None, env)
    assert env.asked == {variable.name for variable in ENVIRONMENT} | {XDG_DATA_HOME_ENV}


def test_only_the_modules_checked_above_read_the_environment_and_every_variable_they_name_is_in_the_table() -> None:
    readers = set()
    named = set()
    for source in PACKAGE.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        if re.search(r"os\.environ|getenv\(", text):
            readers.add(source.relative_to(PACKAGE).as_posix())
        named |= set(re.findall(r"\bOPENROUTER_[A-Z0-9_]+\b", text))
    assert readers == {"config.py", "routing/personas.py", "serving/auth.py"}
    assert named - {"OPENROUTER_"} <= {variable.name for variable in ENVIRONMENT}


def test_settings_default_to_what_the_table_shows() -> None:
    settings = Settings.from_env({})
    shown = {variable.name: variable.default for variable in ENVIRONMENT}
    assert shown[config.BASE_URL_ENV] == settings.base_url
    assert shown[config.HTTP_REFERER_ENV] == settings.http_referer
    assert shown[config.APP_TITLE_ENV] == settings.app_title
    assert shown[config.CONNECT_TIMEOUT_ENV] == f"{settings.connect_timeout:g}"
    assert shown[config.READ_TIMEOUT_ENV] == f"{settings.read_timeout:g}"
    assert shown[config.CATALOG_TTL_ENV] == f"{settings.catalog_ttl:g}"
    assert shown[config.HEARTBEAT_INTERVAL_ENV] == f"{settings.heartbeat_interval:g}"
    assert shown[config.LOW_BALANCE_USD_ENV] == f"{settings.low_balance_usd:g}"
    assert shown[config.AUDIT_PRIVACY_ENV] == settings.audit_privacy
    assert (shown[config.AUDIT_ENV], settings.audit_enabled) == ("on", True)
    assert Path(shown[PERSONAS_ENV]) == personas.DEFAULT_PERSONAS_PATH
    assert shown[config.AUDIT_DB_ENV] == "$XDG_DATA_HOME/openrouter-mcp/audit.sqlite3"
    assert default_audit_path({XDG_DATA_HOME_ENV: "/data"}) == Path("/data/openrouter-mcp/audit.sqlite3")


def test_the_readme_configuration_table_lists_exactly_the_variables_with_their_defaults() -> None:
    assert readme_configuration_table() == {variable.name: variable.default for variable in ENVIRONMENT}
