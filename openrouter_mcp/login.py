"""`openrouter-mcp login` and `logout`: sign in with OpenRouter (OAuth PKCE) instead of pasting a key.

The flow, for a command-line tool (OpenRouter allows a `localhost`/`127.0.0.1` callback on any port):

1. a random verifier and its S256 challenge, and a random `state`;
2. a listener on 127.0.0.1 (any free port, or `--port`) for the callback `/callback/<state>`;
3. the browser opens OpenRouter's consent page (`OPENROUTER_AUTH_URL`) with the callback, the challenge and
   an optional spending limit, or the URL is printed (`--no-browser`);
4. OpenRouter redirects the browser to the callback with `?code=...`; the state in the path must match, and
   only one callback is taken, within `--timeout`;
5. the code and the verifier are exchanged for a new key (`POST /auth/keys` under `OPENROUTER_BASE_URL`), and
   the key is stored (`keystore`: the OS keychain, else an owner-only file). The browser's page says how it
   went. The key is never printed.

OpenRouter documents no `state` parameter (its redirect carries `code` alone), so the state travels in the
callback's path, which any redirect keeps; a callback whose path names another state is refused, and nothing
is exchanged. The spending limit goes to the consent page as `limit`, the name the spec gives it in
`POST /auth/keys/code` (the request that page makes); the live page's handling of it is not documented.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import anyio.abc

from openrouter_mcp.cli_args import port_number, positive_seconds, positive_usd
from openrouter_mcp.config import Settings, checked_api_key, key_variables_set
from openrouter_mcp.errors import ConfigurationError, OpenRouterError
from openrouter_mcp.keystore import KeyStore

LOOPBACK = "127.0.0.1"
CALLBACK_PREFIX = "/callback/"
#: Seconds to finish signing in in the browser: long enough to log in to OpenRouter first.
DEFAULT_TIMEOUT = 300.0
#: A callback connection must send its request line and headers within this many seconds, in this many bytes.
REQUEST_HEAD_TIMEOUT = 10.0
MAX_REQUEST_HEAD = 16 * 1024
KEYS_PAGE = "https://openrouter.ai/settings/keys"
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found"}

#: Opens a URL in the user's browser; False when none could be opened (the shape of `webbrowser.open`).
BrowserOpener = Callable[[str], bool]


class LoginError(Exception):
    """Signing in failed; the message says why and what to do (it never contains a key)."""


@dataclass(frozen=True)
class Pkce:
    """A PKCE pair (RFC 7636): the secret verifier, and the challenge sent ahead of it."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)  # 64 characters, of the unreserved set RFC 7636 allows
        return cls(verifier, s256(verifier))


def s256(verifier: str) -> str:
    """The S256 challenge of `verifier`: base64url of its SHA-256, without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def consent_url(auth_url: str, callback_url: str, challenge: str, limit: float | None = None) -> str:
    """OpenRouter's consent page for this sign-in."""
    query = {"callback_url": callback_url, "code_challenge": challenge, "code_challenge_method": "S256"}
    if limit is not None:
        query["limit"] = f"{limit:g}"
    return f"{auth_url}{'&' if urlsplit(auth_url).query else '?'}{urlencode(query)}"


async def sign_in(
    settings: Settings,
    store: KeyStore,
    *,
    open_browser: BrowserOpener | None,
    say: Callable[[str], None],
    port: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    limit: float | None = None,
    pkce: Pkce | None = None,
) -> str:
    """Sign in with OpenRouter and store the new key; return where it was stored.

    `open_browser` None prints the URL only (`say`). `pkce` is for tests (a pair that does not match).

    Raises:
        LoginError: the port is taken, no callback came within `timeout`, the callback's state was wrong, or
            OpenRouter or the store refused; nothing was stored.
    """
    pkce = pkce or Pkce.new()
    state = secrets.token_urlsafe(24)
    try:
        listener = await anyio.create_tcp_listener(local_host=LOOPBACK, local_port=port)
    except OSError as exc:
        if port and _in_use(exc):
            raise LoginError(
                f"port {port} on {LOOPBACK} is already in use: choose another with --port, or leave --port out "
                "to use any free port"
            ) from None
        raise LoginError(f"cannot listen on {LOOPBACK}:{port} for OpenRouter's answer: {exc.strerror}") from None
    async with listener:
        bound = listener.extra(anyio.abc.SocketAttribute.local_port)
        url = consent_url(
            settings.auth_url, f"http://{LOOPBACK}:{bound}{CALLBACK_PREFIX}{state}", pkce.challenge, limit
        )
        waiting = f"(waiting up to {timeout:g} s)"
        if open_browser is None:
            say(f"Open this URL in a browser to sign in with OpenRouter {waiting}:\n  {url}")
        else:
            say(f"Opening your browser to sign in with OpenRouter {waiting}. If it does not open, visit:\n  {url}")

        async def finish(code: str) -> str:
            return await _exchange_and_store(settings, store, code, pkce.verifier)

        return await _await_callback(listener, state, timeout, finish, url, open_browser, say)


