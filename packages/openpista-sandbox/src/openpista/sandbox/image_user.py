"""The numeric `uid:gid` a task container runs as: the image's own user, never root.

An image's USER may be a name (`sandbox`), a name with a group (`sandbox:staff`) or numbers
(`1000`, `1000:1000`); a name could stand for uid 0 (`admin:x:0:0:...` in the image's
/etc/passwd) and a group for gid 0. So the user is resolved here against the image's own
/etc/passwd and /etc/group, and the engine always gets numbers: a user that is root or that
cannot be resolved becomes 65534 (nobody), and so does a group. With a numeric `uid:gid` the
engine adds no supplementary groups either.
"""

from __future__ import annotations

NOBODY_ID = 65534
NOBODY = f"{NOBODY_ID}:{NOBODY_ID}"
_MAX_ID = (1 << 31) - 1


def needs_accounts(user: str) -> bool:
    """Whether resolving `user` needs the image's /etc/passwd and /etc/group: a name, or a
    uid without its group (whose primary group is in /etc/passwd)."""
    name, _, group = user.partition(":")
    if not name.strip():
        return False
    return _number(name) is None or _number(group) is None


def resolve_user(user: str, passwd: str = "", group: str = "") -> str:
    """`uid:gid` for the image USER `user`, given the image's /etc/passwd and /etc/group text;
    uid and gid are never 0 (see module)."""
    name, has_group, group_name = (part.strip() for part in user.partition(":"))
    if not name:
        return NOBODY
    accounts = _entries(passwd)
    uid = _number(name)
    entry = next(
        (
            fields
            for fields in accounts
            if (fields[2] == name if uid is not None else fields[0] == name)
        ),
        None,
    )
    if uid is None and entry is not None:
        uid = _number(entry[2])
    if has_group and group_name:
        gid = _number(group_name)
        if gid is None:
            gid = next(
                (_number(fields[2]) for fields in _entries(group) if fields[0] == group_name),
                None,
            )
    else:
        gid = _number(entry[3]) if entry is not None else None
    if not uid:  # unknown, or root
        return NOBODY
    return f"{uid}:{gid or NOBODY_ID}"


def _number(text: str) -> int | None:
    """A valid numeric id, or None."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


def _entries(text: str) -> list[list[str]]:
    """The colon-separated lines of /etc/passwd or /etc/group with at least 4 fields."""
    lines = (line.split(":") for line in text.splitlines() if not line.startswith("#"))
    return [fields for fields in lines if len(fields) >= 4]
