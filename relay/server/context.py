"""What every handler shares: the settings, the database, the caches, the notifier, the metrics.

One :class:`ServerContext` per application, stored under :data:`CONTEXT` (a typed ``web.AppKey``).

Caches (credentials, each device's poll state) make a poll cost no database round trip.  A change this process
makes drops the entries it affects at once; once a second :meth:`ServerContext.watch_changes` reads which
devices and actions other processes changed (their ``updated_at``) and drops those, so every process sees a
change within about a second.  ``settings.cache_ttl`` bounds what the feed cannot see (a deleted device).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from protocol.image import PublicKey

from .metrics import Metrics
from .models import Action, AdminToken, Device, GatewayToken
from .settings import Settings

__all__ = ["CONTEXT", "ActionSummary", "DevicePrincipal", "Notifier", "PollState", "ServerContext", "TtlCache"]

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

LAST_SEEN_FLUSH = 5.0  # seconds between the batched writes of the devices' last-seen times
CHANGE_FEED_INTERVAL = 1.0  # seconds between looks at what other processes changed
CHANGE_FEED_MARGIN = dt.timedelta(seconds=5)  # overlap, for clocks of processes on other machines


class TtlCache(Generic[K, V]):
    """A small dict whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, ttl: float, max_entries: int = 200_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


@dataclass(frozen=True, kw_only=True)
class DevicePrincipal:
    """What a DDI request authenticated as: the device, and the gateway it came through (if any)."""

    device_id: int
    tenant: str
    controller_id: str
    state: str
    gateway_id: int | None
    via_gateway: int | None = None


@dataclass(frozen=True, kw_only=True)
class ActionSummary:
    id: int
    status: str
    forced: bool
    download_only: bool
    maintenance: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class PollState:
    """What a poll answer is built from (cached per device; dropped on any change to the device or its actions)."""

    state: str
    request_attributes: bool
    installed_action_id: int | None
    action: ActionSummary | None


class Notifier:
    """In-process wake-ups for long polls and SSE streams when a device's actions change.

    Other processes' changes are found by the waiters' periodic re-check, so nothing depends on this.
    """

    def __init__(self) -> None:
        self._devices: dict[int, set[asyncio.Event]] = {}
        self._gateways: dict[int, set[asyncio.Queue[int]]] = {}

    def notify(self, device_ids: Iterable[int], gateway_of: dict[int, int | None] | None = None) -> None:
        for device_id in device_ids:
            for event in self._devices.get(device_id, ()):
                event.set()
            gateway = (gateway_of or {}).get(device_id)
            if gateway is not None:
                for queue in self._gateways.get(gateway, ()):
                    queue.put_nowait(device_id)

    async def wait_device(self, device_id: int, timeout: float) -> bool:
        event = asyncio.Event()
        self._devices.setdefault(device_id, set()).add(event)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._devices.get(device_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._devices[device_id]

    def subscribe_gateway(self, gateway_id: int) -> asyncio.Queue[int]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._gateways.setdefault(gateway_id, set()).add(queue)
        return queue

    def unsubscribe_gateway(self, gateway_id: int, queue: asyncio.Queue[int]) -> None:
        queues = self._gateways.get(gateway_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._gateways[gateway_id]


@dataclass
class ServerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    metrics: Metrics
    trusted_keys: list[PublicKey]
    notifier: Notifier = field(default_factory=Notifier)
    token_cache: TtlCache[bytes, Any] = field(init=False)
    poll_cache: TtlCache[int, PollState] = field(init=False)
    device_keys: dict[int, set[bytes]] = field(default_factory=dict)
    last_seen: dict[int, dt.datetime] = field(default_factory=dict)
    rollout_locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    feed_since: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __post_init__(self) -> None:
        self.token_cache = TtlCache(self.settings.cache_ttl)
        self.poll_cache = TtlCache(self.settings.cache_ttl)

    def invalidate_tokens(self) -> None:
        """Forget every cached credential and poll state (after an admin change to tokens or devices)."""
        self.token_cache.clear()
        self.poll_cache.clear()
        self.device_keys.clear()

    def cache_principal(self, key: bytes, principal: DevicePrincipal) -> None:
        self.token_cache.put(key, principal)
        self.device_keys.setdefault(principal.device_id, set()).add(key)

    def changed(self, device_ids: Iterable[int], gateways: dict[int, int | None] | None = None) -> None:
        """Devices whose poll answer may differ now: drop their cache entries and wake their long polls."""
        ids = list(device_ids)
        for device_id in ids:
            self.poll_cache.pop(device_id)
            for key in self.device_keys.pop(device_id, ()):
                self.token_cache.pop(key)
        self.notifier.notify(ids, gateways)

    async def watch_changes(self) -> None:
        """Drop what other processes changed since the last look (devices, actions, revoked tokens)."""
        now = dt.datetime.now(dt.UTC)
        since = self.feed_since - CHANGE_FEED_MARGIN
        async with self.sessions() as session:
            devices = set((await session.execute(select(Device.id).where(Device.updated_at >= since))).scalars())
            devices.update(
                (await session.execute(select(Action.device_id).where(Action.updated_at >= since))).scalars()
            )
            revoked = (
                await session.execute(
                    select(func.count()).select_from(GatewayToken).where(GatewayToken.revoked_at >= since)
                )
            ).scalar_one() + (
                await session.execute(
                    select(func.count()).select_from(AdminToken).where(AdminToken.revoked_at >= since)
                )
            ).scalar_one()
        self.feed_since = now
        if revoked:
            self.invalidate_tokens()
        if devices:
            self.changed(devices)

    def rollout_lock(self, rollout_id: int) -> asyncio.Lock:
        return self.rollout_locks.setdefault(rollout_id, asyncio.Lock())

    def seen(self, device_id: int) -> None:
        self.last_seen[device_id] = dt.datetime.now(dt.UTC)

    async def flush_last_seen(self) -> None:
        """Write the buffered last-seen times: one executemany, one transaction."""
        if not self.last_seen:
            return
        pending, self.last_seen = self.last_seen, {}
        table = Device.__table__
        assert isinstance(table, Table)
        statement = (
            table.update()
            .where(table.c.id == bindparam("_id"))
            .values(last_seen_at=bindparam("_when"), updated_at=table.c.updated_at)  # not a change others must see
        )
        async with self.sessions.begin() as session:
            connection = await session.connection()
            await connection.execute(statement, [{"_id": k, "_when": v} for k, v in pending.items()])


CONTEXT: web.AppKey[ServerContext] = web.AppKey("stm32ota_server", ServerContext)
