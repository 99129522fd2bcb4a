"""screen.ocr against a real Xvfb and Debian's Tesseract: the words drawn on screen come back,
with boxes where they were drawn, in screen coordinates whatever the region."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from openpista.core.errors import ToolError
from openpista.core.tool import ToolContext
from openpista.tools.screen import ScreenOcrTool

pytestmark = [
    pytest.mark.skipif(
        shutil.which("Xvfb") is None, reason="Xvfb (Debian package xvfb) is not installed"
    ),
    pytest.mark.skipif(
        shutil.which("tesseract") is None,
        reason="tesseract (Debian package tesseract-ocr) is not installed",
    ),
]

CONTEXT = ToolContext(session_id="s1", channel_id="cli:local")
WORD_LINE = re.compile(r"^(\d+) (\d+) (\d+) (\d+) (\d+) (\S+)$", re.MULTILINE)


def _boxes(text: str) -> dict[str, tuple[int, int, int, int]]:
    """Each word's box from the tool's word list: {word: (x, y, width, height)}."""
    return {m[6]: (int(m[1]), int(m[2]), int(m[3]), int(m[4])) for m in WORD_LINE.finditer(text)}


def _inside(box: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    """`box` (x, y, width, height) lies within `outer` (left, top, right, bottom)."""
    x, y, width, height = box
    left, top, right, bottom = outer
    return left <= x and top <= y and x + width <= right and y + height <= bottom


async def test_reads_the_words_on_screen_with_their_boxes(scene: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("DISPLAY", scene.display.name)
    output = await ScreenOcrTool().run({}, CONTEXT)
    assert output.is_error is False
    assert output.text.startswith(f"Text on display {scene.display.name}, 2 words:\n")
    assert f"\n{scene.words}\n" in output.text
    boxes = _boxes(output.text)
    assert set(boxes) == set(scene.words.split())
    first, second = (boxes[word] for word in scene.words.split())
    assert _inside(first, scene.words_box)
    assert _inside(second, scene.words_box)
    assert first[0] + first[2] < second[0]  # left to right, as drawn


async def test_a_region_reports_boxes_in_screen_coordinates(scene: Any) -> None:
    left, top, right, bottom = scene.words_box
    region = {
        "x": left - 37,
        "y": top - 23,
        "width": right - left + 80,
        "height": bottom - top + 50,
    }
    output = await ScreenOcrTool().run({"display": scene.display.name, "region": region}, CONTEXT)
    assert output.text.startswith(
        f"Text on display {scene.display.name}, region x={left - 37} y={top - 23} "
    )
    boxes = _boxes(output.text)
    assert set(boxes) == set(scene.words.split())
    assert all(_inside(box, scene.words_box) for box in boxes.values())


async def test_a_region_without_text_says_so(scene: Any) -> None:
    left, top, right, bottom = scene.red_block
    region = {"x": left, "y": top, "width": right - left, "height": bottom - top}
    output = await ScreenOcrTool().run({"display": scene.display.name, "region": region}, CONTEXT)
    assert output.is_error is False
    assert output.text == (
        f"Text on display {scene.display.name}, region x={left} y={top} "
        f"{right - left}x{bottom - top}: no text found."
    )


async def test_the_word_list_is_cut_with_a_marker(scene: Any) -> None:
    output = await ScreenOcrTool(max_words=1).run({"display": scene.display.name}, CONTEXT)
    assert len(_boxes(output.text)) == 1
    assert output.text.endswith(
        "\n[... 1 more words not shown: OCR a smaller region to see their boxes]"
    )


async def test_the_text_is_cut_with_a_marker(scene: Any) -> None:
    output = await ScreenOcrTool(max_chars=9).run({"display": scene.display.name}, CONTEXT)
    first_word = scene.words.split()[0]
    cut = len(scene.words) - 9
    assert f"\n{first_word}\n[... {cut} more characters not shown: OCR a smaller region]\n" in (
        output.text
    )


async def test_without_tesseract_the_error_names_the_package(
    scene: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no tesseract on PATH
    with pytest.raises(ToolError) as caught:
        await ScreenOcrTool().run({"display": scene.display.name}, CONTEXT)
    assert str(caught.value) == (
        "screen.ocr needs Tesseract, which is not installed: install Debian's tesseract-ocr "
        "package (apt install tesseract-ocr)"
    )


async def test_without_a_display_the_error_says_why(monkeypatch: Any) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(ToolError) as caught:
        await ScreenOcrTool().run({}, CONTEXT)
    assert str(caught.value).startswith("screen.ocr: no X display: DISPLAY is not set")


async def test_a_region_past_the_screen_is_refused(scene: Any) -> None:
    region = {"x": 1800, "y": 0, "width": 200, "height": 50}
    with pytest.raises(ToolError) as caught:
        await ScreenOcrTool().run({"display": scene.display.name, "region": region}, CONTEXT)
    assert "lies outside the screen" in str(caught.value)
