"""The screen tools' speed, printed as one JSON object.

    uv run python benchmarks/screen.py [--runs N]

Starts its own Xvfb (1920x1080x24, -noreset) showing a busy desktop-like picture (text in
three sizes, a colour gradient, a photo-like noise block), then times in this process:
  capture_png        screen.capture of the whole screen to PNG, as the tool runs it (grab,
                     encode, base64): min and median over the runs, and the file's size;
                     the target is 150 ms
  capture_jpeg, capture_png_max_width_1280   the same with the other options
  first_capture      the first screen.capture in a fresh process (imports mss and Pillow)
  grab               the bare grab (an mss connection per call, as the tool) without encoding
  png_encoding       PNG encoding of that frame: mss's writer (the tool's) at zlib levels 1,
                     3 and 6, and Pillow's at 1 and at its default 6
  pyscreenshot       pyscreenshot.grab(backend="mss") in a child process (its default) and
                     in process (childprocess=False), for decision 15; pyscreenshot is no
                     dependency: `uv run --with pyscreenshot python benchmarks/screen.py`
  ocr                screen.ocr of an 800x400 region and of the whole screen; and Tesseract on
                     that region with its default OpenMP threads instead of one
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from openpista.core.tool import ToolContext
from openpista.tools.screen import ScreenCaptureTool, ScreenOcrTool
from openpista.tools.screen.grab import grab

CONTEXT = ToolContext(session_id="bench", channel_id="bench")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
PNG_ENCODINGS = (("mss", 1), ("mss", 3), ("mss", 6), ("pillow", 1), ("pillow", 6))
OCR_REGION = {"x": 0, "y": 310, "width": 800, "height": 400}

SHOW_PICTURE = """
import sys, tkinter
root = tkinter.Tk()
root.overrideredirect(True)
root.geometry("1920x1080+0+0")
photo = tkinter.PhotoImage(file=sys.argv[1])
tkinter.Label(root, image=photo, borderwidth=0).pack()
root.update()
root.winfo_pointerxy()
print("ready", flush=True)
root.mainloop()
"""


def busy_desktop(path: Path) -> None:
    """A 1920x1080 picture about as hard to compress as a real desktop with windows open."""
    random.seed(7)
    picture = Image.new("RGB", (1920, 1080), "white")
    draw = ImageDraw.Draw(picture)
    for x in range(0, 1920, 2):
        draw.line([(x, 0), (x, 300)], fill=(x % 256, (x // 3) % 256, 180))
    words = ["File", "Edit", "View", "openpista", "screen", "Terminal", "Settings", "Save"]
    for size, top, bottom in ((13, 310, 700), (16, 700, 900), (24, 900, 1080)):
        font = ImageFont.truetype(FONT, size)
        for y in range(top, bottom - size, size + 6):
            line = " ".join(random.choice(words) for _ in range(120 // (size // 6)))
            draw.text((10, y), line, font=font, fill=(30, 30, 30))
    picture.paste(Image.effect_noise((560, 420), 60).convert("RGB"), (1340, 640))
    picture.save(path)


@contextmanager
def desktop() -> Iterator[str]:
    """An Xvfb showing the busy picture; yields its display name."""
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        [
            *("Xvfb", "-displayfd", str(write_end), "-noreset", "-nolisten", "tcp"),
            *("-screen", "0", "1920x1080x24"),
        ],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as numbers:
        display = f":{numbers.readline().strip()}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "desktop.png")
        busy_desktop(path)
        window = subprocess.Popen(
            [sys.executable, "-c", SHOW_PICTURE, str(path)],
            env={**os.environ, "DISPLAY": display},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert window.stdout is not None
        window.stdout.readline()
        try:
            yield display
        finally:
            window.terminate()
            window.wait()
            window.stdout.close()
            xvfb.terminate()
            xvfb.wait()


def stats(samples: list[float]) -> dict[str, float]:
    return {
        "min_ms": round(min(samples) * 1000, 1),
        "median_ms": round(statistics.median(samples) * 1000, 1),
    }


def timed(function: Callable[[], object], runs: int) -> dict[str, float]:
    function()  # warm-up
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return stats(samples)


async def timed_async(function: Callable[[], Awaitable[object]], runs: int) -> dict[str, float]:
    await function()
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        await function()
        samples.append(time.perf_counter() - start)
    return stats(samples)


def first_capture(display: str) -> float:
    """Seconds of the first screen.capture in a fresh process, imports included."""
    code = (
        "import asyncio, time\n"
        "from openpista.core.tool import ToolContext\n"
        "from openpista.tools.screen import ScreenCaptureTool\n"
        "start = time.perf_counter()\n"
        f"asyncio.run(ScreenCaptureTool().run({{'display': {display!r}}}, ToolContext('b', 'b')))\n"
        "print(time.perf_counter() - start)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(result.stdout)


def png_size_and_time(image: Image.Image, encoder: str, level: int, runs: int) -> dict[str, Any]:
    """Encoding `image` to PNG with mss's writer (as the tool does) or Pillow's."""
    from mss.tools import to_png

    def encode() -> int:
        if encoder == "mss":
            return len(to_png(image.tobytes(), image.size, level=level) or b"")
        buffer = io.BytesIO()
        image.save(buffer, "PNG", compress_level=level)
        return buffer.tell()

    return {**timed(encode, runs), "kb": round(encode() / 1024)}


def tesseract_default_threads(display: str, runs: int) -> dict[str, float]:
    """Tesseract on the OCR region with OpenMP's own thread count (what the tool avoids)."""
    from openpista.tools.screen.arguments import Region

    region = Region(**OCR_REGION)
    buffer = io.BytesIO()
    grab("bench", display, region).image.save(buffer, "PPM")
    env = {key: value for key, value in os.environ.items() if key != "OMP_THREAD_LIMIT"}
    argv = ["tesseract", "stdin", "stdout", "--dpi", "96", "tsv"]
    return timed(
        lambda: subprocess.run(argv, input=buffer.getvalue(), capture_output=True, env=env),
        runs,
    )


