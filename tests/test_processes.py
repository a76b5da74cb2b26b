"""The test helpers that spawn and reap server processes (`tests/processes.py`) keep their promises."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from tests.processes import EXIT_TIMEOUT, ServerProcess, http_server, server_env

pytestmark = pytest.mark.slow

#: Says it is ready, then ignores SIGTERM and waits for signals for ever.
STUBBORN = """
import signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.stderr.write("ready\\n")
sys.stderr.flush()
while True:
    signal.pause()
"""


def test_a_server_that_exits_at_start_up_is_reported_with_its_log_without_waiting_out_the_start_up_bound() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError) as caught:
        with http_server("--host", "0.0.0.0", "--demo", env=server_env(None)):
            pytest.fail("a server refusing to listen on 0.0.0.0 without tokens must not be ready")
    assert "refusing to listen on 0.0.0.0" in str(caught.value)
    assert "status 2" in str(caught.value)
    assert time.monotonic() - started < 15  # its exit ended the wait, not the 20 s bound


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_and_reaped() -> None:
    stubborn = ServerProcess([sys.executable, "-c", STUBBORN], server_env(None))
    stubborn.wait_until_ready("ready", timeout=EXIT_TIMEOUT * 4)
    assert stubborn.stop(grace=0.5) == -signal.SIGKILL
    assert stubborn.returncode == -signal.SIGKILL
    assert stubborn.log() == "ready\n"
