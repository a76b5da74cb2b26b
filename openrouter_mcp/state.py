"""What every tool and resource shares in one process: settings, the HTTP client, the catalog cache.

The SDK enters a server's lifespan once per process for streamable HTTP but once per connection
for stdio and SSE. `AppState.running()` counts its users so the one `httpx2.AsyncClient` is opened
by the first and closed (in `finally:`) by the last, whatever the transport.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import anyio

from openrouter_mcp.config import Settings
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.routing.cooldowns import Cooldowns
from openrouter_mcp.routing.personas import Budget, PersonasConfig, builtin

if TYPE_CHECKING:
    import httpx2

    from openrouter_mcp.audit import AuditLog
    from openrouter_mcp.audit.lazy import LazyAudit
    from openrouter_mcp.audit.ledger import Ledger
    from openrouter_mcp.observability.metrics import Metrics
    from openrouter_mcp.serving.limits import ClientLimits
    from openrouter_mcp.upstream.catalog import Catalog
    from openrouter_mcp.upstream.client import OpenRouterClient


#: How long after the server starts its ledger's writer process starts (seconds).
WARM_UP_DELAY = 0.25


class AppState:
    """Shared resources, opened lazily so that start-up imports and builds nothing it does not need."""

    def __init__(
        self,
        settings: Settings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        personas: PersonasConfig | None = None,
        bound_persona: str | None = None,
        audit: AuditLog | Callable[[], AuditLog] | Ledger | None = None,
        limits: ClientLimits | None = None,
        transport: str = "memory",
        clock: Callable[[], float] = time.time,
        user_budgets: Mapping[str, Budget] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`bound_persona` binds every session of this process to one persona (stdio: `--persona`).

        `audit` records every tool call: an open log, or a function that opens it on first use (start-up then
        pays nothing for SQLite), or any other `Ledger` engine; None: nothing is recorded, and budgets cannot
        be enforced. `user_budgets` are the tokens file's per-user budgets (the personas file's `[users]`
        apply to users it does not name). `limits`
        caps concurrent calls per client; `clock` (wall time) is injectable for budget periods in tests. `metrics`
        counts calls for `/metrics` (None: nothing is counted).

        Raises:
            PersonaError: `bound_persona` names no persona in `personas`.
            ConfigurationError: a budget is set but there is no audit log to count spending in.
        """
        self.settings = settings
        personas = personas or builtin()
        self.personas = personas
        self.bound_persona = personas.get(bound_persona) if bound_persona else None
        # One record of failed models per process: rate limits are per account, whoever is calling.
        self.cooldowns = Cooldowns()
        #: When (`cooldowns.now()`) the cooldowns shared through the ledger were last read.
        self.cooldowns_pulled = float("-inf")
        #: Short ledger work no caller waits for (a read of the shared cooldowns, a refusal's row), held until it
        #: ends; each is bounded by the ledger's own timeouts.
        self.background: set[asyncio.Task[None]] = set()
        self._audit: AuditLog | Callable[[], AuditLog] | None = None
        self._ledger: Ledger | None = None
        if hasattr(audit, "aclose"):  # another engine's ledger, given whole
            self._ledger = cast("Ledger", audit)
        else:
            self._audit = audit
        self.user_budgets: dict[str, Budget] = dict(user_budgets or {})
        for name, user in personas.users.items():
            self.user_budgets.setdefault(name, user.budget)
        self.limits = limits
        self.metrics = metrics
        self.transport = transport
        self.clock = clock
        #: The OS user, who is the caller whenever no authenticated client is.
        self.os_user = getpass.getuser()
        budgeted = [f"persona {p.name}" for p in personas.personas.values() if _sets(p.budget)]
        budgeted += [f"user {name}" for name, budget in self.user_budgets.items() if _sets(budget)]
        budgeted += ["the server ([budget])"] if _sets(personas.budget) else []
        if budgeted and audit is None:
            raise ConfigurationError(
                f"{', '.join(budgeted)} have budgets, which are counted in the audit log, "
                "but the audit log is off: turn it on (unset OPENROUTER_MCP_AUDIT=off) or remove the budgets"
            )
        self._injected_http = http_client
        self._client: OpenRouterClient | None = None
        self._catalog: Catalog | None = None
        self._users = 0
        self._lock = anyio.Lock()

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on the running loop with nobody waiting for it; held in `background` until it ends (the loop
        keeps only a weak reference to a task)."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    @property
    def audit(self) -> AuditLog | None:
        """The audit log, opened on first use when given as a function.

        Raises:
            AuditError: the log cannot be opened (`AuditSetupError`, also a `ConfigurationError`, for a bad path).
        """
        if callable(self._audit):
            self._audit = self._audit()
        return self._audit

    @property
    def ledger(self) -> Ledger | None:
        """The ledger every call is recorded in and budgets are reserved from; None when the audit log is off.

        Over SQLite, built on first use around the audit log (opened later, off the event loop), with its
        spool beside the database file.
        """
        if self._ledger is None and self._audit is not None:
            from pathlib import Path

            from openrouter_mcp.audit.spool import Spool
            from openrouter_mcp.audit.sqlite_ledger import SqliteLedger

            path = getattr(self._audit, "path", None)
            spool = Spool.beside(Path(path)) if path is not None else None
            settings_log = self._settings_log()
            if settings_log is not None and self._writes_from_a_process():
                self._ledger = SqliteLedger.in_child_process(
                    settings_log.path, privacy=settings_log.privacy, spool=spool
                )
            else:
                self._ledger = SqliteLedger(self._audit, spool=spool)
        return self._ledger

    def _settings_log(self) -> LazyAudit | None:
        """The log the settings name (the server as users run it), which this state opens and closes with the
        server (`running`); None for a log or ledger the caller opened (and closes)."""
        from openrouter_mcp.audit.lazy import LazyAudit

        return self._audit if isinstance(self._audit, LazyAudit) else None

    def _writes_from_a_process(self) -> bool:
        """Whether the SQLite ledger is written from a process of its own rather than a thread of this one.

        Over HTTP, where many clients call at once: a writer thread contends with the busy event loop for the
        interpreter lock, which cost up to 1.5 ms of the loop's CPU per call at 50 clients; a process does not.
        Over stdio, one host, whose calls seldom overlap: a thread hands a row over and back sooner after an idle
        wait (~0.5 ms against ~0.85 ms per call here), nothing contends, and a row that finds the thread idle is
        written on the loop's thread at once (`audit/thread_writer.py`), sooner still. Only for the log the
        settings name (`LazyAudit`): a log opened by the caller cannot move to another process.
        """
        return self._settings_log() is not None and self.transport in ("streamable-http", "sse")

    def _warm_up_ledger(self) -> None:
        """Start the ledger's writer process soon, in the background, so the first call does not wait for it."""
        if self._writes_from_a_process() and self._ledger is None:
            self.in_background(self._start_ledger())

    async def _start_ledger(self) -> None:
        # After the handshake and the first listings: those answer first, and this costs them nothing.
        await anyio.sleep(WARM_UP_DELAY)
        ledger = self.ledger
        if self._users > 0 and ledger is not None and hasattr(ledger, "start"):
            await ledger.start()

    @property
    def client(self) -> OpenRouterClient:
        """The OpenRouter client, created on first use (so `tools/list` never imports httpx)."""
        if self._users == 0:
            raise RuntimeError("AppState is not running: use it inside `async with state.running()`")
        if self._client is None:
            from openrouter_mcp.upstream.client import OpenRouterClient

            self._client = OpenRouterClient(self.settings, self._injected_http)
        return self._client

    @property
    def catalog(self) -> Catalog:
        """The shared model catalog cache, created on first use."""
        if self._catalog is None:
            from openrouter_mcp.upstream.catalog import Catalog

            self._catalog = Catalog(self.client, ttl=self.settings.catalog_ttl)
        return self._catalog

    @asynccontextmanager
    async def running(self) -> AsyncIterator[AppState]:
        async with self._lock:
            self._users += 1
            if self._users == 1:
                self._warm_up_ledger()
        try:
            yield self
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0 and self._client is not None:
                    client, self._client, self._catalog = self._client, None, None
                    with anyio.CancelScope(shield=True):
                        await client.aclose()
                if self._users == 0 and self._ledger is not None and self._settings_log() is not None:
                    with anyio.CancelScope(shield=True):
                        await self._ledger.aclose()  # its writer process; the next call starts another


def _sets(budget: Budget) -> bool:
    return budget.daily is not None or budget.monthly is not None
