"""Reading text off grabbed pixels with Tesseract, word by word, in screen coordinates.

Tesseract runs as a program (`tesseract stdin stdout tsv`), fed the pixels as PPM (no
compression to spend time on), so no Python binding is needed: pytesseract would only write
a temporary file and run the same program.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openpista.core.errors import ToolError
from openpista.core.process import run_process
from openpista.core.secrets import scrubbed_environment

if TYPE_CHECKING:
    from PIL.Image import Image

TESSERACT_PACKAGE = "tesseract-ocr"
"""The Debian package that provides the `tesseract` program and its English data."""

_WORD_LEVEL = "5"
_TSV_COLUMNS = 12


@dataclass(frozen=True, slots=True)
class Word:
    """A recognised word and its box on the screen, in pixels."""

    text: str
    x: int
    y: int
    width: int
    height: int
    confidence: int
    """Tesseract's confidence, 0 to 100."""
    line: tuple[int, int, int]
    """(block, paragraph, line): words sharing it stand on one line of text."""


async def recognise(
    tool: str, image: Image, *, offset_x: int, offset_y: int, timeout_s: float
) -> list[Word]:
    """The words Tesseract reads in `image`, their boxes moved by the offset (the region's)."""
    program = shutil.which("tesseract")
    if program is None:
        raise ToolError(
            f"{tool} needs Tesseract, which is not installed: install Debian's "
            f"{TESSERACT_PACKAGE} package (apt install {TESSERACT_PACKAGE})"
        )
    pixels = await asyncio.to_thread(_as_ppm, image)
    # Tesseract's OpenMP threads make it several times slower on a machine with few cores
    # busy with other work; one thread is never much slower (docs/performance.md).
    env = scrubbed_environment() | {"OMP_THREAD_LIMIT": "1"}
    argv = [program, "stdin", "stdout", "--dpi", "96", "tsv"]
    try:
        result = await run_process(argv, timeout_s=timeout_s, stdin=pixels, env=env)
    except OSError as exc:
        raise ToolError(f"{tool}: could not start Tesseract ({program}): {exc}") from exc
    if result.timed_out:
        raise ToolError(
            f"{tool}: Tesseract did not finish within {timeout_s:g} s; OCR a smaller region"
        )
    if result.exit_code != 0:
        raise ToolError(f"{tool}: Tesseract failed: {_tesseract_complaint(result.stderr)}")
    return parse_tsv(result.stdout, offset_x=offset_x, offset_y=offset_y)


def _as_ppm(image: Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PPM")
    return buffer.getvalue()


def _tesseract_complaint(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if any("traineddata" in line for line in lines):
        return "its English language data is missing; install Debian's tesseract-ocr-eng package"
    return lines[0] if lines else "it exited with an error and said nothing"


def parse_tsv(tsv: str, *, offset_x: int = 0, offset_y: int = 0) -> list[Word]:
    """The words of Tesseract's TSV output (the rows of level 5 holding text), in order."""
    words: list[Word] = []
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) != _TSV_COLUMNS or cells[0] != _WORD_LEVEL or not cells[11].strip():
            continue
        block, paragraph, line, _, left, top, width, height = (int(c) for c in cells[2:10])
        words.append(
            Word(
                text=cells[11].strip(),
                x=left + offset_x,
                y=top + offset_y,
                width=width,
                height=height,
                confidence=max(0, round(float(cells[10]))),
                line=(block, paragraph, line),
            )
        )
    return words


def text_lines(words: list[Word]) -> list[str]:
    """The recognised text, one string per line as Tesseract grouped the words."""
    lines: list[str] = []
    current: tuple[int, int, int] | None = None
    for word in words:
        if word.line == current:
            lines[-1] += f" {word.text}"
        else:
            lines.append(word.text)
            current = word.line
    return lines


def describe(words: list[Word], *, heading: str, max_chars: int, max_words: int) -> str:
    """What the LLM reads: the text, then each word's box, both cut with a visible marker."""
    if not words:
        return f"{heading}: no text found."
    text = "\n".join(text_lines(words))
    if len(text) > max_chars:
        cut = len(text) - max_chars
        text = f"{text[:max_chars]}\n[... {cut} more characters not shown: OCR a smaller region]"
    boxes: list[str] = []
    size = 0
    for word in words:
        line = f"{word.x} {word.y} {word.width} {word.height} {word.confidence} {word.text}"
        if len(boxes) == max_words or size + len(line) > max_chars:
            break
        boxes.append(line)
        size += len(line) + 1
    if len(boxes) < len(words):
        boxes.append(
            f"[... {len(words) - len(boxes)} more words not shown: "
            "OCR a smaller region to see their boxes]"
        )
    count = f"{len(words)} word" + ("" if len(words) == 1 else "s")
    return (
        f"{heading}, {count}:\n{text}\n\n"
        "Words (x y width height in screen pixels, confidence %, word; "
        "click at x + width/2, y + height/2):\n" + "\n".join(boxes)
    )
