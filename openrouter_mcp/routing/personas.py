"""Personas: who is asking, and so which models fit, what they may cost, and which tools they may use.

A personas file is TOML (`--personas PATH`, else `$OPENROUTER_MCP_PERSONAS`, else
`~/.config/openrouter-mcp/personas.toml` when it exists). Without a file the built-in `default`
persona applies: any model, the catalog ranked by general intelligence, every tool. The example
file `personas.example.toml` beside this module documents every field.

Pure: no mcp, no httpx. Loading errors name the file, the persona, the field, what is wrong and
what would be accepted.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from openrouter_mcp.config import DEFAULT_PERSONAS_FILE, PERSONAS_ENV

# Defined in the one exception tree; importable from here, where it is raised.
from openrouter_mcp.errors import PersonaError as PersonaError

DEFAULT_PERSONAS_PATH = Path(DEFAULT_PERSONAS_FILE)
EXAMPLE_PATH = Path(__file__).with_name("personas.example.toml")

#: Strengths a persona can rank catalog models by; the first three are Artificial Analysis indexes.
Strength = Literal["intelligence", "coding", "agentic", "cheap", "context"]


class _Strict(BaseModel):
    # defer_build: validators are built when a personas file is first read, not at every start-up.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Requirements(_Strict):
    """What every candidate model must support, whatever the request says."""

    tools: bool = False
    structured_output: bool = False
    image_input: bool = False
    min_context: int = Field(0, ge=0)


class PriceCeiling(_Strict):
    """USD per million tokens that no candidate, fallbacks included, may exceed."""

    prompt: float | None = Field(None, ge=0)
    completion: float | None = Field(None, ge=0)


class ProviderSettings(_Strict):
    """OpenRouter `provider` preferences sent with every request of the persona."""

    sort: Literal["price", "throughput", "latency"] | None = None
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    quantizations: list[str] | None = None
    allow_fallbacks: bool | None = None
    require_parameters: bool | None = None


class FallbackPolicy(_Strict):
    max_attempts: int = Field(4, ge=1, le=20, description="upstream calls per request, at most")
    deadline_seconds: float = Field(120.0, gt=0, description="total time for one request, all attempts included")
    cooldown_seconds: float = Field(30.0, ge=0, description="first cooldown of a failed model without Retry-After")
    max_cooldown_seconds: float = Field(900.0, ge=0, description="cap on the doubling cooldown of a repeat offender")
    retry_same_model_within: float = Field(
        2.0, ge=0, description="retry the same model when its Retry-After is at most this many seconds"
    )


class Budget(_Strict):
    """USD this persona may spend per UTC day and per UTC month, counted from the audit log."""

    daily: float | None = Field(None, ge=0)
    monthly: float | None = Field(None, ge=0)


Privacy = Literal["full", "hashes", "metadata"]


class Persona(_Strict):
    name: str = ""
    description: str = ""
    system_prompt: str | None = None
    models: list[str] = Field(default_factory=list, description="preferred model ids, best first")
    tasks: dict[str, list[str]] = Field(default_factory=dict, description="preferred model ids per task")
    requires: Requirements = Field(default_factory=Requirements)
    max_price: PriceCeiling = Field(default_factory=PriceCeiling)
    provider: ProviderSettings = Field(default_factory=ProviderSettings)
    rank_by: list[Strength] = Field(default_factory=lambda: list[Strength](["intelligence"]))
    fallback: FallbackPolicy = Field(default_factory=FallbackPolicy)
    tools: list[str] | None = Field(None, description="tools this persona may use; omitted = all")
    budget: Budget = Field(default_factory=Budget)
    audit: Privacy | None = Field(None, description="audit privacy for this persona; omitted = the server's")

    @field_validator("models")
    @classmethod
    def _model_ids_look_like_ids(cls, ids: list[str]) -> list[str]:
        _check_ids(ids)
        return ids

    @field_validator("tasks")
    @classmethod
    def _task_model_ids_look_like_ids(cls, tasks: dict[str, list[str]]) -> dict[str, list[str]]:
        for ids in tasks.values():
            _check_ids(ids)
        return tasks

    def preferred(self, task: str | None) -> list[str]:
        """Preferred model ids for `task` (task list first, then the general list), without repeats."""
        ordered = [*(self.tasks.get(task, []) if task else []), *self.models]
        return list(dict.fromkeys(ordered))

    def allows_tool(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools


def _check_ids(ids: Iterable[str]) -> None:
    for model_id in ids:
        author, slash, slug = model_id.partition("/")
        if not (author and slash and slug) and model_id not in ("openrouter/auto",):
            raise ValueError(f"{model_id!r} is not a model id; ids look like 'author/slug', e.g. 'openai/gpt-4o'")


class UserSettings(_Strict):
    """`[users.NAME]`: what applies to one user (the OS user on stdio, a token's `user` over HTTP)."""

    budget: Budget = Field(default_factory=Budget)


class PersonasConfig(_Strict):
    default: str = "default"
    personas: dict[str, Persona] = Field(default_factory=dict)
    #: `[budget]`: USD the whole server may spend per UTC day and month, all users and personas together.
    budget: Budget = Field(default_factory=Budget)
    #: `[users.NAME.budget]`: per-user budgets (a tokens-file entry's own `budget` wins over these).
    users: dict[str, UserSettings] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _first_persona_is_the_default(cls, raw: Any) -> Any:
        # A file with personas but no `default =` line means its first persona.
        if isinstance(raw, dict) and "default" not in raw and isinstance(raw.get("personas"), dict) and raw["personas"]:
            return {**raw, "default": next(iter(raw["personas"]))}
        return raw

    @model_validator(mode="after")
    def _default_exists(self) -> PersonasConfig:
        if self.personas and self.default not in self.personas:
            raise ValueError(
                f"default persona {self.default!r} is not defined; defined: {', '.join(sorted(self.personas))}"
            )
        return self

    def get(self, name: str | None) -> Persona:
        """The named persona, or the default one.

        Raises:
            PersonaError: no persona has that name (the message lists those that exist).
        """
        key = name or self.default
        if key in self.personas:
            return self.personas[key]
        raise PersonaError(f"unknown persona {key!r}; available: {', '.join(sorted(self.personas))}")


@functools.cache
def builtin() -> PersonasConfig:
    """The personas in force without a file: one `default` persona, any model, every tool."""
    return PersonasConfig(
        default="default",
        personas={
            "default": Persona(
                name="default",
                description="Any model; the catalog ranked by general intelligence; every tool.",
            )
        },
    )


def resolve_path(cli_path: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The personas file to load: the CLI flag, the environment, or the default location if it exists."""
    env = os.environ if environ is None else environ
    if cli_path:
        return Path(cli_path).expanduser()
    if env.get(PERSONAS_ENV):
        return Path(env[PERSONAS_ENV]).expanduser()
    default = DEFAULT_PERSONAS_PATH.expanduser()
    return default if default.is_file() else None


def load(path: Path | None) -> PersonasConfig:
    """Read and validate a personas file; `None` gives the built-in default persona.

    Raises:
        PersonaError: unreadable file, bad TOML, or an invalid field (file, persona, field, fix).
    """
    if path is None:
        return builtin()
    import tomllib  # only when there is a file: most servers start without one

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PersonaError(f"{path}: cannot read the personas file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PersonaError(f"{path}: not valid TOML: {exc}") from None
    return parse(raw, source=str(path))


def parse(raw: Mapping[str, Any], *, source: str = "<personas>") -> PersonasConfig:
    """Validate an already-parsed personas document.

    Raises:
        PersonaError: an invalid field, described precisely.
    """
    personas = raw.get("personas")
    if isinstance(personas, dict):
        raw = {**raw, "personas": {k: {"name": k, **v} if isinstance(v, dict) else v for k, v in personas.items()}}
    try:
        return PersonasConfig.model_validate(raw)
    except ValidationError as exc:
        raise PersonaError("\n".join(_describe(source, error) for error in exc.errors())) from None


def _describe(source: str, error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    where = source
    if len(loc) >= 2 and loc[0] == "personas":
        where += f": persona {loc[1]!r}"
        loc = loc[2:]
    field = ".".join(loc) or "(top level)"
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = f"unknown field; accepted here: {', '.join(_accepted_fields(error['loc']))}"
    return f"{where}: field {field!r}: {message}"


def _accepted_fields(loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at the parent of `loc`, for an 'unknown field' message."""
    model: type[BaseModel] = PersonasConfig
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        if model is PersonasConfig and part == "personas" and parts:
            parts.pop(0)
            model = Persona
            continue
        annotation = model.model_fields[str(part)].annotation if str(part) in model.model_fields else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            break
    return sorted(model.model_fields)


def unknown_models(config: PersonasConfig, catalog_ids: Iterable[str]) -> list[str]:
    """One line per persona model id absent from the catalog, with the closest real ids."""
    known = list(catalog_ids)
    known_set = set(known)
    problems = []
    for persona in config.personas.values():
        named = [*persona.models, *(i for ids in persona.tasks.values() for i in ids)]
        for model_id in dict.fromkeys(named):
            if model_id not in known_set and model_id != "openrouter/auto":
                close = difflib.get_close_matches(model_id, known, n=3, cutoff=0.5)
                hint = f"; closest: {', '.join(close)}" if close else ""
                problems.append(f"persona {persona.name!r}: model {model_id!r} is not in the catalog{hint}")
    return problems
