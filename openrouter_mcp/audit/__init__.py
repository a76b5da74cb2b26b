"""The audit log: one SQLite row per tool call, written before the caller sees the result.

SQLite from the standard library. The file is private to its owner (directory 0700, database and its `-wal`
and `-shm` files 0600) because rows can hold prompts and answers. WAL mode with
`synchronous=NORMAL`: a commit is a `write()` into the WAL, not an `fsync`, so a row survives a
crash or SIGKILL of the process (the OS page cache keeps it) but may be lost with the machine's
power; that is the price of a write fast enough to sit on every call's path. Several processes
(one per stdio session, the CLI) share one file: writers queue on SQLite's lock for up to the busy
timeout.

Privacy applies to the call's arguments and structured response only: "full" stores them as
JSON, "hashes" stores the sha256 of their canonical JSON (sorted keys: enough to prove what was sent
without keeping it), "metadata" stores neither. Tokens, cost, models and routing attempts are always kept,
because budgets and usage reports are computed from them. In "full", a value whose JSON is over
`log.MAX_STORED_JSON_BYTES` (256 KiB) is stored as a marker with its full size and sha256 instead (see there).

The schema version lives in `PRAGMA user_version`; `schema.MIGRATIONS[i]` takes a file from version `i`
to `i + 1`, all pending ones in one transaction. A file from a newer version is refused rather
than guessed at.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openrouter_mcp.audit.lazy import LazyAudit, open_audit
    from openrouter_mcp.audit.log import PRIVACY_MODES, AuditLog, CallRecord, UsageSummary, canonical_json
    from openrouter_mcp.config import default_audit_path
    from openrouter_mcp.errors import AuditError, AuditSetupError
    from openrouter_mcp.routing.personas import Privacy

# Resolved on first access, not at import: the server imports `audit.lazy` at start-up, and that must not
# pull in SQLite (`audit.log`), which is loaded only once the first call is recorded.
_EXPORTS = {
    "PRIVACY_MODES": "openrouter_mcp.audit.log",
    "AuditError": "openrouter_mcp.errors",
    "AuditSetupError": "openrouter_mcp.errors",
    "AuditLog": "openrouter_mcp.audit.log",
    "CallRecord": "openrouter_mcp.audit.log",
    "LazyAudit": "openrouter_mcp.audit.lazy",
    "Privacy": "openrouter_mcp.routing.personas",
    "UsageSummary": "openrouter_mcp.audit.log",
    "canonical_json": "openrouter_mcp.audit.log",
    "default_audit_path": "openrouter_mcp.config",
    "open_audit": "openrouter_mcp.audit.lazy",
}

__all__ = [
    "PRIVACY_MODES",
    "AuditError",
    "AuditSetupError",
    "AuditLog",
    "CallRecord",
    "LazyAudit",
    "Privacy",
    "UsageSummary",
    "canonical_json",
    "default_audit_path",
    "open_audit",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value
