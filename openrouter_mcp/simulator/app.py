"""The :class:`Simulator` ASGI app: routing, authentication, path faults, the request log, sending replies.

Streams are sent here too, with cancellation when the client goes away. The endpoints themselves are
mixins: :mod:`.catalog_routes`, :mod:`.account`, :mod:`.chat`, :mod:`.messages` and :mod:`.oauth`.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from .account import AccountRoutes
from .asgi import Incoming, Receive, Reply, Scope, Send, StreamReply, json_reply, read_request
from .catalog import build_catalog
from .catalog_data import PROVIDER_ROWS
from .catalog_routes import CatalogRoutes
from .chat import ChatCompletions
from .envelopes import anthropic_error_body, error_body
from .faults import Fault, fault_reply, malformed_reply
from .messages import Messages
from .oauth import OAuthRoutes

# One logger for the whole package, named after it.
logger = logging.getLogger(__package__)

# Paths that need a key when the simulator has one (API.md §1.1); everything else is public.
AUTH_PATHS = frozenset(
    {"/chat/completions", "/messages", "/credits", "/key", "/auth/key", "/generation", "/models/user"}
    | {"/credits/coinbase"}
)


@dataclass
class RecordedRequest:
    """One request as the simulator received it.

    ``path`` has no ``/api/v1`` prefix (a request outside the API keeps its full path); ``headers`` have
    lower-case names; ``body`` is parsed JSON or None (also when the body was not valid JSON).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


Handler = Callable[[Incoming, dict[str, str], Fault | None], Awaitable[Reply | StreamReply]]


