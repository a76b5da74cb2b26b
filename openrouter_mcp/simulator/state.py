"""The state the endpoint mixins read, and the lookups all of them share (auth, ids, models, prices)."""

from __future__ import annotations

import hmac
import random
import time
from decimal import Decimal

from .asgi import JSON, Incoming
from .faults import Fault


class SimulatorState:
    """The attributes :class:`~openrouter_mcp.simulator.Simulator` sets up that its endpoint mixins use, and
    the helpers they share: authentication, generation ids, model and endpoint lookups, prices."""

    catalog: list[JSON]
    providers: list[JSON]
    endpoints: dict[str, list[JSON]]
    model_faults: dict[str, Fault]
    generations: dict[str, JSON]
    stream_chunk_delay: float
    keepalive_comments: int
    total_credits: float
    total_usage: float
    _api_key: str | None
    #: Keys created by the sign-in exchange (:mod:`.oauth`), with their spending limit (None: no limit).
    issued_keys: dict[str, float | None]
    _categories: dict[str, tuple[str, ...]]
    _popularity: dict[str, float]
    _tool_success: dict[str, float]
    _zdr_providers: set[str]
    _provider_regions: dict[str, set[str]]
    _ids: random.Random

    def _authenticated(self, req: Incoming) -> bool:
        header = req.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return False
        token = header[7:].strip()
        # A key the sign-in exchange created is as good as the configured one.
        return self._api_key is None or hmac.compare_digest(token, self._api_key) or token in self.issued_keys

    def _new_id(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return f"gen-{int(time.time())}-{''.join(self._ids.choices(alphabet, k=20))}"

    # ---- catalog lookups --------------------------------------------------------------------------

    def _model(self, model_id: str) -> JSON | None:
        # A scan, not a dict: tests may edit ``catalog`` in place and must see their edits.
        return next((m for m in self.catalog if m.get("id") == model_id), None)

    def _endpoints_for(self, model: JSON) -> list[JSON]:
        endpoints = self.endpoints.get(model["id"])
        if endpoints:
            return endpoints
        # A model a test added without endpoints gets one synthetic endpoint priced like the model.
        return [
            {
                "name": f"OpenAI | {model['id']}",
                "model_id": model["id"],
                "model_name": model.get("name", model["id"]),
                "context_length": model.get("context_length") or 8192,
                "pricing": model.get("pricing", {"prompt": "0", "completion": "0"}),
                "provider_name": "OpenAI",
                "tag": "openai",
                "quantization": None,
                "max_completion_tokens": None,
                "max_prompt_tokens": None,
                "supported_parameters": model.get("supported_parameters", []),
                "status": 0,
                "uptime_last_30m": 100.0,
                "uptime_last_5m": 100.0,
                "uptime_last_1d": 100.0,
                "supports_implicit_caching": False,
                "latency_last_30m": None,
                "throughput_last_30m": None,
            }
        ]

    def _public_endpoints(self, req: Incoming, endpoints: list[JSON]) -> list[JSON]:
        if self._authenticated(req):
            return endpoints
        # The spec: percentile stats "return null for unauthenticated requests".
        return [{**e, "latency_last_30m": None, "throughput_last_30m": None} for e in endpoints]

    @staticmethod
    def _price(model: JSON, key: str) -> Decimal:
        """A per-token price as an exact Decimal (float sums would reorder near-equal prices)."""
        try:
            return Decimal(str(model["pricing"].get(key, "0")))
        except ArithmeticError:
            return Decimal(0)
