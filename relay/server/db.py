"""The database: an async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg), migrated by Alembic at start-up.

``sqlite+aiosqlite:///DIR/stm32ota.db`` is the embedded default; ``postgresql+asyncpg://user:pw@host/db`` is
the engine for several server processes.  A plain ``postgresql://`` or ``sqlite:///`` URL is accepted and given
its async driver.  Migrations run in one transaction; on PostgreSQL an advisory lock makes processes that start
together take turns, so exactly one of them upgrades the schema.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .errors import ConfigError

__all__ = ["MIGRATIONS", "async_url", "make_engine", "make_sessionmaker", "migrate", "safe_url"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long SQLite waits for another writer before 'database is locked' (then the request gets a 503)."""
_MIGRATION_LOCK_KEY = 0x5354_4D32  # "STM2": the advisory lock id the processes take turns on
POOL_SIZE = 10


def async_url(url: str) -> str:
    """``url`` with its async driver: sqlite -> aiosqlite, postgresql -> asyncpg (others: :class:`ConfigError`)."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise ConfigError(f"database: {url!r} is not a database URL (sqlite:///PATH or postgresql://...)") from err
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"database: {backend} is not supported; use sqlite:///PATH or postgresql://...")
    if backend == "sqlite" and parsed.drivername != "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and parsed.drivername != "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    url = async_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE, pool_pre_ping=True)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(invalid URL)"


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest Alembic revision (creating it on an empty database)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
    log.info("database schema is up to date")
