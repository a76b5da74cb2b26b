"""OpenRouterClient: one method per OpenRouter endpoint, and the only module that imports httpx2.

httpx2 is httpx's maintained line (the stack the `mcp` SDK uses too). Every httpx2 exception and every error
answer is translated here, once, into `errors.py`'s tree, with the API key scrubbed from whatever text we pass on.

Every call is bounded in time and in size, whatever the upstream does: an overall deadline per kind of call
(`Settings.lookup_deadline`, `chat_deadline`, `stream_deadline`; the read timeout alone lets an answer that
drips a byte at a time last forever), the read timeout between two events of a stream, and a cap on the
bytes of one answer read into memory (`Settings.max_response_bytes`), read incrementally and refused at the cap
(`bounds.py` does the reading; the deadlines are set here, around the send and the read).
"""

from __future__ import annotations

import functools
import json
import select
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import anyio
import httpcore2
import httpx2
import pydantic_core
from pydantic import BaseModel, ValidationError

from openrouter_mcp import __version__
from openrouter_mcp.config import CHAT_DEADLINE_ENV, LOOKUP_DEADLINE_ENV, STREAM_DEADLINE_ENV, Settings
from openrouter_mcp.errors import (
    APIStatusError,
    ErrorInResponseError,
    InvalidRequestError,
    MalformedResponseError,
    MidStreamError,
    MissingApiKeyError,
    OpenRouterError,
    TransportError,
    UpstreamConnectionError,
    UpstreamTimeout,
    status_error_class,
)
from openrouter_mcp.upstream import url_parts
from openrouter_mcp.upstream.bounds import late, read_capped, timed_lines
from openrouter_mcp.upstream.envelope import error_from_body, rate_limit_headers, retry_after_seconds
from openrouter_mcp.upstream.models import (
    AuthKey,
    ChatChunk,
    ChatCompletion,
    CoinbaseCharge,
    Credits,
    Generation,
    KeyInfo,
    MessagesResult,
    ModelEndpoints,
    ModelsCount,
    ModelsPage,
    Provider,
)

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class _Answer:
    """An upstream answer read whole, within the size cap: what the parsers need of it."""

    status_code: int
    headers: httpx2.Headers
    content: bytes
    #: The request's URL path, as messages name it (`/api/v1/models`).
    path: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


#: The upstream connection pool. Every connection a burst opened is kept alive for the next one: with fewer
#: keep-alive slots than concurrent calls, each call past them opened a connection (a TLS handshake against
#: OpenRouter) and threw it away, and at 200 concurrent calls almost none reused one. 256 covers the 200
#: concurrent calls the server is measured at (bench/load.py); calls past it wait for a connection (the pool
#: timeout is the read timeout) rather than open sockets without bound. An idle connection is kept 30 s, so that
#: those a burst opened are still there for the next one; one the server closed meanwhile is never reused (the
#: pool checks each idle socket before it hands out a connection: see `_ProbedStream`).
UPSTREAM_LIMITS = httpx2.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=30.0)


