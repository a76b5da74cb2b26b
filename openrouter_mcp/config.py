"""Settings, read from the environment only.

The API key is never taken from the command line: argv is visible to every user of the machine
(`ps`), and MCP hosts store `args` in plain config files that get shared. It comes from
`OPENROUTER_API_KEY`, else from a file named by `OPENROUTER_API_KEY_FILE` that only its owner can read, else
from where `openrouter-mcp login` stored it (`keystore`: the OS keychain, then an owner-only file).

`ENVIRONMENT` lists every variable the server reads, with the default users are shown; other modules import
the names from here. This module stays light: it is imported at every start-up.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from openrouter_mcp.errors import ConfigurationError

if TYPE_CHECKING:
    from openrouter_mcp.keystore import KeyStore

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
#: OpenRouter's consent page for sign-in with OAuth PKCE (`openrouter-mcp login`).
DEFAULT_AUTH_URL = "https://openrouter.ai/auth"
DEFAULT_REFERER = "https://github.com/openrouter-mcp/openrouter-mcp"
DEFAULT_TITLE = "openrouter-mcp"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_LOOKUP_DEADLINE = 30.0
DEFAULT_CHAT_DEADLINE = 300.0
DEFAULT_STREAM_DEADLINE = 600.0
#: OpenRouter's full /models is 1-2 MB: 32 MiB leaves room to grow, and still bounds what one answer can cost.
DEFAULT_MAX_RESPONSE_MB = 32.0
MIB = 1024 * 1024
DEFAULT_CATALOG_TTL = 300.0
DEFAULT_HEARTBEAT_INTERVAL = 5.0
DEFAULT_LOW_BALANCE_USD = 1.0
AUDIT_PRIVACY_MODES = ("full", "hashes", "metadata")
#: Where `routing.personas` looks when neither `--personas` nor its variable names a file.
DEFAULT_PERSONAS_FILE = "~/.config/openrouter-mcp/personas.toml"

API_KEY_ENV = "OPENROUTER_API_KEY"
API_KEY_FILE_ENV = "OPENROUTER_API_KEY_FILE"
BASE_URL_ENV = "OPENROUTER_BASE_URL"
AUTH_URL_ENV = "OPENROUTER_AUTH_URL"
HTTP_REFERER_ENV = "OPENROUTER_HTTP_REFERER"
APP_TITLE_ENV = "OPENROUTER_APP_TITLE"
CONNECT_TIMEOUT_ENV = "OPENROUTER_CONNECT_TIMEOUT"
READ_TIMEOUT_ENV = "OPENROUTER_READ_TIMEOUT"
LOOKUP_DEADLINE_ENV = "OPENROUTER_LOOKUP_DEADLINE"
CHAT_DEADLINE_ENV = "OPENROUTER_CHAT_DEADLINE"
STREAM_DEADLINE_ENV = "OPENROUTER_STREAM_DEADLINE"
MAX_RESPONSE_MB_ENV = "OPENROUTER_MAX_RESPONSE_MB"
CATALOG_TTL_ENV = "OPENROUTER_CATALOG_TTL"
HEARTBEAT_INTERVAL_ENV = "OPENROUTER_HEARTBEAT_INTERVAL"
PERSONAS_ENV = "OPENROUTER_MCP_PERSONAS"
TOKENS_ENV = "OPENROUTER_MCP_TOKENS"
AUDIT_ENV = "OPENROUTER_MCP_AUDIT"
AUDIT_DB_ENV = "OPENROUTER_MCP_AUDIT_DB"
AUDIT_PRIVACY_ENV = "OPENROUTER_MCP_AUDIT_PRIVACY"
DATABASE_URL_ENV = "OPENROUTER_MCP_DATABASE_URL"
LOW_BALANCE_USD_ENV = "OPENROUTER_LOW_BALANCE_USD"
TRACE_CONTENT_ENV = "OPENROUTER_MCP_TRACE_CONTENT"
#: Read but not ours: the XDG base directory for the default audit database.
XDG_DATA_HOME_ENV = "XDG_DATA_HOME"


@dataclass(frozen=True)
class EnvVar:
    """One environment variable the server reads, as users are told about it."""

    name: str
    default: str  # as shown to users: a value, or what happens when it is unset
    meaning: str  # one line


#: Every variable the server reads, in the order users are told about them: the README's Configuration table
#: and the `--help` epilog are checked against (or built from) this table.
ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar(API_KEY_ENV, "unset", "your key; without one, catalog tools still work and paid tools say how to set it"),
    EnvVar(API_KEY_FILE_ENV, "unset", "a file holding the key instead, refused unless only its owner can read it"),
    EnvVar(BASE_URL_ENV, DEFAULT_BASE_URL, "the API root"),
    EnvVar(AUTH_URL_ENV, DEFAULT_AUTH_URL, "`openrouter-mcp login`: OpenRouter's consent page for signing in"),
    EnvVar(HTTP_REFERER_ENV, DEFAULT_REFERER, "app attribution header `HTTP-Referer`"),
    EnvVar(APP_TITLE_ENV, DEFAULT_TITLE, "app attribution header `X-OpenRouter-Title`"),
    EnvVar(CONNECT_TIMEOUT_ENV, f"{DEFAULT_CONNECT_TIMEOUT:g}", "seconds to open a connection"),
    EnvVar(READ_TIMEOUT_ENV, f"{DEFAULT_READ_TIMEOUT:g}", "seconds to wait between bytes of an answer"),
    EnvVar(
        LOOKUP_DEADLINE_ENV,
        f"{DEFAULT_LOOKUP_DEADLINE:g}",
        "seconds an account or catalog call may take in all, however slowly its answer arrives",
    ),
    EnvVar(CHAT_DEADLINE_ENV, f"{DEFAULT_CHAT_DEADLINE:g}", "seconds a chat or message call (not streamed) may take"),
    EnvVar(
        STREAM_DEADLINE_ENV,
        f"{DEFAULT_STREAM_DEADLINE:g}",
        "seconds a streamed chat may take in all (between two of its events: the read timeout)",
    ),
    EnvVar(
        MAX_RESPONSE_MB_ENV,
        f"{DEFAULT_MAX_RESPONSE_MB:g}",
        "MiB of one answer (or one stream) read into memory at most; a larger one is an error",
    ),
    EnvVar(CATALOG_TTL_ENV, f"{DEFAULT_CATALOG_TTL:g}", "seconds a fetched model catalog stays fresh"),
    EnvVar(
        HEARTBEAT_INTERVAL_ENV,
        f"{DEFAULT_HEARTBEAT_INTERVAL:g}",
        "seconds between progress heartbeats while a chat waits",
    ),
    EnvVar(
        PERSONAS_ENV,
        DEFAULT_PERSONAS_FILE,
        "the personas file; `--personas` wins, and the default applies only if it exists",
    ),
    EnvVar(TOKENS_ENV, "unset", "HTTP transports: the bearer tokens file; `--auth-tokens` wins"),
    EnvVar(AUDIT_ENV, "on", "`off` turns the audit log off (and with it budgets)"),
    EnvVar(
        AUDIT_DB_ENV,
        "$XDG_DATA_HOME/openrouter-mcp/audit.sqlite3",
        "the audit database; XDG_DATA_HOME defaults to ~/.local/share",
    ),
    EnvVar(
        AUDIT_PRIVACY_ENV,
        AUDIT_PRIVACY_MODES[0],
        f"what the audit log keeps of prompts and answers: {', '.join(AUDIT_PRIVACY_MODES)}",
    ),
    EnvVar(
        DATABASE_URL_ENV,
        "unset",
        "a postgresql:// URL: keep the ledger in PostgreSQL, shared by replicas; `--database-url` wins",
    ),
    EnvVar(
        LOW_BALANCE_USD_ENV,
        f"{DEFAULT_LOW_BALANCE_USD:g}",
        "get_credits and get_current_key warn below this many USD left",
    ),
    EnvVar(
        TRACE_CONTENT_ENV,
        "off",
        "`on` lets trace spans carry prompts and answers, for personas whose audit privacy is `full`",
    ),
)
#: Longest API key accepted (OpenRouter's are ~73 characters) and largest secret file read.
MAX_KEY_CHARS = 512
MAX_SECRET_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, resolved once at start-up from the variables in `ENVIRONMENT`."""

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    auth_url: str = DEFAULT_AUTH_URL
    http_referer: str = DEFAULT_REFERER
    app_title: str = DEFAULT_TITLE
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    #: Overall deadlines per kind of upstream call: the read timeout alone lets a dripping answer last forever.
    lookup_deadline: float = DEFAULT_LOOKUP_DEADLINE
    chat_deadline: float = DEFAULT_CHAT_DEADLINE
    stream_deadline: float = DEFAULT_STREAM_DEADLINE
    max_response_bytes: int = int(DEFAULT_MAX_RESPONSE_MB * MIB)
    catalog_ttl: float = DEFAULT_CATALOG_TTL
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    audit_enabled: bool = True
    audit_db: str | None = None
    audit_privacy: str = AUDIT_PRIVACY_MODES[0]
    #: A postgresql:// URL (secret: it may hold a password); None keeps the ledger in SQLite.
    database_url: SecretStr | None = None
    low_balance_usd: float = DEFAULT_LOW_BALANCE_USD
    #: Trace spans may carry prompts and answers (only where the audit privacy is `full`).
    trace_content: bool = False

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, key_store: KeyStore | None = None, read_key: bool = True
    ) -> Settings:
        """Read settings from `environ` (default: the process environment).

        The key: `OPENROUTER_API_KEY`, else `OPENROUTER_API_KEY_FILE`, else `key_store`, where
        `openrouter-mcp login` keeps it. `key_store` defaults to the user's (keychain, then file) when reading
        the process environment, and to none when `environ` is given: a given environment is the whole world.
        `read_key=False` reads no key at all (`api_key` None).

        Raises:
            ConfigurationError: a value is malformed or the key file is unsafe or unreadable.
        """
        env = os.environ if environ is None else environ
        return cls(
            api_key=_read_api_key(env, key_store, default_store=environ is None) if read_key else None,
            base_url=env.get(BASE_URL_ENV, DEFAULT_BASE_URL).rstrip("/"),
            auth_url=env.get(AUTH_URL_ENV, DEFAULT_AUTH_URL),
            http_referer=env.get(HTTP_REFERER_ENV, DEFAULT_REFERER),
            app_title=env.get(APP_TITLE_ENV, DEFAULT_TITLE),
            connect_timeout=_seconds(env, CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT),
            read_timeout=_seconds(env, READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT),
            lookup_deadline=_seconds(env, LOOKUP_DEADLINE_ENV, DEFAULT_LOOKUP_DEADLINE),
            chat_deadline=_seconds(env, CHAT_DEADLINE_ENV, DEFAULT_CHAT_DEADLINE),
            stream_deadline=_seconds(env, STREAM_DEADLINE_ENV, DEFAULT_STREAM_DEADLINE),
            max_response_bytes=_mebibytes(env, MAX_RESPONSE_MB_ENV, DEFAULT_MAX_RESPONSE_MB),
            catalog_ttl=_seconds(env, CATALOG_TTL_ENV, DEFAULT_CATALOG_TTL),
            heartbeat_interval=_seconds(env, HEARTBEAT_INTERVAL_ENV, DEFAULT_HEARTBEAT_INTERVAL),
            audit_enabled=_switch(env, AUDIT_ENV, default=True),
            audit_db=env.get(AUDIT_DB_ENV) or None,
            audit_privacy=_choice(env, AUDIT_PRIVACY_ENV, AUDIT_PRIVACY_MODES),
            database_url=database_url(env),
            low_balance_usd=_amount(env, LOW_BALANCE_USD_ENV, DEFAULT_LOW_BALANCE_USD),
            trace_content=_switch(env, TRACE_CONTENT_ENV, default=False),
        )


