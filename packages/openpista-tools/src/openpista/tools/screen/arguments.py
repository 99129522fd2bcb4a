"""Reading the screen tools' arguments: the X display, a region, an image format, a width."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from openpista.core.errors import ToolError

ImageFormat = Literal["png", "jpeg"]

NO_DISPLAY = (
    "no X display: DISPLAY is not set, so this machine has no screen or openpista runs "
    'outside the desktop session; pass `display` (e.g. ":0") to name an X display'
)

# A display of this machine, `:number[.screen]` (or `unix:...`). The model may not name
# another host: that would have openpista open X connections to any address without asking.
# A user reaches a remote display (ssh's `localhost:10.0`) by setting DISPLAY.
_LOCAL_DISPLAY = re.compile(r"(?:unix)?:\d+(?:\.\d+)?")

_FORMATS: dict[str, ImageFormat] = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg"}


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle of the screen in pixels, from its top-left corner."""

    x: int
    y: int
    width: int
    height: int

    def describe(self) -> str:
        return f"x={self.x} y={self.y} {self.width}x{self.height}"


REGION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Only this rectangle of the screen, in screen pixels from the top-left.",
    "properties": {
        "x": {"type": "integer", "minimum": 0},
        "y": {"type": "integer", "minimum": 0},
        "width": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
    },
    "required": ["x", "y", "width", "height"],
    "additionalProperties": False,
}

DISPLAY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "description": (
        'A local X display, e.g. ":0" or ":99". Default: the DISPLAY openpista runs with.'
    ),
}


def resolve_display(tool: str, raw: object, environ: Mapping[str, str] | None = None) -> str:
    """The display to open: the argument when given, else $DISPLAY; an error when neither."""
    if raw is None or raw == "":
        display = (os.environ if environ is None else environ).get("DISPLAY", "")
        if not display.strip():
            raise ToolError(f"{tool}: {NO_DISPLAY}")
        return display
    if not isinstance(raw, str) or not _LOCAL_DISPLAY.fullmatch(raw):
        raise ToolError(
            f'{tool} `display` must name a local X display such as ":0" or ":99" (a remote '
            f"one is reached by setting DISPLAY for openpista), got {raw!r}"
        )
    return raw


MAX_PIXELS = 1_000_000
"""No screen coordinate or size is larger: a bigger number is a mistake, refused as such."""


def _whole_number(tool: str, key: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"{tool} `{key}` must be a whole number, got {value!r}")
    if abs(value) > MAX_PIXELS:
        raise ToolError(f"{tool} `{key}` must be at most {MAX_PIXELS:,}, got {value:.6g}")
    # Models often send 100.0 for 100: a whole float is the number they meant.
    if isinstance(value, float):
        if not value.is_integer():
            raise ToolError(f"{tool} `{key}` must be a whole number, got {value!r}")
        value = int(value)
    if value < minimum:
        raise ToolError(f"{tool} `{key}` must be at least {minimum}, got {value}")
    return value


def parse_region(tool: str, raw: object) -> Region | None:
    """The `region` argument as a Region, None when absent; checked against the screen later."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ToolError(
            f"{tool} `region` must be an object {{x, y, width, height}} in pixels, got {raw!r}"
        )
    fields: dict[str, Any] = raw  # pyright: ignore[reportUnknownVariableType]
    missing = [key for key in ("x", "y", "width", "height") if key not in fields]
    if missing:
        raise ToolError(f"{tool} `region` lacks {', '.join(missing)}: give x, y, width, height")
    return Region(
        x=_whole_number(tool, "region.x", fields["x"], minimum=0),
        y=_whole_number(tool, "region.y", fields["y"], minimum=0),
        width=_whole_number(tool, "region.width", fields["width"], minimum=1),
        height=_whole_number(tool, "region.height", fields["height"], minimum=1),
    )


def check_region_fits(tool: str, region: Region, display: str, width: int, height: int) -> None:
    """Refuse a region reaching past the screen, naming the screen's size so it can be fixed."""
    if region.x + region.width > width or region.y + region.height > height:
        raise ToolError(
            f"{tool}: region {region.describe()} lies outside the screen of display {display} "
            f"({width}x{height}); keep x + width <= {width} and y + height <= {height}"
        )


def parse_format(tool: str, raw: object) -> ImageFormat:
    if raw is None:
        return "png"
    image_format = _FORMATS.get(raw.lower()) if isinstance(raw, str) else None
    if image_format is None:
        raise ToolError(f'{tool} `format` must be "png" or "jpeg", got {raw!r}')
    return image_format


def parse_max_width(tool: str, raw: object) -> int | None:
    if raw is None:
        return None
    return _whole_number(tool, "max_width", raw, minimum=1)
