"""The model catalog: the models openpista knows per provider, for `openpista model list` and
for errors that name the valid models.

It is a list of current, commonly used names, not the providers' full offer (OpenRouter alone
serves hundreds): any model a provider serves can be used by name. Context windows come from
the core's table (`openpista.core.context.context_window`), the one place they are kept.
Loading this module imports no httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from openpista.core.context import context_window
from openpista.providers.presets import PRESETS


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A known model of one provider."""

    provider: str
    name: str
    context_window: int | None
    """Tokens, where known."""

    @property
    def label(self) -> str:
        """ "provider/model", as `--model`, `model test` and `fallback_models` take it."""
        return f"{self.provider}/{self.name}"


_MODELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "openai": (
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "gpt-4o",
            "gpt-4o-mini",
            "o3",
            "o4-mini",
        ),
        "anthropic": (
            "claude-sonnet-4-5",
            "claude-opus-4-1",
            "claude-haiku-4-5",
            "claude-sonnet-4-0",
            "claude-3-7-sonnet-latest",
            "claude-3-5-haiku-latest",
        ),
        "openrouter": (
            "openai/gpt-4.1-mini",
            "openai/gpt-5",
            "anthropic/claude-sonnet-4.5",
            "anthropic/claude-sonnet-4",
            "google/gemini-2.5-pro",
            "google/gemini-2.5-flash",
            "meta-llama/llama-3.3-70b-instruct",
            "deepseek/deepseek-chat",
            "qwen/qwen-2.5-72b-instruct",
        ),
        "together": (
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "Qwen/Qwen2.5-72B-Instruct-Turbo",
            "deepseek-ai/DeepSeek-V3",
            "openai/gpt-oss-120b",
        ),
        "ollama": ("llama3.2", "llama3.1", "qwen2.5", "mistral", "gpt-oss:20b"),
        "copilot": (
            "gpt-4.1",
            "gpt-4o",
            "gpt-5-mini",
            "claude-sonnet-4",
            "gemini-2.5-pro",
            "o4-mini",
        ),
        "gemini": (
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
            "gemini-2.0-flash",
        ),
    }
)


def catalog_providers() -> tuple[str, ...]:
    """Every provider the catalog or a preset names, catalog order first."""
    names = list(_MODELS)
    names += [name for name in PRESETS if name not in _MODELS]
    return tuple(names)


def known_models(provider: str) -> tuple[str, ...]:
    """The models known for `provider`: the catalog's, then its preset's examples, each once;
    () for a provider nothing is known of (`custom`: whatever the server serves)."""
    names = list(_MODELS.get(provider, ()))
    preset = PRESETS.get(provider)
    if preset is not None:
        names += [name for name in preset.example_models if name not in names]
    return tuple(names)


def catalog(provider: str) -> tuple[CatalogModel, ...]:
    """The known models of `provider`, with their context windows where known."""
    return tuple(
        CatalogModel(provider, name, context_window(name)) for name in known_models(provider)
    )


def unknown_model_hint(provider: str, model: str) -> str:
    """What to add to a "model not found" error: the known models of `provider`; "" when the
    model is one of them (the error is then about something else) or none are known."""
    names = known_models(provider)
    if not names or model in names:
        return ""
    return f"known models for {provider}: {', '.join(names)}; see `openpista model list`"
