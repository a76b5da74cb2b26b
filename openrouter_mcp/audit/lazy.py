"""The audit log the settings ask for, opened on first use.

Importing this module costs start-up nothing: SQLite and the log's own modules are imported when the log is
first opened, by the first call that records a row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from openrouter_mcp.config import AUDIT_DB_ENV, AUDIT_ENV, Settings, default_audit_path
from openrouter_mcp.errors import ConfigurationError

if TYPE_CHECKING:
    from openrouter_mcp.audit.log import AuditLog
    from openrouter_mcp.routing.personas import Privacy


class LazyAudit:
    """Opens the audit log on first use: SQLite and the file cost start-up ~10 ms that no host should wait for.

    The folder is checked (and created, owner-only) at start, so a bad path still fails at once.
    """

    def __init__(self, path: Path, privacy: str) -> None:
        self.path = path
        self.privacy = privacy
        self.log: AuditLog | None = None

    def __call__(self) -> AuditLog:
        from openrouter_mcp.audit.log import AuditLog

        self.log = AuditLog(self.path, privacy=cast("Privacy", self.privacy))
        return self.log

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def open_audit(settings: Settings, *, demo: bool) -> LazyAudit | None:
    """The audit log the settings ask for, ready to open on first use.

    A demo records nothing unless a database is named explicitly: simulated calls are not usage.

    Raises:
        ConfigurationError: the database's folder cannot be created.
    """
    if not settings.audit_enabled or (demo and settings.audit_db is None):
        return None
    path = Path(settings.audit_db).expanduser() if settings.audit_db else default_audit_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"audit log folder {path.parent} cannot be created ({exc.strerror}); "
            f"set {AUDIT_DB_ENV} to another path or {AUDIT_ENV}=off"
        ) from None
    return LazyAudit(path, settings.audit_privacy)
