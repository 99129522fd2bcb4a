"""system.notify over a real private dbus-daemon to a small notification server: what
arrives, and the errors without a bus or without a server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from openpista.core.config import Config
from openpista.core.errors import ToolError
from openpista.core.tool import ToolContext
from openpista.tools.notify import MAX_BODY_CHARS, MAX_TITLE_CHARS, SystemNotifyTool, create_tools

pytestmark = pytest.mark.skipif(
    shutil.which("dbus-daemon") is None,
    reason="dbus-daemon (Debian package dbus-daemon) is not installed",
)

CONTEXT = ToolContext(session_id="s1", channel_id="cli:local")


async def test_the_notification_arrives_with_title_body_and_urgency(
    start_notification_server: Any,
) -> None:
    server = start_notification_server()
    output = await SystemNotifyTool().run(
        {"title": "Build done", "body": "All 42 tests passed", "urgency": "critical"}, CONTEXT
    )
    assert output.is_error is False
    assert output.text == "Notification 1 shown on the desktop (urgency critical)"
    assert server.notifications() == [
        {
            "id": 1,
            "app_name": "openpista",
            "replaces_id": 0,
            "title": "Build done",
            "body": "All 42 tests passed",
            "urgency": 2,
            "expire_timeout": -1,
        }
    ]


async def test_urgency_defaults_to_normal_and_each_call_gets_its_id(
    start_notification_server: Any,
) -> None:
    server = start_notification_server()
    tool = SystemNotifyTool()
    first = await tool.run({"title": "one", "body": ""}, CONTEXT)
    second = await tool.run({"title": "two", "body": "b", "urgency": "low"}, CONTEXT)
    assert first.text == "Notification 1 shown on the desktop (urgency normal)"
    assert second.text == "Notification 2 shown on the desktop (urgency low)"
    received = server.notifications()
    assert [(n["title"], n["urgency"]) for n in received] == [("one", 1), ("two", 0)]


async def test_a_server_reading_markup_gets_the_body_escaped(
    start_notification_server: Any,
) -> None:
    server = start_notification_server(markup=True)
    await SystemNotifyTool().run({"title": "a < b", "body": "if a < b & c > d"}, CONTEXT)
    [received] = server.notifications()
    assert received["body"] == "if a &lt; b &amp; c &gt; d"
    assert received["title"] == "a < b"  # the summary is never markup


async def test_a_plain_server_gets_the_body_as_written(start_notification_server: Any) -> None:
    server = start_notification_server(markup=False)
    await SystemNotifyTool().run({"title": "t", "body": "if a < b & c > d"}, CONTEXT)
    assert server.notifications()[0]["body"] == "if a < b & c > d"


async def test_long_title_and_body_are_cut_and_the_result_says_so(
    start_notification_server: Any,
) -> None:
    server = start_notification_server()
    output = await SystemNotifyTool().run(
        {"title": "T" * (MAX_TITLE_CHARS + 50), "body": "B" * (MAX_BODY_CHARS * 3)}, CONTEXT
    )
    [received] = server.notifications()
    assert received["title"] == "T" * (MAX_TITLE_CHARS - 1) + "…"
    assert received["body"] == "B" * (MAX_BODY_CHARS - 1) + "…"
    assert output.text == (
        "Notification 1 shown on the desktop (urgency normal); "
        f"title cut to {MAX_TITLE_CHARS} characters, body cut to {MAX_BODY_CHARS} characters"
    )


async def test_the_systemd_user_bus_is_found_without_the_variable(
    session_bus: Any, start_notification_server: Any, monkeypatch: Any
) -> None:
    server = start_notification_server()
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(session_bus.runtime_dir))
    await SystemNotifyTool().run({"title": "found", "body": ""}, CONTEXT)
    assert [n["title"] for n in server.notifications()] == ["found"]


async def test_no_session_bus_is_a_clear_error(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # holds no `bus`
    with pytest.raises(ToolError) as caught:
        await SystemNotifyTool().run({"title": "t", "body": "b"}, CONTEXT)
    assert str(caught.value) == (
        "system.notify: no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set and there "
        "is no $XDG_RUNTIME_DIR/bus, so openpista runs outside a desktop session; run it "
        "inside one, or set DBUS_SESSION_BUS_ADDRESS"
    )


async def test_an_unreachable_bus_is_a_clear_error(monkeypatch: Any, tmp_path: Path) -> None:
    address = f"unix:path={tmp_path}/gone"
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    with pytest.raises(ToolError) as caught:
        await SystemNotifyTool().run({"title": "t", "body": "b"}, CONTEXT)
    assert str(caught.value) == (
        f"system.notify: cannot reach the D-Bus session bus at {address}: No such file or "
        "directory; is the desktop session still running?"
    )


@pytest.mark.parametrize("address", ["tcp:host=localhost,port=1", "disabled:", "garbage"])
async def test_a_bus_address_without_a_unix_socket_is_a_clear_error(
    address: str, monkeypatch: Any
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    with pytest.raises(ToolError) as caught:
        await SystemNotifyTool().run({"title": "t", "body": "b"}, CONTEXT)
    assert str(caught.value) == (
        f"system.notify: the session bus address {address} names no unix socket; "
        "system.notify reaches D-Bus over unix sockets only (unix:path=... or "
        "unix:abstract=...)"
    )


async def test_no_notification_server_is_a_clear_error(session_bus: Any) -> None:
    with pytest.raises(ToolError) as caught:
        await SystemNotifyTool().run({"title": "t", "body": "b"}, CONTEXT)
    assert str(caught.value) == (
        "system.notify: no notification server: nothing on the session bus owns "
        "org.freedesktop.Notifications; start one (a desktop session, dunst, mako, "
        "xfce4-notifyd)"
    )


async def test_a_server_that_never_answers_is_a_clear_error(
    start_notification_server: Any,
) -> None:
    start_notification_server(silent=True)
    with pytest.raises(ToolError) as caught:
        await SystemNotifyTool(timeout_s=0.5).run({"title": "t", "body": "b"}, CONTEXT)
    assert str(caught.value) == (
        "system.notify: the notification server did not answer GetCapabilities within 0.5 s"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"body": "b"}, "system.notify `title` must be a non-empty string, got None"),
        ({"title": "  ", "body": "b"}, "system.notify `title` must be a non-empty string"),
        ({"title": "t", "body": 5}, "system.notify `body` must be a string, got 5"),
        (
            {"title": "t", "body": "b", "urgency": "urgent"},
            "system.notify `urgency` must be low, normal or critical, got 'urgent'",
        ),
        (
            {"title": "t", "body": "b", "urgency": ["low"]},
            "system.notify `urgency` must be low, normal or critical, got ['low']",
        ),
    ],
)
async def test_bad_arguments_are_named_before_any_bus_is_touched(
    arguments: dict[str, Any], message: str, monkeypatch: Any
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(ToolError) as caught:
        await SystemNotifyTool().run(arguments, CONTEXT)
    assert str(caught.value).startswith(message)


def test_system_notify_follows_the_approval_policy() -> None:
    [tool] = create_tools(Config())
    assert tool.name == "system.notify"
    assert getattr(tool, "requires_approval", None) is True
