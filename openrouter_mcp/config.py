"""Settings, read from the environment only.

The API key is never taken from the command line: argv is visible to every user of the machine
(`ps`), and MCP hosts store `args` in plain config files that get shared. It comes from
`OPENROUTER_API_KEY`, or from a file named by `OPENROUTER_API_KEY_FILE` that only its owner can read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from openrouter_mcp.errors import ConfigurationError

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_REFERER = "https://github.com/openrouter-mcp/openrouter-mcp"
DEFAULT_TITLE = "openrouter-mcp"
AUDIT_DB_ENV = "OPENROUTER_MCP_AUDIT_DB"
#: Longest API key accepted (OpenRouter's are ~73 characters) and largest secret file read.
MAX_KEY_CHARS = 512
MAX_SECRET_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, resolved once at start-up.

    | variable | default | meaning |
    |---|---|---|
    | OPENROUTER_API_KEY | unset | the key; public tools work without one |
    | OPENROUTER_API_KEY_FILE | unset | a file holding the key, mode 0600 or stricter |
    | OPENROUTER_BASE_URL | https://openrouter.ai/api/v1 | the API root |
    | OPENROUTER_HTTP_REFERER | project URL | app attribution (`HTTP-Referer`) |
    | OPENROUTER_APP_TITLE | openrouter-mcp | app attribution (`X-OpenRouter-Title`) |
    | OPENROUTER_CONNECT_TIMEOUT | 10 | seconds to open a connection |
    | OPENROUTER_READ_TIMEOUT | 120 | seconds between bytes of an answer |
    | OPENROUTER_CATALOG_TTL | 300 | seconds a fetched model catalog stays fresh |
    | OPENROUTER_HEARTBEAT_INTERVAL | 5 | seconds between progress heartbeats while a chat waits |
    | OPENROUTER_MCP_AUDIT | on | `off` disables the audit log (and so budgets) |
    | OPENROUTER_MCP_AUDIT_DB | data dir | the audit database (default `$XDG_DATA_HOME/openrouter-mcp/audit.sqlite3`) |
    | OPENROUTER_MCP_AUDIT_PRIVACY | full | what the log keeps of prompts and answers: full, hashes or metadata |
    | OPENROUTER_LOW_BALANCE_USD | 1 | get_credits / get_current_key warn below this many USD left |
    """

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    http_referer: str = DEFAULT_REFERER
    app_title: str = DEFAULT_TITLE
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    catalog_ttl: float = 300.0
    heartbeat_interval: float = 5.0
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    audit_enabled: bool = True
    audit_db: str | None = None
    audit_privacy: str = "full"
    low_balance_usd: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `environ` (default: the process environment).

        Raises:
            ConfigurationError: a value is malformed or the key file is unsafe or unreadable.
        """
        env = os.environ if environ is None else environ
        return cls(
            api_key=_read_api_key(env),
            base_url=env.get("OPENROUTER_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            http_referer=env.get("OPENROUTER_HTTP_REFERER", DEFAULT_REFERER),
            app_title=env.get("OPENROUTER_APP_TITLE", DEFAULT_TITLE),
            connect_timeout=_seconds(env, "OPENROUTER_CONNECT_TIMEOUT", 10.0),
            read_timeout=_seconds(env, "OPENROUTER_READ_TIMEOUT", 120.0),
            catalog_ttl=_seconds(env, "OPENROUTER_CATALOG_TTL", 300.0),
            heartbeat_interval=_seconds(env, "OPENROUTER_HEARTBEAT_INTERVAL", 5.0),
            audit_enabled=_switch(env, "OPENROUTER_MCP_AUDIT", default=True),
            audit_db=env.get("OPENROUTER_MCP_AUDIT_DB") or None,
            audit_privacy=_choice(env, "OPENROUTER_MCP_AUDIT_PRIVACY", ("full", "hashes", "metadata")),
            low_balance_usd=_amount(env, "OPENROUTER_LOW_BALANCE_USD", 1.0),
        )


def default_audit_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$OPENROUTER_MCP_AUDIT_DB`, else `$XDG_DATA_HOME/openrouter-mcp/audit.sqlite3`, else under ~/.local/share."""
    env = os.environ if environ is None else environ
    if explicit := env.get(AUDIT_DB_ENV):
        return Path(explicit).expanduser()
    data_home = env.get("XDG_DATA_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(data_home) if data_home and Path(data_home).is_absolute() else Path.home() / ".local" / "share"
    return base / "openrouter-mcp" / "audit.sqlite3"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds (example: {name}={default:g})") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be greater than 0 seconds, got {raw!r}")
    return value


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise ConfigurationError(f"{name}={raw!r} is not on or off")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip() or choices[0]
    if raw not in choices:
        raise ConfigurationError(f"{name}={raw!r} is not one of: {', '.join(choices)}")
    return raw


def _amount(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an amount in USD (example: {name}={default:g})") from None
    if value < 0:
        raise ConfigurationError(f"{name} cannot be negative, got {raw!r}")
    return value


def read_private_file(path: Path, what: str) -> str:
    """The text of a secret-bearing file, refused unless only its owner can read and write it.

    Raises:
        ConfigurationError: others can access the file (with the `chmod` that fixes it), it is not a regular
            file (a FIFO, a device, a folder), or it is unreadable.
    """
    try:
        # Non-blocking, then checked on the open descriptor: opening a FIFO would otherwise hang start-up until
        # someone writes to it, and a check of the path before opening it could be raced.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigurationError(f"{what} cannot be read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigurationError(f"{what} is not a regular file; point it at a file holding only the secret.")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"{what} is accessible to other users (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {path}` and restart."
            )
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read(MAX_SECRET_FILE_BYTES).decode("utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{what} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{what} is not UTF-8 text") from None
    finally:
        os.close(fd)


def checked_api_key(key: str, source: str) -> SecretStr:
    """`key` (already stripped) as a secret, if it can travel in an `Authorization` header as it is.

    A key with a line break, a space or a control character inside would make the HTTP client refuse the
    header with a message that quotes it, so it would leak into results and logs; refuse it here, at
    start-up, without ever showing it.

    Raises:
        ConfigurationError: the key is not one printable token (the message never contains the key).
    """
    bad = next((i for i, char in enumerate(key) if not 0x21 <= ord(char) <= 0x7E), None)
    if bad is not None or len(key) > MAX_KEY_CHARS:
        problem = (
            f"is {len(key)} characters long (at most {MAX_KEY_CHARS})"
            if bad is None
            else f"contains a space, line break or other non-printable character (at position {bad + 1})"
        )
        raise ConfigurationError(
            f"{source} {problem}: an OpenRouter key is one printable token such as sk-or-v1-...; "
            "copy it again from https://openrouter.ai/settings/keys"
        )
    return SecretStr(key)


def _read_api_key(env: Mapping[str, str]) -> SecretStr | None:
    key = env.get("OPENROUTER_API_KEY", "").strip()
    if key:
        return checked_api_key(key, "OPENROUTER_API_KEY")
    key_file = env.get("OPENROUTER_API_KEY_FILE", "").strip()
    if not key_file:
        return None
    path = Path(key_file).expanduser()
    # A key others can read is as good as leaked: refuse it rather than bless it.
    key = read_private_file(path, f"OPENROUTER_API_KEY_FILE {path}").strip()
    if not key:
        raise ConfigurationError(f"OPENROUTER_API_KEY_FILE {path} is empty")
    return checked_api_key(key, f"the key in OPENROUTER_API_KEY_FILE {path}")