def pyscreenshot_grabs(runs: int) -> dict[str, Any]:
    """pyscreenshot's grab in a child process and in process, when it is installed."""
    try:
        import pyscreenshot  # pyright: ignore[reportMissingImports]
    except ImportError:
        return {
            "skipped": "pyscreenshot is not installed: "
            "uv run --with pyscreenshot python benchmarks/screen.py"
        }
    warnings.simplefilter("ignore", DeprecationWarning)  # pyscreenshot calls mss.mss()
    return {
        "child_process": timed(lambda: pyscreenshot.grab(backend="mss"), max(3, runs // 4)),
        "in_process": timed(lambda: pyscreenshot.grab(backend="mss", childprocess=False), runs),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    ocr_runs = max(3, runs // 4)
    with desktop() as display:
        capture = ScreenCaptureTool()
        ocr = ScreenOcrTool()
        frame = grab("bench", display, None)

        os.environ["DISPLAY"] = display
        report: dict[str, Any] = {
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            "load_average": os.getloadavg()[0],
            "runs": runs,
            "capture_png": await timed_async(
                lambda: capture.run({"display": display}, CONTEXT), runs
            ),
            "capture_jpeg": await timed_async(
                lambda: capture.run({"display": display, "format": "jpeg"}, CONTEXT), runs
            ),
            "capture_png_max_width_1280": await timed_async(
                lambda: capture.run({"display": display, "max_width": 1280}, CONTEXT), runs
            ),
            "first_capture_s": round(first_capture(display), 3),
            "grab": timed(lambda: grab("bench", display, None), runs),
            "png_encoding": {
                f"{encoder}_level_{level}": png_size_and_time(
                    frame.image, encoder, level, max(3, runs // 2)
                )
                for encoder, level in PNG_ENCODINGS
            },
            "pyscreenshot": pyscreenshot_grabs(runs),
            "ocr": {
                "region_800x400": await timed_async(
                    lambda: ocr.run({"display": display, "region": OCR_REGION}, CONTEXT),
                    ocr_runs,
                ),
                "whole_screen": await timed_async(
                    lambda: ocr.run({"display": display}, CONTEXT), ocr_runs
                ),
                "region_800x400_tesseract_default_threads": tesseract_default_threads(
                    display, ocr_runs
                ),
            },
        }
        for key, arguments in (
            ("capture_png", {}),
            ("capture_jpeg", {"format": "jpeg"}),
            ("capture_png_max_width_1280", {"max_width": 1280}),
        ):
            output = await capture.run({"display": display, **arguments}, CONTEXT)
            report[key]["kb"] = round(len(base64.b64decode(output.images[0].data_b64)) / 1024)
        words = (await ocr.run({"display": display, "region": OCR_REGION}, CONTEXT)).text
        report["ocr"]["region_800x400_words"] = int(
            words.splitlines()[0].rsplit(", ", 1)[1].split(" word")[0]
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
