"""Which database holds the ledger: a `postgresql://` URL from `--database-url` or `OPENROUTER_MCP_DATABASE_URL`.

Light on purpose (no psycopg): start-up and the audit CLI check the URL here, and import the PostgreSQL engine
(`audit/postgres.py`, the optional extra `openrouter-mcp[postgres]`) only when one is given. A URL is shown only
with its password replaced by `***` (`redact_url`), in every message and log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from openrouter_mcp.config import DATABASE_URL_ENV
from openrouter_mcp.errors import ConfigurationError

if TYPE_CHECKING:
    from openrouter_mcp.audit.postgres import PostgresLedger
    from openrouter_mcp.routing.personas import Privacy

SCHEMES = ("postgresql", "postgres")
FLAG = "--database-url"


def redact_url(url: str) -> str:
    """`url` with its password (in the authority or a `password=` query parameter) replaced by `***`."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostinfo = netloc.rpartition("@")
            netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}"
        query = urlencode(
            [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
            safe="/*",
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(an unparsable database URL)"


def url_password(url: str) -> str | None:
    """The password `url` carries (in its authority or a `password=` parameter), if any."""
    try:
        parts = urlsplit(url)
        return parts.password or dict(parse_qsl(parts.query)).get("password")
    except ValueError:
        return None


def check_url(url: str) -> str:
    """`url` if it is a PostgreSQL URL.

    Raises:
        ConfigurationError: not a `postgresql://` URL (the message shows it redacted).
    """
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"{DATABASE_URL_ENV} / {FLAG} must be a postgresql:// URL, got {redact_url(url)!r} "
            "(for example postgresql://user:password@db.example.com:5432/openrouter_mcp)"
        )
    return url


def resolve_database_url(flag: str | None, variable: SecretStr | None) -> str | None:
    """The ledger's database URL: `--database-url`, else `variable` (the setting); None keeps SQLite.

    A password on the command line is refused, as the API key is: every user of the machine can read argv (`ps`).

    Raises:
        ConfigurationError: not a PostgreSQL URL, or a password given on the command line.
    """
    if flag:
        if url_password(flag) is not None:
            raise ConfigurationError(
                f"{FLAG} {redact_url(flag)} carries a password, which every user of this machine can read in the "
                f"process list: put the URL in {DATABASE_URL_ENV} instead, or the password in ~/.pgpass"
            )
        return check_url(flag)
    if variable is not None:
        return check_url(variable.get_secret_value())
    return None


async def open_database(url: str, *, privacy: str = "full", spooled: bool = True) -> PostgresLedger:
    """The PostgreSQL ledger at `url`, reached and migrated; `spooled`: with its local spool (a server's; the CLI
    only reads).

    Raises:
        ConfigurationError: psycopg is not installed (the message names the extra), or (`AuditSetupError`) the
            database cannot be reached, refuses us, or holds a newer schema.
    """
    try:
        from openrouter_mcp.audit.postgres import PostgresLedger, spool_for
    except ImportError as exc:
        raise ConfigurationError(
            f"a PostgreSQL ledger needs psycopg ({exc.msg}): pip install 'openrouter-mcp[postgres]'"
        ) from None
    spool = spool_for(url) if spooled else None
    return await PostgresLedger.open(url, privacy=cast("Privacy", privacy), spool=spool)
