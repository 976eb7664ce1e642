"""What the app does to a device, without Qt: each operation opens the port, runs flow pieces, closes it.

The workers (:mod:`updater_gui.workers`) call these on their own thread.  Everything the flow reports goes
through :class:`EventAdapter`, which turns the core's events into the two things the window renders: a
:class:`Snapshot` (phase, bytes, rate, ETA, message: the flow's :class:`~protocol.progress.ProgressSnapshot`
as the window needs it) and a :class:`LogRecord` (a device log line, or a phase's start/end message).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Literal

from protocol.device_commands import confirm_steps, reset_steps, rollback_steps
from protocol.drivers import CancelToken, SerialLink
from protocol.errors import Cancelled
from protocol.flow import FlashOptions, FlashResult, detect_protocol, flash_image, read_info
from protocol.progress import PhaseStatus, ProgressMeter, ProgressSnapshot
from protocol.pump import IoRequest, PumpResult, pump
from protocol.sansio import DeviceLog, Event, Progress
from protocol.update.events import CommandComplete
from protocol.update.host import HostConnection
from protocol.update.messages import DeviceInfo

__all__ = [
    "PHASES",
    "DeviceSnapshot",
    "EventAdapter",
    "LogRecord",
    "Snapshot",
    "Target",
    "activate_and_reboot",
    "confirm",
    "flash",
    "read_device",
    "reset",
    "rollback",
]

log = logging.getLogger(__name__)

# The phases a person sees, in the order they run.
PHASES = ("connect", "info", "check", "erase", "transfer", "verify", "activate", "reboot", "confirm", "done")
LOG_LEVEL_NAMES = {0: "error", 1: "warning", 2: "info", 3: "debug"}
HOST = "host"
DEVICE = "device"


@dataclass(frozen=True)
class Target:
    """Where the device is: a pyserial URL (or a path) and the rate to open it at."""

    url: str
    baud: int = 115200


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """One look at an operation's progress."""

    phase: str
    done: int = 0
    total: int = 0
    rate: float = 0.0  # bytes per second
    eta: float | None = None  # seconds
    message: str = ""

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0


@dataclass(frozen=True, kw_only=True)
class LogRecord:
    """A line of the log console: from the device (a log frame) or from the host (a flow step, an error)."""

    time: float  # wall-clock seconds
    level: str  # "error", "warning", "info", "debug"
    source: str  # DEVICE or HOST
    text: str
    device_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class DeviceSnapshot:
    """What the device panel shows: INFO for an update-protocol device, or a classic IAP menu."""

    kind: Literal["ota", "iap"]
    info: DeviceInfo | None = None
    banner: str = ""


@dataclass
class EventAdapter:
    """Flow events in, snapshots and log records out (through the two callbacks)."""

    on_snapshot: Callable[[Snapshot], None]
    on_log: Callable[[LogRecord], None]
    clock: Callable[[], float] = time.monotonic
    meter: ProgressMeter = field(default_factory=ProgressMeter)
    phase: str = "connect"
    message: str = ""

    def __call__(self, event: Event) -> None:
        if isinstance(event, ProgressSnapshot):  # the flow's own meter measured it
            self.phase = str(event.phase.value)
            if event.message:
                self.message = event.message
            self.on_snapshot(
                Snapshot(
                    phase=self.phase,
                    done=event.done,
                    total=event.total,
                    rate=event.rate,
                    eta=event.eta,
                    message=event.message or self.message,
                )
            )
            if event.message and event.status is not PhaseStatus.RUNNING:
                level = "error" if event.status is PhaseStatus.FAILED else "info"
                self.on_log(LogRecord(time=time.time(), level=level, source=HOST, text=event.message))
        elif isinstance(event, Progress):  # raw core progress (a command outside the flow): the same meter
            snapshot = self.meter.progress(event, self.clock())
            if snapshot is not None:
                self(snapshot)
        elif isinstance(event, DeviceLog):
            self.on_log(
                LogRecord(
                    time=time.time(),
                    level=LOG_LEVEL_NAMES.get(event.level, "debug"),
                    source=DEVICE,
                    text=event.text,
                    device_ms=event.timestamp_ms,
                )
            )

    def step(self, phase: str, message: str, level: str = "info") -> None:
        self.phase = "confirm" if phase == "boot" else phase
        self.message = message
        self.on_snapshot(Snapshot(phase=self.phase, message=message))
        self.on_log(LogRecord(time=time.time(), level=level, source=HOST, text=message))


