"""Where the conversation database lives: a configured path or URL turned into a SQLAlchemy URL.

A plain path (absolute, relative, `~`-prefixed) or a `sqlite:///` URL means a SQLite file
opened through aiosqlite; anything else with `://` is taken as an SQLAlchemy async URL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openpista.core.errors import OpenpistaError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

SQLITE_DRIVER = "sqlite+aiosqlite"
MEMORY_DATABASE = ":memory:"

# Both spellings mean "SQLite"; we always open it through the async driver.
_SQLITE_DRIVERNAMES = frozenset({"sqlite", SQLITE_DRIVER})
_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")

WHAT_TO_DO = (
    "set [database] url in config.toml (or OPENPISTA_DATABASE_URL) to a file path such as "
    "~/.openpista/memory.db or an async URL such as postgresql+asyncpg://user:password@host/db"
)


@dataclass(frozen=True, slots=True)
class DatabaseLocation:
    """A database to open: its URL, how to name it in messages, and its file when SQLite."""

    url: URL
    display: str
    """Safe to print: the SQLite file path, or the URL with its password masked."""
    sqlite_file: Path | None
    """The database file for a file-backed SQLite database; None otherwise."""
    secret: str | None = None
    """The URL's password, to scrub from driver messages before they are shown."""

    def scrub(self, text: str) -> str:
        """`text` with the password (if any) replaced by `***`, on one line."""
        if self.secret:
            text = text.replace(self.secret, "***")
        return " ".join(text.split())


def mask_password(text: str) -> str:
    """A URL string with any `user:password@` password replaced by `***`."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


def resolve_location(configured: str) -> DatabaseLocation:
    """Turn the configured `[database] url` into a DatabaseLocation; OpenpistaError if invalid."""
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    text = configured.strip()
    if not text:
        raise OpenpistaError(f"the database URL is empty; {WHAT_TO_DO}")
    if text == MEMORY_DATABASE:
        return DatabaseLocation(URL.create(SQLITE_DRIVER, database=MEMORY_DATABASE), text, None)
    if "://" not in text:
        return _sqlite_file(Path(text), URL.create(SQLITE_DRIVER))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise OpenpistaError(
            f"cannot open the conversation database {mask_password(text)}: not a valid database "
            f"URL ({exc}); {WHAT_TO_DO}"
        ) from exc
    if url.drivername in _SQLITE_DRIVERNAMES:
        url = url.set(drivername=SQLITE_DRIVER)
        database = url.database or MEMORY_DATABASE
        if database == MEMORY_DATABASE:
            return DatabaseLocation(url.set(database=MEMORY_DATABASE), MEMORY_DATABASE, None)
        if not database.startswith("file:"):  # "file:" is SQLite's own URI form: leave it be
            return _sqlite_file(Path(database), url)
    display = url.render_as_string(hide_password=True)
    return DatabaseLocation(url, display, None, secret=url.password or None)


def _sqlite_file(path: Path, url: URL) -> DatabaseLocation:
    path = Path(os.path.expanduser(path)).absolute()
    return DatabaseLocation(url.set(database=str(path)), str(path), path)
