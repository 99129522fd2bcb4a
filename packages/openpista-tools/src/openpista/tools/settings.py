"""The settings of our tools: `[tools.shell]` and `[tools.browser]` (CONTRACT section 4),
declared for the config loader.

The `openpista.settings` entry points name the declarations below; every config load imports
this module, so it imports nothing but core's settings vocabulary. A tool reads its section
with `config.section("tools.shell", ShellSettings)`. The browser tools are not written yet:
their keys are read and checked all the same, so a config file valid today stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from openpista.core.settings import SettingsDeclaration, at_least, positive_seconds

__all__ = ["BROWSER", "SHELL", "BrowserSettings", "ShellSettings"]


@dataclass(slots=True)
class ShellSettings:
    timeout_s: float = 30.0
    max_output_chars: int = 10000


SHELL = SettingsDeclaration(
    ShellSettings,
    checks={"timeout_s": positive_seconds, "max_output_chars": at_least(1)},
)


@dataclass(slots=True)
class BrowserSettings:
    executable: str = ""
    headless: bool = True


BROWSER = SettingsDeclaration(BrowserSettings, paths=frozenset({"executable"}))
