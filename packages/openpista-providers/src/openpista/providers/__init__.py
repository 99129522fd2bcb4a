"""openpista providers: OpenAI-compatible chat completions on httpx, and the presets that use it.

Importing this package is cheap on purpose: names below are loaded on first use, so httpx
is imported only by whoever actually talks to a provider.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpista.providers.chat_completions import ChatCompletionsProvider
    from openpista.providers.presets import PRESETS, Preset, create_provider

__all__ = ["PRESETS", "ChatCompletionsProvider", "Preset", "create_provider"]

_LAZY = {
    "ChatCompletionsProvider": "openpista.providers.chat_completions",
    "PRESETS": "openpista.providers.presets",
    "Preset": "openpista.providers.presets",
    "create_provider": "openpista.providers.presets",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
