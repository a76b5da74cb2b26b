"""``POST /messages``: the Anthropic Messages API (not streamed), with tools, thinking and ``fallbacks``."""

from __future__ import annotations

import json
from typing import Any

import anyio

from .answer import count_tokens, plan_answer, text_of, wants_reasoning
from .asgi import JSON, Incoming, Reply, json_reply
from .envelopes import bad_request
from .faults import Fault, malformed_reply
from .inference import Inference


class Messages(Inference):
    """The handler of ``POST /messages`` (a mixin of :class:`~openrouter_mcp.simulator.Simulator`)."""

    async def _messages(self, req: Incoming, params: dict[str, str], path_fault: Fault | None) -> Reply:
        started = anyio.current_time()
        body = req.body
        if req.body_invalid or not isinstance(body, dict):
            return bad_request("Invalid request: body must be a JSON object", anthropic=True)
        if not isinstance(body.get("model"), str) or not body["model"]:
            return bad_request("Invalid request: model field is required", anthropic=True)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return bad_request("Invalid request: messages field is required", anthropic=True)
        if body.get("tools") is not None and not isinstance(body["tools"], list):
            return bad_request("Invalid request: tools must be an array", anthropic=True)
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
                return bad_request(f"Invalid request: messages[{index}].role is invalid", anthropic=True)
        if body.get("stream") is True:
            return bad_request("streaming not supported by the simulator", anthropic=True)
        extra: Any = body.get("models")
        fallbacks = body.get("fallbacks")
        if fallbacks is not None:
            if extra is not None:
                return bad_request("Invalid request: 'fallbacks' cannot be combined with 'models'", anthropic=True)
            if not isinstance(fallbacks, list) or not all(
                isinstance(f, dict) and set(f) == {"model"} for f in fallbacks
            ):
                return bad_request("Invalid request: 'fallbacks' entries must be {\"model\": ...}", anthropic=True)
            extra = [f["model"] for f in fallbacks]
        picked = await self._serve_model(body["model"], extra, body.get("provider"), path_fault, anthropic=True)
        if isinstance(picked, Reply):
            return picked
        _, model, endpoint, served, attempts = picked
        gen_id = self._new_id()
        headers = [("X-Generation-Id", gen_id)]
        if served.malformed:
            return malformed_reply(headers)

        last = messages[-1]
        content = last.get("content")
        has_tool_result = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )
        last_role = "tool" if has_tool_result else str(last.get("role"))
        tools = [
            (t["name"], t.get("input_schema"))
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("name"), str) and t.get("type", "custom") == "custom"
        ]
        choice = body.get("tool_choice")
        tool_mode: str | tuple[str, str] = "auto"
        if isinstance(choice, dict):
            kind = choice.get("type")
            if kind == "any":
                tool_mode = "required"
            elif kind == "none":
                tool_mode = "none"
            elif kind == "tool":
                tool_mode = ("named", str(choice.get("name")))
        parallel = not (isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True)
        thinking = body.get("thinking")
        wants_thinking = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        system_text = text_of(body.get("system"))
        prompt_tokens = count_tokens(system_text) + sum(4 + count_tokens(text_of(m.get("content"))) for m in messages)
        prompt_tokens += count_tokens(json.dumps(body["tools"])) if body.get("tools") else 0
        plan = plan_answer(
            model,
            self._ids,
            prompt_text=text_of(content),
            prompt_tokens=prompt_tokens,
            last_role=last_role,
            tools=tools,
            tool_mode=tool_mode,
            parallel=parallel,
            reasoning=wants_reasoning(model, {"enabled": wants_thinking}, None, None),
            max_tokens=body.get("max_tokens"),
            stop=body.get("stop_sequences"),
            json_schema=None,
        )
        blocks: list[JSON] = []
        if plan.reasoning is not None:
            blocks.append({"type": "thinking", "thinking": plan.reasoning, "signature": f"sim-{gen_id[-12:]}"})
        if plan.text or not plan.tool_calls:
            blocks.append({"type": "text", "text": plan.text, "citations": None})
        for call in plan.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": "toolu_" + call.id[5:],
                    "name": call.name,
                    "input": call.arguments,
                    "caller": {"type": "direct"},
                }
            )
        stop_reason = {"tool_calls": "tool_use", "length": "max_tokens"}.get(plan.finish_reason, "end_turn")
        if plan.stop_sequence is not None:
            stop_reason = "stop_sequence"
        cost, prompt_cost, completion_cost = self._cost(endpoint, plan.prompt_tokens, plan.completion_tokens)
        result: JSON = {
            "id": gen_id,
            "type": "message",
            "role": "assistant",
            "model": model["id"],
            "provider": endpoint["provider_name"],
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": plan.stop_sequence,
            "stop_details": None,
            "container": None,
            "usage": {
                "input_tokens": plan.prompt_tokens,
                "output_tokens": plan.completion_tokens,
                "output_tokens_details": {"thinking_tokens": plan.reasoning_tokens} if plan.reasoning else None,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": None,
                "cache_creation": None,
                "inference_geo": None,
                "server_tool_use": None,
                "service_tier": "standard",
                **self._billing(cost, prompt_cost, completion_cost),
            },
        }
        self._record_generation(
            gen_id=gen_id, req=req, model=model, endpoint=endpoint, plan=plan, finish_reason=plan.finish_reason,
            completion_tokens=plan.completion_tokens, attempts=attempts, streamed=False, cancelled=False,
            started=started,
        )  # fmt: skip
        reply = json_reply(200, result, headers)
        reply.drip = served.drip
        return reply
