"""A minimal desktop notification server for tests: owns org.freedesktop.Notifications on the
session bus named by DBUS_SESSION_BUS_ADDRESS and writes each notification it gets as a JSON
line to the file given as argv[1]. Prints "ready" once it owns the name.

`--markup` makes it advertise the body-markup capability, as GNOME Shell and dunst do;
`--silent` makes it a hung server that owns the name and never answers.
"""

from __future__ import annotations

import json
import sys

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"
REPLY_IS_PRIMARY_OWNER = 1


def main() -> None:
    log_path = sys.argv[1]
    capabilities = ["body", "body-markup"] if "--markup" in sys.argv else ["body"]
    connection = open_dbus_connection(bus="SESSION")
    reply = connection.send_and_get_reply(message_bus.RequestName(NAME, 4))  # DO_NOT_QUEUE
    if reply.body[0] != REPLY_IS_PRIMARY_OWNER:
        sys.exit(f"could not own {NAME}: {reply.body}")
    print("ready", flush=True)
    next_id = 1
    while True:
        message = connection.receive()
        if message.header.message_type != MessageType.method_call or "--silent" in sys.argv:
            continue
        member = message.header.fields.get(HeaderFields.member)
        if member == "GetCapabilities":
            connection.send(new_method_return(message, "as", (capabilities,)))
        elif member == "GetServerInformation":
            info = ("test-notifications", "openpista", "1.0", "1.2")
            connection.send(new_method_return(message, "ssss", info))
        elif member == "Notify":
            app, replaces, _icon, title, body, _actions, hints, timeout = message.body
            record = {
                "id": next_id,
                "app_name": app,
                "replaces_id": replaces,
                "title": title,
                "body": body,
                "urgency": hints["urgency"][1] if "urgency" in hints else None,
                "expire_timeout": timeout,
            }
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            connection.send(new_method_return(message, "u", (next_id,)))
            next_id += 1
        else:
            error = "org.freedesktop.DBus.Error.UnknownMethod"
            connection.send(new_error(message, error, "s", (f"no method {member}",)))


if __name__ == "__main__":
    main()
