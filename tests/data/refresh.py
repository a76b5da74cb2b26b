"""Refresh the vendored OpenRouter reference files from their source folder (a tool, not a test).

    python -m tests.data.refresh [--from PATH]

PATH defaults to `../shared/openrouter` beside the repository. Every file listed in
`tests/data/openrouter/SOURCES.json` is compared with its namesake under PATH; a file whose content differs
is copied in and its manifest entry gets the new SHA-256 and today's date (UTC). Files are never added or
dropped here: to vendor another file, add its entry to the manifest by hand, then run this. The tests
themselves only ever read the vendored copies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.data import OPENROUTER_DATA

MANIFEST_NAME = "SOURCES.json"
#: `../shared/openrouter` beside the repository (this file is `<repo>/tests/data/refresh.py`).
DEFAULT_SOURCE = Path(__file__).resolve().parents[3] / "shared" / "openrouter"


class RefreshError(Exception):
    """The source folder lacks a vendored file, or the manifest is unreadable."""


@dataclass(frozen=True)
class Outcome:
    """What a refresh did: the manifest names it updated and those already current."""

    updated: list[str]
    unchanged: list[str]


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_manifest(data_dir: Path) -> dict[str, Any]:
    """The parsed `SOURCES.json` of `data_dir`.

    Raises:
        RefreshError: the manifest is missing or not a JSON object with a `files` object.
    """
    path = data_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RefreshError(f"cannot read the manifest {path}: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise RefreshError(f"{path} is not a manifest: expected an object with a 'files' object")
    return manifest


def refresh(source: Path, data_dir: Path = OPENROUTER_DATA, *, today: dt.date | None = None) -> Outcome:
    """Copy every manifest file whose content differs under `source` into `data_dir`; update the manifest.

    All sources are checked before anything is written, so a missing file leaves the vendored copy whole.

    Raises:
        RefreshError: the manifest is unreadable, or `source` lacks a file the manifest lists.
    """
    manifest = load_manifest(data_dir)
    files: dict[str, dict[str, Any]] = manifest["files"]
    missing = [name for name in files if not (source / name).is_file()]
    if missing:
        raise RefreshError(f"{source} lacks {', '.join(missing)}; nothing was copied")
    stamp = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    updated: list[str] = []
    unchanged: list[str] = []
    for name, entry in files.items():
        digest = sha256_of(source / name)
        target = data_dir / name
        if target.is_file() and sha256_of(target) == digest and entry.get("sha256") == digest:
            unchanged.append(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        # copyfile, not copy2: the source may be read-only, and the vendored copy must stay writable.
        shutil.copyfile(source / name, target)
        entry["sha256"] = digest
        entry["copied"] = stamp
        updated.append(name)
    if updated:
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        (data_dir / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return Outcome(updated, unchanged)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 when the refresh could not run)."""
    parser = argparse.ArgumentParser(prog="python -m tests.data.refresh", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=DEFAULT_SOURCE,
        help=f"folder holding openapi.json and samples/ (default: {DEFAULT_SOURCE})",
    )
    args = parser.parse_args(argv)
    try:
        outcome = refresh(args.source)
    except RefreshError as exc:
        sys.stderr.write(f"refresh failed: {exc}\n")
        return 1
    for name in outcome.updated:
        sys.stdout.write(f"updated   {name}\n")
    for name in outcome.unchanged:
        sys.stdout.write(f"unchanged {name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
