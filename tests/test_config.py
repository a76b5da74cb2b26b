"""Settings come from the environment; the key file must be private."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrouter_mcp.__main__ import parse_args
from openrouter_mcp.config import DEFAULT_BASE_URL, Settings
from openrouter_mcp.errors import ConfigurationError


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
