"""Traces: a span per upstream attempt under the SDK's span of the MCP request, read from the in-memory exporter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from mcp import Client
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.types import Receive, Scope, Send

from openrouter_mcp.config import Settings
from openrouter_mcp.observability import tracing
from openrouter_mcp.routing import personas
from openrouter_mcp.server import build_server
from openrouter_mcp.simulator import Fault, Simulator, serve_in_thread
from tests.conftest import TEST_KEY
from tests.processes import async_http_server, server_env

pytestmark = pytest.mark.anyio

GROUP = ["openai/gpt-4o", "anthropic/claude-sonnet-4", "google/gemini-2.5-flash"]
SPARE = "openai/gpt-4o-mini"
CONFIG = personas.parse(
    {
        "default": "wide",
        "personas": {
            "wide": {"models": [*GROUP, SPARE], "rank_by": []},
            "quiet": {"models": [SPARE], "rank_by": [], "audit": "metadata"},
        },
    }
)
PROMPT = "The words of this prompt stay out of every span."
HELLO = [{"role": "user", "content": PROMPT}]


class _Forward(SpanProcessor):
    """Hands finished spans to the current test's exporter (the global provider can be set only once a process)."""

    target: InMemorySpanExporter | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.target is not None:
            self.target.export([span])

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_FORWARD = _Forward()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans finished during the test, through the SDK's in-memory exporter."""
    if not tracing.enabled():
        provider = TracerProvider()
        provider.add_span_processor(_FORWARD)
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    _FORWARD.target = exporter
    try:
        yield exporter
    finally:
        _FORWARD.target = None


def ours(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [
        s for s in spans if s.instrumentation_scope is not None and s.instrumentation_scope.name == "openrouter_mcp"
    ]


def everything_said(span: ReadableSpan) -> str:
    """Every attribute and event of `span`, as text, for leak checks."""
    events = [(event.name, dict(event.attributes or {})) for event in span.events]
    return json.dumps([span.name, dict(span.attributes or {}), events], default=str)


async def test_a_fallback_call_has_one_span_per_upstream_attempt_with_its_decision_under_the_tool_call_span(
    settings: Settings, sim: Simulator, spans: InMemorySpanExporter
) -> None:
    for model in GROUP:
        sim.model_faults[model] = Fault(status=503)
    async with Client(build_server(settings, personas=CONFIG)) as client:
        result = await client.call_tool("create_chat_completion", {"messages": HELLO})
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["routing"]["upstream_calls"] == 2
    usage = result.structured_content["usage"]
    finished = spans.get_finished_spans()
    tool_span = next(s for s in finished if s.name == "tools/call create_chat_completion")
    failed, answered = ours(finished)
    assert [failed.name, answered.name] == [f"chat {GROUP[0]}", f"chat {SPARE}"]
    for span in (failed, answered):
        assert span.kind is trace.SpanKind.CLIENT
        assert span.parent is not None and tool_span.context is not None
        assert span.parent.span_id == tool_span.context.span_id
        assert span.context is not None and span.context.trace_id == tool_span.context.trace_id
    attributes = dict(failed.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat" and attributes["gen_ai.request.model"] == GROUP[0]
    assert list(attributes["openrouter.request.models"]) == GROUP  # type: ignore[arg-type]
    assert attributes["error.type"] == "unavailable" and attributes["http.response.status_code"] == 503
    assert attributes["openrouter_mcp.fallback.decision"] == "switch_model"
    assert failed.status.status_code is trace.StatusCode.ERROR
    decisions = [(dict(e.attributes or {})["gen_ai.request.model"], dict(e.attributes or {})["openrouter_mcp.decision"])
                 for e in failed.events]  # fmt: skip
    assert decisions == [(model, "switch_model") for model in GROUP]
    attributes = dict(answered.attributes or {})
    assert attributes["gen_ai.request.model"] == SPARE and attributes["gen_ai.response.model"] == SPARE
    assert attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert attributes["openrouter.usage.cost"] == pytest.approx(usage["cost"])
    assert attributes["gen_ai.response.id"] == result.structured_content["generation_id"]
    assert answered.status.status_code is not trace.StatusCode.ERROR and not answered.events
    for span in finished:
        said = everything_said(span)
        assert PROMPT not in said and TEST_KEY not in said


async def test_prompts_and_answers_reach_spans_only_with_the_flag_on_and_full_audit_privacy(
    settings: Settings, sim: Simulator, spans: InMemorySpanExporter
) -> None:
    flagged = replace(settings, trace_content=True)
    async with Client(build_server(flagged, personas=CONFIG)) as client:
        full = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "wide"})
        metadata = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "quiet"})
    async with Client(build_server(replace(flagged, audit_privacy="hashes"), personas=CONFIG)) as client:
        hashed = await client.call_tool("create_chat_completion", {"messages": HELLO, "persona": "wide"})
    assert not (full.is_error or metadata.is_error or hashed.is_error)
    with_content, quiet, hashes = ours(spans.get_finished_spans())
    attributes = dict(with_content.attributes or {})
    assert json.loads(str(attributes["gen_ai.input.messages"])) == HELLO
    answer: dict[str, Any] = full.structured_content or {}
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [{"role": "assistant", "content": answer["text"]}]
    for span in (quiet, hashes):
        said = everything_said(span)
        assert "gen_ai.input.messages" not in said and PROMPT not in said
    for span in spans.get_finished_spans():
        assert TEST_KEY not in everything_said(span)


