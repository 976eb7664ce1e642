"""Alembic: the migrations build the schema the models describe, on SQLite and on PostgreSQL, idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from relay.server.db import make_engine, migrate
from relay.server.models import Base
from tests.relay.conftest import pg_database


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _check(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate(engine)
        await migrate(engine)  # a second start finds nothing to do
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            tables = await conn.run_sync(_tables)
        assert {"devices", "actions", "releases", "rollouts", "alembic_version"} <= tables
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    await _check(f"sqlite:///{tmp_path / 'x.db'}")


async def test_postgres_schema_matches_the_models() -> None:
    async with pg_database() as url:
        await _check(url)


@pytest.mark.parametrize("url", ["sqlite:///x.db", "postgresql://u:p@h/db"])
def test_async_drivers_are_chosen(url: str) -> None:
    from relay.server.db import async_url

    assert async_url(url).split("://")[0] in ("sqlite+aiosqlite", "postgresql+asyncpg")
