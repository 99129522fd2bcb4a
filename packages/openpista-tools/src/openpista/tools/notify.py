"""`system.notify`: a desktop notification through the freedesktop Notifications D-Bus API.

It speaks D-Bus itself with jeepney (pure Python, imported only by a call), so it needs
neither libnotify's `notify-send` nor dbus-python's C build (docs/decisions.md, 15).
"""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpista.core.errors import ToolError
from openpista.core.tool import Tool, ToolContext, ToolOutput

if TYPE_CHECKING:
    from jeepney import Message
    from jeepney.io.asyncio import DBusRouter

    from openpista.core.config import Config

NOTIFICATIONS_NAME = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"
APP_NAME = "openpista"
URGENCIES = {"low": 0, "normal": 1, "critical": 2}
MAX_TITLE_CHARS = 200
MAX_BODY_CHARS = 2000
TIMEOUT_S = 10.0
"""For reaching the bus and for the server's answers: a hung server must not hang the turn."""

_NO_OWNER_ERRORS = frozenset(
    {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}
)

_DESCRIPTION = (
    "Show a desktop notification to the user on this machine (a pop-up from the desktop's "
    "notification server). Use it to tell the user something they should see even when "
    "they are not watching the chat. Returns the notification's id."
)


def session_bus_address(environ: Mapping[str, str] | None = None) -> str:
    """The session bus's address: $DBUS_SESSION_BUS_ADDRESS, else systemd's per-user socket.

    The fallback is where libdbus and sd-bus look too: a desktop started by systemd puts its
    bus at $XDG_RUNTIME_DIR/bus, and a program started without the variable still finds it.
    """
    env = os.environ if environ is None else environ
    address = env.get("DBUS_SESSION_BUS_ADDRESS", "").strip()
    if address:
        return address
    runtime_dir = env.get("XDG_RUNTIME_DIR", "")
    if runtime_dir and Path(runtime_dir, "bus").is_socket():
        return f"unix:path={Path(runtime_dir, 'bus')}"
    raise ToolError(
        "system.notify: no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set and there is "
        "no $XDG_RUNTIME_DIR/bus, so openpista runs outside a desktop session; run it inside "
        "one, or set DBUS_SESSION_BUS_ADDRESS"
    )


def _cut(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[: limit - 1] + "…", True


def _required_text(key: str, value: object, *, allow_empty: bool) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        wanted = "a string" if allow_empty else "a non-empty string"
        raise ToolError(f"system.notify `{key}` must be {wanted}, got {value!r}")
    return value


class SystemNotifyTool:
    """Sends org.freedesktop.Notifications.Notify on the session bus; returns the id."""

    requires_approval = True
    """It speaks to the user's desktop: under `ask` the user allows it first."""

    def __init__(self, *, timeout_s: float = TIMEOUT_S) -> None:
        self._timeout_s = timeout_s

    @property
    def name(self) -> str:
        return "system.notify"

    @property
    def description(self) -> str:
        return _DESCRIPTION

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "title": {
                    "type": "string",
                    "description": f"The headline, at most {MAX_TITLE_CHARS} characters.",
                },
                "body": {
                    "type": "string",
                    "description": f"The message, plain text, at most {MAX_BODY_CHARS} characters.",
                },
                "urgency": {
                    "type": "string",
                    "enum": list(URGENCIES),
                    "description": "low, normal (default) or critical (stays until dismissed).",
                },
            },
            "required": ["title", "body"],
            "additionalProperties": False,
        }

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        title, title_cut = _cut(
            _required_text("title", arguments.get("title"), allow_empty=False), MAX_TITLE_CHARS
        )
        body, body_cut = _cut(
            _required_text("body", arguments.get("body", ""), allow_empty=True), MAX_BODY_CHARS
        )
        urgency = arguments.get("urgency") or "normal"
        if not isinstance(urgency, str) or urgency not in URGENCIES:
            raise ToolError(
                f"system.notify `urgency` must be low, normal or critical, got {urgency!r}"
            )
        address = session_bus_address()
        notification_id = await self._send(address, title, body, URGENCIES[urgency])
        text = f"Notification {notification_id} shown on the desktop (urgency {urgency})"
        cuts = [
            f"{what} cut to {limit} characters"
            for what, limit, was_cut in (
                ("title", MAX_TITLE_CHARS, title_cut),
                ("body", MAX_BODY_CHARS, body_cut),
            )
            if was_cut
        ]
        return ToolOutput(text + (f"; {', '.join(cuts)}" if cuts else ""))

    async def _send(self, address: str, title: str, body: str, urgency: int) -> int:
        from jeepney.bus import get_connectable_addresses
        from jeepney.io.asyncio import DBusRouter, open_dbus_connection

        try:
            next(get_connectable_addresses(address))
        except (ValueError, RuntimeError) as exc:
            raise ToolError(
                f"system.notify: the session bus address {address} names no unix socket; "
                "system.notify reaches D-Bus over unix sockets only (unix:path=... or "
                "unix:abstract=...)"
            ) from exc
        try:
            connection = await asyncio.wait_for(open_dbus_connection(bus=address), self._timeout_s)
        except TimeoutError as exc:
            raise ToolError(
                f"system.notify: the D-Bus session bus at {address} did not answer within "
                f"{self._timeout_s:g} s"
            ) from exc
        except (OSError, EOFError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ToolError(
                f"system.notify: cannot reach the D-Bus session bus at {address}: "
                f"{reason or type(exc).__name__}; is the desktop session still running?"
            ) from exc
        try:
            async with DBusRouter(connection) as router:
                capabilities = await self._call(router, "GetCapabilities", "", ())
                if "body-markup" in capabilities[0]:
                    # This server reads the body as markup: keep the text as written.
                    body = html.escape(body, quote=False)
                hints = {"urgency": ("y", urgency)}
                reply = await self._call(
                    router,
                    "Notify",
                    "susssasa{sv}i",
                    (APP_NAME, 0, "", title, body, [], hints, -1),
                )
                return int(reply[0])
        finally:
            await connection.close()

    async def _call(
        self, router: DBusRouter, method: str, signature: str, body: tuple[Any, ...]
    ) -> tuple[Any, ...]:
        """One method of the notification server; its reply's values, or a ToolError."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        server = DBusAddress(NOTIFICATIONS_PATH, NOTIFICATIONS_NAME, NOTIFICATIONS_NAME)
        message = new_method_call(server, method, signature, body)
        try:
            reply: Message = await asyncio.wait_for(
                router.send_and_get_reply(message), self._timeout_s
            )
            return tuple(unwrap_msg(reply))
        except TimeoutError as exc:
            raise ToolError(
                f"system.notify: the notification server did not answer {method} within "
                f"{self._timeout_s:g} s"
            ) from exc
        except DBusErrorResponse as exc:
            if exc.name in _NO_OWNER_ERRORS:
                raise ToolError(
                    f"system.notify: no notification server: nothing on the session bus owns "
                    f"{NOTIFICATIONS_NAME}; start one (a desktop session, dunst, mako, "
                    "xfce4-notifyd)"
                ) from exc
            detail = exc.data[0] if exc.data else ""
            raise ToolError(
                f"system.notify: the notification server refused {method}: {exc.name} {detail}"
            ) from exc


def create_tools(config: Config) -> list[Tool]:
    """The `openpista.tools` entry point `notify`: system.notify."""
    return [SystemNotifyTool()]
