"""ClientLimits: at most N calls running per client; the next waits a bounded time for a slot (or, with no wait,
is refused at once)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from openrouter_mcp.errors import NotAllowedError
from openrouter_mcp.serving.limits import ClientLimits, TooBusyError, limit_key

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


def test_a_negative_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        ClientLimits(1, wait=-1.0)


async def test_calls_over_the_limit_wait_and_take_the_freed_slots_first_come_first_served() -> None:
    limits = ClientLimits(1, wait=30.0)
    order: list[str] = []
    release = {name: anyio.Event() for name in ("first", "second", "third")}

    async def call(name: str) -> None:
        async with limits.slot("alice"):
            order.append(name)
            await release[name].wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(call, "first")
            await wait_until(lambda: limits.running("alice") == 1)
            group.start_soon(call, "second")
            await wait_until(lambda: limits.waiting("alice") == 1)
            group.start_soon(call, "third")
            await wait_until(lambda: limits.waiting("alice") == 2)
            # A newcomer does not jump the queue while others wait, even at the moment a slot frees.
            release["first"].set()
            await wait_until(lambda: order == ["first", "second"])
            assert (limits.running("alice"), limits.waiting("alice")) == (1, 1)
            release["second"].set()
            await wait_until(lambda: order == ["first", "second", "third"])
            release["third"].set()
    assert (limits.running("alice"), limits.waiting("alice")) == (0, 0)


async def test_a_call_still_over_the_limit_after_the_wait_is_refused_clearly_and_takes_no_slot() -> None:
    limits = ClientLimits(2, wait=0.05)
    release = anyio.Event()

    async def hold() -> None:
        async with limits.slot("address 127.0.0.1"):
            await release.wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(hold)
            group.start_soon(hold)
            await wait_until(lambda: limits.running("address 127.0.0.1") == 2)
            started = anyio.current_time()
            with pytest.raises(TooBusyError) as caught:
                async with limits.slot("address 127.0.0.1"):
                    pytest.fail("a third call must not start while two run")
            assert anyio.current_time() - started >= 0.05
            assert (limits.running("address 127.0.0.1"), limits.waiting("address 127.0.0.1")) == (2, 0)
            release.set()
    error = caught.value
    assert error.retryable is True and error.waited == 0.05
    assert error.message.startswith("Too many calls at once for 'address 127.0.0.1': 2 running, the limit is 2")
    assert "none finished within 0.05 s" in error.message
    assert "retry when one of the running calls finishes" in error.message


async def test_a_waiting_call_that_is_cancelled_leaves_the_queue_or_passes_on_the_slot_handed_to_it() -> None:
    limits = ClientLimits(1, wait=30.0)
    ran: list[str] = []

    async def queued(name: str) -> None:
        async with limits.slot("alice"):
            ran.append(name)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as kept:
            async with limits.slot("alice"):
                kept.start_soon(queued, "kept")
                await wait_until(lambda: limits.waiting("alice") == 1)
                async with anyio.create_task_group() as waiter:
                    waiter.start_soon(queued, "cancelled while waiting")
                    await wait_until(lambda: limits.waiting("alice") == 2)
                    waiter.cancel_scope.cancel()
                assert limits.waiting("alice") == 1
        assert ran == ["kept"]

        async with anyio.create_task_group() as waiter:
            async with limits.slot("alice"):
                waiter.start_soon(queued, "handed a slot, then cancelled")
                await wait_until(lambda: limits.waiting("alice") == 1)
            # Leaving the slot handed it to the waiter, which has not run since: cancel it now.
            waiter.cancel_scope.cancel()
    assert (limits.running("alice"), limits.waiting("alice")) == (0, 0)
    async with limits.slot("alice"):
        assert limits.running("alice") == 1


def test_without_tokens_calls_count_against_the_client_address_else_the_user() -> None:
    class Request:
        client = type("Address", (), {"host": "192.0.2.7"})()

    assert limit_key(Request(), "os-user") == "address 192.0.2.7"
    assert limit_key(None, "os-user") == "os-user"  # stdio and in-memory clients: no request, the OS user


async def wait_until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until `condition` holds (the caller bounds the wait with `fail_after`)."""
    while not condition():
        await anyio.lowlevel.checkpoint()
