"""Command line: `openrouter-mcp [--transport stdio|sse|streamable-http] [--host H] [--port P] [--demo]`,
and subcommands: `openrouter-mcp audit tail|export|usage`, `hash-token`, `login`, `logout` (see `SUBCOMMANDS`).

Configuration comes from the environment (every variable is in `config.ENVIRONMENT`, which `--help` lists);
the API key is never accepted as an argument. The parsed arguments become typed `HttpOptions` in one place,
`http_options`. Logs go to stderr, because on stdio, stdout carries the protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
from pydantic import SecretStr

from openrouter_mcp import __version__
from openrouter_mcp.audit.database import open_database, resolve_database_url
from openrouter_mcp.audit.lazy import LazyAudit, open_audit
from openrouter_mcp.cli_args import positive_int, positive_seconds
from openrouter_mcp.config import (
    API_KEY_ENV,
    API_KEY_FILE_ENV,
    DATABASE_URL_ENV,
    ENVIRONMENT,
    PERSONAS_ENV,
    TOKENS_ENV,
    Settings,
)
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.routing import personas
from openrouter_mcp.routing.personas import DEFAULT_PERSONAS_PATH
from openrouter_mcp.serving import collector
from openrouter_mcp.serving.http import (
    DEFAULT_CONCURRENCY_WAIT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_MAX_CONCURRENT_PER_CLIENT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_SESSIONS_PER_CLIENT,
    DEFAULT_PORT,
    DEFAULT_SESSION_IDLE_TIMEOUT,
    HTTP_PATHS,
    TRANSPORTS,
    HttpOptions,
    exposure_problem,
    log_refusal,
    own_url,
    serve_http,
)
from openrouter_mcp.serving.stdio import serve_stdio

if TYPE_CHECKING:
    import httpx2

    from openrouter_mcp.audit.postgres import PostgresLedger
    from openrouter_mcp.serving.auth import HashedTokenVerifier, TokenEntry

logger = logging.getLogger("openrouter_mcp")

DEMO_BASE_URL = "http://simulated-openrouter.invalid/api/v1"
DEMO_API_KEY = "sk-or-v1-demo-not-a-real-key"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LOG_LEVEL = "WARNING"
#: Libraries' loggers and the most they may log whatever --log-level says: httpcore2's DEBUG trace holds response
#: headers (an upstream may echo the key in one); httpx2's INFO line (method, URL, status) is the request log.
LIBRARY_LOG_CAPS = {"httpcore2": logging.WARNING, "httpx2": logging.INFO}
#: An argument that looks like an OpenRouter (or any `sk-`) key: never echoed in an argument error.
KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_-]{6,}")


@dataclasses.dataclass(frozen=True)
class Subcommand:
    """`openrouter-mcp NAME ...`: runs `target` ("module:function") on the remaining argv, exits with its return."""

    target: str
    synopsis: str  # what follows NAME, as --help shows it
    summary: str


#: Imported only when chosen, so the server's start-up pays for none of them.
SUBCOMMANDS: dict[str, Subcommand] = {
    "audit": Subcommand(
        "openrouter_mcp.audit.cli:main", "tail|export|usage", "read the audit log: newest calls, JSON Lines, spend"
    ),
    "hash-token": Subcommand(
        "openrouter_mcp.serving.auth:main_hash_token",
        "",
        "create a bearer token and its entry for the --auth-tokens file",
    ),
    "login": Subcommand(
        "openrouter_mcp.login:main_login",
        "[--no-browser] [--limit USD]",
        "sign in with OpenRouter in the browser; the new key goes to the OS keychain (else an owner-only file)",
    ),
    "logout": Subcommand("openrouter_mcp.login:main_logout", "", "remove the key `login` stored"),
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's lines and columns; a line wider than the terminal wraps under its second column."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap  # only --help pays for it

        lines: list[str] = []
        for line in text.splitlines():
            if len(indent + line) <= width:
                lines.append(indent + line)
                continue
            column = re.match(r"\s*\S+(?:\s\S+)*\s{2,}", line)
            hang = " " * (column.end() if column else len(line) - len(line.lstrip()))
            lines += textwrap.wrap(
                line,
                width,
                initial_indent=indent,
                subsequent_indent=indent + hang,
                break_long_words=False,
                break_on_hyphens=False,
            )
        return "\n".join(lines)


def _epilog() -> str:
    commands = {f"{name} {command.synopsis}".strip(): command.summary for name, command in SUBCOMMANDS.items()}
    command_column = max(map(len, commands)) + 2
    variable_column = max(len(variable.name) for variable in ENVIRONMENT) + 2
    return "\n".join(
        [
            "subcommands (openrouter-mcp NAME ..., each with its own --help):",
            *(f"  {usage:<{command_column}}{summary}" for usage, summary in commands.items()),
            "",
            "HTTP endpoints: "
            + ", ".join(f"http://HOST:PORT{path} ({transport})" for transport, path in HTTP_PATHS.items()),
            "",
            "environment variables (the key: the first two, else `openrouter-mcp login`):",
            *(
                f"  {variable.name:<{variable_column}}{variable.meaning} (default: {variable.default})"
                for variable in ENVIRONMENT
            ),
        ]
    )


class _KeyHidingParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors never repeat a secret argument (argparse echoes what it cannot parse)."""

    secrets: tuple[str, ...] = ()

    def error(self, message: str) -> NoReturn:
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "[redacted]")
        super().error(KEY_LIKE.sub("[redacted]", message))