def test_traces_are_wanted_only_when_an_exporter_or_an_otlp_endpoint_is_named() -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_SERVICE_NAME": "team"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"})


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(None, **env),
        check=False,
    )


@pytest.mark.slow
def test_without_the_otel_sdk_asking_for_traces_warns_and_the_server_still_builds() -> None:
    code = (
        "import sys; sys.modules['opentelemetry.sdk'] = None\n"
        "from openrouter_mcp.config import Settings\n"
        "from openrouter_mcp.observability import tracing\n"
        "from openrouter_mcp.server import build_server\n"
        "assert tracing.configure() is False\n"
        "build_server(Settings(), transport='streamable-http')\n"
    )
    done = run_python(code, OTEL_TRACES_EXPORTER="console")
    assert done.returncode == 0, done.stderr
    assert "pip install 'openrouter-mcp[otel]'" in done.stderr


def test_asking_for_otlp_without_an_otlp_exporter_installed_warns_and_exports_nothing() -> None:
    code = (
        "import sys; sys.modules['opentelemetry.exporter.otlp.proto.http.trace_exporter'] = None\n"
        "from openrouter_mcp.observability import tracing\n"
        "assert tracing.configure() is False\n"
        "assert not tracing.enabled()\n"
    )
    done = run_python(code, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert done.returncode == 0, done.stderr
    assert "no OTLP exporter is installed" in done.stderr


def test_an_unknown_exporter_name_is_ignored_with_a_warning_and_none_exports_nothing() -> None:
    code = (
        "from openrouter_mcp.observability import tracing\n"
        "assert tracing.configure() is False\n"
        "assert not tracing.enabled()\n"
    )
    done = run_python(code, OTEL_TRACES_EXPORTER="zipkin-please,none")
    assert done.returncode == 0, done.stderr
    assert "'zipkin-please', which openrouter-mcp does not know" in done.stderr


def test_a_tracer_provider_set_up_before_the_server_is_kept() -> None:
    code = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "mine = TracerProvider(); trace.set_tracer_provider(mine)\n"
        "from openrouter_mcp.observability import tracing\n"
        "assert tracing.configure() is True\n"
        "assert trace.get_tracer_provider() is mine\n"
    )
    done = run_python(code, OTEL_TRACES_EXPORTER="console")
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_server_asked_for_no_traces_imports_no_opentelemetry_sdk() -> None:
    code = (
        "import sys\n"
        "from openrouter_mcp.config import Settings\n"
        "from openrouter_mcp.observability import tracing\n"
        "from openrouter_mcp.server import build_server\n"
        "assert tracing.configure() is False\n"
        "build_server(Settings(), transport='streamable-http')\n"
        "loaded = sorted(name for name in sys.modules if name.startswith('opentelemetry.sdk'))\n"
        "assert not loaded, loaded\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
async def test_a_server_exports_its_spans_as_the_otel_variables_say(upstream_url: str, sim: Simulator) -> None:
    env = server_env(upstream_url, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="team-gateway")
    async with async_http_server(env=env) as served:
        async with Client(f"{served.url}/mcp") as client:
            result = await client.call_tool("create_chat_completion", {"messages": HELLO})
        assert not result.is_error
    log = served.log()
    assert '"name": "tools/call create_chat_completion"' in log
    assert '"gen_ai.request.model"' in log and '"gen_ai.usage.input_tokens"' in log
    assert '"service.name": "team-gateway"' in log
    assert PROMPT not in log and TEST_KEY not in log


class _Collector:
    """A minimal OTLP/HTTP receiver on loopback: keeps the body of every POST to /v1/traces."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/v1/traces" and scope["method"] == "POST":
            self.bodies.append(body)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-protobuf")]}
        )
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.slow
async def test_with_the_otel_extra_a_server_sends_its_spans_over_otlp_to_the_endpoint_named(
    upstream_url: str, sim: Simulator
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    collector = _Collector()
    with serve_in_thread(collector) as url:
        endpoint = url.removesuffix("/api/v1")
        env = server_env(upstream_url, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
        async with async_http_server(env=env) as served:
            async with Client(f"{served.url}/mcp") as client:
                result = await client.call_tool("create_chat_completion", {"messages": HELLO})
            assert not result.is_error
    names: list[str] = []
    attributes: dict[str, Any] = {}
    for body in collector.bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    names.append(span.name)
                    if scope_spans.scope.name == "openrouter_mcp":
                        attributes |= {a.key: a.value for a in span.attributes}
    assert "tools/call create_chat_completion" in names
    assert any(name.startswith("chat ") for name in names)
    assert attributes["gen_ai.usage.input_tokens"].int_value > 0
    said = b"".join(collector.bodies)
    assert PROMPT.encode() not in said and TEST_KEY.encode() not in said
