"""The ledger: what the server writes and reads about calls, spend and cooldowns, behind one async interface.

One ledger holds, per deployment: the audit rows of tool calls (`CallRecord`), the budget
reservations of paid calls in flight, and the cooldowns of failed models. Two engines implement it:
SQLite (`audit/sqlite_ledger.py`, the embedded default; several processes may share one file) and
PostgreSQL (several machines share one database). The server talks only to `Ledger`; the `audit`
CLI may use an engine's synchronous side.

Budget accounting, the same on every engine:

- A paid call under a budget first `reserve`s its worst-case cost against every `BudgetLimit` that applies
  (server, persona, user; daily and monthly). A window's *spend* is the sum of `charged` (else `cost`) of
  the calls recorded in it with outcome `ok` or `error`, plus the amount of every *live* reservation
  created in it. A reservation is live until it is settled, released, or its lease (`expires`) passes:
  a process that died holding one frees its budget after the lease, never before.
- `reserve` checks and inserts atomically: two calls can never both take the last dollar, whatever the
  number of processes or machines sharing the ledger.
- After the call, `record` writes its row with `reservation_id` set: the row (charging its `charged`
  amount) replaces the reservation in one transaction, so the spend never counts twice or not at all.
  That is the *settle*. A call refused before anything was sent `release`s its reservation instead
  (or records a row with `charged=0`).

Errors: every method raises `AuditError` when the storage cannot be read or written (locked past the busy
timeout, disk full, database unreachable); `reserve` raises `BudgetExceededError` (built with
`routing.budgets.budget_refusal`) when the call does not fit.

What an engine may add beyond the protocol, and the server uses when present:
- `spool: audit.spool.Spool` and `note_spooled()`: where `tools/recording.py` keeps a record the ledger
  refused, and the hint that a replay is due; the engine replays it (`Spool.replay`, with its own idempotent
  write) once it works again.
- Aggregates: an engine may keep settled spend per scope and UTC day (SQLite's `spend_days`) rather than sum
  rows; the windows are whole UTC days and months, so per-day totals answer every `BudgetLimit` exactly.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from openrouter_mcp.audit.log import CallRecord, UsageSummary
    from openrouter_mcp.routing.budgets import BudgetLimit
    from openrouter_mcp.routing.personas import Privacy


def new_id() -> str:
    """A unique id for a record or a reservation: 128 random bits in hex, as `uuid.uuid4().hex` but without
    building a `UUID` (every call makes one or two; alone after an idle wait, ~70 µs against ~20)."""
    return os.urandom(16).hex()


@dataclass(frozen=True)
class ReservationRequest:
    """Ask to hold up to `amount` USD (at least `minimum`) against each of `limits` until `expires`.

    `id` is unique (`new_id`); `persona` and `user` say whose windows the held amount counts in
    (the same columns a `CallRecord` has). `now` is the wall time of the request (unix seconds): the
    reservation counts in the windows containing it, and leases are compared with it.
    """

    id: str
    user: str
    persona: str | None
    limits: Sequence[BudgetLimit]
    amount: float
    minimum: float
    now: float
    expires: float


@dataclass(frozen=True)
class Reservation:
    """A granted reservation: `amount` is what was held (between the request's minimum and amount)."""

    id: str
    amount: float
    expires: float


@dataclass(frozen=True)
class WindowSpend:
    """What counts against one budget window: settled spend of recorded calls, and live reservations."""

    settled: float
    reserved: float

    @property
    def total(self) -> float:
        return self.settled + self.reserved


@dataclass(frozen=True)
class Cooldown:
    """A model (or shared limit) cooling down until `until` (unix seconds), after `strikes` failures."""

    key: str
    until: float
    strikes: int


class Ledger(Protocol):
    """The server's storage of calls, budget reservations and cooldowns. Every method is safe to call
    concurrently from many tasks, processes and (for a database server) machines, and never blocks the
    event loop: an engine runs its storage I/O off the loop's thread.
    """

    def record(self, record: CallRecord, *, privacy: Privacy | None = None) -> Awaitable[None]:
        """Write one call's row (committed once the awaitable returned is done), settling its reservation if it
        names one. An engine may start the write when this is called (SQLite does: the caller can do other work
        meanwhile) or when it is awaited (an `async def`).

        Atomic: the row is inserted and `record.reservation_id`'s reservation (if still there) deleted in
        one transaction. Idempotent on `record.record_id`: a second `record` of the same id (a replay
        from the spool) changes nothing and raises nothing. `privacy` overrides the ledger's default
        ("full", "hashes" or "metadata": what is kept of arguments and response).

        Raises:
            AuditError: the row could not be written.
        """
        ...

    async def reserve(self, request: ReservationRequest) -> Reservation:
        """Hold as much of `request.amount` as fits every limit (at least `request.minimum`), atomically.

        For each limit, room = limit - (settled + live reservations in its window); the minimum fits when
        room + `routing.budgets.FIT_TOLERANCE` >= minimum, and the grant is max(minimum, min(amount, smallest
        room)). It is inserted in the same transaction that computed the rooms,
        serialised against every other `reserve` and `record` on the ledger. Expired reservations do not
        count (and may be deleted). Not idempotent: a retry after an error may hold twice (the lease
        frees the extra one), so callers release what they do not use.

        Raises:
            BudgetExceededError: the minimum does not fit some limit (names it, the spend, the amount
                reserved in flight, and the reset time); nothing was held.
            AuditError: the ledger could not be read or written; nothing was held.
        """
        ...

    async def release(self, reservation_id: str) -> None:
        """Drop a reservation with no spend (the call failed before anything was charged).

        Idempotent: releasing an unknown, settled or expired reservation does nothing.

        Raises:
            AuditError: the ledger could not be written (the lease frees the reservation in time).
        """
        ...

    async def spend(self, limit: BudgetLimit, *, now: float) -> WindowSpend:
        """What counts against `limit`'s window now (read-only; a snapshot, not a lock).

        Raises:
            AuditError: the ledger could not be read.
        """
        ...

    async def usage(self, *, since: float, until: float, persona: str | None = None) -> UsageSummary:
        """Totals and groupings of the calls with `since <= ts < until` (as `AuditLog.usage`).

        Raises:
            AuditError: the ledger could not be read.
        """
        ...

    async def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The newest `n` rows, oldest first, as JSON-ready dicts (as `AuditLog.tail`).

        Raises:
            AuditError: the ledger could not be read.
        """
        ...

    def export(self, *, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every row (started at or after `since`), oldest first, read in batches (as `AuditLog.export`).

        Raises:
            AuditError: the ledger could not be read.
        """
        ...

    async def put_cooldown(self, cooldown: Cooldown) -> None:
        """Share that `cooldown.key` cools down until `cooldown.until`; an existing later `until` is kept.

        Idempotent (an upsert keeping the larger `until` and `strikes`).

        Raises:
            AuditError: the ledger could not be written.
        """
        ...

    async def cooldowns(self, *, now: float) -> list[Cooldown]:
        """Every cooldown still running at `now` (expired ones are not returned).

        Raises:
            AuditError: the ledger could not be read.
        """
        ...

    async def aclose(self) -> None:
        """Finish queued writes and close the storage (idempotent)."""
        ...
