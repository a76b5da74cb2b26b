"""``POST /chat/completions``: the JSON answer, and the SSE stream exactly as on the wire.

The stream: ``: OPENROUTER PROCESSING`` comments, a role chunk, content and tool-call deltas, a finish
chunk, a usage chunk with empty ``choices``, ``data: [DONE]``; or a mid-stream error chunk. The generation
is recorded when the stream ends or its client goes away.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import anyio

from .answer import Plan, count_tokens, plan_answer, text_of, wants_reasoning
from .asgi import JSON, Event, Incoming, Reply, StreamReply, dumps, json_reply
from .envelopes import bad_request
from .faults import Fault, Served, malformed_reply
from .inference import Inference

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"


def _split_text(text: str, words_per_chunk: int = 3) -> list[str]:
    words = re.findall(r"\S+\s*", text)
    return ["".join(words[i : i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)]


def _split_string(text: str, parts: int) -> list[str]:
    if not text:
        return [""]
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


class ChatCompletions(Inference):
    """The handler of ``POST /chat/completions`` (a mixin of :class:`~openrouter_mcp.simulator.Simulator`)."""

    async def _chat(self, req: Incoming, params: dict[str, str], path_fault: Fault | None) -> Reply | StreamReply:
        started = anyio.current_time()
        body = req.body
        if req.body_invalid or not isinstance(body, dict):
            return bad_request("Invalid JSON body: expected an object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return bad_request("'messages' is required and must be a non-empty array")
        roles = {"system", "user", "assistant", "tool", "developer"}
        for index, item in enumerate(messages):
            if not isinstance(item, dict) or item.get("role") not in roles:
                return bad_request(f"messages[{index}]: invalid message (role must be one of {sorted(roles)})")
        if body.get("tools") is not None and not isinstance(body["tools"], list):
            return bad_request("'tools' must be an array")
        picked = await self._serve_model(
            body.get("model"), body.get("models"), body.get("provider"), path_fault, anthropic=False
        )
        if isinstance(picked, Reply):
            return picked
        candidates, model, endpoint, served, attempts = picked

        last = messages[-1]
        last_role = str(last.get("role"))
        user_texts = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        prompt_text = text_of(last.get("content")) if last_role in ("user", "tool") else (user_texts or [""])[-1]
        tools: list[tuple[str, Any]] = []
        for tool in body.get("tools") or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                tools.append((function["name"], function.get("parameters")))
        choice = body.get("tool_choice")
        tool_mode: str | tuple[str, str] = "auto"
        if choice in ("none", "required"):
            tool_mode = str(choice)
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            tool_mode = ("named", str(choice["function"].get("name")))
        response_format = body.get("response_format")
        json_schema: Any = None
        if isinstance(response_format, dict) and response_format.get("type") == "json_object":
            json_schema = True
        elif isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            json_schema = (response_format.get("json_schema") or {}).get("schema") or True
        prompt_tokens = sum(4 + count_tokens(text_of(m.get("content"))) for m in messages)
        prompt_tokens += count_tokens(json.dumps(body["tools"])) if body.get("tools") else 0
        plan = plan_answer(
            model,
            self._ids,
            prompt_text=prompt_text,
            prompt_tokens=prompt_tokens,
            last_role=last_role,
            tools=tools,
            tool_mode=tool_mode,
            parallel=body.get("parallel_tool_calls") is not False,
            reasoning=wants_reasoning(
                model, body.get("reasoning"), body.get("reasoning_effort"), body.get("include_reasoning")
            ),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            stop=body.get("stop"),
            json_schema=json_schema,
        )
        gen_id = self._new_id()
        headers = [("X-Generation-Id", gen_id)]
        if body.get("stream") is True:
            return self._chat_stream(req, model, endpoint, plan, served, attempts, gen_id, headers, started)
        if served.malformed:
            return malformed_reply(headers)

        text = plan.text
        finish = plan.finish_reason
        completion_tokens = plan.completion_tokens
        message: JSON = {"role": "assistant", "content": text, "refusal": None}
        if plan.reasoning is not None and plan.show_reasoning:
            message["reasoning"] = plan.reasoning
            message["reasoning_details"] = [
                {"type": "reasoning.text", "text": plan.reasoning, "format": "unknown", "index": 0}
            ]
        if plan.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in plan.tool_calls
            ]
        choice_obj: JSON = {
            "index": 0,
            "logprobs": None,
            "finish_reason": finish,
            "native_finish_reason": finish,
            "message": message,
        }
        if served.error_in_200:
            # Documented partial failure: the provider died after some output; HTTP stays 200.
            text = " ".join(text.split()[: max(1, len(text.split()) // 2)])
            message["content"] = text
            message.pop("tool_calls", None)
            finish = "error"
            completion_tokens = count_tokens(text) + plan.reasoning_tokens
            choice_obj["finish_reason"] = choice_obj["native_finish_reason"] = finish
            choice_obj["error"] = self._mid_stream_error(served)
        cost, prompt_cost, completion_cost = self._cost(endpoint, plan.prompt_tokens, completion_tokens)
        result: JSON = {
            "id": gen_id,
            "provider": endpoint["provider_name"],
            "model": model["id"],
            "object": "chat.completion",
            "created": int(time.time()),
            "choices": [choice_obj],
            "system_fingerprint": None,
            "usage": self._chat_usage(plan, completion_tokens, cost, prompt_cost, completion_cost),
        }
        if req.headers.get("x-openrouter-metadata", "").lower() == "enabled":
            result["openrouter_metadata"] = self._router_metadata(candidates, model, endpoint, attempts)
        self._record_generation(
            gen_id=gen_id, req=req, model=model, endpoint=endpoint, plan=plan, finish_reason=finish,
            completion_tokens=completion_tokens, attempts=attempts, streamed=False, cancelled=False, started=started,
        )  # fmt: skip
        reply = json_reply(200, result, headers)
        reply.drip = served.drip
        return reply

    def _chat_usage(
        self, plan: Plan, completion_tokens: int, cost: float, prompt_cost: float, completion_cost: float
    ) -> JSON:
        return {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": plan.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
            **self._billing(cost, prompt_cost, completion_cost),
        }

    def _router_metadata(self, candidates: list[str], model: JSON, endpoint: JSON, attempts: list[JSON]) -> JSON:
        endpoints = self._endpoints_for(model)
        return {
            "requested": candidates[0],
            "strategy": "fallback" if len(candidates) > 1 else "direct",
            "region": None,
            "summary": f"Routed {candidates[0]} to {endpoint['provider_name']} ({model['id']})",
            "attempt": len(attempts) + 1,
            "is_byok": False,
            "endpoints": {
                "total": len(endpoints),
                "available": [
                    {"provider": e["provider_name"], "model": model["id"], "selected": e is endpoint} for e in endpoints
                ],
            },
            "attempts": [*attempts, {"model": model["id"], "provider": endpoint["provider_name"], "status": 200}],
        }

    @staticmethod
    def _mid_stream_error(served: Served) -> JSON:
        metadata: JSON = {"error_type": served.error_type or "provider_unavailable"}
        if served.provider_code is not None:
            # The stream chunk schema types provider_code as a string.
            metadata["provider_code"] = str(served.provider_code)
        return {"code": 502, "message": "Provider disconnected unexpectedly", "metadata": metadata}

    def _chat_stream(
        self,
        req: Incoming,
        model: JSON,
        endpoint: JSON,
        plan: Plan,
        served: Served,
        attempts: list[JSON],
        gen_id: str,
        headers: list[tuple[str, str]],
        started: float,
    ) -> StreamReply:
        created = int(time.time())
        delay = self.stream_chunk_delay
        base = {"id": gen_id, "provider": endpoint["provider_name"], "model": model["id"],
                "object": "chat.completion.chunk", "created": created}  # fmt: skip

        def data(obj: Any) -> bytes:
            return b"data: " + dumps(obj) + b"\n\n"

        def chunk(delta: JSON, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish,
                      "logprobs": None}  # fmt: skip
            return data({**base, "choices": [choice]})

        events = [Event(delay if i else 0.0, KEEPALIVE) for i in range(self.keepalive_comments)]
        events.append(Event(delay if events else 0.0, chunk({"role": "assistant", "content": ""})))
        failed = served.mid_stream_error or served.error_in_200
        finish = "error" if failed else plan.finish_reason
        if served.malformed:
            events.append(
                Event(delay, b'data: {"id":"' + gen_id.encode() + b'","choices":[{"delta":{"content":"Sim\n\n')
            )
            events.append(Event(delay, b"data: [DONE]\n\n"))
        else:
            if plan.reasoning is not None and plan.show_reasoning:
                for piece in _split_text(plan.reasoning, 6):
                    detail = [{"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}]
                    delta = {"role": "assistant", "content": "", "reasoning": piece, "reasoning_details": detail}
                    events.append(Event(delay, chunk(delta), count_tokens(piece)))
            for index, piece in enumerate(_split_text(plan.text)):
                if (failed or served.cut_stream) and index == 2:
                    break
                events.append(Event(delay, chunk({"role": "assistant", "content": piece}), count_tokens(piece)))
            if served.cut_stream:
                pass  # the stream just ends: no finish_reason, no usage, no [DONE]
            elif failed:
                choice = {
                    "index": 0,
                    "delta": {"content": ""},
                    "finish_reason": "error",
                    "native_finish_reason": "error",
                }
                events.append(
                    Event(delay, data({**base, "error": self._mid_stream_error(served), "choices": [choice]}))
                )
            else:
                for index, call in enumerate(plan.tool_calls):
                    head = {"index": index, "id": call.id, "type": "function",
                            "function": {"name": call.name, "arguments": ""}}  # fmt: skip
                    events.append(Event(delay, chunk({"role": "assistant", "content": None, "tool_calls": [head]})))
                    for piece in _split_string(json.dumps(call.arguments), 3):
                        part = {"index": index, "function": {"arguments": piece}}
                        events.append(Event(delay, chunk({"role": "assistant", "content": None, "tool_calls": [part]})))
                events.append(Event(delay, chunk({"role": "assistant", "content": ""}, plan.finish_reason)))
                cost, prompt_cost, completion_cost = self._cost(endpoint, plan.prompt_tokens, plan.completion_tokens)
                usage = self._chat_usage(plan, plan.completion_tokens, cost, prompt_cost, completion_cost)
                events.append(Event(delay, data({**base, "choices": [], "usage": usage})))
                events.append(Event(0.0, b"data: [DONE]\n\n"))

        def on_done(completed: bool, sent: int) -> None:
            if completed and not failed and not served.malformed and not served.cut_stream:
                tokens = plan.completion_tokens
            else:
                tokens = sum(e.tokens for e in events[:sent])
            self._record_generation(
                gen_id=gen_id, req=req, model=model, endpoint=endpoint, plan=plan,
                finish_reason=finish if completed else "cancelled", completion_tokens=tokens, attempts=attempts,
                streamed=True, cancelled=not completed, started=started,
            )  # fmt: skip

        return StreamReply(headers, events, on_done, drip=served.drip)
