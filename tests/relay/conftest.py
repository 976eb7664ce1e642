"""Fixtures for the OTA server tests: a server on SQLite or a fresh PostgreSQL database, and a DDI/admin helper.

``postgres_url`` creates a uniquely named database on the server ``STM32OTA_TEST_PG_DSN`` names (default
``postgresql://stm32ota:stm32ota@127.0.0.1:5432/postgres``) and drops it afterwards; it skips when no server
answers, and fails under ``CI``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from relay.server import Settings, create_app
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
FIRMWARE = ASSETS / "firmware"
BAD = ASSETS / "bad"
KEYS = ASSETS / "keys"
TRUSTED = (
    KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem",
    KEYS / "dev-ecdsa-p256-DO-NOT-USE-IN-PRODUCTION.pub.pem",
)
IMAGE_100 = FIRMWARE / "demo-1.0.0.signed.bin"
IMAGE_110 = FIRMWARE / "demo-1.1.0.signed.bin"
F407 = 0x413
DEFAULT_PG_DSN = "postgresql://stm32ota:stm32ota@127.0.0.1:5432/postgres"

AiohttpClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def make_settings(data: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data": data, "trusted_keys": TRUSTED, "rollout_tick": 0.2, **overrides}
    return Settings(**values)


@dataclass
class Server:
    """A running test server with its admin token, and helpers for the admin API and the DDI."""

    client: TestClient[Any, Any]
    settings: Settings
    admin_token: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def target(self, controller_id: str) -> dict[str, str]:
        return {"Authorization": f"TargetToken {self.tokens[controller_id]}"}

    @staticmethod
    def ddi(controller_id: str, rest: str = "", tenant: str = "DEFAULT") -> str:
        return f"/{tenant}/controller/v1/{controller_id}{rest}"

    async def api(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        headers = {**self.admin, **kwargs.pop("headers", {})}
        response = await self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)
        text = await response.text()
        assert response.status == expect, f"{method} {path}: {response.status} {text}"
        return await response.json() if text and response.content_type == "application/json" else None

    async def add_device(
        self, controller_id: str, chip: str | None = "0x413", board: int | None = 1, **extra: Any
    ) -> str:
        body: dict[str, Any] = {"controller_id": controller_id, **extra}
        if chip is not None:
            body["chip"] = chip
        if board is not None:
            body["board"] = board
        created = await self.api("POST", "/devices", 201, json=body)
        self.tokens[controller_id] = created["token"]
        return str(created["token"])

    async def upload(self, path: Path, expect: int = 201, **params: str) -> Any:
        return await self.api(
            "POST",
            "/releases",
            expect,
            data=path.read_bytes(),
            params=params,
            headers={"Content-Type": "application/octet-stream"},
        )

    async def poll(self, controller_id: str, headers: dict[str, str] | None = None) -> ClientResponse:
        return await self.client.get(self.ddi(controller_id), headers=headers or self.target(controller_id))

    async def poll_json(self, controller_id: str) -> dict[str, Any]:
        response = await self.poll(controller_id)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json(content_type=None)
        return body

    async def feedback(
        self,
        controller_id: str,
        action_id: int,
        execution: str,
        finished: str = "none",
        expect: int = 200,
        kind: str = "deploymentBase",
        **status: Any,
    ) -> ClientResponse:
        body = {"status": {"execution": execution, "result": {"finished": finished}, **status}}
        response = await self.client.post(
            self.ddi(controller_id, f"/{kind}/{action_id}/feedback"), json=body, headers=self.target(controller_id)
        )
        assert response.status == expect, await response.text()
        return response


async def start_server(aiohttp_client: AiohttpClient, settings: Settings) -> Server:
    client = await aiohttp_client(create_app(settings))
    token = settings.admin_token_file.read_text().strip()
    return Server(client=client, settings=settings, admin_token=token)


@pytest.fixture
async def server(aiohttp_client: AiohttpClient, tmp_path: Path) -> Server:
    """A server on SQLite (``db_server`` runs a test on PostgreSQL as well)."""
    return await start_server(aiohttp_client, make_settings(tmp_path / "data"))


def _pg_unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL required under CI: {message}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {message}")


@contextlib.asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A fresh, uniquely named PostgreSQL database (dropped afterwards), as a SQLAlchemy URL."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = os.environ.get("STM32OTA_TEST_PG_DSN", DEFAULT_PG_DSN)
    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        _pg_unavailable(f"{dsn.split('@')[-1]}: {err}")
        raise AssertionError("unreachable") from err
    name = f"stm32ota_test_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(dsn).set(drivername="postgresql+asyncpg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test (skips without a server, fails under CI)."""
    async with pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_server(
    request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, tmp_path: Path
) -> AsyncIterator[Server]:
    """The same test on SQLite and on a fresh PostgreSQL database."""
    async with contextlib.AsyncExitStack() as stack:
        database = None if request.param == "sqlite" else await stack.enter_async_context(pg_database())
        server = await start_server(
            aiohttp_client, make_settings(tmp_path / "data", database=database, rollout_tick=60)
        )
        yield server
        await server.client.close()
