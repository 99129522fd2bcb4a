"""Real X displays (Xvfb) and a real D-Bus session bus for the screen and notify tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openpista.tools.testing import XDisplay, first_line, stop, xvfb

SUPPORT = Path(__file__).parent / "support"


@dataclass(frozen=True)
class Scene:
    """What support/draw_scene.py drew on `display`, and where."""

    display: XDisplay
    red_block: tuple[int, int, int, int]
    words: str
    words_box: tuple[int, int, int, int]


@pytest.fixture(scope="session")
def scene() -> Iterator[Scene]:
    """A 1920x1080 Xvfb showing a known scene: white, a red block and large black words."""
    with xvfb(1920, 1080) as display:
        env = {**os.environ, "DISPLAY": display.name}
        process = subprocess.Popen(
            [sys.executable, str(SUPPORT / "draw_scene.py")],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            layout = json.loads(first_line(process.stdout, "the scene window", process))
            yield Scene(
                display,
                tuple(layout["red_block"]),
                layout["words"],
                tuple(layout["words_box"]),
            )
        finally:
            stop(process)


@pytest.fixture(scope="session")
def small_display() -> Iterator[XDisplay]:
    """A second, 640x480 Xvfb with nothing drawn on it."""
    with xvfb(640, 480) as display:
        yield display


@pytest.fixture
def display_without_server() -> str:
    """A display name no X server answers on."""
    for number in range(500, 600):
        if (
            not Path(f"/tmp/.X11-unix/X{number}").exists()
            and not Path(f"/tmp/.X{number}-lock").exists()
        ):
            return f":{number}"
    raise RuntimeError("every display from :500 to :599 is taken")


@dataclass(frozen=True)
class SessionBus:
    address: str
    runtime_dir: Path
    """Holds the bus socket as `bus`, as systemd's $XDG_RUNTIME_DIR does."""


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionBus]:
    """A private dbus-daemon session bus, set as DBUS_SESSION_BUS_ADDRESS for the test.

    Its own configuration: no service directories, so no installed notification daemon
    can be started on demand behind the test's back.
    """
    # Not under pytest's tmp_path: a unix socket path must stay under 108 bytes.
    runtime_dir = Path(tempfile.mkdtemp(prefix="opbus-"))
    config = runtime_dir / "session.conf"
    config.write_text(
        "<!DOCTYPE busconfig PUBLIC '-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN'\n"
        " 'http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd'>\n"
        "<busconfig><type>session</type>"
        f"<listen>unix:path={runtime_dir}/bus</listen><auth>EXTERNAL</auth>"
        "<policy context='default'><allow send_destination='*' eavesdrop='true'/>"
        "<allow eavesdrop='true'/><allow own='*'/></policy></busconfig>\n"
    )
    process = subprocess.Popen(
        ["dbus-daemon", "--config-file", str(config), "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        address = first_line(process.stdout, "dbus-daemon", process)
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield SessionBus(address, runtime_dir)
    finally:
        stop(process)
        shutil.rmtree(runtime_dir, ignore_errors=True)


@dataclass(frozen=True)
class NotificationServer:
    log: Path

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification the server received, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def start_notification_server(
    session_bus: SessionBus, tmp_path: Path
) -> Iterator[Callable[..., NotificationServer]]:
    """Starts support/notification_server.py on the test's bus; `markup=True` makes it
    advertise body markup, `silent=True` makes it never answer."""
    started: list[subprocess.Popen[str]] = []

    def start(*, markup: bool = False, silent: bool = False) -> NotificationServer:
        log = tmp_path / f"notifications-{len(started)}.jsonl"
        argv = [sys.executable, str(SUPPORT / "notification_server.py"), str(log)]
        process = subprocess.Popen(
            argv + (["--markup"] if markup else []) + (["--silent"] if silent else []),
            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": session_bus.address},
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        first_line(process.stdout, "the notification server", process)
        return NotificationServer(log)

    yield start
    for process in started:
        stop(process)
