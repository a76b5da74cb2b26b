"""The API key: refused at start-up unless it is one printable token, read only from a regular private file,
and redacted in every form a message could quote it in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from openrouter_mcp.config import Settings
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.upstream.client import redact, secret_forms

KEY = "sk-or-v1-" + "ab12" * 16


@pytest.mark.parametrize(
    "key",
    [KEY[:20] + "\n" + KEY[20:], KEY[:20] + "\r\nX-Evil: 1", KEY[:20] + " " + KEY[20:], KEY + "\x00", KEY + "é"],
    ids=["newline", "header-injection", "space", "nul", "non-ascii"],
)
def test_a_key_that_is_not_one_printable_token_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"OPENROUTER_API_KEY": key})

    message = str(caught.value)
    assert "OPENROUTER_API_KEY" in message and "printable" in message
    assert KEY[:20] not in message and KEY[20:] not in message


def test_a_key_file_holding_a_key_with_a_line_break_inside_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY[:30] + "\n" + KEY[30:] + "\n")
    path.chmod(0o600)

    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"OPENROUTER_API_KEY_FILE": str(path)})

    assert "OPENROUTER_API_KEY_FILE" in str(caught.value) and KEY[:30] not in str(caught.value)


def test_a_key_file_with_one_trailing_newline_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    path.chmod(0o600)

    settings = Settings.from_env({"OPENROUTER_API_KEY_FILE": str(path)})

    assert settings.api_key is not None and settings.api_key.get_secret_value() == KEY


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_as_the_key_file_is_refused_at_once_instead_of_hanging_start_up(tmp_path: Path) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            Settings.from_env({"OPENROUTER_API_KEY_FILE": str(fifo)})
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)

    assert not reader.is_alive(), "reading a FIFO key file hung"
    assert len(outcome) == 1 and isinstance(outcome[0], ConfigurationError)
    assert "not a regular file" in str(outcome[0])


def test_a_directory_as_the_key_file_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"OPENROUTER_API_KEY_FILE": str(tmp_path)})

    assert "OPENROUTER_API_KEY_FILE" in str(caught.value)


@pytest.mark.slow
def test_the_server_exits_2_on_a_key_with_a_newline_and_its_stderr_does_not_hold_the_key() -> None:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env["OPENROUTER_API_KEY"] = KEY[:25] + "\n" + KEY[25:]

    done = subprocess.run(
        [sys.executable, "-m", "openrouter_mcp"], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30
    )

    assert done.returncode == 2
    assert b"printable" in done.stderr
    assert KEY[:25].encode() not in done.stderr + done.stdout and KEY[25:].encode() not in done.stderr + done.stdout


def test_redaction_catches_the_key_as_is_escaped_and_percent_encoded() -> None:
    odd = 'sk-or-v1-abc"\n\\def/+=?'
    forms = secret_forms(odd)

    for text in (odd, json.dumps(odd), repr(odd), quote(odd, safe=""), quote(odd)):
        redacted = redact(f"upstream said: {text}!", forms)
        assert "abc" not in redacted and "[redacted]" in redacted, text
