"""Where the shared OpenRouter reference material lives (never copied into this repo)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_openrouter_dir() -> Path:
    """`$OPENROUTER_SHARED` if set, else `../shared/openrouter` beside the repository.

    Raises:
        FileNotFoundError: neither exists, so the contract tests cannot run (they must not skip).
    """
    candidates = [Path(p) for p in (os.environ.get("OPENROUTER_SHARED"),) if p]
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "openrouter")
    for candidate in candidates:
        if (candidate / "openapi.json").is_file():
            return candidate
    raise FileNotFoundError(
        "OpenRouter reference files not found: set OPENROUTER_SHARED to the folder holding openapi.json "
        f"(looked in {', '.join(map(str, candidates))})"
    )
