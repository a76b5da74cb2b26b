"""ClientLimits: at most N calls running per user; the next is refused at once, not queued."""

from __future__ import annotations

import anyio
import pytest

from openrouter_mcp.errors import NotAllowedError
from openrouter_mcp.serving.limits import ClientLimits, TooBusyError

pytestmark = pytest.mark.anyio


async def test_a_user_at_the_limit_is_refused_at_once_and_other_users_are_not() -> None:
    limits = ClientLimits(2)
    release = anyio.Event()
    started = 0
    all_started = anyio.Event()

    async def hold(user: str) -> None:
        nonlocal started
        async with limits.slot(user):
            started += 1
            if started == 3:
                all_started.set()
            await release.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for user in ("alice", "alice", "bob"):
                group.start_soon(hold, user)
            await all_started.wait()
            assert (limits.running("alice"), limits.running("bob")) == (2, 1)

            with pytest.raises(TooBusyError) as caught:
                async with limits.slot("alice"):
                    pytest.fail("a third call for alice must not start")
            async with limits.slot("bob"):
                assert limits.running("bob") == 2
            release.set()

    assert (limits.running("alice"), limits.running("bob")) == (0, 0)
    error = caught.value
    assert isinstance(error, NotAllowedError)
    assert error.retryable is True
    assert (error.user, error.running, error.limit) == ("alice", 2, 2)
    assert "2 running, the limit is 2" in error.message
    assert "retry when one of the running calls finishes" in error.message
    assert error.payload()["retryable"] is True


async def test_a_slot_is_freed_when_its_call_fails_or_is_cancelled() -> None:
    limits = ClientLimits(1)
    with pytest.raises(RuntimeError):
        async with limits.slot("alice"):
            raise RuntimeError("upstream broke")
    assert limits.running("alice") == 0

    with anyio.fail_after(5):
        with anyio.CancelScope() as scope:
            async with limits.slot("alice"):
                scope.cancel()
                await anyio.Event().wait()  # until cancelled
    assert limits.running("alice") == 0
    async with limits.slot("alice"):
        assert limits.running("alice") == 1


async def test_a_refused_call_does_not_take_a_slot() -> None:
    limits = ClientLimits(1)
    async with limits.slot("alice"):
        for _ in range(3):
            with pytest.raises(TooBusyError):
                async with limits.slot("alice"):
                    pass
        assert limits.running("alice") == 1
    assert limits.running("alice") == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ClientLimits(0)
