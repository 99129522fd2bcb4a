"""Alembic environment: runs the store's migrations on the connection openpista hands it.

openpista passes its open connection in `config.attributes["connection"]`; run by hand with
`sqlalchemy.url` set instead, it opens that database the way openpista does.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from openpista.core.store.engine import create_store_engine, write_engine
from openpista.core.store.location import resolve_location
from openpista.core.store.tables import metadata


def run_migrations(connection: Connection) -> None:
    # render_as_batch: SQLite alters tables by copying them; batch mode writes that for us.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_on(configured_url: str) -> None:
    engine = create_store_engine(resolve_location(configured_url).url)
    try:
        async with write_engine(engine).begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def main() -> None:
    config = context.config
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        run_migrations(given)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or pass a connection in config.attributes")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_migrations_on(url))


main()
