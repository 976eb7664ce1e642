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
CHANGE_FEED_MARGIN = dt.timedelta(seconds=5)
REFRESH_CHUNK = (
    500  # device ids per query when the feed reloads what changed  # overlap, for clocks of processes on other machines
)


class TtlCache(Generic[K, V]):
    """A small dict whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, ttl: float, max_entries: int = 1_000_000) -> None:
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
class _LoadGuard:
    dirty: set[int] = field(default_factory=set)
    spoiled: bool = False


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
    cred_cache: TtlCache[bytes, Any] = field(init=False)
    _loads: list[_LoadGuard] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.token_cache = TtlCache(self.settings.cache_ttl)
        self.poll_cache = TtlCache(self.settings.cache_ttl)
        self.cred_cache = TtlCache(self.settings.cache_ttl)

    def invalidate_credentials(self) -> None:
        """Forget cached gateway and admin credentials (after one is created or revoked)."""
        self.cred_cache.clear()

    def invalidate_tokens(self) -> None:
        """Forget every cached credential and poll state (after an admin change to tokens or devices)."""
        for guard in self._loads:  # a load in flight must not put back what this drops
            guard.spoiled = True
        self.token_cache.clear()
        self.poll_cache.clear()
        self.device_keys.clear()

    def cache_principal(self, key: bytes, principal: DevicePrincipal) -> None:
        self.token_cache.put(key, principal)
        self.device_keys.setdefault(principal.device_id, set()).add(key)

    def changed(self, device_ids: Iterable[int], gateways: dict[int, int | None] | None = None) -> None:
        """Devices whose poll answer may differ now: drop their cache entries and wake their long polls."""
        ids = list(device_ids)
        for guard in self._loads:
            guard.dirty.update(ids)
        for device_id in ids:
            self.poll_cache.pop(device_id)
            for key in self.device_keys.pop(device_id, ()):
                self.token_cache.pop(key)
        self.notifier.notify(ids, gateways)

    async def preload(self) -> int:
        """Load every device's credential and poll state (at start-up, then every half TTL), so polls never
        wait for the database; returns how many devices."""
        return len(await self._load(None))

    async def refresh(self, device_ids: Iterable[int]) -> dict[int, int | None]:
        """Load these devices afresh (what the change feed saw change); their gateways."""
        ids = sorted(set(device_ids))
        gateways: dict[int, int | None] = {}
        for start in range(0, len(ids), REFRESH_CHUNK):
            gateways.update(await self._load(ids[start : start + REFRESH_CHUNK]))
        return gateways

    async def _load(self, ids: list[int] | None) -> dict[int, int | None]:
        """Two queries, then the caches.  Devices this process changes while the queries run are left out
        (their next poll reads them fresh), and a full invalidation meanwhile spoils the whole load."""
        guard = _LoadGuard()
        self._loads.append(guard)
        try:
            device_query = select(
                Device.id,
                Device.tenant,
                Device.controller_id,
                Device.state,
                Device.gateway_id,
                Device.token_hash,
                Device.request_attributes,
                Device.installed_action_id,
            )
            action_query = (
                select(
                    Action.device_id,
                    Action.id,
                    Action.status,
                    Action.forced,
                    Action.download_only,
                    Action.maintenance,
                )
                .where(Action.active.is_(True))
                .order_by(Action.device_id, Action.id)
            )
            if ids is not None:
                device_query = device_query.where(Device.id.in_(ids))
                action_query = action_query.where(Action.device_id.in_(ids))
            async with self.sessions() as session:
                devices = (await session.execute(device_query)).all()
                actions = (await session.execute(action_query)).all()
            first: dict[int, ActionSummary] = {}
            for row in actions:
                if row.device_id not in first:
                    first[row.device_id] = ActionSummary(
                        id=row.id,
                        status=row.status,
                        forced=row.forced,
                        download_only=row.download_only,
                        maintenance=row.maintenance,
                    )
            gateways = {row.id: row.gateway_id for row in devices}
            if guard.spoiled:
                return gateways
            for row in devices:
                if row.id in guard.dirty:
                    continue
                principal = DevicePrincipal(
                    device_id=row.id,
                    tenant=row.tenant,
                    controller_id=row.controller_id,
                    state=row.state,
                    gateway_id=row.gateway_id,
                )
                for key in self.device_keys.pop(row.id, ()):  # an old token's entry must not survive
                    self.token_cache.pop(key)
                if row.token_hash is not None:
                    self.cache_principal(b"t" + row.token_hash, principal)
                if row.gateway_id is not None:
                    self.cache_principal(b"d" + row.tenant.encode() + b"/" + row.controller_id.encode(), principal)
                self.poll_cache.put(
                    row.id,
                    PollState(
                        state=row.state,
                        request_attributes=row.request_attributes,
                        installed_action_id=row.installed_action_id,
                        action=first.get(row.id) if row.state == "active" else None,
                    ),
                )
            return gateways
        finally:
            self._loads.remove(guard)

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
            self.invalidate_credentials()
        if devices:
            gateways = await self.refresh(devices)
            self.notifier.notify(devices, gateways)  # after the refresh: woken polls see the new state

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
