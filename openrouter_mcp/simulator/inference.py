"""What chat completions and messages share: the fallback walk, the provider, the cost, the stored generation.

The ``models`` list is checked and walked here (a model whose fault fails it is skipped, the last error
wins); the generation recorded here is what ``GET /generation`` answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anyio

from .answer import Plan
from .asgi import API_PREFIX, JSON, Incoming, Reply, json_reply
from .envelopes import anthropic_error_body, bad_request, error_body
from .faults import Fault, Served, fault_reply
from .state import SimulatorState

DEFAULT_MODEL = "openai/gpt-4o-mini"
DOCS_ERRORS_URL = "https://openrouter.ai/docs/errors"


class Inference(SimulatorState):
    """The steps every inference endpoint takes (a mixin of :class:`~openrouter_mcp.simulator.Simulator`)."""

    def _candidates(self, primary: Any, extra: Any, *, anthropic: bool) -> list[str] | Reply:
        """The models to try, in order; or the 400 the live API gives for a bad model list."""
        if primary is not None and not isinstance(primary, str):
            return bad_request("'model' must be a string", anthropic=anthropic)
        if extra is not None and (not isinstance(extra, list) or not all(isinstance(m, str) for m in extra)):
            return bad_request("'models' must be an array of strings", anthropic=anthropic)
        if extra and len(extra) > 3:
            return bad_request("'models' array must have 3 items or fewer.", anthropic=anthropic)
        ids: list[str] = list(dict.fromkeys(([primary] if primary else []) + list(extra or [])))
        ids = ids or [DEFAULT_MODEL]
        unknown = [m for m in ids if self._model(m) is None]
        if unknown:
            availability = {
                "code": "model_not_found",
                "retryable": False,
                "requested_models": ids,
                "docs_url": f"{DOCS_ERRORS_URL}#model_not_found",
            }
            return bad_request(f"{unknown[0]} is not a valid model ID", anthropic=anthropic, availability=availability)
        for model_id in ids:
            model = self._model(model_id)
            if model is not None and "embeddings" in model["architecture"]["output_modalities"]:
                availability = {
                    "code": "wrong_endpoint",
                    "retryable": False,
                    "requested_models": ids,
                    "docs_url": f"{DOCS_ERRORS_URL}#wrong_endpoint",
                }
                message = f"{model_id} is an embeddings model; use {API_PREFIX}/embeddings"
                return bad_request(message, anthropic=anthropic, availability=availability)
        return ids

    def _pick_endpoint(self, model: JSON, prefs: Any) -> JSON | None:
        """Honour ``provider.order/only/ignore/sort/allow_fallbacks`` the simple way; None if all are excluded."""
        endpoints = self._endpoints_for(model)
        if not isinstance(prefs, dict):
            return endpoints[0]

        def names(endpoint: JSON) -> set[str]:
            tag = str(endpoint.get("tag", "")).lower()
            return {tag, tag.split("/")[0], str(endpoint.get("provider_name", "")).lower()}

        def lowered(key: str) -> list[str]:
            value = prefs.get(key)
            return [str(v).lower() for v in value] if isinstance(value, list) else []

        only, ignore, order = set(lowered("only")), set(lowered("ignore")), lowered("order")
        candidates = [e for e in endpoints if (not only or names(e) & only) and not names(e) & ignore]
        sort = prefs.get("sort")
        sort_by = sort.get("by") if isinstance(sort, dict) else sort
        if sort_by == "price":
            candidates.sort(key=lambda e: self._price(e, "prompt"))
        elif sort_by in ("throughput", "latency"):
            stat = "throughput_last_30m" if sort_by == "throughput" else "latency_last_30m"
            sign = -1.0 if sort_by == "throughput" else 1.0
            candidates.sort(key=lambda e: sign * float((e.get(stat) or {}).get("p50", 0.0)))
        if order:
            rank = {name: i for i, name in enumerate(order)}
            candidates.sort(key=lambda e: min((rank[n] for n in names(e) if n in rank), default=len(order)))
            if prefs.get("allow_fallbacks") is False:
                candidates = [e for e in candidates if names(e) & set(order)]
        return candidates[0] if candidates else None

    @staticmethod
    def _cost(endpoint: JSON, prompt_tokens: int, completion_tokens: int) -> tuple[float, float, float]:
        pricing = endpoint.get("pricing", {})
        prompt_cost = Decimal(str(pricing.get("prompt", "0"))) * prompt_tokens
        completion_cost = Decimal(str(pricing.get("completion", "0"))) * completion_tokens
        request_cost = Decimal(str(pricing.get("request", "0")))
        return float(prompt_cost + completion_cost + request_cost), float(prompt_cost), float(completion_cost)

    @staticmethod
    def _billing(cost: float, prompt_cost: float, completion_cost: float) -> JSON:
        """The cost fields both usage objects end with (chat's and messages')."""
        return {
            "cost": cost,
            "is_byok": False,
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": prompt_cost,
                "upstream_inference_completions_cost": completion_cost,
            },
        }

    def _record_generation(
        self,
        *,
        gen_id: str,
        req: Incoming,
        model: JSON,
        endpoint: JSON,
        plan: Plan,
        finish_reason: str,
        completion_tokens: int,
        attempts: list[JSON],
        streamed: bool,
        cancelled: bool,
        started: float,
    ) -> None:
        cost, _, _ = self._cost(endpoint, plan.prompt_tokens, completion_tokens)
        self.total_usage += cost
        elapsed_ms = round((anyio.current_time() - started) * 1000, 1)
        body = req.body if isinstance(req.body, dict) else {}
        user = body.get("user")
        session = body.get("session_id") or req.headers.get("x-session-id")
        responses = [
            {"provider_name": a["provider"], "status": a["status"], "latency": 0.0, "is_byok": False,
             "model_permaslug": a["model"]}
            for a in attempts
        ] + [
            {"provider_name": endpoint["provider_name"], "status": 200, "latency": elapsed_ms, "is_byok": False,
             "model_permaslug": model.get("canonical_slug", model["id"]), "id": f"chatcmpl-{gen_id[-12:]}"}
        ]  # fmt: skip
        self.generations[gen_id] = {
            "id": gen_id,
            "upstream_id": f"chatcmpl-{gen_id[-12:]}",
            "request_id": f"req-{gen_id[4:]}",
            "session_id": session if isinstance(session, str) else None,
            "created_at": datetime.now(UTC).isoformat(),
            "model": model["id"],
            "provider_name": endpoint["provider_name"],
            "router": None,
            "api_type": "completions",
            "app_id": None,
            "http_referer": req.headers.get("http-referer"),
            "origin": req.headers.get("http-referer", ""),
            "user_agent": req.headers.get("user-agent"),
            "external_user": user if isinstance(user, str) else None,
            "preset_id": None,
            "workspace_id": None,
            "data_region": "global",
            "streamed": streamed,
            "cancelled": cancelled,
            "finish_reason": finish_reason,
            "native_finish_reason": finish_reason,
            "tokens_prompt": plan.prompt_tokens,
            "tokens_completion": completion_tokens,
            "native_tokens_prompt": plan.prompt_tokens,
            "native_tokens_completion": completion_tokens,
            "native_tokens_completion_images": 0,
            "native_tokens_reasoning": plan.reasoning_tokens,
            "native_tokens_cached": 0,
            "num_media_prompt": 0,
            "num_input_audio_prompt": 0,
            "num_media_completion": 0,
            "num_search_results": 0,
            "num_fetches": 0,
            "web_search_engine": None,
            "total_cost": cost,
            "usage": cost,
            "upstream_inference_cost": None,
            "cache_discount": None,
            "is_byok": False,
            "latency": elapsed_ms,
            "generation_time": elapsed_ms,
            "moderation_latency": None,
            "service_tier": None,
            "response_cache_source_id": None,
            "provider_responses": responses,
        }

    async def _serve_model(
        self, primary: Any, extra: Any, prefs: Any, path_fault: Fault | None, *, anthropic: bool
    ) -> tuple[list[str], JSON, JSON, Served, list[JSON]] | Reply:
        """The model that will answer, as chat and messages both choose it: (candidates, model, endpoint, faults to
        apply, failed attempts before it), or the error reply when none can."""
        candidates = self._candidates(primary, extra, anthropic=anthropic)
        if isinstance(candidates, Reply):
            return candidates
        routed = await self._route_inference(candidates, prefs, anthropic=anthropic)
        if isinstance(routed, Reply):
            return routed
        model, endpoint, model_fault, attempts = routed
        return candidates, model, endpoint, Served.merge(model_fault, path_fault), attempts

    async def _route_inference(
        self, candidates: list[str], prefs: Any, *, anthropic: bool
    ) -> tuple[JSON, JSON, Fault | None, list[JSON]] | Reply:
        """Walk the fallback chain: skip models whose fault fails them, like OpenRouter; the last error wins."""
        attempts: list[JSON] = []
        last_error: Reply | None = None
        for model_id in candidates:
            model = self._model(model_id)
            assert model is not None  # _candidates() rejected unknown ids
            endpoint = self._pick_endpoint(model, prefs)
            if endpoint is None:
                availability = {
                    "code": "constraint_filtered",
                    "retryable": False,
                    "requested_models": candidates,
                    "excluded_by": ["allowed_providers"],
                    "docs_url": f"{DOCS_ERRORS_URL}#constraint_filtered",
                }
                message = f"No endpoints found for {model_id} that match your provider preferences."
                if anthropic:
                    last_error = json_reply(404, anthropic_error_body(404, message, request_id=None))
                else:
                    last_error = json_reply(404, error_body(404, message, availability=availability))
                continue
            fault = self.model_faults.get(model_id)
            if fault is not None and not fault.active:
                fault = None
            if fault is not None:
                fault.consume()
                if fault.latency > 0:
                    await anyio.sleep(fault.latency)
                if fault.status is not None:
                    attempts.append({"model": model_id, "provider": endpoint["provider_name"], "status": fault.status})
                    last_error = fault_reply(
                        fault,
                        anthropic=anthropic,
                        model=model_id,
                        provider=endpoint["provider_name"],
                        request_id=self._new_id() if anthropic else None,
                    )
                    continue
            return model, endpoint, fault, attempts
        assert last_error is not None
        return last_error
