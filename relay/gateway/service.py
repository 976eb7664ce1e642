"""The gateway: N ports, one event loop, one DDI session, one artifact cache, one journal.

::

    gateway = Gateway(load_config("gateway.toml"))
    await gateway.run()            # until cancelled

:meth:`Gateway.start` opens the journal, starts a :class:`~relay.gateway.relay.PortWorker` per port, the
outbox deliverer and the local ``/healthz`` / ``/metrics`` / ``/status`` server; :meth:`Gateway.stop` cancels
and awaits them all.  The deliverer sends the journal's outbox in order; while the server is unreachable it
backs off with jitter and the outbox grows (``stm32ota_gateway_outbox_backlog``); nothing is dropped unless
the server refuses a message for good (a 4xx other than 404/410), which is logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..startup import load_trusted_keys, start_site
from .artifacts import ArtifactCache
from .config import GatewayConfig
from .ddi import DdiClient, backoff_delay, feedback_body
from .errors import ConfigError, UplinkError
from .journal import Journal, OutboxEntry
from .metrics import GatewayMetrics
from .relay import PortWorker

__all__ = ["Gateway"]

log = logging.getLogger(__name__)

DELIVERY_IDLE_S = 1.0


class Gateway:
    def __init__(self, config: GatewayConfig, *, name: str = "stm32ota-gateway", time_factor: float = 1.0) -> None:
        self.config = config
        self.name = name
        self.time_factor = time_factor  # tests shrink the gateway's own waits (cancel checks); never the server's
        self.keys = tuple(load_trusted_keys(config.trusted_keys, error=ConfigError))
        self.config_swu_image: str | None = None
        self.metrics = GatewayMetrics()
        self.client = DdiClient(config.server, config.tenant, config.token_for, timeout=config.request_timeout)
        self.cache = ArtifactCache(config.cache_dir, self.client)
        self.workers = [PortWorker(self, port) for port in config.ports]
        self.by_controller: dict[str, PortWorker] = {}
        self._journal: Journal | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self.status_url: str | None = None
        self.logs_endpoint: bool | None = {"endpoint": True, "details": False}.get(config.logs)
        self._closed: set[tuple[str, str]] = set()  # (controllerId, action) whose closing feedback went up
        self.delivered: list[OutboxEntry] = []  # what reached the server, in order (tests and `status`)

    @property
    def journal(self) -> Journal:
        assert self._journal is not None, "the gateway is not started"
        return self._journal

    def register(self, controller_id: str, worker: PortWorker) -> None:
        self.by_controller[controller_id] = worker

    async def start(self) -> None:
        self._journal = await Journal.open(self.config.journal_path)
        self._tasks = [asyncio.create_task(w.run(), name=f"port {w.port.url}") for w in self.workers]
        self._tasks.append(asyncio.create_task(self._deliver(), name="outbox"))
        if self.config.listen:
            await self._serve_status(self.config.listen)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.client.close()
        if self._journal is not None:
            await self._journal.close()
            self._journal = None

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the outbox -------------------------------------------------------------------------------------------
    async def _deliver(self) -> None:
        journal, failures = self.journal, 0
        while True:
            journal.changed.clear()
            entries = await journal.pending()
            self.metrics.backlog.set(len(entries))
            try:
                for entry in entries:
                    await self._send(entry)
                    await journal.delivered(entry.seq)
                    self.delivered.append(entry)
                    self.metrics.delivered.labels(kind=entry.kind).inc()
                failures = 0
                self.metrics.uplink_up.set(1)
            except UplinkError as err:
                self.metrics.uplink_up.set(0)
                delay = err.retry_after if err.retry_after is not None else backoff_delay(failures, cap=30.0)
                failures += 1
                log.info("uplink: %s; %d queued, next try in %.1f s", err, await journal.backlog(), delay)
                await asyncio.sleep(delay)
                continue
            finally:
                self.metrics.requests.set(self.client.requests)
                self.metrics.download_bytes.set(self.cache.downloaded_bytes)
            if not entries or len(entries) < 100:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(journal.changed.wait(), timeout=DELIVERY_IDLE_S)

    async def _send(self, entry: OutboxEntry) -> None:
        """One message to the server; returns when it is there (or the server refused it for good)."""
        client = self.client
        if entry.kind == "logs":
            if self.logs_endpoint is not False:
                status = await client.post(entry.controller_id, entry.path, {"lines": entry.body["lines"]})
                if status not in (404, 405):
                    self.logs_endpoint = True
                    return
                self.logs_endpoint = False
            action = entry.body.get("actionId")
            if action is None or (entry.controller_id, str(action)) in self._closed:
                # a proceeding after the closing feedback would reopen the action on a plain DDI server; the
                # closing feedback's details already carry the device's last log lines
                return
            lines = [line["message"] for line in entry.body["lines"]]
            body = feedback_body(str(action), "proceeding", details=lines)
            await self._post(entry.controller_id, f"deploymentBase/{action}/feedback", body)
            return
        await self._post(entry.controller_id, entry.path, entry.body)
        state = entry.body.get("status")
        if entry.kind == "feedback" and isinstance(state, dict) and state.get("execution") in ("closed", "canceled"):
            self._closed.add((entry.controller_id, str(entry.body.get("id"))))

    async def _post(self, controller_id: str, path: str, body: Any) -> None:
        try:
            status = await self.client.post(controller_id, path, body)
        except UplinkError as err:
            if err.retryable:
                raise
            log.error("the server refused %s for %s for good: %s", path, controller_id, err)
            self.metrics.rejected.inc()
            return
        if status == 410:
            log.info("%s for %s: the action is already closed (an earlier delivery got through)", path, controller_id)
        elif status in (404, 405):
            log.error("the server has no %s for %s", path, controller_id)
            self.metrics.rejected.inc()

    # -- /healthz, /metrics, /status --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"gateway": self.name, "server": self.config.server, "ports": [w.status.to_json() for w in self.workers]}

    async def _serve_status(self, listen: str) -> None:
        async def healthz(_request: web.Request) -> web.Response:
            backlog = await self.journal.backlog()
            return web.json_response({"status": "ok", "ports": len(self.workers), "backlog": backlog})

        async def metrics(_request: web.Request) -> web.Response:
            counts: dict[str, int] = {}
            for worker in self.workers:
                counts[worker.status.state] = counts.get(worker.status.state, 0) + 1
            for state in ("starting", "absent", "idle", "downloading", "relaying", "error"):
                self.metrics.ports.labels(state=state).set(counts.get(state, 0))
            self.metrics.backlog.set(await self.journal.backlog())
            body = generate_latest(self.metrics.registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def status(_request: web.Request) -> web.Response:
            return web.json_response(self.status())

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/status", status)
        self._runner, self.status_url = await start_site(
            app, listen, error=ConfigError, default_host="127.0.0.1", access_log=None
        )
        log.info("status on %s", self.status_url)
