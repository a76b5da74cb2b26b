"""A bare MCPServer making the same upstream requests as openrouter-mcp, and nothing else: the baseline.

`python -m bench.bare_server` serves over stdio. Each tool is named like ours, makes exactly one
upstream request with the one `httpx2.AsyncClient` opened in the lifespan (same headers, timeouts
and keep-alive as ours), and returns the answer as text, without models, validation or caching:

| tool | upstream request | returns |
|---|---|---|
| create_chat_completion(messages, model, max_tokens) | POST /chat/completions | the body |
| list_available_models(limit) | GET /models?output_modalities=all | the first `limit` models |
| get_models_count() | GET /models/count | the body |
| ping() | none | "pong" (the floor: an MCP round trip and nothing else) |

`--minimal` serves one trivial tool and no HTTP client at all: the cold-start baseline, the least
any MCPServer can do. `--port N` serves streamable HTTP on 127.0.0.1 instead of stdio (`--stateless` without
sessions), with uvicorn's h11 protocol as ours (the load benchmark). Settings come from the environment as for
ours: OPENROUTER_API_KEY and OPENROUTER_BASE_URL.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import anyio
from mcp.server.mcpserver import Context, MCPServer

from openrouter_mcp import __version__


@dataclass(frozen=True)
class Upstream:
    http: Any  # httpx2.AsyncClient; imported in the lifespan, as ours imports httpx only when it needs it
    base_url: str
    headers: dict[str, str]


def build_minimal() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("bare")

    @server.tool(structured_output=False)
    async def ping() -> str:
        """Answer 'pong'."""
        return "pong"

    return server


def build(environ: Mapping[str, str] = os.environ) -> MCPServer[Upstream]:
    """The full bare server; `environ` supplies OPENROUTER_API_KEY and OPENROUTER_BASE_URL."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Upstream]) -> AsyncIterator[Upstream]:
        import httpx2

        key = environ["OPENROUTER_API_KEY"]
        headers = {
            "HTTP-Referer": "https://github.com/openrouter-mcp/openrouter-mcp",
            "X-OpenRouter-Title": "openrouter-mcp",
            "User-Agent": f"openrouter-mcp/{__version__}",
            "Authorization": f"Bearer {key}",
        }
        timeout = httpx2.Timeout(120.0, connect=10.0)
        # The pool limits of ours (upstream/client.py UPSTREAM_LIMITS; not imported: that module loads our models),
        # without its cheaper probe of idle connections (`_ProbingBackend`): this is plain httpx2.
        limits = httpx2.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=30.0)
        http = httpx2.AsyncClient(timeout=timeout, limits=limits)
        try:
            yield Upstream(http, environ["OPENROUTER_BASE_URL"].rstrip("/"), headers)
        finally:
            await http.aclose()

    server: MCPServer[Upstream] = MCPServer("bare", lifespan=lifespan)

    def upstream(ctx: Context) -> Upstream:
        return cast(Upstream, ctx.request_context.lifespan_context)

    @server.tool(structured_output=False)
    async def create_chat_completion(
        messages: list[dict[str, Any]],
        ctx: Context,
        model: str | None = None,
        max_tokens: int | None = None,
        models: list[str] | None = None,
    ) -> str:
        """POST /chat/completions, non-streaming; the answer's body.

        `models` sends OpenRouter's native fallbacks with the metadata header, as ours does when it routes,
        so that both servers can be made to send the very same upstream request.
        """
        up = upstream(ctx)
        body: dict[str, Any] = {"messages": messages, "stream": False}
        if model is not None:
            body["model"] = model
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        headers = up.headers
        if models:
            body["models"] = models
            headers = {**headers, "X-OpenRouter-Metadata": "enabled"}
        response = await up.http.post(up.base_url + "/chat/completions", json=body, headers=headers)
        response.raise_for_status()
        text: str = response.text
        return text

    @server.tool(structured_output=False)
    async def list_available_models(ctx: Context, limit: int = 20) -> str:
        """GET /models (every modality); the first `limit` models."""
        up = upstream(ctx)
        response = await up.http.get(up.base_url + "/models", params={"output_modalities": "all"}, headers=up.headers)
        response.raise_for_status()
        return json.dumps(response.json()["data"][:limit], separators=(",", ":"))

    @server.tool(structured_output=False)
    async def ping() -> str:
        """Answer 'pong'."""
        return "pong"

    @server.tool(structured_output=False)
    async def get_models_count(ctx: Context) -> str:
        """GET /models/count; the body."""
        up = upstream(ctx)
        response = await up.http.get(up.base_url + "/models/count", headers=up.headers)
        response.raise_for_status()
        text: str = response.text
        return text

    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A bare MCPServer over stdio: the benchmarks' baseline.")
    parser.add_argument("--minimal", action="store_true", help="one trivial tool, no HTTP client")
    parser.add_argument("--port", type=int, help="serve streamable HTTP on 127.0.0.1:PORT instead of stdio")
    parser.add_argument("--stateless", action="store_true", help="with --port: no sessions")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    server = build_minimal() if args.minimal else build()
    if args.port is None:
        anyio.run(server.run_stdio_async)
        return
    import uvicorn

    app = server.streamable_http_app(stateless_http=args.stateless, host="127.0.0.1")
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on", http="h11")
    anyio.run(uvicorn.Server(config).serve)


if __name__ == "__main__":
    main()