def _command(host: HostConnection, on_event: Callable[[Event], None]) -> Generator[IoRequest, PumpResult, None]:
    yield from pump(host, time.monotonic(), until=lambda e: isinstance(e, CommandComplete), on_event=on_event)


def _read(link: SerialLink, cancel: CancelToken, adapter: EventAdapter) -> DeviceSnapshot:
    kind = link.execute(detect_protocol(time.monotonic), cancel=cancel)
    if kind == "ymodem":
        return DeviceSnapshot(kind="iap", banner="classic AN4657 IAP menu (YMODEM download)")
    info = link.execute(read_info(HostConnection(baud=link.baud), time.monotonic, adapter), cancel=cancel)
    return DeviceSnapshot(kind="ota", info=info)


def read_device(target: Target, *, cancel: CancelToken, adapter: EventAdapter) -> DeviceSnapshot:
    """Probe the device and read its INFO."""
    adapter.step("connect", f"opening {target.url} at {target.baud} baud")
    with SerialLink(target.url, target.baud) as link:
        snapshot = _read(link, cancel, adapter)
    adapter.step("info", "classic IAP device" if snapshot.kind == "iap" else "device information read")
    return snapshot


def flash(
    target: Target,
    image: bytes,
    name: str,
    options: FlashOptions,
    *,
    cancel: CancelToken,
    adapter: EventAdapter,
) -> tuple[FlashResult, DeviceSnapshot]:
    """The whole update.  On a cancel the flow tells the device (the drivers' cancel contract), so the next
    flash resumes at once where this one stopped."""
    with SerialLink(target.url, target.baud) as link:
        try:
            result = link.execute(
                flash_image(image, options, on_event=adapter, clock=time.monotonic, name=name), cancel=cancel
            )
        except Cancelled:  # the flow's own cleanup has told the device (ABORT, or CAN CAN for YMODEM)
            adapter.step("cancelled", "cancelled: the device keeps what it received; Flash resumes there", "warning")
            raise
        snapshot = _read(link, CancelToken(), adapter) if result.protocol == "ota" else DeviceSnapshot(kind="iap")
    if result.complete or result.protocol == "ymodem":
        adapter.step("done", "update complete")
    else:
        left = ", ".join(step.value for step in result.left_to_do)
        adapter.step("done", f"image installed; left to do: {left}")
    return result, snapshot


def _activate(target: Target, adapter: EventAdapter, cancel: CancelToken, permanent: bool) -> None:
    with SerialLink(target.url, target.baud) as link:
        host = HostConnection(baud=link.baud)
        host.activate(permanent, slot=1)
        link.execute(_command(host, adapter), cancel=cancel)
    adapter.step("activate", "the new image is marked to boot")


def confirm(target: Target, *, cancel: CancelToken, adapter: EventAdapter) -> DeviceSnapshot:
    """CONFIRM the image under test (``protocol.device_commands``)."""
    with SerialLink(target.url, target.baud) as link:
        result = link.execute(confirm_steps(baud=link.baud, clock=time.monotonic, on_event=adapter), cancel=cancel)
    adapter.step("confirm", result.summary)
    return DeviceSnapshot(kind="ota", info=result.after)


def rollback(target: Target, *, cancel: CancelToken, adapter: EventAdapter) -> DeviceSnapshot:
    """ROLLBACK and reset: the previous image runs again."""
    with SerialLink(target.url, target.baud) as link:
        steps = rollback_steps(baud=link.baud, clock=time.monotonic, on_event=adapter, reboot=True)
        result = link.execute(steps, cancel=cancel)
    adapter.step("done", result.summary)
    return DeviceSnapshot(kind="ota", info=result.after)


def reset(target: Target, *, cancel: CancelToken, adapter: EventAdapter) -> DeviceSnapshot:
    """REBOOT and wait until the device answers again."""
    adapter.step("reboot", "the device is restarting")
    with SerialLink(target.url, target.baud) as link:
        result = link.execute(reset_steps(baud=link.baud, clock=time.monotonic, on_event=adapter), cancel=cancel)
    adapter.step("done", result.summary)
    return DeviceSnapshot(kind="ota", info=result.after)


def activate_and_reboot(
    target: Target, *, permanent: bool = False, cancel: CancelToken, adapter: EventAdapter
) -> DeviceSnapshot:
    """ACTIVATE slot 1 (for a test boot unless ``permanent``), then reset into it."""
    _activate(target, adapter, cancel, permanent)
    return reset(target, cancel=cancel, adapter=adapter)
