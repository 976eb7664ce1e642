"""Alembic environment: online migrations over the server's own connection, or a URL (async driver).

The server calls Alembic with a connection in ``config.attributes["connection"]``.  From the ``alembic``
command (developers generating a revision) the URL comes from ``sqlalchemy.url`` or ``STM32OTA_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from relay.server.db import make_engine
from relay.server.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("STM32OTA_DATABASE_URL", "")
    if not url:
        raise SystemExit("set STM32OTA_DATABASE_URL (or sqlalchemy.url) to run Alembic by hand")
    asyncio.run(_run_with_url(url))
