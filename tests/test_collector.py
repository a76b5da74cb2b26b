"""The garbage collector as the server sets it before serving (`serving/collector.py`), in a process of its own:
freezing changes the whole interpreter, so never this test run's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from openrouter_mcp.serving import collector

REPO = Path(__file__).resolve().parents[1]


def test_a_server_about_to_serve_freezes_what_start_up_built_and_spaces_collections_out() -> None:
    code = (
        "import gc; from openrouter_mcp.serving import collector; import openrouter_mcp.server; "
        "print(*gc.get_threshold(), gc.get_freeze_count()); collector.set_for_serving(); "
        "print(*gc.get_threshold(), gc.get_freeze_count())"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    before, after = ([int(field) for field in line.split()] for line in answer.stdout.splitlines())
    assert before[:3] == [700, 10, 10] and before[3] == 0  # CPython's defaults, nothing frozen
    young, older, full, frozen = after
    assert (young, older, full) == (collector.YOUNG_THRESHOLD, collector.OLDER_THRESHOLD, collector.OLDER_THRESHOLD)
    assert frozen > 10_000  # the modules, classes and schemas start-up built
