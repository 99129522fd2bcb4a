"""Grabbing the pixels of an X display, whole or a region, in this process.

The grab is what pyscreenshot's `mss` backend does with `childprocess=False` (an mss grab,
then `Image.frombytes(..., "BGRX")`), but with an mss connection opened per call for the
display asked for, so a call never depends on what an earlier call left behind.
pyscreenshot keeps one module-wide mss object, connected to whatever $DISPLAY was at its
first grab: it cannot reach another display, and once that X server restarts every later
grab fails until the process restarts (docs/decisions.md, 15). Blocking: call it from a
worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from openpista.core.errors import ToolError
from openpista.tools.screen.arguments import Region, check_region_fits

if TYPE_CHECKING:
    from PIL.Image import Image

_CONNECT_PREFIX = "Cannot connect to display: "


@dataclass(frozen=True, slots=True)
class Frame:
    """Grabbed pixels (RGB) and where they came from."""

    image: Image
    display: str
    screen_width: int
    screen_height: int
    region: Region | None


def grab(tool: str, display: str, region: Region | None) -> Frame:
    """The whole screen of `display`, or `region` of it; a ToolError saying why not."""
    # mss loads libxcb through ctypes when imported: only on a call that grabs.
    from mss import MSS
    from mss.exception import ScreenShotError
    from PIL import Image

    try:
        # XGetImage, not mss's default XShm: shared memory pays off only on a connection kept
        # open, while setting it up costs more per fresh connection (about 16 ms against 6 ms
        # a 1920x1080 grab) than it saves.
        screenshots = MSS(display=display, backend="xgetimage")
    except ScreenShotError as exc:
        reason = str(exc).removeprefix(_CONNECT_PREFIX)
        raise ToolError(
            f"{tool}: cannot open X display {display}: {reason}; is an X server running "
            "there, and may this user connect to it (XAUTHORITY, xhost)?"
        ) from exc
    with screenshots:
        try:
            # monitors[0] is the whole X screen (all monitors together), origin 0,0.
            screen = screenshots.monitors[0]
            width, height = screen["width"], screen["height"]
            if region is None:
                box = screen
            else:
                check_region_fits(tool, region, display, width, height)
                box = {
                    "left": region.x,
                    "top": region.y,
                    "width": region.width,
                    "height": region.height,
                }
            shot = screenshots.grab(box)
        except ScreenShotError as exc:
            raise ToolError(
                f"{tool}: grabbing the screen of display {display} failed: {exc}"
            ) from exc
    image = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")
    return Frame(image, display, width, height, region)