async def _exchange_and_store(settings: Settings, store: KeyStore, code: str, verifier: str) -> str:
    from openrouter_mcp.upstream.client import OpenRouterClient  # httpx: only once there is a code to exchange

    client = OpenRouterClient(settings)
    try:
        answer = await client.exchange_auth_code(code, verifier)
    except OpenRouterError as exc:
        raise LoginError(
            f"OpenRouter would not exchange the sign-in code for a key ({exc.kind}: {exc.message}); nothing was "
            "stored. Run `openrouter-mcp login` again"
        ) from None
    finally:
        await client.aclose()
    try:
        key = checked_api_key(answer.key.get_secret_value().strip(), "the key OpenRouter sent")
        # A keychain may wait on its daemon or on a prompt to unlock it: not on the event loop.
        return await anyio.to_thread.run_sync(store.save, key)
    except ConfigurationError as exc:
        raise LoginError(f"the new key could not be stored: {exc.message}") from None


async def _await_callback(
    listener: anyio.abc.Listener[anyio.abc.SocketStream],
    state: str,
    timeout: float,
    finish: Callable[[str], Awaitable[str]],
    url: str,
    open_browser: BrowserOpener | None,
    say: Callable[[str], None],
) -> str:
    """Serve the callback: the first request to `/callback/...` decides, within `timeout`; others get 404."""
    arrived = anyio.Event()
    done = anyio.Event()
    outcome: list[str | LoginError] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(REQUEST_HEAD_TIMEOUT):
                    method, target = await _read_request_line(stream)
            except (TimeoutError, ValueError, OSError, anyio.EndOfStream, anyio.BrokenResourceError):
                return  # a browser's idle preconnect, or not HTTP: not the callback
            parts = urlsplit(target)
            if method != "GET" or not parts.path.startswith(CALLBACK_PREFIX) or arrived.is_set():
                await _respond(stream, 404, "Not found.")
                return
            arrived.set()
            try:
                where = await _complete(parts.path[len(CALLBACK_PREFIX) :], parts.query, state, finish)
            except LoginError as exc:
                outcome.append(exc)
                await _respond(stream, 400, f"Sign-in failed: {exc} You can close this tab.")
            else:
                outcome.append(where)
                await _respond(
                    stream, 200, "Signed in to OpenRouter: openrouter-mcp has its key. You can close this tab."
                )
            finally:
                done.set()

    async def open_it() -> None:
        assert open_browser is not None
        # A console browser (lynx, w3m) would hold the thread until it quits: never wait for it.
        if not await anyio.to_thread.run_sync(open_browser, url, abandon_on_cancel=True):
            say("No browser could be opened: open the URL above yourself.")

    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        if open_browser is not None:
            group.start_soon(open_it)
        with anyio.move_on_after(timeout):
            await arrived.wait()
        if arrived.is_set():
            await done.wait()  # the exchange has its own deadline (OPENROUTER_LOOKUP_DEADLINE)
        group.cancel_scope.cancel()
    if not outcome:
        raise LoginError(
            f"no answer from OpenRouter within {timeout:g} s: finish signing in in the browser sooner, or give "
            "it longer with --timeout. Nothing was stored"
        )
    result = outcome[0]
    if isinstance(result, LoginError):
        raise result
    return result


async def _complete(got_state: str, query: str, state: str, finish: Callable[[str], Awaitable[str]]) -> str:
    if not hmac.compare_digest(got_state.encode(), state.encode()):
        raise LoginError(
            "the answer came back with the wrong state, so this login did not start it (an old tab, or a link "
            "someone else made); nothing was exchanged. Run `openrouter-mcp login` again"
        )
    params = parse_qs(query)
    codes = params.get("code", [])
    if len(codes) != 1 or not codes[0]:
        reason = params.get("error", ["no code"])[0]
        raise LoginError(f"OpenRouter sent no sign-in code back ({reason[:80]}): was it cancelled?")
    return await finish(codes[0])


