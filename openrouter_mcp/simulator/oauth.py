"""Sign-in with OpenRouter (OAuth PKCE): the consent page ``GET /auth`` and the exchange ``POST /auth/keys``.

The consent page is outside ``/api/v1`` (``https://openrouter.ai/auth``). The simulated user consents at once:
the page answers 302 to ``callback_url`` with a ``code`` query parameter added. OpenRouter documents no
``state`` parameter and returns only ``code``, so a ``state`` given here is ignored, as there: a client that
needs one carries it in the callback URL itself (its path survives the redirect).

The exchange checks the code (known, not used before: a code is spent by its first exchange, right or wrong)
and, when the consent page got a ``code_challenge``, the verifier against it (``S256``: base64url of the
SHA-256 of the verifier, unpadded; ``plain``: equal). A bad body is 400; a bad code or verifier is 403, a
status the spec documents for this operation (what the live API sends there is not documented). A new key is
accepted on every authenticated endpoint of this simulator from then on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from .asgi import Incoming, Reply, json_reply
from .envelopes import bad_request, error_body
from .faults import Fault
from .state import SimulatorState

#: Callback hosts the consent page accepts over plain http ("localhost/127.0.0.1 URLs on any port").
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})
CHALLENGE_METHODS = ("S256", "plain")


@dataclass(frozen=True)
class AuthCode:
    """What the consent page was asked for, kept until the code is exchanged."""

    callback_url: str
    challenge: str | None
    method: str | None
    limit: float | None


def s256(verifier: str) -> str:
    """The S256 code challenge of `verifier` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _page(status: int, message: str) -> Reply:
    """The consent page's refusal: a small HTML page, as a browser shows it."""
    body = f"<!doctype html><title>OpenRouter (simulated)</title><p>{message}</p>".encode()
    return Reply(status, body, content_type="text/html; charset=utf-8")


def _callback_allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


class OAuthRoutes(SimulatorState):
    """The consent page and the code exchange (a mixin of :class:`~openrouter_mcp.simulator.Simulator`)."""

    #: Codes the consent page handed out and not yet exchanged.
    auth_codes: dict[str, AuthCode]

    async def _consent(self, req: Incoming) -> Reply:
        if req.method != "GET":
            return _page(405, "Method Not Allowed")
        callback = req.query.get("callback_url", "")
        if not _callback_allowed(callback):
            return _page(400, "callback_url must be an https URL, or http on localhost or 127.0.0.1")
        challenge = req.query.get("code_challenge") or None
        method = req.query.get("code_challenge_method") or ("plain" if challenge else None)
        if method is not None and method not in CHALLENGE_METHODS:
            return _page(400, "code_challenge_method must be S256 or plain")
        limit: float | None = None
        if raw_limit := req.query.get("limit"):
            try:
                limit = float(raw_limit)
            except ValueError:
                return _page(400, "limit must be a number of USD")
        code = f"auth_code_{secrets.token_urlsafe(18)}"
        self.auth_codes[code] = AuthCode(callback, challenge, method, limit)
        separator = "&" if urlsplit(callback).query else "?"
        location = f"{callback}{separator}code={quote(code, safe='')}"
        return Reply(302, b"", headers=[("Location", location)], content_type="text/html; charset=utf-8")

    async def _exchange_auth_code(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        body = req.body if isinstance(req.body, dict) else None
        code = body.get("code") if body is not None else None
        if not isinstance(code, str) or not code:
            return bad_request("code is required")
        verifier = body.get("code_verifier") if body is not None else None
        method = body.get("code_challenge_method") if body is not None else None
        if (verifier is not None and not isinstance(verifier, str)) or method not in (*CHALLENGE_METHODS, None):
            return bad_request("code_verifier must be a string, and code_challenge_method S256 or plain")
        issued = self.auth_codes.pop(code, None)
        if issued is None:
            return json_reply(403, error_body(403, "Invalid code"))
        if issued.challenge is not None:
            expected = s256(verifier or "") if (method or issued.method) == "S256" else (verifier or "")
            if method not in (issued.method, None) or not hmac.compare_digest(expected, issued.challenge):
                return json_reply(403, error_body(403, "Invalid code_verifier"))
        key = f"sk-or-v1-{secrets.token_hex(32)}"
        self.issued_keys[key] = issued.limit
        return json_reply(200, {"key": key, "user_id": "user_2sim0000000000000000000000"})
