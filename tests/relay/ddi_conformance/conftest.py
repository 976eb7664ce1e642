"""Fixtures of the DDI conformance suite: every test runs once per server under test.

``sut``         the adapter (:mod:`tests.relay.ddi_conformance.adapters`), one server process per session each;
                the adapter's recorded deviations become ``xfail(strict=True)`` markers on the tests they name
``device``      a freshly registered device (own controllerId and TargetToken) on that server
``deployment``  a new release assigned to ``device`` (its poll offers deploymentBase)
``goosebit``    a started gooseBit of the test's own (from :mod:`tests.peers.fixtures`, which the gateway's
                tests import too)

Servers: ``stm32ota`` (ours on SQLite, from ``STM32OTA_SERVER_TREE`` or this checkout; skipped with the reason
while `stm32ota serve` is not in the tree), ``stm32ota-pg`` (the same on a fresh database of the PostgreSQL
server ``STM32OTA_TEST_PG_DSN`` names, by default the one .ci/run starts; skipped without one, a failure
under CI) and ``goosebit`` (the peer: skipped on a laptop without its venv, a
failure under CI).  ``STM32OTA_DDI_SERVERS=goosebit`` limits the run to some of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, require_tool
from tests.peers.fixtures import goosebit  # noqa: F401  (re-exported: the peer fixture)
from tests.peers.goosebit import require_goosebit
from tests.relay.ddi_conformance.adapters import (
    REPO,
    Deployment,
    Device,
    GooseBitAdapter,
    PostgresDatabase,
    ServerUnderTest,
    Stm32OtaAdapter,
    stm32ota_serve_missing,
)

SERVERS = ("stm32ota", "stm32ota-pg", "goosebit")
PG_DSN_ENV = "STM32OTA_TEST_PG_DSN"
DEFAULT_PG_DSN = "postgresql://stm32ota:stm32ota@127.0.0.1:5432/postgres"
SELECTED = tuple(
    name for name in os.environ.get("STM32OTA_DDI_SERVERS", ",".join(SERVERS)).split(",") if name in SERVERS
)


class _Pool:
    """Starts each server at most once per session; a server that failed to start fails every test using it."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self._adapters: dict[str, ServerUnderTest] = {}
        self._broken: dict[str, str] = {}
        self._databases: list[PostgresDatabase] = []
        self._serve_missing: dict[Path, str | None] = {}

    def get(self, name: str) -> ServerUnderTest:
        if name in self._adapters:
            return self._adapters[name]
        if name in self._broken:
            pytest.fail(self._broken[name], pytrace=False)
        if name == "goosebit":
            python = require_goosebit()
            start = lambda: GooseBitAdapter(python, self._tmp.mktemp("goosebit"))  # noqa: E731
        else:
            tree = Path(os.environ.get("STM32OTA_SERVER_TREE", str(REPO)))
            if tree not in self._serve_missing:
                self._serve_missing[tree] = stm32ota_serve_missing(tree)
            missing = self._serve_missing[tree]
            if missing is not None:
                pytest.skip(missing)
            database: PostgresDatabase | None = None
            if name == "stm32ota-pg":
                database = self._database()

            def start() -> ServerUnderTest:
                adapter = Stm32OtaAdapter(
                    tree, self._tmp.mktemp(name), database=None if database is None else database.url
                )
                adapter.name = name
                return adapter

        try:
            adapter = start()
        except Exception as error:
            self._broken[name] = f"{name} did not start: {type(error).__name__}: {error}"
            raise
        self._adapters[name] = adapter
        return adapter

    def _database(self) -> PostgresDatabase:
        """A fresh database on the test PostgreSQL server; skip without one (fail under CI), as tests/relay does."""
        require_tool("psql", "apt-get install postgresql-client")
        if "stm32ota-pg" in self._broken:
            pytest.fail(self._broken["stm32ota-pg"], pytrace=False)
        dsn = os.environ.get(PG_DSN_ENV, DEFAULT_PG_DSN)
        try:
            database = PostgresDatabase(dsn)
        except RuntimeError as error:
            message = f"no PostgreSQL server at {dsn.split('@')[-1]}: {error}"
            if IN_CI:
                self._broken["stm32ota-pg"] = f"PostgreSQL required under CI: {message}"
                pytest.fail(self._broken["stm32ota-pg"], pytrace=False)
            pytest.skip(message)
        self._databases.append(database)
        return database

    def close(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()
        for database in self._databases:
            database.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``) every test of one server runs on the same worker, so each
    worker starts only the servers it tests (a gooseBit costs seconds) instead of all three per worker."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "sut" in callspec.params and "ddi_conformance" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group(f"ddi-{callspec.params['sut']}"))


@pytest.fixture(scope="session")
def _ddi_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Pool]:
    pool = _Pool(tmp_path_factory)
    yield pool
    pool.close()


def _deviation_keys(request: pytest.FixtureRequest) -> list[str]:
    node = request.node
    name = getattr(node, "originalname", node.name)
    keys = [name]
    callspec = getattr(node, "callspec", None)
    if callspec is not None:
        others = callspec.id.replace(str(request.param), "", 1).strip("-").replace("--", "-")
        if others:
            keys.append(f"{name}[{others}]")
    return keys


@pytest.fixture(params=SELECTED)
def sut(request: pytest.FixtureRequest, _ddi_servers: _Pool) -> ServerUnderTest:
    adapter = _ddi_servers.get(request.param)
    for key in _deviation_keys(request):
        reason = adapter.deviations.get(key)
        if reason is not None:
            request.applymarker(pytest.mark.xfail(strict=True, reason=f"{adapter.name} deviates: {reason}"))
    return adapter


@pytest.fixture
def device(sut: ServerUnderTest) -> Device:
    return sut.register()


@pytest.fixture
def deployment(sut: ServerUnderTest, device: Device) -> Deployment:
    return sut.deploy(device)
