"""The model catalog: one list per provider, the presets' examples included, windows from core."""

from __future__ import annotations

from openpista.core.context import context_window
from openpista.providers.catalog import (
    catalog,
    catalog_providers,
    known_models,
    unknown_model_hint,
)
from openpista.providers.presets import PRESETS


def test_every_preset_and_the_sign_in_providers_are_in_the_catalog() -> None:
    providers = catalog_providers()
    assert set(PRESETS) <= set(providers)
    assert {"anthropic", "copilot", "gemini"} <= set(providers)
    assert len(providers) == len(set(providers))


def test_known_models_hold_each_presets_examples_once() -> None:
    for name, preset in PRESETS.items():
        models = known_models(name)
        assert set(preset.example_models) <= set(models), name
        assert len(models) == len(set(models)), name
    assert known_models("custom") == ()
    assert known_models("nosuch") == ()


def test_context_windows_come_from_the_core_table() -> None:
    for model in catalog("openai"):
        assert model.context_window == context_window(model.name)
        assert model.label == f"openai/{model.name}"
    by_name = {model.name: model.context_window for model in catalog("anthropic")}
    assert by_name["claude-sonnet-4-5"] == 200_000


def test_the_hint_for_an_unknown_model_names_the_known_ones() -> None:
    hint = unknown_model_hint("openai", "gpt-nosuch")
    assert hint.startswith("known models for openai: gpt-5, ")
    assert hint.endswith("; see `openpista model list`")
    assert unknown_model_hint("openai", "gpt-4.1-mini") == ""
    assert unknown_model_hint("custom", "anything") == ""
