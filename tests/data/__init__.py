"""Reference data vendored into the repository so the tests run from a bare clone.

`openrouter/` holds OpenRouter's OpenAPI spec and the captured samples the tests read; its `SOURCES.json`
records where each file came from, when it was copied and its SHA-256. `python -m tests.data.refresh`
copies newer versions in.
"""

from __future__ import annotations

from pathlib import Path

#: The vendored OpenRouter reference files (the spec and `samples/`), as the tests read them.
OPENROUTER_DATA = Path(__file__).resolve().parent / "openrouter"
