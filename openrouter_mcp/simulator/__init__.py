"""A faithful simulated OpenRouter API, served as an ASGI app under ``/api/v1``.

Used three ways: in-process by ``openrouter-mcp --demo`` (through ``httpx2.ASGITransport``), by tests and
benchmarks on a real loopback server (:func:`serve_in_thread`), and from another process with
``python -m openrouter_mcp.simulator --port N``.

What it reproduces (sources: ``shared/openrouter/API.md`` and the OpenAPI spec it cites):

- the 13 operations of openrouter-mcp, with bodies that validate against the spec for their status;
- a deterministic catalog (``seed``) of realistic models, endpoints and providers;
- OpenRouter's error envelope ``{"error": {code, message, metadata}, "user_id": null}``, the Anthropic
  envelope on ``/messages``, ``Retry-After`` and ``X-RateLimit-*`` headers, ``error.availability``;
- chat streaming exactly as on the wire: ``: OPENROUTER PROCESSING`` comments, a role chunk, content and
  tool-call deltas, a finish chunk, a usage chunk with empty ``choices``, ``data: [DONE]``, mid-stream
  error chunks, and cancellation when the client goes away;
- the ``models`` fallback array (a model with an active error fault is skipped, the last error wins);
- generations stored for ``GET /generation``, and usage that adds up in ``/credits`` and ``/key``;
- sign-in with OpenRouter: the consent page ``GET /auth`` (outside ``/api/v1``; consents at once and redirects
  to the callback with ``code``) and the PKCE exchange ``POST /auth/keys`` (see :mod:`.oauth`).

Deliberate limits, each where the real API is unknown or out of scope:

- ``POST /messages`` with ``stream: true`` answers 400 "streaming not supported by the simulator".
- ``POST /embeddings``, ``/responses`` and the management APIs are not served (404).
- ``GET /generation`` without ``id`` answers 400 with OpenRouter's envelope plus the Zod markers
  (``success: false``, ``error.name``) that a live probe showed, so that both parsers are exercised.
- Endpoint latency/throughput stats are ``null`` for unauthenticated requests, as the spec documents.
- The ``/models`` filters ``category`` and ``region`` filter loosely (categories are synthetic).

One job a module: ``app`` (the :class:`Simulator` ASGI app: routing, auth, path faults, the request log);
the endpoints in ``catalog_routes``, ``account``, ``chat`` and ``messages``; ``inference`` (what chat and
messages share: the fallback walk, the provider, the cost, the stored generation); ``answer`` (what the
model says); ``catalog`` and ``catalog_data`` (the generated catalog and the facts behind it); ``faults``;
``envelopes`` (error bodies); ``asgi`` (wire plumbing); ``state`` (what the endpoint mixins share);
``serve`` (:func:`serve_in_thread` and :func:`main`).
"""

from .account import COINBASE_GONE_MESSAGE as COINBASE_GONE_MESSAGE
from .app import AUTH_PATHS as AUTH_PATHS
from .app import Handler as Handler
from .app import RecordedRequest, Simulator
from .app import logger as logger
from .asgi import API_PREFIX as API_PREFIX
from .asgi import JSON as JSON
from .asgi import ASGIApp as ASGIApp
from .asgi import Message as Message
from .asgi import Receive as Receive
from .asgi import Scope as Scope
from .asgi import Send as Send
from .chat import KEEPALIVE as KEEPALIVE
from .envelopes import ANTHROPIC_ERROR_TYPES as ANTHROPIC_ERROR_TYPES
from .envelopes import ERROR_TYPES as ERROR_TYPES
from .faults import STATUS_MESSAGES as STATUS_MESSAGES
from .faults import Fault
from .inference import DEFAULT_MODEL as DEFAULT_MODEL
from .inference import DOCS_ERRORS_URL as DOCS_ERRORS_URL
from .serve import main, serve_in_thread

__all__ = ["Fault", "RecordedRequest", "Simulator", "main", "serve_in_thread"]