def build_http_client(settings: Settings, *, asgi_app: Callable[..., Any] | None = None) -> httpx2.AsyncClient:
    """The one shared HTTP client of a process, configured from `settings`: every client is built here.

    `asgi_app` sends every request to that ASGI application in this process instead of the network (the
    demo's simulator); timeouts and limits are the same either way.
    """
    timeout = httpx2.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    transport = httpx2.ASGITransport(app=asgi_app) if asgi_app is not None else None
    http = httpx2.AsyncClient(timeout=timeout, limits=UPSTREAM_LIMITS, transport=transport, verify=_tls_context())
    probe_idle_connections_cheaply(http)
    return http


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The process's one TLS context (the system's CA certificates, as httpx2 sets them up by default).

    Loading the certificates takes ~20 ms: once per process, not once per client (tests and the demo build many).
    """
    return httpx2.create_ssl_context()


def probe_idle_connections_cheaply(http: httpx2.AsyncClient) -> bool:
    """Give the connection pool of `http`'s default transport our `_ProbingBackend`; False if it has no such pool.

    httpx2 takes no network backend, so it is set on the pool it built (before any connection exists): the client
    keeps everything else it set up from the environment (proxies, certificates). A later httpx2 that lays out
    its transport differently leaves the pool as it is (tests/test_cli.py checks this one does).
    """
    pool = getattr(getattr(http, "_transport", None), "_pool", None)
    if type(pool) is not httpcore2.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
        return False
    pool._network_backend = _ProbingBackend()
    return True


class _ProbingBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's anyio backend, with streams that answer "is the server's close waiting?" in one syscall.

    Each time the pool places a request (twice a call) it asks every idle connection whether the server closed
    it. httpcore2 answers by building anyio's table of socket attributes to find the socket, then a `poll`
    object: about 10 µs, so 5 ms a call with 200 idle connections after a burst, five times what the call
    costs otherwise. `_ProbedStream` keeps the socket registered with one `poll` object instead.
    """

    def __init__(self) -> None:
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _ProbedStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return _ProbedStream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ProbedStream(httpcore2.AsyncNetworkStream):
    """A network stream whose `is_readable` is one `poll` on a socket registered once."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._poll: select.poll | None = None
        sock = inner.get_extra_info("socket")
        if sock is not None and sock.fileno() >= 0:
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLIN)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return _ProbedStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._poll is not None:
            # Readable while idle means the server's close (b"") is waiting; a closed socket (POLLNVAL) counts too.
            return bool(self._poll.poll(0))
        return self._inner.get_extra_info(info)


class OpenRouterClient:
    """Typed access to the OpenRouter API over an injected `httpx2.AsyncClient`.

    The client does not own `http` unless it created it; `aclose()` closes only what it owns.
    """

    def __init__(self, settings: Settings, http: httpx2.AsyncClient | None = None) -> None:
        self._settings = settings
        self._owns_http = http is None
        self._http = http if http is not None else build_http_client(settings)
        self._base = settings.base_url.rstrip("/")
        self._secret = settings.api_key.get_secret_value() if settings.api_key else None
        self._secret_forms = secret_forms(self._secret) if self._secret else ()
        self._headers = {
            "HTTP-Referer": settings.http_referer,
            "X-OpenRouter-Title": settings.app_title,
            "User-Agent": f"openrouter-mcp/{__version__}",
            **settings.extra_headers,
        }
        #: (path, router metadata, has a body) -> parsed URL and headers, built on first use.
        self._prepared: dict[tuple[str, bool, bool], tuple[httpx2.URL, httpx2.Headers]] = {}

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- inference ---------------------------------------------------------------------------

    async def create_chat_completion(self, body: Mapping[str, Any], *, router_metadata: bool = False) -> ChatCompletion:
        """POST /chat/completions without streaming.

        `router_metadata` asks OpenRouter for `openrouter_metadata` (which models it tried, and how they fared).

        Raises:
            OpenRouterError: any failure, including a 200 whose choice finished with "error".
        """
        response = await self._send(
            "POST",
            "/chat/completions",
            json_body={**body, "stream": False},
            auth=True,
            router_metadata=router_metadata,
            deadline=(self._settings.chat_deadline, CHAT_DEADLINE_ENV),
        )
        completion = self._parse(response, ChatCompletion)
        for choice in completion.choices:
            if choice.finish_reason == "error" or choice.error:
                raise error_from_body(
                    choice.error or {},
                    ErrorInResponseError,
                    status_code=response.status_code,
                    generation_id=completion.id,
                    redact=self._redact,
                )
        return completion

    @asynccontextmanager
    async def stream_chat_completion(
        self, body: Mapping[str, Any], *, router_metadata: bool = False
    ) -> AsyncIterator[AsyncIterator[ChatChunk]]:
        """POST /chat/completions with `stream: true`; yields an iterator of parsed chunks.

        Leaving the `async with` block (normally, on error, or by cancellation) closes the
        upstream connection, which stops generation and billing at providers that support it.
        The whole stream must end within `Settings.stream_deadline`, and each of its lines (events, and
        the keep-alive comments between them) arrive within the read timeout of the one before.

        Raises:
            OpenRouterError: a pre-stream error status, a transport failure, a malformed event,
                `MidStreamError` for an error chunk after HTTP 200, `UpstreamTimeout` past a deadline,
                `ResponseTooLargeError` for a stream past `Settings.max_response_bytes`.
        """
        self._require_key("create_chat_completion")
        what, limit = "POST /chat/completions (streamed)", self._settings.stream_deadline
        request = self._build(
            what, "POST", "/chat/completions", {**body, "stream": True}, router_metadata=router_metadata
        )
        ends = anyio.current_time() + limit
        response: httpx2.Response | None = None
        with anyio.move_on_at(ends):
            with self._translate_transport_errors():
                response = await self._http.send(request, stream=True)
        if response is None:
            raise UpstreamTimeout(late(what, limit, STREAM_DEADLINE_ENV))
        try:
            if response.status_code >= 400:
                content: bytes | None = None
                with anyio.move_on_at(ends):
                    with self._translate_transport_errors():
                        content = await self._read_capped(response, what)
                if content is None:
                    raise UpstreamTimeout(late(what, limit, STREAM_DEADLINE_ENV))
                raise self._status_error(_answer(response, content))
            yield self._iter_chunks(response, what, ends)
        finally:
            with anyio.CancelScope(shield=True):  # closing must happen even when a deadline cancelled us
                await response.aclose()

    async def _iter_chunks(self, response: httpx2.Response, what: str, ends: float) -> AsyncIterator[ChatChunk]:
        generation_id = response.headers.get("x-generation-id")
        finished, events = False, 0
        with self._translate_transport_errors():
            lines = timed_lines(
                response.aiter_bytes(),
                what=what,
                gap=self._settings.read_timeout,
                ends=ends,
                deadline=self._settings.stream_deadline,
                cap=self._settings.max_response_bytes,
            )
            async for data in _sse_data(lines):
                if data == "[DONE]":
                    return
                events += 1
                try:
                    chunk = ChatChunk.model_validate_json(data)
                except ValidationError as exc:
                    raise MalformedResponseError(f"OpenRouter sent an unreadable stream event: {_short(exc)}") from None
                if chunk.error is not None:
                    raise error_from_body(
                        chunk.error,
                        MidStreamError,
                        status_code=response.status_code,
                        generation_id=chunk.id or generation_id,
                        redact=self._redact,
                    )
                finished = finished or any(choice.finish_reason for choice in chunk.choices)
                generation_id = chunk.id or generation_id
                yield chunk
        if not finished:
            # An empty 200, a comment-only stream or one cut between events is not an answer: with neither a
            # finish_reason nor `[DONE]`, nothing says the text is whole, so it is an error that carries what arrived.
            raise MidStreamError(
                f"OpenRouter's stream ended after {events} event(s) without a finish_reason or [DONE]: "
                "the answer is incomplete",
                status_code=response.status_code,
                error_type="incomplete_stream",
                generation_id=generation_id,
            )

    async def create_message(self, body: Mapping[str, Any], *, router_metadata: bool = False) -> MessagesResult:
        """POST /messages (Anthropic Messages format), without streaming.

        Raises:
            OpenRouterError: any failure.
        """
        response = await self._send(
            "POST",
            "/messages",
            json_body={**body, "stream": False},
            auth=True,
            router_metadata=router_metadata,
            deadline=(self._settings.chat_deadline, CHAT_DEADLINE_ENV),
        )
        return self._parse(response, MessagesResult)

    # --- account -----------------------------------------------------------------------------

    async def get_credits(self) -> Credits:
        """GET /credits. Raises: OpenRouterError."""
        return self._parse_data(await self._send("GET", "/credits", auth=True), Credits)

    async def get_current_key(self) -> KeyInfo:
        """GET /key. Raises: OpenRouterError."""
        return self._parse_data(await self._send("GET", "/key", auth=True), KeyInfo)

    async def get_generation(self, generation_id: str) -> Generation:
        """GET /generation?id=.

        Raises:
            UnsafeUrlValueError: `generation_id` cannot be a generation id.
            OpenRouterError: any upstream failure.
        """
        params = {"id": url_parts.generation_id(generation_id)}
        response = await self._send("GET", "/generation", params=params, auth=True)
        return self._parse_data(response, Generation)

    async def create_coinbase_charge(self, body: Mapping[str, Any]) -> CoinbaseCharge:
        """POST /credits/coinbase (retired upstream: expect `GoneError`). Raises: OpenRouterError."""
        response = await self._send("POST", "/credits/coinbase", json_body=dict(body), auth=True)
        return self._parse_data(response, CoinbaseCharge)

    async def exchange_auth_code(self, code: str, code_verifier: str) -> AuthKey:
        """POST /auth/keys: the key that sign-in with OpenRouter (PKCE, S256) created; sent without a key.

        Raises:
            OpenRouterError: the code or verifier was refused (403), or any other upstream failure.
        """
        body = {"code": code, "code_verifier": code_verifier, "code_challenge_method": "S256"}
        return self._parse(await self._send("POST", "/auth/keys", json_body=body), AuthKey)

    # --- catalog -----------------------------------------------------------------------------

    async def list_models(self, params: Mapping[str, Any] | None = None) -> ModelsPage:
        """GET /models with OpenRouter's own filters. Raises: OpenRouterError."""
        return self._parse(await self._send("GET", "/models", params=params), ModelsPage)

    async def list_user_models(self, params: Mapping[str, Any] | None = None) -> ModelsPage:
        """GET /models/user (the key's provider and privacy preferences applied). Raises: OpenRouterError."""
        return self._parse(await self._send("GET", "/models/user", params=params, auth=True), ModelsPage)

    async def list_embedding_models(self, params: Mapping[str, Any] | None = None) -> ModelsPage:
        """GET /embeddings/models. Raises: OpenRouterError."""
        return self._parse(await self._send("GET", "/embeddings/models", params=params), ModelsPage)

    async def get_models_count(self, params: Mapping[str, Any] | None = None) -> ModelsCount:
        """GET /models/count. Raises: OpenRouterError."""
        return self._parse_data(await self._send("GET", "/models/count", params=params), ModelsCount)

    async def list_model_endpoints(self, author: str, slug: str) -> ModelEndpoints:
        """GET /models/{author}/{slug}/endpoints, with the `/` between them unencoded as OpenRouter requires.

        Raises:
            UnsafeUrlValueError: `author` or `slug` is not one segment of an OpenRouter id.
            OpenRouterError: any upstream failure.
        """
        path = f"/models/{url_parts.path_segment('author', author)}/{url_parts.path_segment('slug', slug)}/endpoints"
        response = await self._send("GET", path)
        return self._parse_data(response, ModelEndpoints)

    async def list_providers(self) -> list[Provider]:
        """GET /providers. Raises: OpenRouterError."""
        response = await self._send("GET", "/providers")
        return self._parse_list(response, Provider)

    async def list_zdr_endpoints(self) -> list[dict[str, Any]]:
        """GET /endpoints/zdr, as raw endpoint objects (callers project them). Raises: OpenRouterError."""
        body = self._json(await self._send("GET", "/endpoints/zdr"))
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise MalformedResponseError("OpenRouter's /endpoints/zdr answer has no `data` list")
        return [item for item in data if isinstance(item, dict)]

    # --- plumbing ----------------------------------------------------------------------------

    def _require_key(self, what: str) -> None:
        if self._secret is None:
            raise MissingApiKeyError(f"`{what}`")

    def _build(
        self,
        what: str,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        router_metadata: bool = False,
    ) -> httpx2.Request:
        """`_request`, with what httpx refuses to build turned into a clear error (a backstop: see url_parts).

        Raises:
            UnsafeUrlValueError: a value that would change the URL's meaning.
            InvalidRequestError: httpx cannot build a URL or header from the values (or the settings).
        """
        try:
            return self._request(method, path, json_body, params=params, router_metadata=router_metadata)
        except (httpx2.InvalidURL, UnicodeEncodeError) as exc:
            raise _refused(what, self._redact(str(exc))) from None

    def _request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        router_metadata: bool = False,
    ) -> httpx2.Request:
        """The request for `path`; its URL and headers are parsed once per kind of request, not on every call.

        The body is encoded by pydantic-core (Rust): several times faster than the json.dumps of `json=`.
        """
        key = (path, router_metadata, json_body is not None)
        prepared = self._prepared.get(key)
        if prepared is None:
            fields = dict(self._headers)
            if self._secret is not None:
                fields["Authorization"] = f"Bearer {self._secret}"
            if router_metadata:
                fields["X-OpenRouter-Metadata"] = "enabled"
            if json_body is not None:
                fields["Content-Type"] = "application/json"
            if len(self._prepared) >= 64:  # paths with ids in them (a model's endpoints) must not grow it forever
                self._prepared.clear()
            prepared = self._prepared[key] = (httpx2.URL(self._base + path), httpx2.Headers(fields))
        url, headers = prepared
        # None rather than {} when empty: httpx would otherwise rebuild the URL to merge an empty query.
        query = {k: url_parts.query_value(k, v) for k, v in params.items() if v is not None} if params else None
        content = None if json_body is None else pydantic_core.to_json(json_body)
        return self._http.build_request(method, url, params=query or None, content=content, headers=headers)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        auth: bool = False,
        router_metadata: bool = False,
        deadline: tuple[float, str] | None = None,
    ) -> _Answer:
        """Send one request and read its whole answer, within `deadline` (seconds, and the variable that sets
        them; default: the lookup deadline) and the size cap.

        Raises:
            UpstreamTimeout: no whole answer within the deadline (or a transport timeout).
            ResponseTooLargeError: the answer is larger than `Settings.max_response_bytes`.
            OpenRouterError: the answer is an error status, or another transport failure.
        """
        if auth:
            self._require_key(path.lstrip("/"))
        limit, variable = deadline or (self._settings.lookup_deadline, LOOKUP_DEADLINE_ENV)
        what = f"{method} {path}"
        request = self._build(what, method, path, json_body, params=params, router_metadata=router_metadata)
        answer: _Answer | None = None
        with _deadline(limit):
            with self._translate_transport_errors():
                response = await self._http.send(request, stream=True)
                try:
                    answer = _answer(response, await self._read_capped(response, what))
                finally:
                    # A body read to its end has closed the response already (httpx does): no shielded scope then.
                    if not response.is_closed:
                        with anyio.CancelScope(shield=True):  # closing must happen even when the deadline cancelled us
                            await response.aclose()
        if answer is None:
            raise UpstreamTimeout(late(what, limit, variable))
        if answer.status_code >= 400:
            raise self._status_error(answer)
        return answer

    async def _read_capped(self, response: httpx2.Response, what: str) -> bytes:
        """The body of `response` within `Settings.max_response_bytes`. Raises: ResponseTooLargeError."""
        declared = response.headers.get("content-length")
        cap = self._settings.max_response_bytes
        return await read_capped(response.aiter_bytes(), declared_length=declared, cap=cap, what=what)

    def _translate_transport_errors(self) -> _TransportErrors:
        # A plain (sync) context manager: translation needs no await, and it wraps awaits fine.
        return _TransportErrors(self._redact)

    def _redact(self, text: str) -> str:
        return redact(text, self._secret_forms)

    def _status_error(self, response: _Answer) -> APIStatusError:
        try:
            body = pydantic_core.from_json(response.content)
        except ValueError:
            body = None
        envelope = body.get("error") if isinstance(body, dict) else None
        if not isinstance(envelope, dict):
            text = response.text[:300] if response.content else httpx2.codes.get_reason_phrase(response.status_code)
            envelope = {"message": f"HTTP {response.status_code}: {text}"}
        return error_from_body(
            envelope,
            status_error_class(response.status_code),
            status_code=response.status_code,
            retry_after=retry_after_seconds(response.headers),
            rate_limit=rate_limit_headers(response.headers),
            generation_id=response.headers.get("x-generation-id")
            or (body.get("request_id") if isinstance(body, dict) else None),
            redact=self._redact,
        )

    def _json(self, response: _Answer) -> Any:
        try:
            # pydantic-core's parser (Rust) reads the bytes directly: faster than decoding text for json.loads.
            return pydantic_core.from_json(response.content)
        except ValueError:
            snippet = self._redact(response.text[:120])
            raise MalformedResponseError(
                f"OpenRouter answered {response.path} with invalid JSON: {snippet!r}"
            ) from None

    def _parse(self, response: _Answer, model: type[_M]) -> _M:
        # The common case in one pass: bytes straight into the model, no intermediate dict.
        try:
            parsed = model.model_validate_json(response.content)
        except ValidationError:
            pass  # invalid JSON, an error envelope, or a wrong shape: the checks below say which
        else:
            extra = parsed.__pydantic_extra__
            if not (extra and isinstance(extra.get("error"), dict)):
                return parsed
        body = self._json(response)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            # OpenRouter sometimes answers 200 with an error envelope instead of a result.
            raise error_from_body(
                body["error"], ErrorInResponseError, status_code=response.status_code, redact=self._redact
            )
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise MalformedResponseError(
                f"OpenRouter's answer to {response.path} has an unexpected shape: {_short(exc)}"
            ) from None

    def _parse_data(self, response: _Answer, model: type[_M]) -> _M:
        body = self._json(response)
        if not isinstance(body, dict) or "data" not in body:
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                raise error_from_body(
                    body["error"], ErrorInResponseError, status_code=response.status_code, redact=self._redact
                )
            raise MalformedResponseError(f"OpenRouter's answer to {response.path} has no `data` field")
        try:
            return model.model_validate(body["data"])
        except ValidationError as exc:
            raise MalformedResponseError(
                f"OpenRouter's answer to {response.path} has an unexpected shape: {_short(exc)}"
            ) from None

    def _parse_list(self, response: _Answer, model: type[_M]) -> list[_M]:
        body = self._json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise MalformedResponseError(f"OpenRouter's answer to {response.path} has no `data` list")
        try:
            return [model.model_validate(item) for item in data]
        except ValidationError as exc:
            raise MalformedResponseError(
                f"OpenRouter's answer to {response.path} has an unexpected shape: {_short(exc)}"
            ) from None


