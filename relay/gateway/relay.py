"""One serial port: find the device, speak DDI for it, relay each deployment over its UART.

A :class:`PortWorker` opens its port through :class:`protocol.aio.AsyncSerialLink`, reads INFO (the
controllerId is ``stm32-<96-bit uid in hex>``), sends configData, then polls at the server's ``sleep`` with
jitter.  A deployment becomes a journalled job: artifact (shared cache, checked), pre-flight check against this
device's INFO, then :func:`protocol.flow.flash_image` (transfer, verify, activate, reboot, confirm), then a
check that the device runs the new image *confirmed*.  A failed relay (cable, power cut) is resumed from the
device's resume record up to ``relay_attempts`` times; each attempt is reported.  Results go to the journal's
outbox, never straight to the server, so nothing is lost while the uplink is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocol.drivers.aio import AsyncSerialLink
from protocol.errors import ImageError, PortError, Stm32OtaError
from protocol.flow import FlashOptions, FlashResult, UpdateError, flash_image, image_digests, read_info
from protocol.preflight import check_image
from protocol.progress import ProgressSnapshot
from protocol.sansio import DeviceLog, Event, Progress
from protocol.update.host import HostConnection
from protocol.update.messages import DeviceInfo, SlotInfo, SlotState

from .artifacts import firmware_of
from .config import PortConfig
from .ddi import Deployment, Poll, feedback_body
from .errors import ArtifactError, UplinkError
from .journal import Job
from .waiting import wait_event

if TYPE_CHECKING:
    from .service import Gateway

__all__ = ["PortStatus", "PortWorker", "controller_id", "running_version"]

log = logging.getLogger(__name__)
# the boards' own log lines, at INFO (`stm32ota gateway -v` and the app's gateway tab show them; the default
# level does not); ``extra``: ``device`` (controllerId), ``device_level`` (the device's level name), ``device_ms``
device_log = logging.getLogger("relay.gateway.device")

REOPEN_MIN_S = 0.5
REOPEN_MAX_S = 30.0
CANCEL_CHECK_S = 5.0  # how often a running relay asks the server whether it was cancelled
LOG_TAIL_LINES = 10  # device log lines a failure report carries
PROGRESS_STEPS = 100  # progress is reported as cnt/of percent
_LOG_LEVELS = {0: "error", 1: "warning", 2: "info", 3: "debug"}


def controller_id(info: DeviceInfo) -> str:
    return f"stm32-{info.uid.hex()}"


def _primary(info: DeviceInfo) -> SlotInfo | None:
    return next((s for s in info.slots if s.index == 0 and s.state is not SlotState.EMPTY), None)


def running_version(info: DeviceInfo) -> str:
    slot = _primary(info)
    if slot is None:
        return ""
    major, minor, rev, build = slot.version
    return f"{major}.{minor}.{rev}" + (f"+{build}" if build else "")


@dataclass
class PortStatus:
    url: str
    state: str = "starting"  # starting, absent, idle, downloading, relaying, error
    controller_id: str | None = None
    version: str | None = None
    action_id: str | None = None
    target_version: str | None = None
    progress: float = 0.0  # 0..1 of the current phase
    phase: str = ""
    message: str = ""
    updated: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class _Cancelled(Exception):
    def __init__(self, cancel_href: str, cancel_id: str) -> None:
        self.cancel_href = cancel_href
        self.cancel_id = cancel_id


class PortWorker:
    def __init__(self, gateway: Gateway, port: PortConfig, *, discovered: bool = False) -> None:
        self.gw = gateway
        self.port = port
        self.discovered = discovered  # found by a usb/glob rule: it may vanish (unplugged) and come back
        self.job: Job | None = None  # the job running on this port, if any
        self.status = PortStatus(url=port.url)
        self.info: DeviceInfo | None = None
        self.cid: str | None = None
        self._logs: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._log_batch: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._link: AsyncSerialLink | None = None
        self._last_warning = ""

    def wake(self) -> None:
        """Poll now (the server's event stream said something changed, or a test wants it)."""
        self._wake.set()

    @property
    def unplugged(self) -> bool:
        return self.status.state == "unplugged"

    async def close_port(self) -> None:
        """Close the port under whatever runs on it (it fails with PortError; nothing more is written)."""
        link = self._link
        if link is not None:
            with contextlib.suppress(Exception):
                await link.close()

    def mark_unplugged(self, phase: str | None, progress: float) -> None:
        during = f" during {phase} at {100 * progress:.0f} %" if phase else ""
        self._set(state="unplugged", message=f"unplugged{during} at {time.strftime('%H:%M:%S')}")

    async def report_unplugged(self, job: Job, phase: str, progress: float) -> None:
        """Tell the server (through the outbox) that the board of a running job went away."""
        if self.cid is None:
            return
        detail = (
            f"{self.cid}: unplugged from {self.port.url} during {phase or 'the job'} at {100 * progress:.0f} %; "
            "the relay resumes from the device's resume record when it is back"
        )
        self._logs.append(detail)
        await self._feedback(
            job, "proceeding", details=[detail], progress=(int(progress * PROGRESS_STEPS), PROGRESS_STEPS)
        )

    def _set(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.status, key, value)
        self.status.updated = time.time()

    def _warn(self, err: BaseException) -> None:
        """One line per distinct problem (with its hint); the same problem again, retried, only at debug."""
        hint = getattr(err, "hint", None)
        text = f"port {self.port.url}: {err}" + (f" ({hint})" if hint else "")
        if text == self._last_warning:
            log.debug("%s (again)", text)
            return
        self._last_warning = text
        log.warning("%s; retrying", text)

    # -- the port's life --------------------------------------------------------------------------------------
    async def run(self) -> None:
        failures = 0
        while True:
            try:
                link = await AsyncSerialLink.open(self.port.url, self.port.baud)
            except (PortError, OSError) as err:
                if self.status.state != "absent":
                    log.warning("port %s: %s", self.port.url, err)
                self._set(state="absent", message=str(err))
                await asyncio.sleep(min(REOPEN_MAX_S, REOPEN_MIN_S * 2**failures))
                failures += 1
                continue
            self._link = link
            try:
                await self._serve(link)
                failures = 0
            except (Stm32OtaError, OSError) as err:
                self._warn(err)
                self._set(state="error", message=str(err))
                failures += 1
                await asyncio.sleep(min(REOPEN_MAX_S, REOPEN_MIN_S * 2 ** min(failures, 6)))
            finally:
                with contextlib.suppress(Exception):
                    if self._link is not None:
                        await self._link.close()  # the link a failed attempt reopened, if it did
                self._link = None

    async def _read_info(self, link: AsyncSerialLink) -> DeviceInfo:
        info: DeviceInfo = await link.execute(
            read_info(HostConnection(baud=self.port.baud), time.monotonic, self._on_event)
        )
        return info

    async def _serve(self, link: AsyncSerialLink) -> None:
        """Poll for this device until a job ran (then the caller reopens the port and reads INFO again)."""
        info = self.info = await self._read_info(link)
        cid = self.cid = controller_id(info)
        self.gw.register(cid, self)
        self._set(state="idle", controller_id=cid, version=running_version(info), message="")
        client = self.gw.client
        await client.retrying(f"configData of {cid}", lambda: client.put_config(cid, self.config_data(info)))
        while True:
            poll = await client.retrying(f"poll of {cid}", lambda: client.poll(cid))
            if "configData" in poll.links and poll.links.get("deploymentBase") is None:
                await client.retrying(f"configData of {cid}", lambda: client.put_config(cid, self.config_data(info)))
            if (cancel := poll.action_link("cancelAction")) is not None:
                await self._cancel_idle(*cancel)
            elif (deployment := poll.action_link("deploymentBase")) is not None:
                dep = await client.retrying(f"deploymentBase of {cid}", lambda: client.deployment(cid, deployment[0]))
                if await self._job(link, dep, poll.sent_at):
                    return  # the device changed: read its INFO afresh
            await self._sleep(poll)

    async def _sleep(self, poll: Poll) -> None:
        cfg = self.gw.config
        interval = min(poll.sleep, cfg.max_poll_interval) * (1 + random.uniform(-cfg.poll_jitter, cfg.poll_jitter))
        await wait_event(self._wake, max(interval, 0.05))  # a wake() while we polled counts: cleared once seen
        self._wake.clear()

    def config_data(self, info: DeviceInfo) -> dict[str, str]:
        cfg = self.gw.config
        return {
            "chip": f"0x{info.chip_id:03x}",
            "board": str(info.board_id),
            "bootloader": info.bootloader_version,
            "sw_version": running_version(info),
            "hw_boardname": self.port.hw_boardname or cfg.hw_boardname or f"stm32-{info.chip_id:03x}",
            "hw_revision": self.port.hw_revision or cfg.hw_revision or str(info.board_id),
            "gateway_port": self.port.url,
        }

    # -- events from the flow ---------------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if isinstance(event, ProgressSnapshot):
            self._set(progress=event.fraction, phase=event.phase.value)
            if event.message:
                self._set(message=event.message)
                self._logs.append(f"[{event.phase.value}] {event.message}")
        elif isinstance(event, Progress) and event.total:
            self._set(progress=event.done / event.total, phase=event.phase)
        elif isinstance(event, DeviceLog):
            line = event.text.rstrip()
            level = _LOG_LEVELS.get(event.level, "info")
            self._logs.append(line)
            self._log_batch.append({"message": line, "level": level})
            if device_log.isEnabledFor(logging.INFO):
                cid = self.cid or self.port.url
                extra = {"device": cid, "device_level": level, "device_ms": event.timestamp_ms}
                device_log.info("%s: %s", cid, line, extra=extra)

    # -- feedback through the outbox --------------------------------------------------------------------------
    async def _feedback(
        self,
        job: Job,
        execution: str,
        finished: str = "none",
        details: list[str] | None = None,
        *,
        progress: tuple[int, int] | None = None,
        state: str | None = None,
        coalesce: str | None = None,
    ) -> None:
        assert self.cid is not None
        body = feedback_body(job.action_id, execution, finished, details=details, progress=progress)
        update: dict[str, object] = {"state": state} if state else {}
        if progress is not None:
            update.update(progress_cnt=progress[0], progress_of=progress[1])
        if details and state:
            update["detail"] = details[-1]
        await self.gw.journal.enqueue(
            self.cid,
            "feedback",
            f"deploymentBase/{job.action_id}/feedback",
            body,
            coalesce_key=coalesce,
            job_update=(job.id, update) if update else None,
        )

    async def _flush_logs(self, job: Job) -> None:
        if not self._log_batch or self.cid is None:
            return
        lines, self._log_batch = self._log_batch, []
        await self.gw.journal.enqueue(self.cid, "logs", "logs", {"lines": lines, "actionId": job.action_id})

    # -- a job ------------------------------------------------------------------------------------------------
    async def _cancel_idle(self, href: str, cancel_id: str) -> None:
        """A cancel for an action we are not running: stop it (nothing is on the wire) and confirm."""
        assert self.cid is not None
        stop_id = await self.gw.client.retrying(
            "cancelAction", lambda: self.gw.client.cancel_action(self.cid or "", href)
        )
        job = await self.gw.journal.job(self.cid, stop_id)
        if job is not None and not job.final:
            await self.gw.journal.update_job(job.id, state="cancelled", detail="cancelled by the server")
        await self._confirm_cancel(cancel_id, "cancelled before the relay started")

    async def _confirm_cancel(self, cancel_id: str, detail: str, *, job: Job | None = None) -> None:
        assert self.cid is not None
        body = feedback_body(cancel_id, "closed", "success", details=[detail])
        update = (job.id, {"state": "cancelled", "detail": detail}) if job is not None else None
        await self.gw.journal.enqueue(
            self.cid, "cancel-feedback", f"cancelAction/{cancel_id}/feedback", body, job_update=update
        )

    async def _job(self, link: AsyncSerialLink, dep: Deployment, offered_at: float | None = None) -> bool:
        """Run one deployment; True if the device was touched (its INFO must be read again)."""
        assert self.cid is not None and self.info is not None
        gw, cid = self.gw, self.cid
        job = await gw.journal.start_job(
            cid, dep.action_id, self.port.url, dep.version, dep.digest, offered_at=offered_at or None
        )
        if job.final or (job.state == "downloaded" and not dep.may_install):
            return False
        self.job = job
        try:
            return await self._run_job(link, job, dep)
        finally:
            self.job = None

    async def _run_job(self, link: AsyncSerialLink, job: Job, dep: Deployment) -> bool:
        assert self.cid is not None and self.info is not None
        gw, cid, info = self.gw, self.cid, self.info
        self._set(
            action_id=dep.action_id, target_version=dep.version, state="downloading", progress=0.0, phase="download"
        )
        if job.state == "new":
            await self._feedback(
                job,
                "proceeding",
                details=[f"gateway {gw.name}: downloading {dep.version or ''}".strip()],
                progress=(0, PROGRESS_STEPS),
                state="downloading",
            )
            files = ", ".join(f"{a.filename} ({a.size} bytes)" for a in dep.artifacts) or "no artifact"
            await self._feedback(job, "download", details=[f"downloading {files}"])
        try:
            firmware, name = await self._artifact(dep)
        except (ArtifactError, UplinkError) as err:
            if isinstance(err, UplinkError) and err.retryable:
                raise  # the server is away: keep the job, try again at the next poll
            await self._feedback(job, "closed", "failure", [f"artifact refused: {err}"], state="failed")
            gw.metrics.jobs.labels(result="failed").inc()
            self._set(state="idle", message=str(err))
            return False
        if not dep.may_install:
            if job.state != "downloaded":
                if dep.maintenance_window == "unavailable":  # installed once the window opens
                    detail = f"downloaded and checked {name}; waiting for the maintenance window"
                    await self._feedback(job, "scheduled", details=[detail], state="downloaded")
                else:
                    detail = f"downloaded and checked {name}; download only"
                    await self._feedback(job, "downloaded", details=[detail], state="downloaded")
            self._set(state="idle", message="downloaded, waiting for the update to be allowed")
            return False
        if (done := self._already_running(firmware, info)) is not None:
            await self._feedback(
                job, "closed", "success", [done], progress=(PROGRESS_STEPS, PROGRESS_STEPS), state="succeeded"
            )
            gw.metrics.jobs.labels(result="succeeded").inc()
            return False
        try:
            report = await asyncio.to_thread(  # signature check: CPU work, off the loop
                check_image, firmware, info, name=name, keys=gw.keys
            )
        except ImageError as err:
            detail = f"{name} refused for {cid} before transfer: {err}"
            await self._feedback(
                job, "closed", "failure", [detail] + ([err.hint] if err.hint else []), state="rejected"
            )
            gw.metrics.jobs.labels(result="rejected").inc()
            self._set(state="idle", message=str(err))
            return False
        if job.state in ("new", "downloading"):
            checks = ", ".join(["size", *sorted(dep.artifacts[0].hashes)]) if dep.artifacts else "size"
            await self._feedback(
                job, "downloaded", details=[f"{name}: downloaded and checked ({checks}, signature, {cid})"]
            )
        elif job.state == "relaying":  # a restart (the gateway, or the board re-plugged) in the middle
            await self._feedback(
                job, "resumed", details=[f"{cid}: relay resumed after attempt {job.attempts} was interrupted"]
            )
        await self._relay(link, job, dep, report.data, name)
        return True

    def _already_running(self, firmware: bytes, info: DeviceInfo) -> str | None:
        primary = _primary(info)
        if primary is not None and primary.state is SlotState.CONFIRMED and primary.digest in image_digests(firmware):
            return f"{self.cid} already runs {running_version(info)} confirmed"
        return None

    async def _artifact(self, dep: Deployment) -> tuple[bytes, str]:
        assert self.cid is not None
        if not dep.artifacts:
            raise ArtifactError("the deployment has no artifact")
        errors: list[str] = []
        for artifact in dep.artifacts:
            data = await self.gw.cache.fetch(self.cid, artifact, on_progress=self._download_progress)
            try:
                image = firmware_of(data, artifact.filename, member=self.gw.config_swu_image)
            except ArtifactError as err:
                errors.append(f"{artifact.filename}: {err}")
                continue
            if image.data[:4] == b"\x3d\xb8\xf3\x96":
                return image.data, image.name
            errors.append(f"{artifact.filename}: not an MCUboot image")
        raise ArtifactError("; ".join(errors))

    def _download_progress(self, done: int, total: int) -> None:
        self._set(progress=done / total if total else 0.0, phase="download")

    async def _relay(self, link: AsyncSerialLink, job: Job, dep: Deployment, image: bytes, name: str) -> None:
        gw, cfg = self.gw, self.gw.config
        options = FlashOptions(protocol="ota", baud=self.port.baud, fast_baud=self.port.fast_baud, keys=gw.keys)
        attempts = job.attempts
        notes: list[str] = []
        self._logs.clear()
        while True:
            attempts += 1
            await gw.journal.update_job(job.id, state="relaying", attempts=attempts)
            self._set(state="relaying", phase="transfer", progress=0.0)
            start = time.monotonic()
            try:
                result = await self._flash_watching_cancel(link, job, options, image, name)
            except _Cancelled as cancel:  # hawkBit: the device confirms on cancelAction/{id}/feedback
                await self._confirm_cancel(
                    cancel.cancel_id, "relay stopped mid-transfer; the device keeps its old image", job=job
                )
                gw.metrics.jobs.labels(result="cancelled").inc()
                self._set(state="idle", message="cancelled")
                return
            except UpdateError as err:  # the device came back on the old image: a revert is a failure
                await self._fail(job, f"{err}", notes)
                return
            except (Stm32OtaError, OSError) as err:
                note = f"attempt {attempts} failed after {time.monotonic() - start:.1f} s: {err}"
                notes.append(note)
                log.warning("%s: %s", self.cid, note)
                if attempts >= cfg.relay_attempts:
                    await self._fail(job, "relay failed", notes)
                    return
                await self._feedback(
                    job,
                    "resumed",
                    details=[note, "resuming from the device's resume record"],
                    progress=(job.progress_cnt, PROGRESS_STEPS),
                    coalesce=None,
                )
                link = await self._reopen(link)
                continue
            await self._succeed_or_fail(job, result, notes, image)
            return

    async def _reopen(self, link: AsyncSerialLink) -> AsyncSerialLink:
        """After a failed attempt: the device may have reset (power cut, cable).  Close, wait, open again."""
        with contextlib.suppress(Exception):
            await link.close()
        delay = REOPEN_MIN_S
        while True:
            await asyncio.sleep(delay)
            try:
                self._link = await AsyncSerialLink.open(self.port.url, self.port.baud)
                return self._link
            except (PortError, OSError) as err:
                self._set(state="absent", message=f"device gone: {err}")
                delay = min(REOPEN_MAX_S, delay * 2)

    async def _flash_watching_cancel(
        self, link: AsyncSerialLink, job: Job, options: FlashOptions, image: bytes, name: str
    ) -> FlashResult:
        flash = asyncio.ensure_future(
            link.execute(flash_image(image, options, on_event=self._on_event, clock=time.monotonic, name=name))
        )
        reporter = asyncio.ensure_future(self._report_progress(job, flash))
        watcher = asyncio.ensure_future(self._watch_cancel(job, flash))
        try:
            result: FlashResult = await flash
            return result
        except asyncio.CancelledError:
            cancel = watcher.result() if watcher.done() and not watcher.cancelled() else None
            if isinstance(cancel, _Cancelled):
                raise cancel from None
            raise
        finally:
            if not flash.done():
                flash.cancel()
                await asyncio.gather(flash, return_exceptions=True)
            for task in (reporter, watcher):
                task.cancel()
            await asyncio.gather(reporter, watcher, return_exceptions=True)
            await self._flush_logs(job)

    async def _watch_cancel(self, job: Job, flash: asyncio.Future[Any]) -> _Cancelled | None:
        client, cid = self.gw.client, self.cid or ""
        while not flash.done():
            # every CANCEL_CHECK_S, or at once when the server's event stream says this device has news
            await wait_event(self._wake, CANCEL_CHECK_S * self.gw.time_factor)
            self._wake.clear()
            if flash.done():
                break
            try:
                poll = await client.poll(cid)
            except UplinkError:
                continue  # the uplink is away: keep relaying
            cancel = poll.action_link("cancelAction")
            if cancel is None:
                continue
            try:
                stop_id = await client.cancel_action(cid, cancel[0])
            except UplinkError:
                continue
            if stop_id == job.action_id:
                log.info("%s: the server cancelled action %s mid-relay", cid, job.action_id)
                flash.cancel()  # the flow's cancel cleanup tells the device (ABORT)
                return _Cancelled(cancel[0], cancel[1])
        return None

    async def _report_progress(self, job: Job, flash: asyncio.Future[Any]) -> None:
        last: tuple[str, int] | None = None
        while not flash.done():
            await asyncio.sleep(self.gw.config.progress_interval)
            cnt = int(self.status.progress * PROGRESS_STEPS)
            now = (self.status.phase, cnt)
            if now != last:
                last = now
                await self._feedback(
                    job,
                    "proceeding",
                    details=[f"{self.status.phase} {cnt}%"],
                    progress=(cnt, PROGRESS_STEPS),
                    coalesce=f"progress-{job.action_id}",
                )
            await self._flush_logs(job)

    async def _fail(self, job: Job, reason: str, notes: list[str]) -> None:
        details = [f"{self.cid}: {reason}", *notes]
        if self.info is not None:
            details.append(f"device before: {running_version(self.info)}")
        details += [f"device log: {line}" for line in self._logs]
        await self._feedback(job, "closed", "failure", details, state="failed")
        self.gw.metrics.jobs.labels(result="failed").inc()
        self._set(state="idle", message=reason)

    async def _succeed_or_fail(self, job: Job, result: FlashResult, notes: list[str], image: bytes) -> None:
        after = result.info_after
        primary = _primary(after) if after else None
        if after is None or primary is None or primary.digest not in image_digests(image):
            await self._fail(job, "the device does not run the new image after the update", notes)
            return
        if primary.state is not SlotState.CONFIRMED:
            await self._fail(job, f"the new image runs but is not confirmed ({primary.state.name.lower()})", notes)
            return
        version = running_version(after)
        resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
        details = [
            f"{self.cid}: running {version} confirmed",
            f"{result.image_size} bytes over {self.port.url}{resumed}, {result.retransmits} blocks resent",
            *notes,
        ]
        await self._feedback(
            job, "closed", "success", details, progress=(PROGRESS_STEPS, PROGRESS_STEPS), state="succeeded"
        )
        self.gw.metrics.jobs.labels(result="succeeded").inc()
        self.gw.metrics.relayed_bytes.inc(result.image_size)
        self._set(state="idle", version=version, progress=1.0, message=f"updated to {version}")
        assert self.cid is not None
        cid = self.cid
        config = self.config_data(after)
        with contextlib.suppress(UplinkError):  # the next start sends it anyway
            await self.gw.client.put_config(cid, config)