async def _read_request_line(stream: anyio.abc.SocketStream) -> tuple[str, str]:
    """The method and target of the request on `stream`, once its whole head has arrived.

    Raises:
        ValueError: the head is larger than `MAX_REQUEST_HEAD`, or not an HTTP request.
    """
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive()
        if len(head) > MAX_REQUEST_HEAD:
            raise ValueError("request head too large")
    method, target, _version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    return method, target


async def _respond(stream: anyio.abc.SocketStream, status: int, message: str) -> None:
    body = f"<!doctype html><meta charset=utf-8><title>openrouter-mcp</title><p>{html.escape(message)}</p>".encode()
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    try:
        await stream.send(head.encode("ascii") + body)
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the browser went away; the outcome stands


def _in_use(exc: OSError) -> bool:
    import errno

    return exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE))


# --- the subcommands -------------------------------------------------------------------------------


def _say(text: str) -> None:
    # stderr: the same stream as errors, and never mixed with anything a script reads from stdout.
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main_login(argv: list[str], *, open_browser: BrowserOpener | None = None) -> int:
    """`openrouter-mcp login [--no-browser] [--limit USD] [--port N] [--timeout SECONDS]`.

    `open_browser` replaces `webbrowser.open` (tests play the browser with an HTTP client).
    """
    parser = argparse.ArgumentParser(
        prog="openrouter-mcp login",
        description="Sign in with OpenRouter in the browser and keep the new API key in the OS keychain (else in "
        "~/.config/openrouter-mcp/key, readable only by you). The server uses it when OPENROUTER_API_KEY and "
        "OPENROUTER_API_KEY_FILE are unset.",
    )
    parser.add_argument("--no-browser", action="store_true", help="print the sign-in URL instead of opening it")
    parser.add_argument(
        "--limit", type=positive_usd, metavar="USD", help="a spending limit for the new key (default: none)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=0,
        metavar="N",
        help="loopback port for OpenRouter's redirect back (default: any free port)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the sign-in (default {DEFAULT_TIMEOUT:g})",
    )
    args = parser.parse_args(argv)
    if open_browser is None and not args.no_browser:
        import webbrowser

        open_browser = webbrowser.open
    try:
        # The key variables are not read: a broken key file must not stop a login meant to replace it.
        settings = Settings.from_env(read_key=False)
        where = anyio.run(
            lambda: sign_in(
                settings,
                KeyStore.default(),
                open_browser=None if args.no_browser else open_browser,
                say=_say,
                port=args.port,
                timeout=args.timeout,
                limit=args.limit,
            )
        )
    except (LoginError, ConfigurationError) as exc:
        _say(f"login failed: {exc}")
        return 1
    except KeyboardInterrupt:
        _say("login cancelled; nothing was stored")
        return 130
    _say(f"Signed in. The new key is stored in {where}.")
    if shadowing := key_variables_set():
        _say(
            f"Note: {' and '.join(shadowing)} {'is' if len(shadowing) == 1 else 'are'} set, and the server uses "
            f"{'it' if len(shadowing) == 1 else 'them'} before the stored key: unset "
            f"{'it' if len(shadowing) == 1 else 'them'} to use the new key."
        )
    return 0


def main_logout(argv: list[str]) -> int:
    """`openrouter-mcp logout`: forget the stored key (OpenRouter keeps it valid until you delete it there)."""
    parser = argparse.ArgumentParser(
        prog="openrouter-mcp logout",
        description="Remove the key `openrouter-mcp login` stored (OS keychain and key file). The key itself "
        f"stays valid at OpenRouter until you delete it at {KEYS_PAGE}.",
    )
    parser.parse_args(argv)
    try:
        removed = KeyStore.default().delete()
    except ConfigurationError as exc:
        _say(f"logout failed: {exc}")
        return 1
    if not removed:
        _say("No stored key to remove.")
        return 0
    _say(
        f"Removed the stored key from {' and '.join(removed)}. It still works at OpenRouter until you delete it "
        f"at {KEYS_PAGE}."
    )
    if key_variables_set():
        _say(f"The server still has a key from {' and '.join(key_variables_set())}.")
    return 0
