"""screen.capture against a real Xvfb showing a known scene: pixels, region, downscale, JPEG,
display selection, and the errors a user meets."""

from __future__ import annotations

import base64
import io
import shutil
from typing import Any

import pytest
from PIL import Image as PILImage

from openpista.core.config import Config
from openpista.core.errors import ToolError
from openpista.core.models import Image
from openpista.core.tool import ToolContext
from openpista.tools.screen import ScreenCaptureTool, ScreenOcrTool, create_tools

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None, reason="Xvfb (Debian package xvfb) is not installed"
)

CONTEXT = ToolContext(session_id="s1", channel_id="cli:local")
RED = (255, 0, 0)
WHITE = (255, 255, 255)


def _decode(image: Image) -> PILImage.Image:
    picture = PILImage.open(io.BytesIO(base64.b64decode(image.data_b64)))
    picture.load()
    return picture


async def _capture(arguments: dict[str, Any]) -> tuple[str, Image, PILImage.Image]:
    output = await ScreenCaptureTool().run(arguments, CONTEXT)
    assert output.is_error is False
    assert len(output.images) == 1
    image = output.images[0]
    return output.text, image, _decode(image)


async def test_whole_screen_holds_the_drawn_scene(scene: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("DISPLAY", scene.display.name)
    text, image, picture = await _capture({})
    assert picture.format == "PNG"
    assert picture.size == (1920, 1080)
    assert (image.mime_type, image.width, image.height) == ("image/png", 1920, 1080)
    left, top, right, bottom = scene.red_block
    assert picture.convert("RGB").getpixel(((left + right) // 2, (top + bottom) // 2)) == RED
    assert picture.convert("RGB").getpixel((10, 10)) == WHITE
    kb = round(len(base64.b64decode(image.data_b64)) / 1024)
    assert text == f"Screenshot of display {scene.display.name}, 1920x1080 PNG, {kb} KB"


async def test_the_text_never_carries_the_picture_data(scene: Any) -> None:
    text, image, _ = await _capture({"display": scene.display.name})
    assert image.data_b64[:40] not in text
    assert len(text) < 200


async def test_display_argument_wins_over_the_DISPLAY_variable(
    scene: Any, small_display: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("DISPLAY", small_display.name)
    _, _, from_variable = await _capture({})
    assert from_variable.size == (640, 480)
    text, _, from_argument = await _capture({"display": scene.display.name})
    assert from_argument.size == (1920, 1080)
    assert text.startswith(f"Screenshot of display {scene.display.name},")
    # And back: no connection to the first display lingers for later calls.
    _, _, again = await _capture({})
    assert again.size == (640, 480)


async def test_region_holds_exactly_that_rectangle(scene: Any) -> None:
    left, top, _, _ = scene.red_block
    # 100x100 straddling the red block's top-left corner: white above and left of it.
    region = {"x": left - 50, "y": top - 50, "width": 100, "height": 100}
    text, image, picture = await _capture({"display": scene.display.name, "region": region})
    assert picture.size == (100, 100)
    assert (image.width, image.height) == (100, 100)
    rgb = picture.convert("RGB")
    assert rgb.getpixel((49, 49)) == WHITE
    assert rgb.getpixel((50, 50)) == RED
    assert rgb.getpixel((99, 99)) == RED
    assert rgb.getpixel((99, 10)) == WHITE
    assert text.startswith(
        f"Screenshot of display {scene.display.name}, region x=50 y=50 100x100, 100x100 PNG"
    )
    assert "(50 + px, 50 + py)" in text


async def test_max_width_downscales_keeping_the_aspect_ratio(scene: Any) -> None:
    text, image, picture = await _capture({"display": scene.display.name, "max_width": 960})
    assert picture.size == (960, 540)
    assert (image.width, image.height) == (960, 540)
    left, top, right, bottom = scene.red_block
    assert picture.convert("RGB").getpixel(((left + right) // 4, (top + bottom) // 4)) == RED
    assert "960x540 PNG" in text
    assert "downscaled from 1920x1080" in text
    assert "(px * 2, py * 2)" in text


async def test_max_width_never_enlarges(scene: Any) -> None:
    region = {"x": 0, "y": 0, "width": 300, "height": 200}
    text, _, picture = await _capture(
        {"display": scene.display.name, "region": region, "max_width": 1000}
    )
    assert picture.size == (300, 200)
    assert "downscaled" not in text


async def test_jpeg_format(scene: Any) -> None:
    text, image, picture = await _capture({"display": scene.display.name, "format": "jpeg"})
    assert picture.format == "JPEG"
    assert image.mime_type == "image/jpeg"
    assert "1920x1080 JPEG" in text
    left, top, right, bottom = scene.red_block
    pixel = picture.convert("RGB").getpixel(((left + right) // 2, (top + bottom) // 2))
    assert isinstance(pixel, tuple)
    red, green, blue = pixel
    assert red > 240 and green < 15 and blue < 15


async def test_no_display_anywhere_is_a_clear_error(monkeypatch: Any) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(ToolError) as caught:
        await ScreenCaptureTool().run({}, CONTEXT)
    assert str(caught.value) == (
        "screen.capture: no X display: DISPLAY is not set, so this machine has no screen or "
        'openpista runs outside the desktop session; pass `display` (e.g. ":0") to name an '
        "X display"
    )


async def test_a_display_without_a_server_is_a_clear_error(display_without_server: str) -> None:
    with pytest.raises(ToolError) as caught:
        await ScreenCaptureTool().run({"display": display_without_server}, CONTEXT)
    message = str(caught.value)
    assert message.startswith(f"screen.capture: cannot open X display {display_without_server}: ")
    assert "is an X server running there" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ({"x": 1900, "y": 0, "width": 100, "height": 10}, "region x=1900 y=0 100x10"),
        ({"x": 0, "y": 1000, "width": 10, "height": 81}, "region x=0 y=1000 10x81"),
    ],
)
async def test_a_region_past_the_screen_is_refused(
    scene: Any, region: dict[str, int], expected: str
) -> None:
    with pytest.raises(ToolError) as caught:
        await ScreenCaptureTool().run({"display": scene.display.name, "region": region}, CONTEXT)
    assert str(caught.value) == (
        f"screen.capture: {expected} lies outside the screen of display "
        f"{scene.display.name} (1920x1080); keep x + width <= 1920 and y + height <= 1080"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"format": "gif"}, 'screen.capture `format` must be "png" or "jpeg", got \'gif\''),
        ({"max_width": 0}, "screen.capture `max_width` must be at least 1, got 0"),
        ({"max_width": "wide"}, "screen.capture `max_width` must be a whole number, got 'wide'"),
        ({"max_width": 1.5}, "screen.capture `max_width` must be a whole number, got 1.5"),
        (
            {"region": {"x": 1e300, "y": 0, "width": 5, "height": 5}},
            "screen.capture `region.x` must be at most 1,000,000, got 1e+300",
        ),
        ({"region": [0, 0, 10, 10]}, "screen.capture `region` must be an object"),
        ({"region": {"x": 0, "y": 0}}, "screen.capture `region` lacks width, height"),
        (
            {"region": {"x": -1, "y": 0, "width": 5, "height": 5}},
            "screen.capture `region.x` must be at least 0, got -1",
        ),
        ({"display": "99"}, "screen.capture `display` must name a local X display such as"),
        ({"display": "example.com:0"}, "screen.capture `display` must name a local X display"),
    ],
)
async def test_bad_arguments_are_named(scene: Any, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError) as caught:
        await ScreenCaptureTool().run({"display": scene.display.name, **arguments}, CONTEXT)
    assert str(caught.value).startswith(message)


async def test_whole_float_coordinates_are_taken(scene: Any) -> None:
    region = {"x": 100.0, "y": 100.0, "width": 10.0, "height": 10.0}
    _, _, picture = await _capture({"display": scene.display.name, "region": region})
    assert picture.size == (10, 10)


async def test_unix_prefixed_and_screen_numbered_names_are_local_displays(scene: Any) -> None:
    for name in (f"unix{scene.display.name}", f"{scene.display.name}.0"):
        text, _, picture = await _capture({"display": name})
        assert picture.size == (1920, 1080)
        assert text.startswith(f"Screenshot of display {name},")


def test_the_screen_tools_are_registered_read_only() -> None:
    tools = create_tools(Config())
    assert [tool.name for tool in tools] == ["screen.capture", "screen.ocr"]
    assert all(getattr(tool, "requires_approval", True) is False for tool in tools)
    assert isinstance(tools[0], ScreenCaptureTool)
    assert isinstance(tools[1], ScreenOcrTool)


async def test_a_tiny_picture_maps_each_axis_back_on_its_own(scene: Any) -> None:
    text, _, picture = await _capture({"display": scene.display.name, "max_width": 1})
    assert picture.size == (1, 1)
    assert text.endswith(
        "(downscaled from 1920x1080: a point (px, py) in it is at (px * 1920, py * 1080) "
        "on the screen)"
    )
