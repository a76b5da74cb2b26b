"""The catalog endpoints: ``GET /models`` with its filters, sorting and pages, and the other catalog GETs.

Also ``/models/user``, ``/models/count``, ``/embeddings/models``, ``/model/{author}/{slug}``,
``/models/{author}/{slug}/endpoints``, ``/endpoints/zdr`` and ``/providers``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from urllib.parse import urlencode

from .asgi import API_PREFIX, JSON, Incoming, Reply, json_reply
from .catalog_data import CATEGORIES, EU_COUNTRIES
from .envelopes import bad_request, error_body
from .faults import Fault
from .state import SimulatorState


class _BadQuery(ValueError):
    """A query parameter the spec would reject."""


def _neg(value: float | None) -> float | None:
    return None if value is None else -value


class CatalogRoutes(SimulatorState):
    """The handlers of the catalog endpoints (a mixin of :class:`~openrouter_mcp.simulator.Simulator`)."""

    @staticmethod
    def _int_param(query: dict[str, str], name: str, low: int, high: int | None = None) -> int | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise _BadQuery(f"Invalid query parameter '{name}': expected an integer") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise _BadQuery(f"Invalid query parameter '{name}': must be {bounds}")
        return value

    @staticmethod
    def _float_param(query: dict[str, str], name: str, high: float | None = None) -> float | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise _BadQuery(f"Invalid query parameter '{name}': expected a number") from None
        if value < 0 or (high is not None and value > high) or math.isnan(value):
            raise _BadQuery(f"Invalid query parameter '{name}': out of range")
        return value

    @staticmethod
    def _enum_param(query: dict[str, str], name: str, allowed: Sequence[str]) -> str | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        if raw not in allowed:
            raise _BadQuery(f"Invalid query parameter '{name}': expected one of {', '.join(allowed)}")
        return raw

    @staticmethod
    def _csv(query: dict[str, str], name: str) -> list[str]:
        return [v.strip().lower() for v in query.get(name, "").split(",") if v.strip()]

    def _price_per_m(self, model: JSON, key: str) -> float:
        return float(self._price(model, key) * 1_000_000)

    def _benchmark(self, model: JSON, key: str) -> float | None:
        value = model.get("benchmarks", {}).get("artificial_analysis", {}).get(key)
        return float(value) if isinstance(value, int | float) else None

    def _top_stat(self, model: JSON, key: str) -> float | None:
        stats = self._endpoints_for(model)[0].get(key)
        return float(stats["p50"]) if isinstance(stats, dict) else None

    def _output_filter(self, query: dict[str, str]) -> Callable[[JSON], bool]:
        wanted = self._csv(query, "output_modalities") or ["text"]
        if "all" in wanted:
            return lambda m: True
        return lambda m: bool(set(m["architecture"]["output_modalities"]) & set(wanted))

    def _filter_models(self, query: dict[str, str]) -> list[JSON]:
        """Apply the /models query parameters.

        Raises:
            _BadQuery: a parameter is malformed or out of the spec's range.
        """
        sorts = (
            "most-popular", "newest", "top-weekly", "pricing-low-to-high", "pricing-high-to-low",
            "context-high-to-low", "throughput-high-to-low", "latency-low-to-high", "intelligence-high-to-low",
            "coding-high-to-low", "agentic-high-to-low", "design-arena-elo-high-to-low",
        )  # fmt: skip
        sort = self._enum_param(query, "sort", sorts)
        category = self._enum_param(query, "category", CATEGORIES)
        distillable = self._enum_param(query, "distillable", ("true", "false"))
        zdr = self._enum_param(query, "zdr", ("true",))
        region = self._enum_param(query, "region", ("eu", "us"))
        context = self._int_param(query, "context", 1)
        min_age = self._int_param(query, "min_age_days", 0)
        max_age = self._int_param(query, "max_age_days", 0)
        ranges = {
            name: (self._float_param(query, f"min_{name}"), self._float_param(query, f"max_{name}"))
            for name in ("price", "output_price", "intelligence_index", "coding_index", "agentic_index")
        }
        tool_range = (
            self._float_param(query, "min_tool_success_rate", 1.0),
            self._float_param(query, "max_tool_success_rate", 1.0),
        )
        wants_output = self._output_filter(query)
        inputs = set(self._csv(query, "input_modalities"))
        params = set(self._csv(query, "supported_parameters"))
        terms = query.get("q", "").lower().split()
        authors = set(self._csv(query, "model_authors"))
        hosts = set(self._csv(query, "providers"))
        arch = query.get("arch", "").lower()
        now = time.time()

        def within(value: float | None, bounds: tuple[float | None, float | None]) -> bool:
            low, high = bounds
            if low is None and high is None:
                return True
            if value is None:
                return False
            return (low is None or value >= low) and (high is None or value <= high)

        def keep(model: JSON) -> bool:
            arch_info = model["architecture"]
            if not wants_output(model):
                return False
            if inputs and not inputs <= set(arch_info["input_modalities"]):
                return False
            if params and not params <= set(model["supported_parameters"]):
                return False
            if terms:
                haystack = f"{model['id']} {model['name']} {model.get('description', '')}".lower()
                if not all(t in haystack for t in terms):
                    return False
            if context is not None and (model.get("context_length") or 0) < context:
                return False
            if category is not None and category not in self._categories.get(model["id"], ()):
                return False
            if authors and model["id"].split("/")[0] not in authors:
                return False
            if arch and str(arch_info.get("tokenizer", "")).lower() != arch:
                return False
            endpoints = self._endpoints_for(model)
            if hosts and not any({e["provider_name"].lower(), e["tag"].split("/")[0]} & hosts for e in endpoints):
                return False
            if zdr and not any(e["provider_name"] in self._zdr_providers for e in endpoints):
                return False
            if region is not None:
                regions = set().union(*(self._provider_regions.get(e["provider_name"], set()) for e in endpoints))
                if not (regions & EU_COUNTRIES if region == "eu" else "US" in regions):
                    return False
            # Loose: open-weight models (those with a Hugging Face id) count as distillable.
            if distillable is not None and (distillable == "true") != bool(model.get("hugging_face_id")):
                return False
            age_days = (now - model["created"]) / 86400
            if (min_age is not None and age_days < min_age) or (max_age is not None and age_days > max_age):
                return False
            if not within(self._price_per_m(model, "prompt"), ranges["price"]):
                return False
            if not within(self._price_per_m(model, "completion"), ranges["output_price"]):
                return False
            for name in ("intelligence_index", "coding_index", "agentic_index"):
                if not within(self._benchmark(model, name), ranges[name]):
                    return False
            return within(self._tool_success.get(model["id"]), tool_range)

        models = [m for m in self.catalog if keep(m)]
        if sort is None:
            return models
        keys: dict[str, Callable[[JSON], float | Decimal | None]] = {
            "most-popular": lambda m: -self._popularity.get(m["id"], 0.0),
            "top-weekly": lambda m: -self._popularity.get(m["id"], 0.0),
            "newest": lambda m: -float(m["created"]),
            "pricing-low-to-high": lambda m: self._price(m, "prompt") + self._price(m, "completion"),
            "pricing-high-to-low": lambda m: -(self._price(m, "prompt") + self._price(m, "completion")),
            "context-high-to-low": lambda m: -float(m.get("context_length") or 0),
            "throughput-high-to-low": lambda m: _neg(self._top_stat(m, "throughput_last_30m")),
            "latency-low-to-high": lambda m: self._top_stat(m, "latency_last_30m"),
            "intelligence-high-to-low": lambda m: _neg(self._benchmark(m, "intelligence_index")),
            "coding-high-to-low": lambda m: _neg(self._benchmark(m, "coding_index")),
            "agentic-high-to-low": lambda m: _neg(self._benchmark(m, "agentic_index")),
            "design-arena-elo-high-to-low": lambda m: None,
        }
        key = keys[sort]
        # Models without a score for the chosen key go last, as the spec says.
        return sorted(models, key=lambda m: (key(m) is None, key(m) or 0.0))

    def _page(self, req: Incoming, models: list[JSON]) -> Reply:
        total = len(models)
        try:
            offset = self._int_param(req.query, "offset", 0)
            limit = self._int_param(req.query, "limit", 1, 1000)
        except _BadQuery as exc:
            return bad_request(str(exc))
        if offset is None and limit is None:
            return json_reply(200, {"data": models, "total_count": total, "links": {"next": None}})
        offset = offset or 0
        limit = limit or 500
        next_link = None
        if offset + limit < total:
            query = {**req.query, "offset": str(offset + limit), "limit": str(limit)}
            next_link = f"{API_PREFIX}{req.path}?{urlencode(query)}"
        return json_reply(
            200, {"data": models[offset : offset + limit], "total_count": total, "links": {"next": next_link}}
        )

    async def _list_models(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        try:
            models = self._filter_models(req.query)
        except _BadQuery as exc:
            return bad_request(str(exc))
        return self._page(req, models)

    async def _models_count(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        wants = self._output_filter(req.query)
        return json_reply(200, {"data": {"count": sum(1 for m in self.catalog if wants(m))}})

    async def _embeddings_models(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        models = [m for m in self.catalog if "embeddings" in m["architecture"]["output_modalities"]]
        return self._page(req, models)

    async def _get_model(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        model = self._model(f"{params['author']}/{params['slug']}")
        if model is None:
            return json_reply(404, error_body(404, "Model not found", with_metadata=False))
        return json_reply(200, {"data": model})

    async def _model_endpoints(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        model_id = f"{params['author']}/{params['slug']}"
        model = self._model(model_id)
        if model is None:
            return json_reply(404, error_body(404, f"No endpoints found for {model_id}", with_metadata=False))
        arch = model["architecture"]
        data = {
            "id": model["id"],
            "name": model["name"],
            "created": model["created"],
            "description": model.get("description", ""),
            "architecture": {
                "modality": arch.get("modality"),
                "input_modalities": arch["input_modalities"],
                "output_modalities": arch["output_modalities"],
                "tokenizer": arch.get("tokenizer"),
                "instruct_type": arch.get("instruct_type"),
            },
            "endpoints": self._public_endpoints(req, self._endpoints_for(model)),
        }
        return json_reply(200, {"data": data})

    async def _endpoints_zdr(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        endpoints = [
            e for m in self.catalog for e in self._endpoints_for(m) if e["provider_name"] in self._zdr_providers
        ]
        return json_reply(200, {"data": self._public_endpoints(req, endpoints)})

    async def _list_providers(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        return json_reply(200, {"data": self.providers})
