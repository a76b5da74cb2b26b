"""The price ceiling sent upstream: persona defaults, the caller's preferences, and a cap only the caller can lower."""

from __future__ import annotations

from openrouter_mcp.routing.personas import Persona, PriceCeiling, ProviderSettings
from openrouter_mcp.routing.pricing import provider_preferences


def test_nothing_to_send_when_neither_the_persona_nor_the_caller_sets_anything() -> None:
    assert provider_preferences(Persona(), None) is None
    assert provider_preferences(Persona(), {}) is None


def test_the_callers_preferences_override_the_personas_defaults() -> None:
    persona = Persona(provider=ProviderSettings(sort="price", data_collection="deny"))
    assert provider_preferences(persona, {"sort": "latency"}) == {"sort": "latency", "data_collection": "deny"}


def test_the_personas_ceiling_goes_upstream_as_max_price() -> None:
    persona = Persona(max_price=PriceCeiling(prompt=1, completion=2.5))
    assert provider_preferences(persona, None) == {"max_price": {"prompt": "1", "completion": "2.5"}}


def test_a_caller_can_lower_the_ceiling_but_never_raise_it() -> None:
    persona = Persona(max_price=PriceCeiling(prompt=1, completion=2))
    lowered = provider_preferences(persona, {"max_price": {"prompt": 0.5, "completion": 9}})
    assert lowered == {"max_price": {"prompt": "0.5", "completion": "2"}}


def test_a_callers_price_on_a_side_the_persona_leaves_open_is_kept_as_given() -> None:
    persona = Persona(max_price=PriceCeiling(prompt=1))
    assert provider_preferences(persona, {"max_price": {"completion": 7, "request": 0}}) == {
        "max_price": {"prompt": "1", "completion": 7, "request": 0}
    }


def test_each_persona_sends_its_own_preferences_however_many_personas_came_before() -> None:
    # More personas than the per-persona cache keeps: each answer must still be its own persona's.
    for cents in range(1, 200):
        persona = Persona(max_price=PriceCeiling(prompt=cents / 100), provider=ProviderSettings(only=[f"p{cents}"]))
        expected = {"only": [f"p{cents}"], "max_price": {"prompt": f"{cents / 100:g}"}}
        assert provider_preferences(persona, None) == expected
        assert provider_preferences(persona, None) == expected  # and again, from the cache


def test_the_callers_changes_never_reach_the_persona_or_its_next_call() -> None:
    persona = Persona(provider=ProviderSettings(sort="price"), max_price=PriceCeiling(prompt=1))
    first = provider_preferences(persona, {"sort": "latency"})
    assert first is not None
    first["sort"], first["max_price"]["prompt"] = "throughput", "9"
    assert provider_preferences(persona, None) == {"sort": "price", "max_price": {"prompt": "1"}}
