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
import json
import logging
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..startup import load_trusted_keys, start_site
from .artifacts import ArtifactCache
from .config import GatewayConfig, PortConfig
from .ddi import DdiClient, backoff_delay, feedback_body
from .discovery import Comports, PortScanner
from .errors import ConfigError, UplinkError
from .journal import Journal, OutboxEntry
from .metrics import GatewayMetrics
from .relay import PortWorker
from .waiting import cancel_and_wait, wait_event

__all__ = ["Gateway"]

log = logging.getLogger(__name__)

DELIVERY_IDLE_S = 1.0
EVENTS_SILENCE_S = 60.0  # our server sends a keep-alive every 15 s: this much silence means the stream is dead
EVENTS_RETRY_S = 600.0  # a server without an event stream is asked again this rarely (it may be upgraded)


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        name: str = "stm32ota-gateway",
        time_factor: float = 1.0,
        comports: Comports | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.time_factor = time_factor  # tests shrink the gateway's own waits (cancel checks); never the server's
        self.keys = tuple(load_trusted_keys(config.trusted_keys, error=ConfigError))
        self.config_swu_image: str | None = None
        self.metrics = GatewayMetrics()
        self.client = DdiClient(config.server, config.tenant, config.token_for, timeout=config.request_timeout)
        self.cache = ArtifactCache(config.cache_dir, self.client)
        self.workers = [PortWorker(self, port) for port in config.ports if not port.discovered]
        rules = [port for port in config.ports if port.discovered]
        self.scanner = PortScanner(rules, comports) if rules else None
        self.by_controller: dict[str, PortWorker] = {}
        self._journal: Journal | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._worker_tasks: dict[PortWorker, asyncio.Task[None]] = {}
        # our server's event stream: "off" (no gateway token, or events = "off"), "connecting", "connected",
        # "down" (retrying), "unavailable" (the server has none: polling only)
        self.events_state = "off"
        self.events_received = 0
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
        # the same board back on another path: its old, unplugged row has done its job
        self.workers = [w for w in self.workers if w is worker or not (w.unplugged and w.cid == controller_id)]

    def _start_worker(self, worker: PortWorker) -> None:
        self._worker_tasks[worker] = asyncio.create_task(worker.run(), name=f"port {worker.port.url}")

    async def start(self) -> None:
        self._journal = await Journal.open(self.config.journal_path)
        if self.config.listen:  # first: a port that cannot be had stops the start before anything runs
            try:
                await self._serve_status(self.config.listen)
            except BaseException:
                await self.stop()
                raise
        if not self.keys:
            log.warning(
                "no trusted keys (trusted_keys / --trusted-key): signatures are checked only by each device, "
                "after the transfer"
            )
        for worker in self.workers:
            self._start_worker(worker)
        self._tasks = [asyncio.create_task(self._deliver(), name="outbox")]
        if self.scanner is not None:
            self._tasks.append(asyncio.create_task(self._discover(), name="port discovery"))
        if self.config.events == "auto" and self.config.gateway_token:
            self.events_state = "connecting"
            self._tasks.append(asyncio.create_task(self._events(), name="event stream"))

    async def stop(self) -> None:
        await cancel_and_wait([*self._tasks, *self._worker_tasks.values()])
        self._tasks = []
        self._worker_tasks = {}
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

    # -- ports found by rule (usb VID:PID, glob): hot-plug ---------------------------------------------------
    async def _discover(self) -> None:
        assert self.scanner is not None
        while True:
            try:
                found = await asyncio.to_thread(self.scanner.scan)
            except Exception:  # a scan must never end discovery; the next one may work
                log.exception("port scan failed")
            else:
                await self._apply_scan(found)
            await asyncio.sleep(self.config.discovery_interval)

    async def _apply_scan(self, found: dict[str, PortConfig]) -> None:
        fixed = {w.port.url for w in self.workers if not w.discovered}
        present = {w.port.url: w for w in self.workers if w.discovered and not w.unplugged}
        for url, port in found.items():
            if url in present or url in fixed:
                continue
            self.workers = [w for w in self.workers if not (w.unplugged and w.port.url == url)]
            worker = PortWorker(self, port, discovered=True)
            self.workers.append(worker)
            self._start_worker(worker)
            self.metrics.port_events.labels(event="plugged").inc()
            log.info("port %s: plugged in", url)
        for url, worker in present.items():
            if url not in found:
                await self._unplugged(worker)

    async def _unplugged(self, worker: PortWorker) -> None:
        """A discovered port vanished: stop its worker, show it, and tell the server if a job was running."""
        job, phase, progress = worker.job, worker.status.phase, worker.status.progress
        task = self._worker_tasks.pop(worker, None)
        await worker.close_port()  # first: a cancelled flow must not send ABORT to a board that may still hear it
        if task is not None:
            await cancel_and_wait([task])
        worker.mark_unplugged(phase if job is not None else None, progress)
        self.metrics.port_events.labels(event="unplugged").inc()
        device = worker.cid or "no device yet"
        if job is not None:
            log.warning(
                "port %s: unplugged (%s) during %s of action %s at %.0f %%; the job resumes when it is back",
                worker.port.url,
                device,
                phase or "the job",
                job.action_id,
                100 * progress,
            )
            await worker.report_unplugged(job, phase, progress)
        else:
            log.warning("port %s: unplugged (%s)", worker.port.url, device)

    # -- our server's event stream (instant start), else polling ---------------------------------------------
    async def _events(self) -> None:
        url = f"{self.client.server}/{self.config.tenant}/gateway/v1/events"
        failures = 0
        while True:
            try:
                await self._stream(url)
                failures = 0
                delay = backoff_delay(0, cap=5.0)
            except UplinkError as err:
                if not err.retryable:
                    if self.events_state != "unavailable":
                        log.info("the server offers no event stream (%s); polling at its sleep", err)
                    self.events_state = "unavailable"
                    await asyncio.sleep(EVENTS_RETRY_S)
                    continue
                delay = backoff_delay(failures, cap=30.0)
                log.info("event stream: %s; again in %.1f s (polling meanwhile)", err, delay)
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as err:
                delay = backoff_delay(failures, cap=30.0)
                log.info("event stream: %s; again in %.1f s (polling meanwhile)", err or type(err).__name__, delay)
            self.events_state = "down"
            failures += 1
            await asyncio.sleep(delay)

    async def _stream(self, url: str) -> None:
        """One connection to the stream: wake a port's worker for each ``poll`` event, until it ends."""
        headers = {"Accept": "text/event-stream", "Authorization": f"GatewayToken {self.config.gateway_token}"}
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.config.request_timeout, sock_read=EVENTS_SILENCE_S
        )
        self.client.requests += 1
        async with self.client.session.get(url, headers=headers, timeout=timeout) as response:
            if response.status == 429 or response.status >= 500:
                raise UplinkError(f"HTTP {response.status}", status=response.status)
            if response.status != 200 or response.content_type != "text/event-stream":
                raise UplinkError(f"HTTP {response.status} {response.content_type}", status=response.status or 404)
            self.events_state = "connected"
            log.info("event stream connected: deployments start at once")
            event, data = "message", []
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith(":"):
                    continue  # keep-alive
                if line:
                    key, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if key == "event":
                        event = value
                    elif key == "data":
                        data.append(value)
                    continue
                self._on_stream_event(event, "\n".join(data))
                event, data = "message", []
        raise UplinkError("the server closed the event stream")

    def _on_stream_event(self, event: str, data: str) -> None:
        self.events_received += 1
        if event == "hello":  # (re)connected: something may have changed while the stream was down
            for worker in self.workers:
                worker.wake()
        elif event == "poll":
            try:
                cid = json.loads(data)["controllerId"]
            except (ValueError, KeyError, TypeError):
                log.warning("event stream: a poll event without controllerId: %r", data[:200])
                return
            found = self.by_controller.get(str(cid))
            if found is not None:
                log.debug("event stream: %s has news", cid)
                found.wake()

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
                await wait_event(journal.changed, DELIVERY_IDLE_S)

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
        return {
            "gateway": self.name,
            "server": self.config.server,
            "events": self.events_state,
            "rules": [p.label for p in self.config.ports if p.discovered],
            "ports": [w.status.to_json() for w in self.workers],
        }

    async def _serve_status(self, listen: str) -> None:
        async def healthz(_request: web.Request) -> web.Response:
            backlog = await self.journal.backlog()
            return web.json_response({"status": "ok", "ports": len(self.workers), "backlog": backlog})

        async def metrics(_request: web.Request) -> web.Response:
            counts: dict[str, int] = {}
            for worker in self.workers:
                counts[worker.status.state] = counts.get(worker.status.state, 0) + 1
            for state in ("starting", "absent", "idle", "downloading", "relaying", "error", "unplugged"):
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
