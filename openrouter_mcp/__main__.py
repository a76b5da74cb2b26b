"""Command line: `openrouter-mcp [--transport stdio|sse|streamable-http] [--host H] [--port P] [--demo]`,
and subcommands: `openrouter-mcp hash-token ...` (see `SUBCOMMANDS`).

Configuration comes from the environment (see `config.Settings`); the API key is never accepted
as an argument. Logs go to stderr, because on stdio, stdout carries the protocol.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio

from openrouter_mcp import __version__
from openrouter_mcp.config import AUDIT_DB_ENV, Settings, default_audit_path
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.routing import personas
from openrouter_mcp.routing.personas import DEFAULT_PERSONAS_PATH, PERSONAS_ENV
from openrouter_mcp.serving.http import auth_failure_recorder, exposure_problem, own_url, serve_http
from openrouter_mcp.serving.stdio import serve_stdio

if TYPE_CHECKING:
    import httpx

    from openrouter_mcp.audit import AuditLog
    from openrouter_mcp.routing.personas import Privacy
    from openrouter_mcp.serving.auth import HashedTokenVerifier, TokenEntry

logger = logging.getLogger("openrouter_mcp")

DEMO_BASE_URL = "http://simulated-openrouter.invalid/api/v1"
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
DEFAULT_MAX_CONCURRENT_PER_CLIENT = 4

#: `openrouter-mcp NAME ...` runs "module:function"(remaining argv) and exits with its return value.
#: Imported only when chosen, so the server's start-up pays for none of them.
SUBCOMMANDS: dict[str, str] = {
    "hash-token": "openrouter_mcp.serving.auth:main_hash_token",
    "audit": "openrouter_mcp.audit.cli:main",
}


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="openrouter-mcp",
        description="MCP server for the OpenRouter API. Set OPENROUTER_API_KEY in the environment.",
    )
    parser.add_argument("--transport", choices=("stdio", "sse", "streamable-http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP transports: address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP transports: port (default 8000)")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="HTTP transports: extra Host header value to accept, e.g. mcp.example.com or mcp.example.com:* "
        "(DNS-rebinding protection stays on)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="HTTP transports: extra browser Origin to accept, e.g. https://app.example.com (requests without "
        "an Origin header, as from most MCP clients, are not affected)",
    )
    parser.add_argument(
        "--auth-tokens",
        metavar="PATH",
        help="HTTP transports: require a bearer token listed (as its SHA-256) in this TOML file; default "
        "$OPENROUTER_MCP_TOKENS. Create tokens with `openrouter-mcp hash-token`",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="HTTP transports: allow a non-loopback --host without --auth-tokens (only behind a proxy that "
        "authenticates every request)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help=f"HTTP transports: answer 413 to a request body over N bytes (default {DEFAULT_MAX_REQUEST_BYTES})",
    )
    parser.add_argument(
        "--max-concurrent-per-client",
        type=_positive_int,
        default=DEFAULT_MAX_CONCURRENT_PER_CLIENT,
        metavar="N",
        help="refuse a client's upstream-calling tool call while N of its calls are running "
        f"(default {DEFAULT_MAX_CONCURRENT_PER_CLIENT})",
    )
    parser.add_argument(
        "--stateless",
        action="store_true",
        help="streamable HTTP: keep no session between requests, so several processes can serve one URL "
        "behind a load balancer",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="serve against a built-in SIMULATED OpenRouter (no key, no network; answers are fake)",
    )
    parser.add_argument(
        "--personas",
        metavar="PATH",
        help=f"personas file (TOML); default ${PERSONAS_ENV}, else {DEFAULT_PERSONAS_PATH} if it exists",
    )
    parser.add_argument("--persona", metavar="NAME", help="bind this server's sessions to one persona and its tools")
    parser.add_argument(
        "--check-personas",
        action="store_true",
        help="load the personas file, check its model ids against the live catalog, report, and exit",
    )
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--version", action="version", version=f"openrouter-mcp {__version__}")
    args = parser.parse_args(argv)
    if args.stateless and args.transport != "streamable-http":
        parser.error("--stateless applies to --transport streamable-http only")
    if args.auth_tokens and args.transport == "stdio":
        parser.error("--auth-tokens applies to the HTTP transports (--transport streamable-http or sse)")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        module, _, function = SUBCOMMANDS[argv[0]].partition(":")
        command: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
        raise SystemExit(command(argv[1:]))
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    http = args.transport != "stdio"
    tokens: list[TokenEntry] | None = None
    try:
        settings = Settings.from_env()
        persona_config = personas.load(personas.resolve_path(args.personas))
        if args.persona:
            persona_config.get(args.persona)
        if http:
            from openrouter_mcp.serving import auth

            tokens_path = auth.resolve_tokens_path(args.auth_tokens)
            if tokens_path is not None:
                tokens = auth.load_tokens(tokens_path, known_personas=persona_config.personas.keys())
        audit = None if args.check_personas else open_audit(settings, demo=args.demo)
    except (ConfigurationError, personas.PersonaError) as exc:
        logger.error("configuration error: %s", exc)
        raise SystemExit(2) from None
    if problem := exposure_problem(args, authenticated=tokens is not None):
        logger.error("%s", problem)
        raise SystemExit(2)
    if args.check_personas:
        raise SystemExit(anyio.run(_check_personas, settings, persona_config))
    try:
        anyio.run(_run, args, settings, persona_config, tokens, audit)
    except KeyboardInterrupt:
        pass
    finally:
        if audit is not None:
            audit.close()


class LazyAudit:
    """Opens the audit log on first use: SQLite and the file cost start-up ~10 ms that no host should wait for.

    The folder is checked (and created, owner-only) at start, so a bad path still fails at once.
    """

    def __init__(self, path: Path, privacy: str) -> None:
        self.path = path
        self.privacy = privacy
        self.log: AuditLog | None = None

    def __call__(self) -> AuditLog:
        from openrouter_mcp.audit import AuditLog

        self.log = AuditLog(self.path, privacy=cast("Privacy", self.privacy))
        return self.log

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def open_audit(settings: Settings, *, demo: bool) -> LazyAudit | None:
    """The audit log the settings ask for, ready to open on first use.

    A demo records nothing unless a database is named explicitly: simulated calls are not usage.

    Raises:
        ConfigurationError: the database's folder cannot be created.
    """
    if not settings.audit_enabled or (demo and settings.audit_db is None):
        return None
    path = Path(settings.audit_db).expanduser() if settings.audit_db else default_audit_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"audit log folder {path.parent} cannot be created ({exc.strerror}); "
            f"set {AUDIT_DB_ENV} to another path or OPENROUTER_MCP_AUDIT=off"
        ) from None
    return LazyAudit(path, settings.audit_privacy)


async def _check_personas(settings: Settings, config: personas.PersonasConfig) -> int:
    """Report persona model ids missing from the catalog (with the closest real ids); 1 if any."""
    from openrouter_mcp.errors import OpenRouterError
    from openrouter_mcp.upstream.client import OpenRouterClient

    client = OpenRouterClient(settings)
    try:
        page = await client.list_models({"output_modalities": "all"})
    except OpenRouterError as exc:
        logger.error("could not fetch the model catalog: %s", exc.message)
        return 2
    finally:
        await client.aclose()
    problems = personas.unknown_models(config, [model.id for model in page.data])
    for problem in problems:
        logger.error("%s", problem)
    if not problems:
        logger.warning("personas OK: %d persona(s), every model id is in the catalog", len(config.personas))
    return 1 if problems else 0


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    persona_config: personas.PersonasConfig,
    tokens: list[TokenEntry] | None = None,
    audit: LazyAudit | None = None,
) -> None:
    from openrouter_mcp.server import build_server
    from openrouter_mcp.serving.limits import ClientLimits

    http_client: httpx.AsyncClient | None = None
    if args.demo:
        settings, http_client = _demo(settings)
    auth_kwargs: dict[str, Any] = {}
    verifier: HashedTokenVerifier | None = None
    if tokens is not None:
        from mcp.server.auth.settings import AuthSettings

        from openrouter_mcp.serving.auth import HashedTokenVerifier

        # A resource server with a static token list: no OAuth authorization server exists, so none is
        # advertised. The SDK requires an issuer URL but uses it only for OAuth routes (an auth provider) and
        # protected-resource metadata (a resource_server_url); with neither, our own URL is a truthful
        # placeholder. Without resource_server_url, a 401 carries no metadata link, so OAuth-capable clients
        # do not start a discovery that cannot succeed; they must send the token as a static header.
        verifier = HashedTokenVerifier(tokens, on_failure=auth_failure_recorder(audit, args.transport))
        auth_kwargs["token_verifier"] = verifier
        auth_kwargs["auth"] = AuthSettings(issuer_url=own_url(args), resource_server_url=None)
        logger.info("bearer-token authentication on: %d token(s)", len(tokens))
    server = build_server(
        settings,
        http_client=http_client,
        personas=persona_config,
        bound_persona=args.persona,
        # Per-client limits protect a shared HTTP server; stdio has one client, which may run calls in parallel.
        limits=ClientLimits(args.max_concurrent_per_client) if args.transport != "stdio" else None,
        audit=audit,
        transport=args.transport,
        **auth_kwargs,
    )
    try:
        if args.transport == "stdio":
            await serve_stdio(server)
        else:
            await serve_http(server, args, verifier)
    finally:
        if http_client is not None:
            await http_client.aclose()


def _demo(settings: Settings) -> tuple[Settings, httpx.AsyncClient]:
    """Settings and an in-process HTTP client that talk to the simulator instead of OpenRouter."""
    import httpx
    from pydantic import SecretStr

    from openrouter_mcp.simulator import Simulator

    logger.warning("DEMO MODE: answers come from a built-in simulation of OpenRouter, not from real models")
    demo = Settings(
        api_key=SecretStr("sk-or-v1-demo-not-a-real-key"),
        base_url=DEMO_BASE_URL,
        http_referer=settings.http_referer,
        app_title=settings.app_title,
        catalog_ttl=settings.catalog_ttl,
        heartbeat_interval=settings.heartbeat_interval,
    )
    transport = httpx.ASGITransport(app=Simulator(stream_chunk_delay=0.05))
    return demo, httpx.AsyncClient(transport=transport, timeout=30.0)


if __name__ == "__main__":
    main()
