"""The audit log the settings ask for, opened on first use.

Importing this module costs start-up nothing: SQLite and the log's own modules are imported when the log is
first opened, by the first call that records a row.
"""

from __future__ import annotations

import shutil
import tempfile
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
    A `throwaway` folder (the demo's) is removed, with the log in it, by `close`.
    """

    def __init__(self, path: Path, privacy: str, *, throwaway: Path | None = None) -> None:
        self.path = path
        self.privacy = privacy
        self.throwaway = throwaway
        self.log: AuditLog | None = None

    def __call__(self) -> AuditLog:
        from openrouter_mcp.audit.log import AuditLog

        self.log = AuditLog(self.path, privacy=cast("Privacy", self.privacy))
        return self.log

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self.throwaway is not None:
            shutil.rmtree(self.throwaway, ignore_errors=True)


def open_audit(settings: Settings, *, demo: bool) -> LazyAudit | None:
    """The audit log the settings ask for, ready to open on first use.

    A demo without a named database records into a throwaway one (an owner-only temporary folder that
    `LazyAudit.close` removes): simulated calls are not usage, but every tool, `get_usage` and budgets
    included, should work in a demo.

    Raises:
        ConfigurationError: the database's folder cannot be created.
    """
    if not settings.audit_enabled:
        return None
    if demo and settings.audit_db is None:
        try:
            folder = Path(tempfile.mkdtemp(prefix="openrouter-mcp-demo-"))  # mode 0700
        except OSError as exc:
            raise ConfigurationError(
                f"the demo's throwaway audit log cannot be created ({exc.strerror}); set {AUDIT_ENV}=off"
            ) from None
        return LazyAudit(folder / "audit.sqlite3", settings.audit_privacy, throwaway=folder)
    path = Path(settings.audit_db).expanduser() if settings.audit_db else default_audit_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"audit log folder {path.parent} cannot be created ({exc.strerror}); "
            f"set {AUDIT_DB_ENV} to another path or {AUDIT_ENV}=off"
        ) from None
    return LazyAudit(path, settings.audit_privacy)
