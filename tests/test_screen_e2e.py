"""A screenshot through `openpista run -e`: the picture is saved for the user under
OPENPISTA_HOME/media/ and named on stderr (and in --json), while the model gets a one-line
placeholder (or, for a model known to take images, one image part); a capture is never
asked about under `approval = "ask"`, while a notification is."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from openpista.providers.testing import FakeChatCompletionsServer
from openpista.tools.testing import XDisplay, first_line, stop, xvfb

from .conftest import Openpista

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None, reason="Debian's xvfb is not installed (.ci/run does)"
)

RED = (220, 30, 30)

# A window covering the whole screen in one colour; prints a line once it is drawn.
_PAINT = """
import tkinter
root = tkinter.Tk()
root.geometry(f"{root.winfo_screenwidth()}x{root.winfo_screenheight()}+0+0")
root.overrideredirect(True)
root.configure(background="#dc1e1e")
root.update()
root.after(300, lambda: print("drawn", flush=True))
root.mainloop()
"""


@pytest.fixture(scope="module")
def red_screen() -> Iterator[XDisplay]:
    with xvfb(1280, 720) as display:
        painter = subprocess.Popen(
            [sys.executable, "-c", _PAINT],
            env={**os.environ, "DISPLAY": display.name},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert painter.stdout is not None
            first_line(painter.stdout, "the red window", painter)
            yield display
        finally:
            stop(painter)


@pytest.fixture
def on_screen(openpista: Openpista, red_screen: XDisplay) -> Openpista:
    openpista.env["DISPLAY"] = red_screen.name
    return openpista


def saved_pictures(stderr: str) -> list[Path]:
    return [
        Path(line.removeprefix("picture saved: "))
        for line in stderr.splitlines()
        if line.startswith("picture saved: ")
    ]


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_the_user_gets_the_screenshot_and_the_model_a_placeholder(
    on_screen: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("screen_capture", {})])
    llm.queue_text("Your screen is all red.")

    result = on_screen.run("run", "-e", "What is on my screen?")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Your screen is all red.\n"
    (picture,) = saved_pictures(result.stderr)
    assert picture.is_relative_to(on_screen.home / "media")
    with Image.open(picture) as image:
        assert (image.format, image.size) == ("PNG", (1280, 720))
        assert image.convert("RGB").getpixel((640, 360)) == RED
    # The model read a line about the picture, never its data.
    (placeholder,) = tool_messages(llm.requests[1])
    assert placeholder.startswith("Screenshot of display")
    assert placeholder.endswith("; the user has it, it is not shown to you]")
    # Named by the tool and the file's digest; sized as the tool's own text sizes it.
    size = placeholder.split("\n")[0].rsplit(", ", 1)[1]
    assert f"[picture screen.capture-{picture.name[:8]}: PNG, {size};" in placeholder
    sent = json.dumps(llm.requests)
    assert ";base64," not in sent
    assert len(sent) < 40_000


def test_json_lists_the_saved_pictures(
    on_screen: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("screen_capture", {"format": "jpeg", "max_width": 640})])
    llm.queue_text("Red.")

    result = on_screen.run("run", "--json", "-e", "Look at my screen")

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    (path,) = payload["images"]
    assert [Path(path)] == saved_pictures(result.stderr)
    with Image.open(path) as image:
        assert (image.format, image.size) == ("JPEG", (640, 360))


def test_a_model_that_takes_images_gets_the_picture_itself(
    on_screen: Openpista, llm: FakeChatCompletionsServer
) -> None:
    on_screen.env["OPENPISTA_MODEL"] = "gpt-4o"
    llm.queue_tool_calls([("screen_capture", {})])
    llm.queue_text("Red.")

    result = on_screen.run("run", "-e", "What is on my screen?")

    assert result.returncode == 0, result.stderr
    (picture,) = saved_pictures(result.stderr)
    messages = llm.requests[1]["messages"]
    assert messages[-2]["content"].endswith(
        f"[picture screen.capture-{picture.name[:8]}: attached]"
    )
    image_part = messages[-1]["content"][1]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert len(url) <= 1_000_000 + len("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == picture.read_bytes()
    with Image.open(io.BytesIO(picture.read_bytes())) as image:
        assert image.size == (1280, 720)


def test_under_ask_a_capture_runs_unasked_and_a_notification_is_asked_about(
    on_screen: Openpista, llm: FakeChatCompletionsServer
) -> None:
    on_screen.write_config('[agent]\napproval = "ask"\n')
    llm.queue_tool_calls([("screen_capture", {}), ("system_notify", {"title": "t", "body": "b"})])
    llm.queue_text("Captured; the notification was not allowed.")

    # No terminal to ask on: a call that needs a question is denied, one that does not runs.
    result = on_screen.run("run", "--json", "-e", "Capture, then notify me", input="")

    assert result.returncode == 0, result.stderr
    calls = {call["name"]: call["ok"] for call in json.loads(result.stdout)["tool_calls"]}
    assert calls == {"screen.capture": True, "system.notify": False}
    capture_result, notify_result = tool_messages(llm.requests[1])
    assert capture_result.startswith("Screenshot of display")
    assert "no terminal" in notify_result
    assert "Allow screen.capture" not in result.stderr
    audit = on_screen.run("audit", "--json")
    decisions = {row["tool"]: row["decision"] for row in json.loads(audit.stdout)}
    assert decisions["screen.capture"] == "auto"
    assert decisions["system.notify"] != "auto"


def test_pictures_of_one_round_have_names_of_their_own(
    on_screen: Openpista, llm: FakeChatCompletionsServer
) -> None:
    on_screen.env["OPENPISTA_MODEL"] = "gpt-4o"
    llm.queue_tool_calls([("screen_capture", {"max_width": 320}), ("screen_capture", {})])
    llm.queue_text("Two pictures.")

    result = on_screen.run("run", "-e", "Capture twice")

    assert result.returncode == 0, result.stderr
    small, whole = (f"screen.capture-{path.name[:8]}" for path in saved_pictures(result.stderr))
    assert small != whole
    messages = llm.requests[1]["messages"]
    assert [m["content"].rsplit("\n", 1)[1] for m in messages if m["role"] == "tool"] == [
        f"[picture {small}: attached]",
        f"[picture {whole}: attached]",
    ]
    note = messages[-1]["content"][0]["text"]
    assert note == f"(the pictures from the tool results above: {small}, {whole})"


def test_the_chat_says_where_a_picture_was_saved(
    on_screen: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("screen_capture", {})])
    llm.queue_text("Red again.")

    result = on_screen.run(input="take a shot\n")

    assert result.returncode == 0, result.stderr
    assert "Red again." in result.stdout
    (picture,) = saved_pictures(result.stderr)
    assert picture.is_file()


def test_no_display_is_one_clear_line_naming_the_tool_once(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    openpista.env.pop("DISPLAY", None)
    llm.queue_tool_calls([("screen_capture", {})])
    llm.queue_text("There is no screen here.")

    result = openpista.run("run", "-e", "What is on my screen?")

    assert result.returncode == 0, result.stderr
    (failure,) = [line for line in result.stderr.splitlines() if "✗" in line]
    assert failure.startswith("  ✗ screen.capture: no X display")
    (told,) = tool_messages(llm.requests[1])
    assert told.startswith("screen.capture: no X display")
    assert "Traceback" not in result.stderr
