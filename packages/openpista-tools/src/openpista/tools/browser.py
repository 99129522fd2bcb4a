"""Placeholder while issue 7 is built: registers no tools yet."""

from __future__ import annotations

from openpista.core.config import Config
from openpista.core.tool import Tool


def create_tools(config: Config) -> list[Tool]:
    return []
