"""OpenTelemetry traces (the `otel` extra), configured from the standard `OTEL_*` variables.

Every `MCPServer` already wraps each MCP request in a server span (the SDK's `OpenTelemetryMiddleware`, on by
default), through OpenTelemetry's global tracer provider; without one, that span costs next to nothing and
goes nowhere. `configure()` installs a provider when the environment asks for traces, so those spans, and
ours (one child span per upstream attempt, `observability.attempts`), are exported:

- traces are wanted when `OTEL_TRACES_EXPORTER` is set, or an OTLP endpoint is (`OTEL_EXPORTER_OTLP_ENDPOINT`,
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), unless `OTEL_SDK_DISABLED=true`; nothing is imported otherwise;
- exporters as `OTEL_TRACES_EXPORTER` names them (default `otlp`): `otlp` if an OTLP exporter package is
  installed (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default,
  or `grpc`), `console` (to stderr: stdout carries the stdio protocol), `none`;
- the resource from `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (service name `openrouter-mcp` unless
  they set one), batching from `OTEL_BSP_*`, sampling from `OTEL_TRACES_SAMPLER`: the OTel SDK reads these itself.

A provider set before (by `opentelemetry-instrument`, or an application embedding the server) is left alone.
Only the OpenTelemetry API is imported outside `configure()`, and the `mcp` package depends on it anyway.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace

from openrouter_mcp.config import otel_environment

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)

#: The instrumentation scope of our spans.
TRACER_NAME = "openrouter_mcp"
DEFAULT_SERVICE_NAME = "openrouter-mcp"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces (see the module docstring)."""
    env = otel_environment() if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(env.get("OTEL_TRACES_EXPORTER", "").strip()) or any(env.get(name) for name in _ENDPOINTS)


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Install a global tracer provider exporting as the `OTEL_*` variables say; True if traces are exported.

    False, with a warning saying why, when traces are asked for but cannot be had (the extra is missing, no
    named exporter is installed); False, silently, when they are not asked for.
    """
    env = otel_environment() if environ is None else environ
    if not wanted(env):
        return False
    if enabled():
        return True  # someone configured OpenTelemetry before us: their provider gets our spans
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "OTEL_* variables ask for traces, but the OpenTelemetry SDK is not installed: "
            "pip install 'openrouter-mcp[otel]'"
        )
        return False
    exporters = [exporter for name in _names(env) if (exporter := _exporter(name, env)) is not None]
    if not exporters:
        return False
    named = "OTEL_SERVICE_NAME" in env or "service.name" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": DEFAULT_SERVICE_NAME}))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logger.info("exporting traces: %s", ", ".join(type(exporter).__name__ for exporter in exporters))
    return True


def enabled() -> bool:
    """Whether a tracer provider is installed (spans then go somewhere); checked before building any span."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def flush(timeout_seconds: float = 5.0) -> None:
    """Export the spans still batched, when the server stops: uvicorn re-raises the SIGTERM it caught once it has
    shut down, so the provider's own exit hook (atexit) never runs for a server stopped that way."""
    force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush(int(timeout_seconds * 1000))


def tracer() -> trace.Tracer | None:
    """Our tracer, or None when no provider is installed (then no span is built at all)."""
    if not enabled():
        return None
    from openrouter_mcp import __version__

    return trace.get_tracer(TRACER_NAME, __version__)


def _names(env: Mapping[str, str]) -> list[str]:
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip() or "otlp"
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter | None:
    if name == "none":
        return None
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)
    if name != "otlp":
        logger.warning("OTEL_TRACES_EXPORTER names %r, which openrouter-mcp does not know: ignored", name)
        return None
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    )
    package = "grpc" if protocol == "grpc" else "http"
    try:
        module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{package}.trace_exporter")
    except ImportError:
        logger.warning(
            "OTEL_TRACES_EXPORTER asks for OTLP (%s), but no OTLP exporter is installed: "
            "pip install 'openrouter-mcp[otel]' (http/protobuf) or opentelemetry-exporter-otlp-proto-grpc",
            protocol,
        )
        return None
    exporter: SpanExporter = module.OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_* itself
    return exporter