class Simulator(ChatCompletions, Messages, CatalogRoutes, AccountRoutes, OAuthRoutes):
    """A simulated OpenRouter API; the instance is the ASGI app.

    Inject faults through ``model_faults`` (by model id, for chat and messages) and ``path_faults`` (by path
    without ``/api/v1``); inspect traffic through ``requests``, :meth:`count`, ``generations`` and
    ``cancelled_streams``. ``latency`` and ``stream_chunk_delay`` can be changed at any time.
    """

    def __init__(
        self,
        *,
        model_count: int = 320,
        seed: int = 0,
        api_key: str | None = None,
        latency: float = 0.0,
        stream_chunk_delay: float = 0.0,
        keepalive_comments: int = 2,
    ) -> None:
        catalog = build_catalog(model_count, seed)
        self.catalog = catalog.models
        self.providers = catalog.providers
        self.endpoints = catalog.endpoints
        self.model_faults = {}
        self.path_faults: dict[str, Fault] = {}
        self.requests: list[RecordedRequest] = []
        self.generations = {}
        self.latency = latency
        self.stream_chunk_delay = stream_chunk_delay
        self.keepalive_comments = keepalive_comments
        self.total_credits = 100.0
        self.total_usage = 0.0
        self._api_key = api_key
        self.auth_codes = {}
        self.issued_keys = {}
        self._categories = catalog.categories
        self._popularity = catalog.popularity
        self._tool_success = catalog.tool_success
        self._zdr_providers = {row[0] for row in PROVIDER_ROWS if row[4]}
        self._provider_regions = {row[0]: set(row[3].split()) for row in PROVIDER_ROWS}
        self._ids = random.Random(f"openrouter-sim-ids:{seed}")
        # A Condition, not an int alone, so a test on another thread can wait for a cancellation.
        self._cancelled = threading.Condition()
        self._cancelled_streams = 0
        self._routes: dict[str, dict[str, Handler]] = {
            "/models": {"GET": self._list_models},
            "/models/count": {"GET": self._models_count},
            "/models/user": {"GET": self._list_models},
            "/embeddings/models": {"GET": self._embeddings_models},
            "/endpoints/zdr": {"GET": self._endpoints_zdr},
            "/providers": {"GET": self._list_providers},
            "/credits": {"GET": self._credits},
            "/credits/coinbase": {"POST": self._coinbase},
            "/key": {"GET": self._key},
            "/auth/key": {"GET": self._key},
            "/generation": {"GET": self._generation},
            "/chat/completions": {"POST": self._chat},
            "/messages": {"POST": self._messages},
            "/auth/keys": {"POST": self._exchange_auth_code},
        }

    # ---- public helpers ---------------------------------------------------------------------------

    @property
    def cancelled_streams(self) -> int:
        """How many streamed responses ended because the client went away."""
        with self._cancelled:
            return self._cancelled_streams

    def wait_for_cancelled_streams(self, count: int, timeout: float) -> bool:
        """Block (in a worker thread) until ``cancelled_streams >= count``; False on timeout.

        Never call this from the event loop that serves the simulator: it blocks the thread.
        """
        with self._cancelled:
            return self._cancelled.wait_for(lambda: self._cancelled_streams >= count, timeout)

    def count(self, path: str, method: str | None = None) -> int:
        """How many requests hit ``path`` (without ``/api/v1``), optionally only with ``method``."""
        return sum(1 for r in self.requests if r.path == path and (method is None or r.method == method.upper()))

    def reset(self) -> None:
        """Clear faults, the request log and the cancelled-stream counter."""
        self.model_faults.clear()
        self.path_faults.clear()
        self.requests.clear()
        with self._cancelled:
            self._cancelled_streams = 0

    # ---- ASGI entry point -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: HTTP requests, and lifespan events so any server can host it."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        try:
            reply = await self._handle(request)
        except Exception:
            logger.exception("simulator failed on %s %s", request.method, request.path)
            reply = json_reply(500, error_body(500, "Internal Server Error"))
        if isinstance(reply, StreamReply):
            await self._send_stream(reply, receive, send)
        else:
            headers = [
                (b"content-type", reply.content_type.encode()),
                (b"content-length", str(len(reply.body)).encode()),
                *[(k.lower().encode(), v.encode()) for k, v in reply.headers],
            ]
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            if reply.drip > 0:
                await self._send_dripping(reply.body, reply.drip, receive, send)
            else:
                await send({"type": "http.response.body", "body": reply.body})

    @staticmethod
    async def _send_dripping(body: bytes, drip: float, receive: Receive, send: Send) -> None:
        """``body`` one byte every ``drip`` seconds, until it is sent or the client goes away."""
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            try:
                for index in range(len(body)):
                    await send({"type": "http.response.body", "body": body[index : index + 1], "more_body": True})
                    await anyio.sleep(drip)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass  # uvicorn raises an OSError subclass when writing to a closed connection
            group.cancel_scope.cancel()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send_stream(self, reply: StreamReply, receive: Receive, send: Send) -> None:
        sent = 0
        finished = False

        def finish(completed: bool) -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            if not completed:
                with self._cancelled:
                    self._cancelled_streams += 1
                    self._cancelled.notify_all()
            reply.on_done(completed, sent)

        headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            *[(k.lower().encode(), v.encode()) for k, v in reply.headers],
        ]
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        group.cancel_scope.cancel()
                        return

            group.start_soon(watch_disconnect)
            try:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                for index, event in enumerate(reply.events):
                    if event.delay > 0:
                        await anyio.sleep(event.delay)
                    if index == len(reply.events) - 1:
                        # Record the generation before the terminal event, so a client that reads
                        # [DONE] and asks /generation at once finds it.
                        sent = index + 1
                        finish(True)
                    pieces = [event.data[i : i + 1] for i in range(len(event.data))] if reply.drip > 0 else [event.data]
                    for piece in pieces:
                        await send({"type": "http.response.body", "body": piece, "more_body": True})
                        if reply.drip > 0:
                            await anyio.sleep(reply.drip)
                    sent = index + 1
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                # uvicorn raises an OSError subclass when writing to a closed connection.
                pass
            finally:
                # Runs on cancellation too (the client went away): no awaits here.
                finish(False)
            group.cancel_scope.cancel()

    # ---- dispatch ---------------------------------------------------------------------------------

    async def _handle(self, req: Incoming) -> Reply | StreamReply:
        self.requests.append(RecordedRequest(req.method, req.path, dict(req.query), dict(req.headers), req.body))
        if self.latency > 0:
            await anyio.sleep(self.latency)
        anthropic = req.path == "/messages"
        if req.path == "/auth" and not req.in_api:
            return await self._consent(req)  # the consent page of sign-in with OpenRouter, outside the API
        # The live API 404s a model path whose "/" is percent-encoded (API.md §2.8).
        if req.encoded_slash or not req.in_api:
            return json_reply(404, error_body(404, "Not Found", with_metadata=False))
        handler, params = self._route(req)
        if handler is None:
            return self._not_routed(req)
        if req.path in AUTH_PATHS and not self._authorized(req):
            message = "No auth credentials found" if "authorization" not in req.headers else "User not found."
            if anthropic:
                return json_reply(401, anthropic_error_body(401, message, request_id=None))
            return json_reply(401, error_body(401, message, with_metadata=False))
        fault = self.path_faults.get(req.path)
        if fault is not None and fault.active:
            fault.consume()
            if fault.latency > 0:
                await anyio.sleep(fault.latency)
            if fault.status is not None:
                return _dripping(fault_reply(fault, anthropic=anthropic), fault.drip)
            if fault.malformed and req.path not in ("/chat/completions", "/messages"):
                return _dripping(malformed_reply(), fault.drip)
        else:
            fault = None
        return _dripping(await handler(req, params, fault), fault.drip if fault is not None else 0.0)

    def _route(self, req: Incoming) -> tuple[Handler | None, dict[str, str]]:
        methods = self._routes.get(req.path)
        if methods is not None:
            return methods.get(req.method), {}
        match = re.fullmatch(r"/models/([^/]+)/([^/]+)/endpoints", req.path)
        if match and req.method == "GET":
            return self._model_endpoints, {"author": match[1], "slug": match[2]}
        match = re.fullmatch(r"/model/([^/]+)/([^/]+)", req.path)
        if match and req.method == "GET":
            return self._get_model, {"author": match[1], "slug": match[2]}
        return None, {}

    def _not_routed(self, req: Incoming) -> Reply:
        methods = self._routes.get(req.path)
        if methods:
            allow = ", ".join(sorted(methods))
            return json_reply(405, error_body(405, "Method Not Allowed", with_metadata=False), [("Allow", allow)])
        return json_reply(404, error_body(404, "Not Found", with_metadata=False))

    def _authorized(self, req: Incoming) -> bool:
        return self._api_key is None or self._authenticated(req)


def _dripping(reply: Reply | StreamReply, drip: float) -> Reply | StreamReply:
    """``reply``, sent one byte every ``drip`` seconds if that is slower than it already is."""
    reply.drip = max(reply.drip, drip)
    return reply
