"""The database locked or gone for a moment: a 503 with Retry-After (or a transparent retry), never a bad state."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from relay.server import db
from tests.relay.conftest import IMAGE_110, AiohttpClient, make_settings, pg_database, start_server


async def test_sqlite_locked_is_503_then_recovers(
    aiohttp_client: AiohttpClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    server = await start_server(aiohttp_client, make_settings(tmp_path / "data"))
    await server.add_device("dev-1")
    await server.upload(IMAGE_110)
    action = await server.api("POST", "/actions", 201, json={"controller_id": "dev-1", "release": "1.1.0"})
    locker = sqlite3.connect(server.settings.data / "stm32ota.db", timeout=0)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        response = await server.client.post(
            server.ddi("dev-1", f"/deploymentBase/{action['id']}/feedback"),
            json={"status": {"execution": "closed", "result": {"finished": "success"}}},
            headers=server.target("dev-1"),
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"] == "database-unavailable"
        health = await server.client.get("/healthz")
        assert health.status in (200, 503)
    finally:
        locker.rollback()
        locker.close()
    # Nothing half-applied: the action is still open, and the retried feedback goes through.
    (state,) = (await server.api("GET", "/devices/dev-1"))["actions"]
    assert state["active"] and state["status"] == "scheduled"
    await server.feedback("dev-1", action["id"], "closed", "success")
    metrics = await (await server.client.get("/metrics")).text()
    assert "stm32ota_db_unavailable_total 1.0" in metrics


async def test_postgres_connections_dropped_and_refused(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    async with pg_database() as url:
        server = await start_server(aiohttp_client, make_settings(tmp_path / "data", database=url))
        await server.add_device("dev-1")
        name = url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql").rsplit("/", 1)[0] + "/postgres")
        try:
            # Every connection of the pool killed: the pool's pre-ping reconnects, the poll just works.
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            assert (await server.poll("dev-1")).status == 200
            # The database refuses connections for a moment: 503, then service again.
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            response = await server.client.get("/api/v1/devices", headers=server.admin)
            assert response.status == 503
            assert (await server.client.get("/healthz")).status == 503
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            assert (await server.client.get("/api/v1/devices", headers=server.admin)).status == 200
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
            await server.client.close()
