"""Loading personas: the example file, the built-in default, and precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrouter_mcp.config import PERSONAS_ENV
from openrouter_mcp.routing import personas


def test_the_shipped_example_file_loads() -> None:
    config = personas.load(personas.EXAMPLE_PATH)
    assert config.default == "balanced"
    assert config.get(None).name == "balanced"
    frugal = config.get("frugal")
    assert frugal.max_price.prompt == 1.0 and frugal.allows_tool("route_request")
    assert not frugal.allows_tool("create_message")


def test_without_a_file_the_builtin_default_persona_allows_everything() -> None:
    config = personas.load(None)
    persona = config.get(None)
    assert persona.name == "default" and persona.allows_tool("create_coinbase_charge")
    assert persona.max_price.prompt is None and persona.rank_by == ["intelligence"]


def test_a_file_without_a_default_line_uses_its_first_persona() -> None:
    config = personas.parse({"personas": {"writer": {}, "coder": {}}})
    assert config.default == "writer"


def test_task_preferences_come_before_general_ones_without_repeats() -> None:
    persona = personas.parse({"personas": {"p": {"models": ["a/x", "b/y"], "tasks": {"code": ["b/y", "c/z"]}}}}).get(
        "p"
    )
    assert persona.preferred("code") == ["b/y", "c/z", "a/x"]
    assert persona.preferred(None) == ["a/x", "b/y"]


def test_errors_name_the_file_persona_field_and_what_is_accepted() -> None:
    raw = {"personas": {"x": {"modles": ["a/b"], "provider": {"sort": "fast"}, "max_price": {"prompt": -1}}}}
    with pytest.raises(personas.PersonaError) as caught:
        personas.parse(raw, source="team.toml")
    message = str(caught.value)
    assert "team.toml: persona 'x': field 'modles': unknown field; accepted here:" in message
    assert "models" in message.split("field 'modles'")[1].splitlines()[0]
    assert "field 'provider.sort': Input should be 'price', 'throughput' or 'latency'" in message
    assert "field 'max_price.prompt'" in message and "greater than or equal to 0" in message


def test_a_malformed_model_id_is_explained() -> None:
    with pytest.raises(personas.PersonaError, match="'gpt4' is not a model id; ids look like 'author/slug'"):
        personas.parse({"personas": {"x": {"models": ["gpt4"]}}})


def test_an_undefined_default_lists_the_defined_personas() -> None:
    with pytest.raises(personas.PersonaError, match="default persona 'nope' is not defined; defined: a, b"):
        personas.parse({"default": "nope", "personas": {"a": {}, "b": {}}})


def test_an_unknown_persona_name_lists_the_available_ones() -> None:
    with pytest.raises(personas.PersonaError, match="unknown persona 'ghost'; available: balanced, frugal"):
        personas.load(personas.EXAMPLE_PATH).get("ghost")


def test_bad_toml_and_missing_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "p.toml"
    broken.write_text("[personas.x\n")
    with pytest.raises(personas.PersonaError, match=r"p\.toml: not valid TOML"):
        personas.load(broken)
    with pytest.raises(personas.PersonaError, match="cannot read the personas file"):
        personas.load(tmp_path / "absent.toml")


def test_model_ids_missing_from_the_catalog_are_reported_with_the_closest_real_ids() -> None:
    config = personas.parse({"personas": {"p": {"models": ["openai/gpt-4o-mni", "openai/gpt-4o"]}}})
    problems = personas.unknown_models(config, ["openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4"])
    assert problems == [
        "persona 'p': model 'openai/gpt-4o-mni' is not in the catalog; closest: openai/gpt-4o-mini, openai/gpt-4o"
    ]


def test_the_path_comes_from_the_flag_then_the_environment(tmp_path: Path) -> None:
    assert personas.resolve_path("/x/p.toml", {}) == Path("/x/p.toml")
    assert personas.resolve_path(None, {PERSONAS_ENV: str(tmp_path / "e.toml")}) == tmp_path / "e.toml"
