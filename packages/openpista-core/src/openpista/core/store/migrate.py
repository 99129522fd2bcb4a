"""Bringing a database's schema up to date with Alembic, touching Alembic only when it is behind.

Opening an up-to-date database costs one `SELECT` on `alembic_version`; Alembic (slow to
import) is loaded only when that revision is not HEAD_REVISION.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

HEAD_REVISION = "0002"
"""The newest revision in migrations/versions; bump it with every new migration."""

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaTooNewError(Exception):
    """The database was migrated by a newer openpista: its revision is not one we know."""

    def __init__(self, revisions: Sequence[str]) -> None:
        self.revisions = tuple(revisions)
        super().__init__(
            f"its schema revision {', '.join(self.revisions)} is newer than this openpista "
            f"knows (newest {HEAD_REVISION})"
        )


def alembic_config() -> Config:
    """An Alembic configuration for the store's migrations; no alembic.ini needed.

    To write a new migration: `command.revision(alembic_config(), "what it does", rev_id="0002")`
    then bump HEAD_REVISION.
    """
    from alembic.config import Config

    config = Config()
    # Config values go through ConfigParser interpolation, where "%" is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


async def stored_revisions(engine: AsyncEngine) -> frozenset[str] | None:
    """The revisions recorded in `alembic_version`, or None when the table does not exist."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    # Connecting sits outside the try: a database we cannot reach is an error, not "behind".
    async with engine.connect() as connection:
        try:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return None
        return frozenset(str(row[0]) for row in result)


async def migrate_to_head(engine: AsyncEngine) -> bool:
    """Upgrade the schema to HEAD_REVISION if it is behind; True when migrations ran."""
    if await stored_revisions(engine) == frozenset({HEAD_REVISION}):
        return False
    from openpista.core.store.engine import write_engine

    # One transaction holding the write lock: two processes opening a new database at once
    # migrate it one after the other, and the second finds nothing left to do.
    async with write_engine(engine).begin() as connection:
        await connection.run_sync(upgrade_to_head)
    return True


def upgrade_to_head(connection: Connection) -> None:
    """Run every pending migration on `connection`, inside its current transaction."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = alembic_config()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    unknown = [
        revision
        for revision in MigrationContext.configure(connection).get_current_heads()
        if revision not in known
    ]
    if unknown:
        raise SchemaTooNewError(unknown)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