def _key_arguments(argv: list[str]) -> tuple[bool, tuple[str, ...]]:
    """Whether `argv` tries to pass a key as an option (`--api-key`, `--key`, ...), and the values to hide."""
    option_given = False
    secrets: list[str] = [arg for arg in argv if KEY_LIKE.search(arg)]
    for index, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if not name.startswith("--") or "key" not in name.lower():
            continue
        option_given = True
        if equals:
            secrets += [arg, value] if value else [arg]
        elif index + 1 < len(argv):
            secrets.append(argv[index + 1])
    return option_given, tuple(secret for secret in secrets if secret)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    parser = _KeyHidingParser(
        prog="openrouter-mcp",
        description="MCP server for the OpenRouter API. The API key comes from OPENROUTER_API_KEY, else from the "
        "file OPENROUTER_API_KEY_FILE names, else from where `openrouter-mcp login` stored it (the OS keychain, "
        "then ~/.config/openrouter-mcp/key).",
        epilog=_epilog(),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="stdio",
        help="stdio (default): serve the host that started this process; streamable-http or sse: serve HTTP at "
        + " or ".join(f"http://HOST:PORT{path}" for path in HTTP_PATHS.values()),
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"HTTP transports: address to bind (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP transports: port (default {DEFAULT_PORT})"
    )
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
        f"${TOKENS_ENV}. Create tokens with `openrouter-mcp hash-token`",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="HTTP transports: allow a non-loopback --host without --auth-tokens (only behind a proxy that "
        "authenticates every request)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=positive_int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help=f"HTTP transports: answer 413 to a request body over N bytes (default {DEFAULT_MAX_REQUEST_BYTES})",
    )
    parser.add_argument(
        "--max-concurrent-per-client",
        type=positive_int,
        default=DEFAULT_MAX_CONCURRENT_PER_CLIENT,
        metavar="N",
        help="HTTP transports: a client's upstream-calling tool call while N of its calls are running (per token "
        "user, else per address) waits --concurrency-wait seconds for one to finish, then is refused "
        f"(default {DEFAULT_MAX_CONCURRENT_PER_CLIENT})",
    )
    parser.add_argument(
        "--concurrency-wait",
        type=positive_seconds,
        default=DEFAULT_CONCURRENCY_WAIT,
        metavar="SECONDS",
        help="HTTP transports: how long a call over --max-concurrent-per-client waits for a slot "
        f"(default {DEFAULT_CONCURRENCY_WAIT:g})",
    )
    parser.add_argument(
        "--max-sessions-per-client",
        type=positive_int,
        default=DEFAULT_MAX_SESSIONS_PER_CLIENT,
        metavar="N",
        help="HTTP transports: answer 429 to a client's request for a new session while it holds N (per token "
        f"user, else per address; default {DEFAULT_MAX_SESSIONS_PER_CLIENT})",
    )
    parser.add_argument(
        "--session-idle-timeout",
        type=positive_seconds,
        default=DEFAULT_SESSION_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="streamable HTTP: close a session that has had no request in flight for SECONDS; its id then gets "
        f"404 and the client starts a new one (default {DEFAULT_SESSION_IDLE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--header-timeout",
        type=positive_seconds,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="HTTP transports: close a connection that takes over SECONDS to send a request's line and headers, "
        f"or over SECONDS more for its body (default {DEFAULT_HEADER_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"HTTP transports: answer 503 while N connections are open (default {DEFAULT_MAX_CONNECTIONS})",
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
        "--database-url",
        metavar="URL",
        help="keep the ledger (audit, budgets, cooldowns) in PostgreSQL, shared by replicas; default "
        f"${DATABASE_URL_ENV}. No password here (ps shows it): use the variable or ~/.pgpass",
    )
    parser.add_argument(
        "--check-personas",
        action="store_true",
        help="load the personas file, check its model ids against the live catalog, report, and exit",
    )
    parser.add_argument(
        "--log-level",
        default=DEFAULT_LOG_LEVEL,
        choices=LOG_LEVELS,
        help=f"how much to log, to stderr (default {DEFAULT_LOG_LEVEL})",
    )
    parser.add_argument("--version", action="version", version=f"openrouter-mcp {__version__}")
    key_option, parser.secrets = _key_arguments(argv)
    if key_option:
        parser.error(
            f"the API key is never accepted as an argument (it would show in `ps` and the shell history): "
            f"set {API_KEY_ENV}, or {API_KEY_FILE_ENV} to a file only you can read"
        )
    args = parser.parse_args(argv)
    if args.stateless and args.transport != "streamable-http":
        parser.error("--stateless applies to --transport streamable-http only")
    if args.auth_tokens and args.transport == "stdio":
        parser.error("--auth-tokens applies to the HTTP transports (--transport streamable-http or sse)")
    return args


