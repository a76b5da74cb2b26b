"""Folding a streamed chat completion back into one completion.

OpenRouter streams `chat.completion.chunk` objects: content and reasoning arrive as text deltas,
tool calls as fragments keyed by `index` (the id and name in the first fragment, the JSON
arguments spread over the rest), `finish_reason` near the end, and usage once in the last chunk
(sometimes with empty `choices`, sometimes not: both are accepted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openrouter_mcp.upstream.models import (
    AssistantMessage,
    ChatChoice,
    ChatChunk,
    ChatCompletion,
    FunctionCall,
    ToolCall,
    Usage,
)


@dataclass
class _ToolCallParts:
    id: str = ""
    type: str = "function"
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class ChatStreamAggregator:
    """Accumulates chunks of one streamed completion (choice 0, the only one OpenRouter streams)."""

    id: str | None = None
    model: str | None = None
    provider: str | None = None
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    usage: Usage | None = None
    _content: list[str] = field(default_factory=list)
    _reasoning: list[str] = field(default_factory=list)
    _refusal: list[str] = field(default_factory=list)
    _tool_calls: dict[int, _ToolCallParts] = field(default_factory=dict)
    chars: int = 0

    def add(self, chunk: ChatChunk) -> str:
        """Fold in one chunk; returns the new visible text it carried (for progress messages)."""
        self.id = self.id or chunk.id
        self.model = chunk.model or self.model
        self.provider = chunk.provider or self.provider
        if chunk.usage is not None:
            self.usage = chunk.usage
        new_text = ""
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content:
                self._content.append(delta.content)
                new_text += delta.content
            if delta.reasoning:
                self._reasoning.append(delta.reasoning)
            if delta.refusal:
                self._refusal.append(delta.refusal)
            for part in delta.tool_calls or ():
                call = self._tool_calls.setdefault(part.index, _ToolCallParts())
                call.id = part.id or call.id
                call.type = part.type or call.type
                function = part.function or {}
                call.name = call.name or str(function.get("name") or "")
                if function.get("arguments"):
                    call.arguments.append(str(function["arguments"]))
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
                self.native_finish_reason = choice.native_finish_reason
        self.chars += len(new_text)
        return new_text

    @property
    def text(self) -> str:
        return "".join(self._content)

    def result(self) -> ChatCompletion:
        """The completion as if it had been requested without streaming."""
        tool_calls = [
            ToolCall(id=c.id, type=c.type, function=FunctionCall(name=c.name, arguments="".join(c.arguments)))
            for _, c in sorted(self._tool_calls.items())
        ]
        message = AssistantMessage(
            content=self.text,
            reasoning="".join(self._reasoning) or None,
            refusal="".join(self._refusal) or None,
            tool_calls=tool_calls or None,
        )
        choice = ChatChoice(
            index=0, finish_reason=self.finish_reason, native_finish_reason=self.native_finish_reason, message=message
        )
        return ChatCompletion(
            id=self.id or "", model=self.model or "", provider=self.provider, choices=[choice], usage=self.usage
        )
