"""The spool: answered calls whose ledger write failed, kept on local disk until the ledger takes them.

A JSON Lines file, owner-only (0600 in a 0700 folder), one record per line, each append `fsync`'d before the
answer goes back: an answer the user got is never missing from the ledger for good. The file lives beside
the ledger's database (`<db>.spool.jsonl`); when that folder cannot be written (the fault that broke the
ledger may be the folder itself), in a per-user folder under the system temp dir. Appends and replays take
an exclusive `flock`, so processes sharing a ledger share its spool safely. Replaying is idempotent: each
record carries its unique `record_id`, and the ledger stores an id once.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from openrouter_mcp.audit.log import CallRecord
from openrouter_mcp.errors import AuditError
from openrouter_mcp.routing.personas import Privacy

logger = logging.getLogger(__name__)


class Spool:
    """Records waiting for the ledger, in the first of `paths` that can be written."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    @classmethod
    def beside(cls, db: Path) -> Spool:
        """The spool of the ledger at `db`: beside it, else in a private folder under the temp dir."""
        digest = hashlib.sha256(str(db.expanduser().absolute()).encode()).hexdigest()[:16]
        fallback = Path(tempfile.gettempdir()) / f"openrouter-mcp-{os.getuid()}" / f"spool-{digest}.jsonl"
        return cls([db.with_name(db.name + ".spool.jsonl"), fallback])

    def append(self, record: CallRecord, privacy: Privacy | None) -> Path:
        """Add `record` and fsync it; returns the file it went to.

        Raises:
            AuditError: no spool file could be written (the record is lost: the caller logs it).
        """
        line = json.dumps({"record": dataclasses.asdict(record), "privacy": privacy}, default=str) + "\n"
        problems: list[str] = []
        for path in self.paths:
            try:
                _private_folder(path.parent)
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    size = os.fstat(fd).st_size
                    # A line torn by a crash must not swallow this one: start on a line of its own.
                    torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
                    os.write(fd, (("\n" if torn else "") + line).encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)  # also drops the lock
                return path
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror or exc}")
        raise AuditError(f"could not spool the record either ({'; '.join(problems)})")

    def pending(self) -> bool:
        """Whether any spool file holds something (a cheap stat per file)."""
        for path in self.paths:
            try:
                if path.stat().st_size > 0:
                    return True
            except OSError:
                continue
        return False

    def replay(self, write: Callable[[CallRecord, Privacy | None], object]) -> int:
        """Hand every spooled record to `write` (which must be idempotent), then empty the files; the count.

        A file is emptied only once every record in it was written: if `write` fails, the file is kept
        whole and replayed again later (records already written are then skipped by their id). A line
        that is not a record (a write cut by a crash) is logged and dropped.

        Raises:
            AuditError: `write` failed (what it raises).
        """
        replayed = 0
        for path in self.paths:
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with os.fdopen(os.dup(fd), "r", encoding="utf-8") as file:
                    lines = file.read().splitlines()
                for line in lines:
                    item = _parse(line, path)
                    if item is not None:
                        write(*item)
                        replayed += 1
                os.ftruncate(fd, 0)
                os.fsync(fd)
            finally:
                os.close(fd)
        if replayed:
            logger.warning("replayed %d spooled audit record(s) into the ledger", replayed)
        return replayed


def _parse(line: str, path: Path) -> tuple[CallRecord, Privacy | None] | None:
    if not line.strip():
        return None
    try:
        data: dict[str, Any] = json.loads(line)
        fields = {f.name for f in dataclasses.fields(CallRecord)}
        record = CallRecord(**{k: v for k, v in data["record"].items() if k in fields})
        return record, cast("Privacy | None", data.get("privacy"))
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("dropped an unreadable line of the audit spool %s (%s): %.200s", path, exc, line)
        return None


def _private_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return
    folder.chmod(0o700)  # mkdir's mode is filtered by the umask
