"""What the simulated model answers, the same for both wire formats: text, tool calls, reasoning, tokens.

Everything is deterministic: the same prompt always yields the same words.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

from .asgi import JSON


def count_tokens(text: str) -> int:
    """Approximate token count: about four characters per token, like most BPE tokenizers on English."""
    return math.ceil(len(text) / 4) if text else 0


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif part.get("type") == "tool_result":
                    parts.append(text_of(part.get("content")))
        return " ".join(parts)
    return ""


def _snippet(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _example_value(schema: Any, hint: str, depth: int = 0) -> Any:
    """A value that satisfies a (simple) JSON schema, used for tool arguments and JSON-mode answers."""
    if not isinstance(schema, dict) or depth > 5:
        return hint
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _example_value(schema[key][0], hint, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        raw_props = schema.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        raw_required = schema.get("required")
        required: list[Any] = raw_required if isinstance(raw_required, list) else list(props)
        return {k: _example_value(props[k], hint, depth + 1) for k in required if k in props}
    if kind == "array":
        return [_example_value(schema.get("items"), hint, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return hint


@dataclass
class _ToolCall:
    id: str
    name: str
    arguments: JSON


@dataclass
class Plan:
    """What the simulated model answers, computed once for both wire formats."""

    text: str
    reasoning: str | None
    show_reasoning: bool
    tool_calls: list[_ToolCall]
    finish_reason: str
    stop_sequence: str | None
    prompt_tokens: int
    reasoning_tokens: int

    @property
    def completion_tokens(self) -> int:
        arguments = sum(count_tokens(json.dumps(c.arguments)) + count_tokens(c.name) for c in self.tool_calls)
        return count_tokens(self.text) + self.reasoning_tokens + arguments


def plan_answer(
    model: JSON,
    ids: random.Random,
    *,
    prompt_text: str,
    prompt_tokens: int,
    last_role: str,
    tools: list[tuple[str, Any]],
    tool_mode: str | tuple[str, str],
    parallel: bool,
    reasoning: tuple[bool, bool],
    max_tokens: Any,
    stop: Any,
    json_schema: Any,
) -> Plan:
    """What ``model`` answers to a prompt; ``ids`` draws the tool-call ids (deterministic per seed)."""
    snippet = _snippet(prompt_text) or "(empty prompt)"
    short_model = model["id"].split("/")[-1]
    calls: list[_ToolCall] = []
    if tools and tool_mode != "none":
        by_name = dict(tools)
        chosen: list[str] = []
        if isinstance(tool_mode, tuple):
            chosen = [tool_mode[1]] if tool_mode[1] in by_name else []
        elif last_role == "user" or tool_mode == "required":
            mentioned = [name for name, _ in tools if name.lower() in prompt_text.lower()]
            if tool_mode == "required":
                chosen = mentioned or [tools[0][0]]
            elif mentioned:
                chosen = mentioned
            elif re.search(r"\btools?\b", prompt_text.lower()):
                chosen = [tools[0][0]]
        if not parallel:
            chosen = chosen[:1]
        hint = _snippet(prompt_text, 40) or "example"
        for name in chosen:
            arguments = _example_value(by_name[name], hint)
            call_id = "call_" + "".join(ids.choices("abcdef0123456789", k=24))
            calls.append(_ToolCall(call_id, name, arguments if isinstance(arguments, dict) else {}))

    if calls:
        text = ""
    elif last_role == "tool":
        text = f"The tool returned: {snippet} That completes the request."
    elif json_schema is not None:
        value = _example_value(json_schema, snippet) if isinstance(json_schema, dict) else {"answer": snippet}
        text = json.dumps(value if isinstance(value, dict) else {"answer": value})
    else:
        text = (
            f'Simulated reply from {short_model}. You said: "{snippet}". '
            "This answer is deterministic, so the same prompt always yields the same words."
        )

    finish = "tool_calls" if calls else "stop"
    stop_sequence = None
    stops = (
        [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []
    )
    for sequence in stops:
        if sequence and sequence in text:
            text = text[: text.index(sequence)]
            stop_sequence = sequence
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0 and not calls:
        if count_tokens(text) > max_tokens:
            text = text[: max_tokens * 4]
            finish = "length"

    produce, show = reasoning
    reasoning_text = None
    if produce:
        reasoning_text = f'The user asked: "{snippet}". I should answer directly and keep the reply deterministic.'
    return Plan(
        text=text,
        reasoning=reasoning_text,
        show_reasoning=show,
        tool_calls=calls,
        finish_reason=finish,
        stop_sequence=stop_sequence,
        prompt_tokens=prompt_tokens,
        reasoning_tokens=count_tokens(reasoning_text or ""),
    )


def wants_reasoning(model: JSON, reasoning: Any, effort: Any, include: Any) -> tuple[bool, bool]:
    """(produce reasoning, show it in the response) for a request's reasoning options."""
    if "reasoning" not in model.get("supported_parameters", []):
        return False, False
    mandatory = bool(model.get("reasoning", {}).get("mandatory", False))
    wanted = mandatory
    exclude = False
    if isinstance(reasoning, dict):
        disabled = reasoning.get("enabled") is False or reasoning.get("effort") == "none"
        wanted = mandatory or not disabled
        exclude = reasoning.get("exclude") is True
    if isinstance(effort, str) and effort != "none":
        wanted = True
    if include is True:
        wanted = True
    return wanted, wanted and not exclude
