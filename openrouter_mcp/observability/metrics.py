"""Prometheus metrics: every definition in one place, one `CollectorRegistry` per server, `/metrics` to read them.

Counted where the facts are known: tool calls, tokens and cost in the tool registry's `run`; upstream latency
and fallbacks per upstream attempt (`observability.attempts`, handed to `routing.fallback`); refusals in `run`
(our policy: `too_busy`, `budget_exceeded`, `not_allowed`), in the session cap (`too_many_sessions`) and for HTTP
requests without a valid token (`unauthenticated`). Models cooling down, open sessions and budgets are read
when scraped, from what already holds them.

Labels stay bounded whatever clients send: tool names are ours, personas are those the personas file defines
(anything else is `other`), outcomes and reasons are our own error kinds, and model ids are only ids from the
catalog, at most `MAX_MODEL_LABELS` of them (the rest are `other`). No label carries user text, a user name, a
session, request or generation id, or the key. Per-user budgets are not exported: every token holder can read
`/metrics`, and each user's spending is not theirs to see.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Container, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from openrouter_mcp.errors import AuditError
from openrouter_mcp.routing.budgets import ScopeKind, budget_limits
from openrouter_mcp.routing.personas import Budget

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import Receive, Scope, Send

    from openrouter_mcp.state import AppState

__all__ = ["MAX_MODEL_LABELS", "OTHER", "Metrics", "MetricsEndpoint", "metrics_of"]

#: Distinct model ids a server labels its series with; later ones are counted as `other`. The catalog has
#: ~300 models, but a team uses a few dozen, and each id costs a series per persona (tokens, cost).
MAX_MODEL_LABELS = 64
#: The label value for a model or persona outside the bounded set.
OTHER = "other"
#: The persona label of calls that run under no persona (catalog and account tools).
NO_PERSONA = "none"
#: Upstream latency buckets, in seconds: from a cached answer to a long reasoning call.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

logger = logging.getLogger(__name__)

_SERVERS: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()


class Metrics:
    """One server's metrics, in a registry of its own (so that tests and servers in one process never mix)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        common: dict[str, Any] = {"namespace": "openrouter_mcp", "registry": self.registry}
        self.tool_calls = Counter(
            "tool_calls", "Tool calls by tool, persona and outcome.", ["tool", "persona", "outcome"], **common
        )
        self.upstream_latency = Histogram(
            "upstream_latency_seconds",
            "Seconds per upstream request, by the model that answered (or the last one tried) and outcome.",
            ["model", "outcome"],
            buckets=LATENCY_BUCKETS,
            **common,
        )
        self.fallbacks = Counter(
            "fallbacks",
            "Models that failed and were passed over, by reason (error kind) and routing decision.",
            ["reason", "decision"],
            **common,
        )
        self.models_cooling_down = Gauge("models_cooling_down", "Models cooling down after failures.", **common)
        self.tokens = Counter(
            "tokens",
            "Tokens by persona, model and direction (input, output).",
            ["persona", "model", "direction"],
            **common,
        )
        self.cost = Counter(
            "cost_usd", "USD OpenRouter reported, by persona and model.", ["persona", "model"], **common
        )
        self.budget_spent = Gauge(
            "budget_spent_usd", "USD spent in the current budget window.", ["scope", "name", "period"], **common
        )
        self.budget_remaining = Gauge(
            "budget_remaining_usd",
            "USD left in the current budget window, net of reservations held by calls in flight.",
            ["scope", "name", "period"],
            **common,
        )
        self.open_sessions = Gauge("open_sessions", "MCP sessions open (or being opened).", **common)
        self.refusals = Counter(
            "refusals", "Calls and sessions refused by our policy, by reason.", ["reason"], **common
        )
        self._models: set[str] = set()
        #: Children by (metric, label values): bounded as the labels are.
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def child(self, metric: Counter | Histogram, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once per label set: prometheus_client checks the values and takes a
        lock on every `labels()`, several times the cost of the `inc()` that follows, on every call."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def model_label(self, model: str | None, known: Container[str]) -> str:
        """`model` as a label: itself if the catalog (`known`) has it and the label budget allows, else `other`."""
        if model is None:
            return OTHER
        if model in self._models:
            return model
        if model in known and len(self._models) < MAX_MODEL_LABELS:
            self._models.add(model)
            return model
        return OTHER

    def count_sessions(self, count: Callable[[], int]) -> None:
        """Read the open sessions from `count` at each scrape."""
        self.open_sessions.set_function(lambda: float(count()))

    def refused(self, reason: str) -> None:
        self.child(self.refusals, reason).inc()

    def counting_auth_failures(self, report: Callable[[str], None] | None) -> Callable[[str], None]:
        """`report` (the verifier's failure callback), counting each refused request as `unauthenticated` too."""

        def counted(reason: str) -> None:
            self.refused("unauthenticated")
            if report is not None:
                report(reason)

        return counted

    def tool_call(
        self,
        state: AppState,
        tool: str,
        outcome: str,
        arguments: object,
        data: Mapping[str, Any] | None,
        *,
        paid: bool,
        refusal: str | None = None,
    ) -> None:
        """Count one finished tool call: its outcome, a refusal's reason, and for a paid call its tokens and cost.

        The persona is the one routing used, else the one asked for (`arguments`), else the session's bound one.
        """
        routing = data.get("routing") if data else None
        persona = routing.get("persona") if isinstance(routing, Mapping) else None
        persona = persona or getattr(arguments, "persona", None)
        if persona is None and state.bound_persona is not None:
            persona = state.bound_persona.name
        persona_label = persona_label_of(persona if isinstance(persona, str) else None, state.personas.personas)
        self.child(self.tool_calls, tool, persona_label, outcome).inc()
        if refusal is not None:
            self.refused(refusal)
        if not paid or outcome != "ok" or not data:
            return
        usage = data.get("usage")
        if not isinstance(usage, Mapping):
            return
        snapshot = state.catalog.cached
        model = self.model_label(data.get("model"), snapshot.by_id if snapshot is not None else ())
        for direction, keys in (
            ("input", ("prompt_tokens", "input_tokens")),
            ("output", ("completion_tokens", "output_tokens")),
        ):
            tokens = next((usage[key] for key in keys if isinstance(usage.get(key), int)), None)
            if tokens:
                self.child(self.tokens, persona_label, model, direction).inc(tokens)
        cost = usage.get("cost")
        if isinstance(cost, int | float) and cost > 0:
            self.child(self.cost, persona_label, model).inc(cost)

    async def refresh(self, state: AppState) -> None:
        """Bring the gauges read from elsewhere up to date: cooldowns, and budgets from the ledger.

        Best effort: a ledger that cannot be read leaves the budget gauges as they were (and says so in a log
        line the caller writes); the scrape still answers.

        Raises:
            AuditError: the ledger could not be read.
        """
        cooling = state.cooldowns.cooling()
        self.models_cooling_down.set(sum(1 for key in cooling if not key.startswith("limit:")))
        ledger = state.ledger
        if ledger is None:
            return
        now = state.clock()
        scopes: list[tuple[ScopeKind, str, Budget | None]] = [("server", "", state.personas.budget)]
        scopes += [("persona", p.name, p.budget) for p in state.personas.personas.values()]
        for scope, name, budget in scopes:
            for limit in budget_limits(scope, name, budget, now):
                spend = await ledger.spend(limit, now=now)
                self.budget_spent.labels(scope, name, limit.period).set(spend.settled)
                self.budget_remaining.labels(scope, name, limit.period).set(max(0.0, limit.limit - spend.total))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def persona_label_of(persona: str | None, defined: Container[str]) -> str:
    """A persona name as a label: only names the personas file defines (a caller may send any string)."""
    if persona is None:
        return NO_PERSONA
    return persona if persona in defined else OTHER


def attach(server: MCPServer[Any], metrics: Metrics) -> None:
    """Remember `server`'s metrics, for the transport that serves it (`metrics_of`)."""
    _SERVERS[server] = metrics


def metrics_of(server: MCPServer[Any]) -> Metrics | None:
    """The metrics `build_server` gave `server`; None when it counts none (stdio, in memory)."""
    return _SERVERS.get(server)


class MetricsEndpoint:
    """The ASGI app answering `GET /metrics` in the text exposition format (an instance, so Starlette's `Route`
    serves it as an app, wrapped in the SDK's bearer check when tokens are on)."""

    def __init__(self, state: AppState, metrics: Metrics) -> None:
        self.state = state
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.responses import Response

        try:
            await self.metrics.refresh(self.state)
        except AuditError as exc:
            logger.warning("metrics: could not read the budgets from the ledger: %s", exc.message)
        response = Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
        await response(scope, receive, send)