def http_options(args: argparse.Namespace) -> HttpOptions:
    """The serving options of parsed arguments: the one place a Namespace becomes typed."""
    return HttpOptions(
        transport=args.transport,
        host=args.host,
        port=args.port,
        allowed_hosts=tuple(args.allowed_host),
        allowed_origins=tuple(args.allowed_origin),
        max_request_bytes=args.max_request_bytes,
        max_concurrent_per_client=args.max_concurrent_per_client,
        concurrency_wait=args.concurrency_wait,
        max_sessions_per_client=args.max_sessions_per_client,
        session_idle_timeout=args.session_idle_timeout,
        header_timeout=args.header_timeout,
        max_connections=args.max_connections,
        stateless=args.stateless,
        insecure_no_auth=args.insecure_no_auth,
        log_level=args.log_level,
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        module, _, function = SUBCOMMANDS[argv[0]].target.partition(":")
        command: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
        raise SystemExit(command(argv[1:]))
    args = parse_args(argv)
    options = http_options(args)
    configure_logging(options.log_level)
    tokens: list[TokenEntry] | None = None
    try:
        settings = Settings.from_env()
        persona_config = personas.load(personas.resolve_path(args.personas))
        if args.persona:
            persona_config.get(args.persona)
        if options.is_http:
            from openrouter_mcp.serving import auth

            tokens_path = auth.resolve_tokens_path(args.auth_tokens)
            if tokens_path is not None:
                tokens = auth.load_tokens(tokens_path, known_personas=persona_config.personas.keys())
        database_url = resolve_database_url(args.database_url, settings.database_url)
        if not settings.audit_enabled:
            database_url = None  # OPENROUTER_MCP_AUDIT=off: no ledger at all
        audit = None if args.check_personas or database_url else open_audit(settings, demo=args.demo)
    except (ConfigurationError, personas.PersonaError) as exc:
        logger.error("configuration error: %s", exc)
        raise SystemExit(2) from None
    if problem := exposure_problem(options, authenticated=tokens is not None):
        logger.error("%s", problem)
        raise SystemExit(2)
    if args.check_personas:
        raise SystemExit(anyio.run(_check_personas, settings, persona_config))
    try:
        anyio.run(_run, options, settings, persona_config, tokens, audit, args.demo, args.persona, database_url)
    except KeyboardInterrupt:
        pass
    finally:
        if audit is not None:
            audit.close()


def configure_logging(level: str) -> None:
    """Log to stderr at `level`, with the libraries that could log a header capped (`LIBRARY_LOG_CAPS`).

    The stderr handler itself filters at `level` too: a client's `logging/setLevel` may lower our own loggers'
    levels to receive their records as notifications, and those must not reach stderr as well.
    """
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    for name, cap in LIBRARY_LOG_CAPS.items():
        library = logging.getLogger(name)
        library.setLevel(max(cap, library.getEffectiveLevel()))


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
    options: HttpOptions,
    settings: Settings,
    persona_config: personas.PersonasConfig,
    tokens: list[TokenEntry] | None = None,
    audit: LazyAudit | None = None,
    demo: bool = False,
    bound_persona: str | None = None,
    database_url: str | None = None,
) -> None:
    from openrouter_mcp.observability import tracing
    from openrouter_mcp.server import build_server
    from openrouter_mcp.serving.limits import ClientLimits

    tracing.configure()  # only when the OTEL_* variables ask for traces
    ledger: PostgresLedger | None = None
    if database_url is not None:
        try:
            # Reached and migrated before serving: a database that cannot be used is a start-up failure, not a
            # stream of refused calls later.
            ledger = await open_database(database_url, privacy=settings.audit_privacy)
        except ConfigurationError as exc:
            logger.error("configuration error: %s", exc)
            raise SystemExit(2) from None

    http_client: httpx2.AsyncClient | None = None
    if demo:
        settings, http_client = demo_upstream(settings)
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
        verifier = HashedTokenVerifier(tokens, on_failure=log_refusal)
        auth_kwargs["token_verifier"] = verifier
        auth_kwargs["auth"] = AuthSettings(issuer_url=own_url(options), resource_server_url=None)
        logger.info("bearer-token authentication on: %d token(s)", len(tokens))
    server = build_server(
        settings,
        http_client=http_client,
        personas=persona_config,
        bound_persona=bound_persona,
        # Per-client limits protect a shared HTTP server; stdio has one client, which may run calls in parallel.
        limits=ClientLimits(options.max_concurrent_per_client, wait=options.concurrency_wait)
        if options.is_http
        else None,
        audit=ledger if ledger is not None else audit,
        transport=options.transport,
        **auth_kwargs,
    )
    collector.set_for_serving()  # everything built so far lives as long as the process
    try:
        if options.is_http:
            await serve_http(server, options, verifier)
        else:
            await serve_stdio(server)
    finally:
        if http_client is not None:
            await http_client.aclose()
        if ledger is not None:
            with anyio.CancelScope(shield=True):
                await ledger.aclose()


def demo_upstream(settings: Settings, app: Callable[..., Any] | None = None) -> tuple[Settings, httpx2.AsyncClient]:
    """`settings` pointed at a simulated OpenRouter in this process, and the HTTP client that reaches it.

    Only the key and the base URL change: timeouts, attribution and limits are the user's, and the client is
    built by the same factory as the real one. `app` is the simulator (default: a new one, streaming slowly
    enough to watch).
    """
    from openrouter_mcp.upstream.client import build_http_client

    if app is None:
        from openrouter_mcp.simulator import Simulator

        app = Simulator(stream_chunk_delay=0.05)
    logger.warning("DEMO MODE: answers come from a built-in simulation of OpenRouter, not from real models")
    demo = dataclasses.replace(settings, api_key=SecretStr(DEMO_API_KEY), base_url=DEMO_BASE_URL)
    return demo, build_http_client(demo, asgi_app=app)


if __name__ == "__main__":
    main()
