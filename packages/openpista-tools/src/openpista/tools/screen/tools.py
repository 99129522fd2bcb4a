"""`screen.capture` and `screen.ocr`: what the LLM calls to see the X display."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from openpista.core.media import describe_size
from openpista.core.models import Image
from openpista.core.tool import ToolContext, ToolOutput
from openpista.tools.screen.arguments import (
    DISPLAY_SCHEMA,
    REGION_SCHEMA,
    ImageFormat,
    Region,
    parse_format,
    parse_max_width,
    parse_region,
    resolve_display,
)
from openpista.tools.screen.encode import EncodedPicture, encode
from openpista.tools.screen.grab import Frame, grab
from openpista.tools.screen.ocr import describe, recognise

_CAPTURE_DESCRIPTION = (
    "Take a screenshot of the X display (the whole screen, or a region of it). The user sees "
    "the picture; you get a short description of it, or the picture itself when your model "
    "accepts images. Use max_width to keep it small. To find text and where to click, "
    "screen.ocr is cheaper."
)

_OCR_DESCRIPTION = (
    "Read the text on the X display (the whole screen, or a region of it) with OCR. Returns "
    "the text line by line, then every word with its box in screen pixels, so you can tell "
    "where to click. A smaller region is faster and more accurate."
)


def _where(frame: Frame) -> str:
    """'display :99' or 'display :99, region x=10 y=20 300x200'."""
    if frame.region is None:
        return f"display {frame.display}"
    return f"display {frame.display}, region {frame.region.describe()}"


def _describe_picture(frame: Frame, picture: EncodedPicture) -> str:
    text = (
        f"Screenshot of {_where(frame)}, {picture.width}x{picture.height} "
        f"{picture.image_format.upper()}, {describe_size(len(picture.data))}"
    )
    # Each axis on its own: rounding a tiny max_width can change the aspect ratio.
    scale = (
        picture.original_width / picture.width,
        picture.original_height / picture.height,
    )
    if picture.downscaled:
        text += f" (downscaled from {picture.original_width}x{picture.original_height}"
        text += f": {_screen_point(frame.region, scale)})"
    elif frame.region is not None:
        text += f" ({_screen_point(frame.region, scale)})"
    return text


def _screen_point(region: Region | None, scale: tuple[float, float]) -> str:
    """How a point in the picture maps back to the screen, for a model that wants to click."""
    x = "px" if scale[0] == 1 else f"px * {scale[0]:.4g}"
    y = "py" if scale[1] == 1 else f"py * {scale[1]:.4g}"
    if region is not None:
        x, y = f"{region.x} + {x}", f"{region.y} + {y}"
    return f"a point (px, py) in it is at ({x}, {y}) on the screen"


class ScreenCaptureTool:
    """A PNG or JPEG of the screen for the channel, a one-line description for the LLM."""

    requires_approval = False
    """Read-only: under `ask` a screenshot is never asked about (CONTRACT section 5)."""

    @property
    def name(self) -> str:
        return "screen.capture"

    @property
    def description(self) -> str:
        return _CAPTURE_DESCRIPTION

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "display": DISPLAY_SCHEMA,
                "region": REGION_SCHEMA,
                "format": {
                    "type": "string",
                    "enum": ["png", "jpeg"],
                    "description": "Image format. Default png.",
                },
                "max_width": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Downscale (keeping the aspect ratio) to at most this width.",
                },
            },
            "additionalProperties": False,
        }

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        display = resolve_display(self.name, arguments.get("display"))
        region = parse_region(self.name, arguments.get("region"))
        image_format = parse_format(self.name, arguments.get("format"))
        max_width = parse_max_width(self.name, arguments.get("max_width"))
        frame, picture = await asyncio.to_thread(
            self._capture, display, region, image_format, max_width
        )
        data_b64 = base64.b64encode(picture.data).decode("ascii")
        return ToolOutput(
            _describe_picture(frame, picture),
            images=[Image(picture.mime_type, data_b64, width=picture.width, height=picture.height)],
        )

    def _capture(
        self, display: str, region: Region | None, image_format: ImageFormat, max_width: int | None
    ) -> tuple[Frame, EncodedPicture]:
        frame = grab(self.name, display, region)
        return frame, encode(frame.image, image_format, max_width)


class ScreenOcrTool:
    """The screen's text and word boxes, read by Tesseract; the output is bounded."""

    requires_approval = False
    """Read-only, as screen.capture."""

    def __init__(
        self, *, max_words: int = 300, max_chars: int = 6000, timeout_s: float = 60.0
    ) -> None:
        self._max_words = max_words
        self._max_chars = max_chars
        self._timeout_s = timeout_s

    @property
    def name(self) -> str:
        return "screen.ocr"

    @property
    def description(self) -> str:
        return _OCR_DESCRIPTION

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"region": REGION_SCHEMA, "display": DISPLAY_SCHEMA},
            "additionalProperties": False,
        }

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        display = resolve_display(self.name, arguments.get("display"))
        region = parse_region(self.name, arguments.get("region"))
        frame = await asyncio.to_thread(grab, self.name, display, region)
        offset = frame.region or Region(0, 0, frame.screen_width, frame.screen_height)
        words = await recognise(
            self.name,
            frame.image,
            offset_x=offset.x,
            offset_y=offset.y,
            timeout_s=self._timeout_s,
        )
        heading = f"Text on {_where(frame)}"
        return ToolOutput(
            describe(words, heading=heading, max_chars=self._max_chars, max_words=self._max_words)
        )
