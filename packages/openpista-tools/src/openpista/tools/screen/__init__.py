"""The screen tools: `screen.capture` (a screenshot) and `screen.ocr` (the text on screen).

They read an X display, in this process through mss (`grab.py`), encode with Pillow
(`encode.py`) and read text with Tesseract (`ocr.py`); each library is imported only by the
call that needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openpista.tools.screen.tools import ScreenCaptureTool, ScreenOcrTool

if TYPE_CHECKING:
    from openpista.core.config import Config
    from openpista.core.tool import Tool

__all__ = ["ScreenCaptureTool", "ScreenOcrTool", "create_tools"]


def create_tools(config: Config) -> list[Tool]:
    """The `openpista.tools` entry point `screen`: screen.capture and screen.ocr."""
    return [ScreenCaptureTool(), ScreenOcrTool()]
