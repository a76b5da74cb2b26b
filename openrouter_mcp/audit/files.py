"""Keeping the audit log's files private to their owner: rows can hold prompts and answers."""

from __future__ import annotations

import os
from pathlib import Path

from openrouter_mcp.errors import AuditSetupError


def create_private(path: Path) -> None:
    """Make the directory (0700) and an empty database file (0600) before SQLite creates them with the umask's.

    SQLite gives a new `-wal` and `-shm` the database file's own mode, so they follow.
    """
    try:
        try:
            path.parent.mkdir(parents=True, mode=0o700)
        except FileExistsError:
            pass  # ours from before, another process's that just won the race, or a shared dir like /tmp
        else:
            path.parent.chmod(0o700)  # mkdir's mode is filtered by the umask
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
        tighten(path)
    except OSError as exc:
        raise AuditSetupError(f"cannot create the audit log {path}: {exc.strerror or exc}") from None


def tighten(path: Path) -> None:
    """Take group and other permissions off the database and its companions, where an older file has them.

    Raises:
        AuditSetupError: a file is not ours to change.
    """
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = companion.stat().st_mode & 0o777
            if mode & 0o077:
                companion.chmod(mode & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise AuditSetupError(f"cannot make the audit log {companion} private: {exc.strerror or exc}") from None
