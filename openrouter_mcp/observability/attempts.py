"""Watching each upstream attempt of a routed call: its latency and fallbacks in metrics, a span in traces.

`routing.fallback` enters `AttemptObserver.watch(models)` around every upstream request and tells it what came
of it, once the routing decision is made. The span is a child of the SDK's span for the MCP request, named and
described by the OpenTelemetry GenAI semantic conventions (`gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`), with the cost OpenRouter reported
(`openrouter.usage.cost`, USD) and, per model that failed, an event with the routing decision it led to.

No span carries the prompt or the answer, unless the call's audit privacy is `full` and
`OPENROUTER_MCP_TRACE_CONTENT=on` (then `gen_ai.input.messages` and `gen_ai.output.messages`); none ever
carries the key, which only the HTTP client's headers hold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Container, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from openrouter_mcp.errors import OpenRouterError, status_error_class
from openrouter_mcp.routing.decisions import Action
from openrouter_mcp.routing.fallback import Attempt, AttemptWatch

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from openrouter_mcp.observability.metrics import Metrics

__all__ = ["AttemptObserver"]

#: Decisions that pass a failed model over for another try (a fallback); `fail` ends the call instead.
_FALLING_BACK = frozenset({Action.RETRY_SAME.value, Action.SWITCH.value})
#: What OpenRouter's own default model is called in a span's name when no model is named.
_DEFAULT_MODEL = "openrouter/auto"


class AttemptObserver:
    """Builds the watch of each upstream attempt of one routed call.

    `known` are the catalog's model ids (what metrics may label with); `persona` names the call's persona;
    `content` is the request's messages as JSON when the trace may carry them (None: it may not).
    """

    def __init__(
        self,
        metrics: Metrics | None,
        tracer: trace.Tracer | None,
        *,
        known: Container[str],
        persona: str,
        operation: str = "chat",
        content: str | None = None,
    ) -> None:
        self.metrics = metrics
        self.tracer = tracer
        self.known = known
        self.persona = persona
        self.operation = operation
        self.content = content

    def watch(self, models: list[str]) -> AbstractContextManager[AttemptWatch]:
        return _Watch(self, models)


class _Watch:
    def __init__(self, observer: AttemptObserver, models: list[str]) -> None:
        self.observer = observer
        self.models = models
        self.finished = False
        self.span: trace.Span | None = None
        self.token: object = None
        self.started = 0.0

    def __enter__(self) -> _Watch:
        self.started = time.perf_counter()
        tracer = self.observer.tracer
        if tracer is not None:
            requested = self.models[0] if self.models else _DEFAULT_MODEL
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": self.observer.operation,
                "gen_ai.provider.name": "openrouter",
                "gen_ai.request.model": requested,
                "openrouter.request.models": self.models,
                "openrouter_mcp.persona": self.observer.persona,
            }
            if self.observer.content is not None:
                attributes["gen_ai.input.messages"] = self.observer.content
            self.span = tracer.start_span(f"{self.observer.operation} {requested}", kind=SpanKind.CLIENT)
            self.span.set_attributes(attributes)
            # Current while the request runs, so spans of the HTTP client (if instrumented) nest under it.
            self.token = otel_context.attach(trace.set_span_in_context(self.span))
        return self

    def finish(self, attempts: list[Attempt], *, error: OpenRouterError | None = None, result: object = None) -> None:
        self.finished = True
        answered = next((a.model for a in attempts if a.outcome == "answered"), None)
        metrics = self.observer.metrics
        if metrics is not None:
            model = answered or (self.models[-1] if self.models else None)
            outcome = "ok" if error is None else error.kind
            label = metrics.model_label(model, self.observer.known)
            metrics.child(metrics.upstream_latency, label, outcome).observe(time.perf_counter() - self.started)
            for attempt in attempts:
                if attempt.outcome == "failed" and attempt.decision in _FALLING_BACK:
                    reason = error.kind if error is not None else _passed_over_kind(attempt.status)
                    metrics.child(metrics.fallbacks, reason, attempt.decision).inc()
        span = self.span
        if span is None:
            return
        for attempt in attempts:
            if attempt.outcome == "failed":
                event: dict[str, Any] = {
                    "gen_ai.request.model": attempt.model,
                    "openrouter_mcp.decision": attempt.decision,
                }
                if attempt.status is not None:
                    event["http.response.status_code"] = attempt.status
                event["error.type"] = error.kind if error is not None else _passed_over_kind(attempt.status)
                span.add_event("openrouter_mcp.fallback", {k: v for k, v in event.items() if v is not None})
        if error is not None:
            span.set_attribute("error.type", error.kind)
            status = getattr(error, "status_code", None)
            if isinstance(status, int):
                span.set_attribute("http.response.status_code", status)
            decisions = [a.decision for a in attempts if a.decision]
            if decisions:
                span.set_attribute("openrouter_mcp.fallback.decision", decisions[-1])
            span.set_status(StatusCode.ERROR, error.kind)
            return
        span.set_attributes(_response_attributes(result, answered, self.observer.content is not None))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self.finished:
            # Cut short: the persona's deadline, or the caller went away.
            metrics = self.observer.metrics
            if metrics is not None:
                model = metrics.model_label(self.models[-1] if self.models else None, self.observer.known)
                metrics.child(metrics.upstream_latency, model, "cancelled").observe(time.perf_counter() - self.started)
            if self.span is not None:
                self.span.set_attribute("error.type", "cancelled" if kind is None else kind.__qualname__)
                self.span.set_status(StatusCode.ERROR, "the request was cut short")
        if self.span is not None:
            otel_context.detach(self.token)  # type: ignore[arg-type]
            self.span.end()


def _passed_over_kind(status: int | None) -> str:
    """The error kind of a model OpenRouter passed over within its group, from the status it reported."""
    if status is None or status < 400:
        return "passed_over"
    return status_error_class(status).kind


def _response_attributes(result: object, answered: str | None, with_content: bool) -> dict[str, Any]:
    """The GenAI attributes of an answer (a chat completion or a messages result), read by shape."""
    attributes: dict[str, Any] = {}
    model = getattr(result, "model", None) or answered
    if model:
        attributes["gen_ai.response.model"] = model
    response_id = getattr(result, "id", None)
    if isinstance(response_id, str):
        attributes["gen_ai.response.id"] = response_id
    provider = getattr(result, "provider", None)
    if isinstance(provider, str):
        attributes["openrouter.provider"] = provider
    usage: Any = getattr(result, "usage", None)
    fields: Mapping[str, Any] = usage if isinstance(usage, Mapping) else (vars(usage) if usage is not None else {})
    for attribute, keys in (
        ("gen_ai.usage.input_tokens", ("prompt_tokens", "input_tokens")),
        ("gen_ai.usage.output_tokens", ("completion_tokens", "output_tokens")),
    ):
        value = next((fields[key] for key in keys if isinstance(fields.get(key), int)), None)
        if value is not None:
            attributes[attribute] = value
    cost = fields.get("cost")
    if isinstance(cost, int | float):
        attributes["openrouter.usage.cost"] = float(cost)
    if with_content:
        attributes["gen_ai.output.messages"] = _output_messages(result)
    return attributes


def _output_messages(result: object) -> str:
    choices = getattr(result, "choices", None)
    if isinstance(choices, list):
        messages = [
            {"role": "assistant", "content": getattr(getattr(choice, "message", None), "content", None)}
            for choice in choices
        ]
    else:
        messages = [{"role": "assistant", "content": getattr(result, "content", None)}]
    return json.dumps(messages, ensure_ascii=False, default=str)
