"""The account endpoints: ``/credits``, ``/key`` and ``/auth/key``, ``/generation``, ``/credits/coinbase``."""

from __future__ import annotations

import hashlib
import json

from .asgi import Incoming, Reply, json_reply
from .envelopes import bad_request
from .faults import Fault
from .state import SimulatorState

COINBASE_GONE_MESSAGE = (
    "The Coinbase APIs used by this endpoint have been deprecated, so the Coinbase Commerce credits API has "
    "been removed. Use the web credits purchase flow instead."
)


def _mask_key(token: str | None) -> str:
    """A label like OpenRouter's (``sk-or-v1-abc...xyz``) that never contains the key itself."""
    if token and len(token) >= 24:
        return f"{token[:12]}...{token[-3:]}"
    digest = hashlib.sha256((token or "anonymous").encode()).hexdigest()
    return f"sk-or-v1-{digest[:3]}...{digest[-3:]}"


class AccountRoutes(SimulatorState):
    """The handlers of the account endpoints (a mixin of :class:`~openrouter_mcp.simulator.Simulator`)."""

    async def _credits(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        return json_reply(
            200, {"data": {"total_credits": self.total_credits, "total_usage": round(self.total_usage, 9)}}
        )

    async def _key(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        header = req.headers.get("authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else None
        usage = round(self.total_usage, 9)
        limit = 50.0
        data = {
            "label": _mask_key(token),
            "limit": limit,
            "limit_remaining": round(max(0.0, limit - usage), 9),
            "limit_reset": "monthly",
            "include_byok_in_limit": False,
            "usage": usage,
            "usage_daily": usage,
            "usage_weekly": usage,
            "usage_monthly": usage,
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
            "is_free_tier": False,
            "is_management_key": False,
            "is_provisioning_key": False,
            "creator_user_id": "user_2sim0000000000000000000000",
            "expires_at": None,
            "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},
        }
        return json_reply(200, {"data": data})

    async def _generation(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        gen_id = req.query.get("id", "")
        if not gen_id:
            issue = json.dumps(
                [
                    {
                        "code": "invalid_type",
                        "expected": "string",
                        "received": "undefined",
                        "path": ["id"],
                        "message": "Required",
                    }
                ]
            )
            # OpenRouter's envelope plus the Zod markers a live probe showed (see the package docstring).
            body = {"success": False, "error": {"code": 400, "name": "ZodError", "message": issue, "metadata": None}}
            return json_reply(400, {**body, "user_id": None})
        generation = self.generations.get(gen_id)
        if generation is None:
            return json_reply(404, {"error": {"message": f"Generation {gen_id} not found", "code": 404}})
        return json_reply(200, {"data": generation})

    async def _coinbase(self, req: Incoming, params: dict[str, str], fault: Fault | None) -> Reply:
        body = req.body
        problems: list[str] = []
        if not isinstance(body, dict):
            problems.append("body must be a JSON object")
        else:
            amount = body.get("amount")
            if not isinstance(amount, int | float) or isinstance(amount, bool) or amount <= 0:
                problems.append("amount must be a positive number")
            if not isinstance(body.get("sender"), str) or not body["sender"]:
                problems.append("sender must be a string")
            chain = body.get("chain_id")
            if isinstance(chain, bool) or chain not in (1, 137, 8453):
                problems.append("chain_id must be one of 1, 137, 8453")
        if problems:
            return bad_request("Invalid credit amount or request body: " + "; ".join(problems))
        return json_reply(410, {"error": {"code": 410, "message": COINBASE_GONE_MESSAGE}})