class _TransportErrors:
    """Context manager mapping httpx's exceptions to ours (sync `with`, usable around awaits)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, OpenRouterError) or not isinstance(exc, httpx2.HTTPError):
            return False
        message = self._redact(str(exc) or type(exc).__name__)
        if isinstance(exc, httpx2.LocalProtocolError):
            # Raised before anything is written: our own request is what the HTTP stack refused (a header value).
            what = f"{exc.request.method} {exc.request.url.path}" if _has_request(exc) else "the request"
            raise _refused(what, message) from None
        if isinstance(exc, httpx2.TimeoutException):
            raise UpstreamTimeout(f"OpenRouter did not answer in time ({type(exc).__name__}): {message}") from None
        if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError | httpx2.WriteError | httpx2.ConnectError):
            raise UpstreamConnectionError(f"Connection to OpenRouter failed: {message}") from None
        if isinstance(exc, httpx2.DecodingError):
            raise MalformedResponseError(f"OpenRouter's answer could not be decoded: {message}") from None
        raise TransportError(f"HTTP transport error talking to OpenRouter: {message}") from None


def _has_request(exc: httpx2.RequestError) -> bool:
    try:
        exc.request  # noqa: B018 -- httpx raises RuntimeError when the error carries no request
    except RuntimeError:
        return False
    return True


def _deadline(seconds: float) -> anyio.CancelScope | nullcontext[None]:
    """A scope that ends the block after `seconds`; no scope when an enclosing deadline ends it sooner anyway.

    A chat call runs inside its persona's deadline (120 s by default), which ends before the chat deadline (300 s):
    a second timer there could never fire first, and setting one up costs several microseconds a call. Whatever
    ends the block sooner ends it the same way with or without this scope: a cancellation that is not this one's.
    """
    if anyio.current_effective_deadline() < anyio.current_time() + seconds:
        return nullcontext()
    return anyio.move_on_after(seconds)


def _answer(response: httpx2.Response, content: bytes) -> _Answer:
    return _Answer(response.status_code, response.headers, content, response.request.url.path)


def _refused(what: str, reason: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"the HTTP client refused to build the request for {what}: {reason}. Nothing was sent: check this call's "
        "arguments (and, if they look right, OPENROUTER_BASE_URL, OPENROUTER_APP_TITLE and OPENROUTER_HTTP_REFERER)"
    )


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The `data` payloads of an SSE stream; comment lines (`: OPENROUTER PROCESSING`) are skipped."""
    buffer: list[str] = []
    async for line in lines:
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer:
        yield "\n".join(buffer)


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']} ({exc.error_count()} problem(s))"


def secret_forms(secret: str) -> tuple[str, ...]:
    """`secret` as it may appear in a message: as is, JSON- or repr-escaped, percent-encoded; longest first.

    Settings refuse a key with characters that need escaping, but a message may still quote it escaped
    (an upstream echoing a header, a library's repr), and redaction must catch every form.
    """
    forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], quote(secret, safe=""), quote(secret)}
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str, forms: tuple[str, ...]) -> str:
    """`text` with every one of `forms` (see `secret_forms`) replaced by `[redacted]`."""
    for form in forms:
        if form in text:
            text = text.replace(form, "[redacted]")
    return text