#: What a helper process of ours (the audit log's writer) keeps of the server's environment: enough to find Python
#: and this package, and to measure its coverage in the test suite. Never a key, a token or a database password.
_HELPER_ENV_NAMES = frozenset({"PATH", "HOME", "TMPDIR", "TEMP", "TMP", "LANG", "LC_ALL", "LC_CTYPE", "VIRTUAL_ENV"})
_HELPER_ENV_PREFIXES = ("PYTHON", "COVERAGE_")


def helper_process_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a helper process: `env` (default: this process's) minus all it does not need."""
    source = os.environ if env is None else env
    return {
        name: value
        for name, value in source.items()
        if name in _HELPER_ENV_NAMES or name.startswith(_HELPER_ENV_PREFIXES)
    }


def default_audit_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$OPENROUTER_MCP_AUDIT_DB`, else `$XDG_DATA_HOME/openrouter-mcp/audit.sqlite3`, else under ~/.local/share."""
    env = os.environ if environ is None else environ
    if explicit := env.get(AUDIT_DB_ENV):
        return Path(explicit).expanduser()
    data_home = env.get(XDG_DATA_HOME_ENV)
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(data_home) if data_home and Path(data_home).is_absolute() else Path.home() / ".local" / "share"
    return base / "openrouter-mcp" / "audit.sqlite3"


def database_url(environ: Mapping[str, str] | None = None) -> SecretStr | None:
    """`$OPENROUTER_MCP_DATABASE_URL` (a secret: it may hold a password), or None."""
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_URL_ENV, "").strip()
    return SecretStr(url) if url else None


def otel_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `OTEL_*` variables: OpenTelemetry's own (its SDK documents them), read by `observability.tracing`."""
    env = os.environ if environ is None else environ
    return {name: value for name, value in env.items() if name.startswith("OTEL_")}


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds (example: {name}={default:g})") from None
    if not value > 0:  # `not >` also refuses nan
        raise ConfigurationError(f"{name} must be greater than 0 seconds, got {raw!r}")
    return value


def _mebibytes(env: Mapping[str, str], name: str, default: float) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return int(default * MIB)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number of MiB (example: {name}={default:g})") from None
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{name} must be a number of MiB greater than 0, got {raw!r}")
    return max(1, int(value * MIB))


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


def write_private_file(path: Path, text: str, what: str) -> None:
    """Write `text` to `path` so that only its owner can ever read it: a new folder is made 0700, and the text
    goes to a 0600 temporary file beside `path` that then replaces it, so no reader sees it half written.

    Raises:
        ConfigurationError: the folder or the file cannot be written (the message never contains `text`).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            path.parent.mkdir(parents=True, mode=0o700)
        except FileExistsError:
            pass
        else:
            path.parent.chmod(0o700)  # mkdir's mode is filtered by the umask
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temporary, flags, 0o600)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # os.open's mode is filtered by the umask too
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {what}: {exc.strerror or exc}") from None


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


def key_variables_set(environ: Mapping[str, str] | None = None) -> list[str]:
    """The key variables set in `environ` (default: the process environment): they win over a stored key."""
    env = os.environ if environ is None else environ
    return [name for name in (API_KEY_ENV, API_KEY_FILE_ENV) if env.get(name, "").strip()]


def _read_api_key(env: Mapping[str, str], key_store: KeyStore | None, *, default_store: bool) -> SecretStr | None:
    key = env.get(API_KEY_ENV, "").strip()
    if key:
        return checked_api_key(key, API_KEY_ENV)
    key_file = env.get(API_KEY_FILE_ENV, "").strip()
    if not key_file:
        if key_store is None and default_store:
            # Imported here: keyring scans its backends' entry points (~0.15 s), which a server given its key in
            # the environment never pays.
            from openrouter_mcp.keystore import KeyStore

            key_store = KeyStore.default()
        found = key_store.load() if key_store is not None else None
        return found[0] if found is not None else None
    path = Path(key_file).expanduser()
    # A key others can read is as good as leaked: refuse it rather than bless it.
    key = read_private_file(path, f"{API_KEY_FILE_ENV} {path}").strip()
    if not key:
        raise ConfigurationError(f"{API_KEY_FILE_ENV} {path} is empty")
    return checked_api_key(key, f"the key in {API_KEY_FILE_ENV} {path}")
