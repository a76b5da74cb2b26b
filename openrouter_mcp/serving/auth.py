"""Bearer tokens for the HTTP transports: the tokens file, the verifier, and who is calling.

The tokens file (TOML; `--auth-tokens PATH` or `$OPENROUTER_MCP_TOKENS`) holds only SHA-256 hashes:

```toml
[[tokens]]
user = "alice"
sha256 = "9f86d0..."      # sha256 hex of the bearer token; `openrouter-mcp hash-token` makes both
personas = ["frugal"]      # optional; omitted means any persona
```

A stolen copy of the file lets nobody in: tokens are 256 random bits, so their hashes cannot be reversed,
and hashing before the lookup means comparing hashes leaks nothing about a real token. The file must still
be private (a writable one lets anyone add a token), so one that group or others can access is refused.

The SDK answers 401 itself for a request with no bearer token, without asking the verifier, so failures
are reported from two places that share one callback: the verifier ("unknown token") and
`AuthFailureReporter` around the whole ASGI app (any other 401). A per-request marker makes sure each
failed request is reported exactly once.
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openrouter_mcp.config import TOKENS_ENV, read_private_file
from openrouter_mcp.errors import ConfigurationError
from openrouter_mcp.routing.personas import Budget

#: A recognisable prefix, so secret scanners and people can tell what a leaked string is.
TOKEN_PREFIX = "ormcp_"
ANY_PERSONA_SCOPE = "persona:*"
PERSONA_SCOPE_PREFIX = "persona:"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ENTRY_FIELDS = ("user", "sha256", "personas", "budget")

FailureCallback = Callable[[str], None]


@dataclass(frozen=True)
class TokenEntry:
    """One `[[tokens]]` entry: who the token belongs to and which personas it may use (None: any)."""

    user: str
    sha256: str
    personas: frozenset[str] | None = None
    #: `budget = { daily = .., monthly = .. }`: USD this user may spend (None: the personas file's, if any).
    budget: Budget | None = None


@dataclass(frozen=True)
class Identity:
    """The authenticated caller of the current request."""

    user: str
    #: The personas this caller may use; None means any.
    personas: frozenset[str] | None


# ------------------------------------------------------------------------------------------------
# The tokens file
# ------------------------------------------------------------------------------------------------


def resolve_tokens_path(cli_path: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """`--auth-tokens`, else `$OPENROUTER_MCP_TOKENS`, else None (no authentication)."""
    env = os.environ if environ is None else environ
    raw = cli_path or env.get(TOKENS_ENV, "").strip()
    return Path(raw).expanduser() if raw else None


def load_tokens(path: Path, *, known_personas: Collection[str] | None = None) -> list[TokenEntry]:
    """Read and check a tokens file. `known_personas`, when given, is what `personas` entries may name.

    Raises:
        ConfigurationError: the file is accessible to group or others, unreadable, not TOML, empty, or has a
            bad entry (the message names the file, the entry's index, the field and the fix).
    """
    import tomllib  # only servers with a tokens file need it

    # Others must not read or write it: they could add a token of their own, or copy the hashes.
    text = read_private_file(path, f"tokens file {path}")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"tokens file {path}: not valid TOML: {exc}") from None
    return parse_tokens(raw, source=str(path), known_personas=known_personas)


def parse_tokens(
    raw: Mapping[str, Any], *, source: str = "<tokens>", known_personas: Collection[str] | None = None
) -> list[TokenEntry]:
    """Check an already-parsed tokens document.

    Raises:
        ConfigurationError: a bad entry, a duplicate hash, or no tokens at all (one message per problem).
    """
    problems: list[str] = []
    unknown = sorted(set(raw) - {"tokens"})
    if unknown:
        problems.append(f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; expected [[tokens]]")
    tables = raw.get("tokens")
    if not isinstance(tables, list) or not tables:
        problems.append(
            f"{source}: no [[tokens]] entries, so nobody could connect; "
            "create one with `openrouter-mcp hash-token --user NAME`"
        )
        tables = []
    entries: list[TokenEntry] = []
    first_seen: dict[str, int] = {}
    for index, table in enumerate(tables):
        where = f"{source}: tokens[{index}]"
        if not isinstance(table, dict):
            problems.append(f"{where}: must be a table ([[tokens]] with user and sha256)")
            continue
        entry_problems = _entry_problems(table, where, known_personas)
        if entry_problems:
            problems.extend(entry_problems)
            continue
        digest = str(table["sha256"]).lower()
        if digest in first_seen:
            problems.append(
                f"{where}: field 'sha256': the same hash as tokens[{first_seen[digest]}]; "
                "each token must be unique (make a new one with `openrouter-mcp hash-token`)"
            )
            continue
        first_seen[digest] = index
        personas = table.get("personas")
        budget = Budget.model_validate(table["budget"]) if "budget" in table else None
        entries.append(
            TokenEntry(str(table["user"]), digest, None if personas is None else frozenset(personas), budget)
        )
    if problems:
        raise ConfigurationError("\n".join(problems))
    return entries


def _entry_problems(table: dict[str, Any], where: str, known_personas: Collection[str] | None) -> list[str]:
    problems: list[str] = []
    if "token" in table:
        problems.append(
            f"{where}: field 'token': a tokens file holds only the sha256 of each token, never the token; "
            "remove it and use the `sha256` line from `openrouter-mcp hash-token`"
        )
    for field in sorted(set(table) - set(_ENTRY_FIELDS) - {"token"}):
        problems.append(f"{where}: field {field!r}: unknown field; accepted here: {', '.join(_ENTRY_FIELDS)}")

    user = table.get("user")
    if not isinstance(user, str) or not user.strip():
        problems.append(f"{where}: field 'user': required, a non-empty string naming who holds the token")
    elif len(user) > 128 or not user.isprintable():
        problems.append(f"{where}: field 'user': at most 128 printable characters, got {user!r}")

    digest = table.get("sha256")
    if not isinstance(digest, str):
        problems.append(f"{where}: field 'sha256': required, the 64-hex-digit SHA-256 of the token")
    elif not _SHA256_HEX.fullmatch(digest.lower()):
        problems.append(
            f"{where}: field 'sha256': must be 64 hex digits (the SHA-256 of the token), got {len(digest)} characters"
        )

    if "personas" in table:
        personas = table["personas"]
        if not isinstance(personas, list) or not all(isinstance(p, str) and p for p in personas):
            problems.append(f"{where}: field 'personas': must be a list of persona names, e.g. [\"frugal\"]")
        elif not personas:
            problems.append(
                f"{where}: field 'personas': an empty list would allow no persona; omit the field to allow any"
            )
        elif known_personas is not None and (missing := sorted(set(personas) - set(known_personas))):
            problems.append(
                f"{where}: field 'personas': unknown persona(s) {', '.join(map(repr, missing))}; "
                f"defined: {', '.join(sorted(known_personas))}"
            )
    if "budget" in table:
        try:
            Budget.model_validate(table["budget"])
        except ValidationError as exc:
            problems.append(
                f"{where}: field 'budget': {exc.errors()[0]['msg']}; "
                "write budget = { daily = 5.0, monthly = 50.0 } (USD, either or both)"
            )
    return problems


# ------------------------------------------------------------------------------------------------
# Verifying tokens and reporting failures
# ------------------------------------------------------------------------------------------------


class _Attempt:
    """One HTTP request's authentication outcome, shared by the reporter and the verifier."""

    __slots__ = ("reported",)

    def __init__(self) -> None:
        self.reported = False


_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("openrouter_mcp_auth_attempt", default=None)


def _report(on_failure: FailureCallback | None, reason: str) -> None:
    attempt = _attempt.get()
    if attempt is not None:
        if attempt.reported:
            return
        attempt.reported = True
    if on_failure is not None:
        on_failure(reason)


class HashedTokenVerifier:
    """The SDK's `TokenVerifier` over a tokens file: a token is valid when its SHA-256 is listed.

    The `AccessToken` it returns carries the user as `client_id` and the allowed personas as scopes
    (`persona:NAME` each, or `persona:*`). `on_failure` hears "unknown token" for a token not listed;
    it never receives the token.
    """

    def __init__(self, entries: Iterable[TokenEntry], *, on_failure: FailureCallback | None = None) -> None:
        # A dict lookup needs no constant-time compare: its timing can at most hint at how the *hash* of a
        # guess relates to the listed hashes, and knowing part of a hash does not help find a token for it.
        self._by_hash = {entry.sha256: entry for entry in entries}
        self.on_failure = on_failure

    def budgets(self) -> dict[str, Budget]:
        """The budgets the tokens file gives its users, by user name."""
        return {entry.user: entry.budget for entry in self._by_hash.values() if entry.budget is not None}

    async def verify_token(self, token: str) -> AccessToken | None:
        entry = self._by_hash.get(hash_token(token))
        if entry is None:
            _report(self.on_failure, "unknown token")
            return None
        scopes = (
            [ANY_PERSONA_SCOPE]
            if entry.personas is None
            else [PERSONA_SCOPE_PREFIX + name for name in sorted(entry.personas)]
        )
        return AccessToken(token=token, client_id=entry.user, scopes=scopes)


class AuthFailureReporter:
    """ASGI middleware: reports every HTTP request answered 401 that the verifier has not reported already.

    Wrap the whole app with it, outside the SDK's authentication middleware, and give it the verifier's
    callback. It sees the requests the SDK refuses without asking the verifier (no `Authorization: Bearer`).
    """

    def __init__(self, app: ASGIApp, on_failure: FailureCallback | None) -> None:
        self.app = app
        self.on_failure = on_failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                _report(self.on_failure, "missing or invalid token")
            await send(message)

        marker = _attempt.set(_Attempt())
        try:
            await self.app(scope, receive, watch)
        finally:
            _attempt.reset(marker)


def current_identity() -> Identity | None:
    """Who is calling, from the SDK's authentication context; None when unauthenticated (stdio, no tokens).

    Works wherever the request's context reaches: tool handlers and middleware included.
    """
    access = get_access_token()
    if access is None:
        return None
    personas: set[str] | None = set()
    for scope in access.scopes:
        if scope == ANY_PERSONA_SCOPE:
            personas = None
            break
        if scope.startswith(PERSONA_SCOPE_PREFIX) and personas is not None:
            personas.add(scope.removeprefix(PERSONA_SCOPE_PREFIX))
    return Identity(user=access.client_id, personas=None if personas is None else frozenset(personas))


# ------------------------------------------------------------------------------------------------
# `openrouter-mcp hash-token`
# ------------------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    """The lowercase SHA-256 hex digest of `token`, as the tokens file stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random bearer token (256 bits) and its SHA-256 hex."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def main_hash_token(argv: list[str]) -> int:
    """`openrouter-mcp hash-token [--user NAME] [--persona NAME]...`: print a new token once, and its entry."""
    parser = argparse.ArgumentParser(
        prog="openrouter-mcp hash-token",
        description="Create a bearer token for the HTTP transports: prints the token (once; it is stored "
        "nowhere) and the [[tokens]] entry to add to the tokens file.",
    )
    parser.add_argument("--user", default="CHANGE-ME", help="who will hold the token (shown in the audit log)")
    parser.add_argument(
        "--persona",
        action="append",
        default=[],
        metavar="NAME",
        help="a persona the token may use (repeat for several; none given: any persona)",
    )
    args = parser.parse_args(argv)
    if not args.user.strip() or not args.user.isprintable():
        parser.error("--user must be a non-empty printable name")
    token, digest = new_token()
    # json.dumps gives a valid TOML basic string for any printable name.
    lines = [
        "# The token: give it to its holder now; it is not stored anywhere and cannot be shown again.",
        token,
        "",
        "# Add this entry to the tokens file (chmod 600):",
        "[[tokens]]",
        f"user = {json.dumps(args.user)}",
        f'sha256 = "{digest}"',
    ]
    if args.persona:
        lines.append(f"personas = [{', '.join(json.dumps(p) for p in dict.fromkeys(args.persona))}]")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
