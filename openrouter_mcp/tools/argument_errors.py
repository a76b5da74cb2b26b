"""Tool arguments that fail the input model: one readable line for the model instead of pydantic's dump.

The SDK turns a `ValidationError` from argument validation into "Error executing tool X: 1 validation
error for NoInput ... https://errors.pydantic.dev/...". `validate_or_refuse` hands the tool an
`InvalidArguments` instead, which the registry answers as an `isError` result in the same shape as
our other argument errors ("tool: invalid arguments: ...") and records in the audit log as
`invalid_arguments`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

#: Problems named in one message, and the length of each one's text: a hostile call cannot make the reply long.
MAX_PROBLEMS = 10
MAX_PROBLEM_CHARS = 200

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class InvalidArguments:
    """What the tool receives in place of its input model when the arguments do not validate."""

    message: str
    #: The argument names the call sent (not their values: they failed validation and may be anything).
    names: tuple[str, ...]

    def audit_arguments(self) -> dict[str, Any]:
        """What the audit log keeps of the refused arguments."""
        return {"invalid_argument_names": list(self.names)}


def validate_or_refuse(model: type[ModelT], arguments: Any) -> ModelT | InvalidArguments:
    """`arguments` validated as `model`, or the `InvalidArguments` that says why they are not."""
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        sent = islice(arguments, MAX_PROBLEMS) if isinstance(arguments, Mapping) else ()
        names = tuple(str(name)[:MAX_PROBLEM_CHARS] for name in sent)
        return InvalidArguments(tidy_validation_message(exc, model), names)


def tidy_validation_message(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line: how many problems, each one's argument and what is wrong with it, then the accepted arguments.

    E.g. "1 validation error: unknown argument 'limt': Extra inputs are not permitted; accepted: limit, offset".

    No pydantic URL, no model class name, no rejected value beyond what pydantic's own short message says.
    """
    problems: list[str] = []
    errors = exc.errors(include_url=False, include_input=False)
    for error in errors[:MAX_PROBLEMS]:
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown argument {where!r}: {error['msg']}")
        elif error["type"] == "missing":
            problems.append(f"missing required argument {where!r}")
        else:
            problems.append(f"{where!r}: {_short(error['msg'])}")
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"and {len(errors) - MAX_PROBLEMS} more")
    count = len(errors)
    text = f"{count} validation error{'s' if count != 1 else ''}: " + "; ".join(problems)
    if model is not None:
        accepted = [field.alias or name for name, field in model.model_fields.items()]
        text += f"; accepted: {', '.join(accepted)}" if accepted else "; it takes no arguments"
    return text


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 1] + "…"
