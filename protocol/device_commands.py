"""Device commands a technician expects: ports, reset, confirm, rollback, erase, read, terminal.

Plain functions that take the link first, as esptool's ``cmds.py`` does::

    with SerialLink(port, DEFAULT_BAUD) as link:
        result = reset(link, on_event=reporter)
        sys.stdout.write(result.summary + "\\n")

They never print.  What happens along the way reaches ``on_event``: the cores'
:class:`~protocol.sansio.Progress` and :class:`~protocol.sansio.DeviceLog` and the flow's
milestones as :class:`~protocol.progress.ProgressSnapshot` notes; each returns a result with a ``summary`` sentence and
``to_json()``.  Each command is also a generator of I/O requests (``reset_steps`` ...), built from the same
pieces as the update flow (:func:`~protocol.flow.detect_protocol`, :func:`~protocol.flow.read_info`,
:func:`~protocol.pump.pump`), so the asyncio driver and the GUI's worker run the same code.

A classic AN4657 IAP menu is recognised by the same probe ``flash`` uses before any frame is sent (a frame's
bytes typed into that menu could pick one of its options) and refused with :class:`IapDeviceError` where the
command cannot apply to it.  Every failure is a :class:`~protocol.errors.Stm32OtaError` with a hint.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from .crc import crc16_xmodem
from .drivers.link import SerialLink
from .errors import DeviceError, PortError, ProtocolTimeoutError, Stm32OtaError
from .flow import (
    REBOOT_POLL_S,
    REBOOT_TIMEOUT_S,
    detect_protocol,
    image_digests,
    read_info,
    slot_json,
)
from .progress import Phase, PhaseStatus, ProgressSnapshot
from .pump import IoRequest, PumpResult, Write, pump, with_deadline
from .sansio import DeviceLog, Event, Progress
from .update.constants import (
    DIGEST_SIZE,
    FRAME_HEADER_SIZE,
    FRAME_TRAILER_SIZE,
    MAX_PAYLOAD,
    PRIMARY_SLOT,
    SECONDARY_SLOT,
    SOF,
)
from .update.events import CommandComplete, SlotDigest, SlotErased, SlotRead
from .update.frames import FrameType
from .update.host import HostConnection
from .update.messages import DeviceInfo, LogRecord, SlotInfo, SlotState
from .update.status import Status
from .ymodem import BatchComplete, FileData, FileStarted, YmodemReceiver

__all__ = [
    "PRIMARY_SLOT",
    "SECONDARY_SLOT",
    "USB_BRIDGES",
    "ConfirmResult",
    "DeviceCommandError",
    "EraseResult",
    "IapDeviceError",
    "LogFrameSplitter",
    "PortInfo",
    "ReadResult",
    "ResetResult",
    "RollbackResult",
    "TerminalResult",
    "bridge_name",
    "confirm",
    "confirm_steps",
    "describe_running",
    "erase",
    "erase_steps",
    "list_serial_ports",
    "read_slot",
    "read_slot_steps",
    "reset",
    "reset_steps",
    "rollback",
    "rollback_steps",
    "terminal",
]

# A reset waits for the device exactly as the update flow's reboot does (the bootloader may swap two slots
# with real flash timings before the app answers; device logs still show between the INFO tries).
RESET_TIMEOUT_S = REBOOT_TIMEOUT_S
RESET_POLL_S = REBOOT_POLL_S
READ_CHUNK_ATTEMPTS = 12  # consecutive tries of one READ without an intact answer before giving up
READ_SHRINK_AFTER = 2  # failed tries of one READ after which it asks for READ_CHUNK_SHRINK times fewer bytes
READ_CHUNK_SHRINK = 4  # (long replies rarely survive a noisy line)
READ_CHUNK_GROW_AFTER = 16  # clean answers in a row after which the reads grow back (x2, up to max_block)
MIN_READ_CHUNK = 64
TERMINAL_POLL_S = 0.02  # the terminal's read wait: keys and device output both feel immediate
TERMINAL_HOLD_S = 0.05  # bytes that may start a frame are held this long before they count as raw output
TERMINAL_QUIET_EXIT_S = 0.5  # after the end of piped input, the session ends once the line is this quiet
EXIT_KEY = b"\x1d"  # Ctrl-], as in telnet and miniterm

Report = Callable[[Event], None]
Steps = Generator[IoRequest, PumpResult, "object"]


class DeviceCommandError(Stm32OtaError):
    """A device command cannot do what was asked (no such slot, nothing to read, ...)."""


class IapDeviceError(DeviceCommandError):
    """The device is a classic AN4657 IAP menu, which has no such command."""


# --- ports ---------------------------------------------------------------------------------------------------

# USB-UART bridges met on STM32 boards and cables: (VID, PID) -> name
USB_BRIDGES: dict[tuple[int, int], str] = {
    (0x0483, 0x374B): "ST-LINK/V2-1 virtual COM port",
    (0x0483, 0x374E): "STLINK-V3 virtual COM port",
    (0x0483, 0x374F): "STLINK-V3 virtual COM port",
    (0x0483, 0x3752): "ST-LINK/V2-1 virtual COM port",
    (0x0483, 0x3753): "STLINK-V3 virtual COM port (2 VCPs)",
    (0x10C4, 0xEA60): "Silicon Labs CP210x USB-UART bridge",
    (0x1A86, 0x7523): "WCH CH340 USB-UART bridge",
    (0x0403, 0x6001): "FTDI FT232R USB-UART",
    (0x0403, 0x6010): "FTDI FT2232 dual USB-UART",
    (0x0403, 0x6014): "FTDI FT232H USB-UART",
    (0x0403, 0x6015): "FTDI FT-X (FT230X/FT231X) USB-UART",
}


def bridge_name(vid: int | None, pid: int | None) -> str | None:
    """The name of a known USB-UART bridge, or ``None``."""
    if vid is None or pid is None:
        return None
    return USB_BRIDGES.get((vid, pid))


@dataclass(frozen=True, kw_only=True)
class PortInfo:
    """One serial port: what the OS knows (pyserial's ``list_ports``) plus the bridge's name."""

    device: str
    description: str
    hwid: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    location: str | None = None

    @property
    def vid_pid(self) -> str | None:
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04X}:{self.pid:04X}"

    @property
    def bridge(self) -> str | None:
        return bridge_name(self.vid, self.pid)

    @classmethod
    def from_pyserial(cls, port: ListPortInfo) -> PortInfo:
        description = port.description if port.description and port.description != "n/a" else ""
        device = str(port.device)
        if not description and os.path.realpath(device).startswith("/dev/pts/"):
            description = "pseudo-terminal (a pty: an emulator, ser2net, socat...)"
        return cls(
            device=device,
            description=description or "n/a",
            hwid=str(port.hwid or "n/a"),
            vid=port.vid,
            pid=port.pid,
            serial_number=port.serial_number,
            manufacturer=port.manufacturer,
            product=port.product,
            location=port.location,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "device": self.device,
            "description": self.description,
            "vid_pid": self.vid_pid,
            "vid": None if self.vid is None else f"{self.vid:04x}",
            "pid": None if self.pid is None else f"{self.pid:04x}",
            "bridge": self.bridge,
            "serial_number": self.serial_number,
            "manufacturer": self.manufacturer,
            "product": self.product,
            "location": self.location,
            "hwid": self.hwid,
        }


def _describe_path(path: str) -> ListPortInfo:
    if "://" in path:
        info = ListPortInfo(path, skip_link_detection=True)
        info.description = f"pyserial {path.split('://', 1)[0]}:// URL"
        return info
    if not os.path.exists(path):
        raise PortError(f"no such port: {path}", hint="check the name: `stm32ota ports` lists the serial ports")
    if not stat.S_ISCHR(os.stat(path).st_mode):
        raise PortError(
            f"{path} is not a serial port (not a character device)",
            hint="name a tty: `stm32ota ports` lists the serial ports",
        )
    known = {p.device: p for p in list_ports.comports(include_links=True)}
    if path in known:
        return known[path]
    if os.name == "posix" and os.path.isdir("/sys/class/tty"):
        from serial.tools.list_ports_linux import SysFS

        return SysFS(path)  # what sysfs knows about a port comports() does not list (a pty, a link)
    return ListPortInfo(path)


def list_serial_ports(extra: Iterable[str] = ()) -> list[PortInfo]:
    """Every serial port the OS lists (symlinks such as ``/dev/serial/by-id/...`` included), plus the ports
    named in ``extra`` (a pty, a symlink elsewhere, a pyserial URL), sorted by name."""
    found: dict[str, PortInfo] = {}
    for port in list_ports.comports(include_links=True):
        info = PortInfo.from_pyserial(port)
        found[info.device] = info
    for path in extra:
        found[path] = PortInfo.from_pyserial(_describe_path(path))
    return [found[name] for name in sorted(found)]


# --- what a device runs --------------------------------------------------------------------------------------


def _slot(info: DeviceInfo | None, index: int) -> SlotInfo | None:
    if info is None:
        return None
    return next((s for s in info.slots if s.index == index), None)


def _running(info: DeviceInfo) -> SlotInfo | None:
    primary = _slot(info, PRIMARY_SLOT)
    if primary is not None and primary.state in (SlotState.ACTIVE, SlotState.CONFIRMED):
        return primary
    return None


def describe_running(info: DeviceInfo) -> str:
    """One sentence: what the device runs, and what the technician can do about it."""
    running = _running(info)
    secondary = _slot(info, SECONDARY_SLOT)
    pending = ""
    if secondary is not None and secondary.state in (SlotState.PENDING_TEST, SlotState.PENDING_PERMANENT):
        kind = "test" if secondary.state is SlotState.PENDING_TEST else "permanent"
        pending = f"; slot 1 holds {secondary.version_text} waiting for a {kind} boot at the next reset"
    if running is None:
        return (
            f"no bootable image: bootloader {info.bootloader_version or '?'} waits in serial recovery "
            f"for an image (stm32ota flash -p PORT IMAGE){pending}"
        )
    if running.state is SlotState.ACTIVE:
        return (
            f"running {running.version_text} under test: `stm32ota confirm` keeps it, "
            f"the next reset goes back to the previous image{pending}"
        )
    return f"running {running.version_text} (confirmed){pending}"


def _slot_json(slot: SlotInfo | None) -> dict[str, object] | None:
    return None if slot is None else slot_json(slot)


def _state_json(info: DeviceInfo | None) -> dict[str, object] | None:
    if info is None:
        return None
    running = _running(info)
    return {
        "running": _slot_json(running),
        "serial_recovery": running is None,
        "slots": [_slot_json(s) for s in info.slots],
        "summary": describe_running(info),
    }


# --- shared pieces -------------------------------------------------------------------------------------------

_IAP_HINTS = {
    "reset": "its option 3 starts the application: type 3 in `stm32ota terminal -p PORT`, "
    "or press the board's reset button",
    "confirm": "it runs whatever it was sent last: there is no test boot to confirm",
    "rollback": "it keeps no previous image: flash the old file again (stm32ota flash -p PORT OLD.bin)",
    "erase": "it erases the application area itself before every download (stm32ota flash -p PORT app.bin)",
    "read": "it has one application area: read it without --slot/--raw (its upload option sends it by YMODEM)",
}
IAP_UPLOAD_KEY = b"2"  # AN4657 main menu: "Upload image from the internal Flash"
IAP_UPLOAD_REQUESTS = 10  # 'C's sent (one a second) before the menu's upload counts as not starting


def _step(phase: Phase, message: str) -> ProgressSnapshot:
    """A milestone a person can read: a note of the progress model (no bytes), as the flow's own notes."""
    return ProgressSnapshot(phase=phase, status=PhaseStatus.RUNNING, message=message)


def _noop(event: Event) -> None:
    del event


def _iap_error(command: str) -> IapDeviceError:
    what = "slots" if command == "read" else command
    return IapDeviceError(f"this device is an AN4657 IAP menu; it has no {what}", hint=_IAP_HINTS[command])


def _connect(
    command: str, baud: int, clock: Callable[[], float], report: Report, *, probed: bool = False
) -> Generator[IoRequest, PumpResult, tuple[HostConnection, DeviceInfo]]:
    """Probe for an IAP menu (before any frame is sent), then INFO."""
    if not probed:
        report(_step(Phase.PROBE, "probing the device"))
        protocol = yield from detect_protocol(clock)
        if protocol == "ymodem":
            raise _iap_error(command)
    host = HostConnection(baud=baud)
    info = yield from read_info(host, clock, report)
    return host, info


def _command(host: HostConnection, clock: Callable[[], float], report: Report) -> Steps:
    return pump(host, clock(), until=lambda e: isinstance(e, CommandComplete), on_event=report)


def _end_transfer(host: HostConnection, clock: Callable[[], float], report: Report) -> Steps:
    """A device still in the data phase of a transfer that was cut off refuses every other command with
    NOT_ALLOWED: end it with ABORT (the device keeps its resume record, so `flash` continues it later)."""
    report(
        _step(
            Phase.OTHER,
            "the device was in the middle of a transfer: ending it first (`stm32ota flash` resumes it later)",
        )
    )
    host.abort()
    return _command(host, clock, report)


def _execute(
    host: HostConnection,
    start: Callable[[], None],
    until: Callable[[Event], bool],
    clock: Callable[[], float],
    report: Report,
) -> Generator[IoRequest, PumpResult, Event | None]:
    """Start a command and wait for the event that completes it; after NOT_ALLOWED (a transfer left in its
    data phase) end that transfer and try once more."""
    start()
    try:
        event = yield from pump(host, clock(), until=until, on_event=report)
        return event
    except DeviceError as err:
        if err.status != Status.NOT_ALLOWED:
            raise
    yield from _end_transfer(host, clock, report)
    start()
    event = yield from pump(host, clock(), until=until, on_event=report)
    return event


def _completes(event: Event) -> bool:
    return isinstance(event, CommandComplete)


def _wait_for_device(
    baud: int, clock: Callable[[], float], report: Report, timeout: float
) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    """Poll INFO until the restarted device answers (it may swap slots with real flash timings first)."""
    deadline = clock() + timeout
    while True:
        try:
            info: DeviceInfo = yield from read_info(HostConnection(baud=baud), clock, report)
        except (ProtocolTimeoutError, DeviceError) as err:
            if isinstance(err, DeviceError) and err.status != Status.BUSY:
                raise
            if clock() > deadline:
                raise ProtocolTimeoutError(
                    f"the device did not answer within {timeout:.0f} s after the reset",
                    hint="check power and the cable; `stm32ota terminal -p PORT` shows what it prints",
                ) from err
            yield from with_deadline(pump(HostConnection(baud=baud), clock(), on_event=report), clock() + RESET_POLL_S)
            continue
        return info


def _reboot_and_wait(
    host: HostConnection, baud: int, clock: Callable[[], float], report: Report, timeout: float
) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    yield from _execute(host, host.reboot, _completes, clock, report)
    report(_step(Phase.REBOOT, "the device is restarting"))
    info = yield from _wait_for_device(baud, clock, report, timeout)
    return info


# --- reset ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ResetResult:
    before: DeviceInfo
    after: DeviceInfo
    seconds: float

    @property
    def change(self) -> Literal["swapped", "reverted", "recovery", None]:
        """What the reset changed: a pending image swapped in, a test image reverted, or no image left."""
        old, new = _running(self.before), _running(self.after)
        if new is None:
            return None if old is None else "recovery"
        if old is not None and old.digest == new.digest:
            return None
        secondary = _slot(self.before, SECONDARY_SLOT)
        if secondary is not None and secondary.digest == new.digest:
            if secondary.state in (SlotState.PENDING_TEST, SlotState.PENDING_PERMANENT):
                return "swapped"
            return "reverted"
        return "swapped"

    @property
    def summary(self) -> str:
        change = self.change
        prefix = {
            "swapped": "the bootloader swapped in the new image: ",
            "reverted": "the test image was not confirmed, the bootloader went back: ",
            "recovery": "the device came back without its image: ",
            None: "",
        }[change]
        return f"reset in {self.seconds:.1f} s; {prefix}{describe_running(self.after)}"

    def to_json(self) -> dict[str, object]:
        return {
            "command": "reset",
            "seconds": round(self.seconds, 3),
            "change": self.change,
            "before": _state_json(self.before),
            "after": _state_json(self.after),
        }


def reset_steps(
    *, baud: int, clock: Callable[[], float], on_event: Report = _noop, timeout: float = RESET_TIMEOUT_S
) -> Generator[IoRequest, PumpResult, ResetResult]:
    host, before = yield from _connect("reset", baud, clock, on_event)
    start = clock()
    after = yield from _reboot_and_wait(host, baud, clock, on_event, timeout)
    return ResetResult(before=before, after=after, seconds=clock() - start)


def reset(link: SerialLink, *, on_event: Report = _noop, timeout: float = RESET_TIMEOUT_S) -> ResetResult:
    """REBOOT the device, wait until it answers again, and report what it runs."""
    return link.execute(reset_steps(baud=link.baud, clock=time.monotonic, on_event=on_event, timeout=timeout))


# --- confirm -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ConfirmResult:
    image: SlotInfo
    after: DeviceInfo

    @property
    def summary(self) -> str:
        return f"confirmed {self.image.version_text}: it stays after every reset"

    def to_json(self) -> dict[str, object]:
        return {"command": "confirm", "image": _slot_json(self.image), "after": _state_json(self.after)}


def _not_confirmable(info: DeviceInfo, err: DeviceError) -> DeviceError:
    secondary = _slot(info, SECONDARY_SLOT)
    running = _running(info)
    hint = err.hint
    if secondary is not None and secondary.state is SlotState.PENDING_TEST:
        hint = (
            f"slot 1 holds {secondary.version_text} waiting for its test boot: "
            "`stm32ota reset -p PORT` boots it, then confirm"
        )
    elif running is not None:
        hint = f"{running.version_text} is already confirmed; to test an image, flash it with --no-confirm first"
    return DeviceError(str(err), status=err.status, hint=hint)


def confirm_steps(
    *, baud: int, clock: Callable[[], float], on_event: Report = _noop
) -> Generator[IoRequest, PumpResult, ConfirmResult]:
    host, before = yield from _connect("confirm", baud, clock, on_event)
    running = _running(before)
    try:
        yield from _execute(host, host.confirm, _completes, clock, on_event)
    except DeviceError as err:
        if err.status == Status.NOT_CONFIRMABLE:
            raise _not_confirmable(before, err) from err
        raise
    after = yield from read_info(host, clock, on_event)
    image = _running(after) or running
    assert image is not None, "a device that confirmed something runs it"
    return ConfirmResult(image=image, after=after)


def confirm(link: SerialLink, *, on_event: Report = _noop) -> ConfirmResult:
    """CONFIRM the image under test (MCUboot's ``boot_set_confirmed``): it stays after every reset."""
    return link.execute(confirm_steps(baud=link.baud, clock=time.monotonic, on_event=on_event))


# --- rollback ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RollbackResult:
    before: DeviceInfo
    after: DeviceInfo | None  # after the reset, with --reboot
    target: SlotInfo | None  # the image the device goes back to
    seconds: float = 0.0

    @property
    def summary(self) -> str:
        target = self.target.version_text if self.target is not None else "the previous image"
        if self.after is None:
            return f"{target} runs again after the next reset (stm32ota reset -p PORT)"
        running = _running(self.after)
        if running is not None and self.target is not None and running.digest == self.target.digest:
            return f"rolled back in {self.seconds:.1f} s: {describe_running(self.after)}"
        return f"reset after the rollback: {describe_running(self.after)}"

    def to_json(self) -> dict[str, object]:
        return {
            "command": "rollback",
            "target": _slot_json(self.target),
            "rebooted": self.after is not None,
            "seconds": round(self.seconds, 3),
            "before": _state_json(self.before),
            "after": _state_json(self.after),
        }


def rollback_steps(
    *,
    baud: int,
    clock: Callable[[], float],
    on_event: Report = _noop,
    reboot: bool = False,
    timeout: float = RESET_TIMEOUT_S,
) -> Generator[IoRequest, PumpResult, RollbackResult]:
    host, before = yield from _connect("rollback", baud, clock, on_event)
    secondary = _slot(before, SECONDARY_SLOT)
    try:
        yield from _execute(host, host.rollback, _completes, clock, on_event)
    except DeviceError as err:
        if err.status == Status.NO_ROLLBACK:
            hint = err.hint
            if secondary is None or secondary.state is SlotState.EMPTY:
                hint = "slot 1 is empty: there is no previous image on the device to go back to"
            raise DeviceError(str(err), status=err.status, hint=hint) from err
        raise
    target = secondary if secondary is not None and secondary.state is not SlotState.EMPTY else None
    on_event(_step(Phase.OTHER, "the device goes back to the previous image at the next reset"))
    if not reboot:
        return RollbackResult(before=before, after=None, target=target)
    start = clock()
    after = yield from _reboot_and_wait(host, baud, clock, on_event, timeout)
    return RollbackResult(before=before, after=after, target=target, seconds=clock() - start)


def rollback(
    link: SerialLink, *, reboot: bool = False, on_event: Report = _noop, timeout: float = RESET_TIMEOUT_S
) -> RollbackResult:
    """ROLLBACK to the previous image at the next reset; with ``reboot`` reset now and report what runs."""
    return link.execute(
        rollback_steps(baud=link.baud, clock=time.monotonic, on_event=on_event, reboot=reboot, timeout=timeout)
    )


# --- erase ---------------------------------------------------------------------------------------------------


def _check_slot(info: DeviceInfo, slot: int) -> None:
    regions = sorted(r.index for r in info.flash.slots)
    if slot not in regions:
        raise DeviceCommandError(
            f"the device has no slot {slot}",
            hint=f"its slots are {', '.join(map(str, regions))} (the bootloader and its state area have none)",
        )


@dataclass(frozen=True, kw_only=True)
class EraseResult:
    slot: int
    erased: int
    sectors: int
    seconds: float
    previous: SlotInfo | None  # what the slot held
    resetting: bool
    after: DeviceInfo | None

    @property
    def summary(self) -> str:
        held = ""
        if self.previous is not None and self.previous.state is not SlotState.EMPTY:
            held = f" (it held {self.previous.version_text}, {self.previous.state.name.lower()})"
        text = f"erased slot {self.slot}{held}: {self.erased} bytes, {self.sectors} sectors in {self.seconds:.1f} s"
        if self.resetting and self.after is not None:
            text += f"; the device reset: {describe_running(self.after)}"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "command": "erase",
            "slot": self.slot,
            "erased": self.erased,
            "sectors": self.sectors,
            "seconds": round(self.seconds, 3),
            "previous": _slot_json(self.previous),
            "device_reset": self.resetting,
            "after": _state_json(self.after),
        }


def erase_steps(
    slot: int,
    *,
    baud: int,
    clock: Callable[[], float],
    on_event: Report = _noop,
    force: bool = False,
    timeout: float = RESET_TIMEOUT_S,
) -> Generator[IoRequest, PumpResult, EraseResult]:
    host, info = yield from _connect("erase", baud, clock, on_event)
    _check_slot(info, slot)
    region = info.flash.slot(slot)
    sectors = sum(1 for _ in _sectors_in(info, region.address, region.size))
    start = clock()
    event = yield from _execute(
        host, lambda: host.erase(slot, force=force), lambda e: isinstance(e, SlotErased), clock, on_event
    )
    assert isinstance(event, SlotErased)
    seconds = clock() - start
    after: DeviceInfo | None = None
    if event.resetting:
        on_event(_step(Phase.REBOOT, "the device erased its running image and restarts"))
        after = yield from _wait_for_device(baud, clock, on_event, timeout)
    else:
        after = yield from read_info(host, clock, on_event)
    return EraseResult(
        slot=slot,
        erased=event.erased,
        sectors=sectors,
        seconds=seconds,
        previous=_slot(info, slot),
        resetting=event.resetting,
        after=after,
    )


def _sectors_in(info: DeviceInfo, address: int, size: int) -> Iterable[int]:
    start = info.flash.base
    for index, sector in enumerate(info.flash.sector_sizes()):
        if start < address + size and address < start + sector:
            yield index
        start += sector


def erase(
    link: SerialLink, slot: int, *, force: bool = False, on_event: Report = _noop, timeout: float = RESET_TIMEOUT_S
) -> EraseResult:
    """ERASE a slot.  The slot the running image lives in needs ``force``; the device then restarts into
    its bootloader (serial recovery), and the result says what it runs after."""
    return link.execute(
        erase_steps(slot, baud=link.baud, clock=time.monotonic, on_event=on_event, force=force, timeout=timeout)
    )


# --- read ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReadResult:
    slot: int
    data: bytes = field(repr=False)
    raw: bool
    image: SlotInfo | None
    seconds: float
    checks: tuple[str, ...]  # what the read was verified against
    source: Literal["slot", "iap-upload"] = "slot"  # a slot by READ, or an AN4657 menu's upload option

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def summary(self) -> str:
        what = "the whole slot" if self.raw else f"the image {self.image.version_text}" if self.image else "the image"
        where = f"from slot {self.slot}"
        if self.source == "iap-upload":
            what, where = "the application area", "with the IAP menu's upload"
        rate = len(self.data) / self.seconds if self.seconds > 0 else 0.0
        return (
            f"read {what} {where}: {len(self.data)} bytes in {self.seconds:.1f} s "
            f"({rate / 1024:.1f} KiB/s), sha256 {self.sha256[:16]}; verified: {', '.join(self.checks)}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "command": "read",
            "source": self.source,
            "slot": self.slot,
            "raw": self.raw,
            "size": len(self.data),
            "sha256": self.sha256,
            "seconds": round(self.seconds, 3),
            "image": _slot_json(self.image),
            "verified": list(self.checks),
        }


class _ChunkedReader:
    """Reads a slot in READs of at most ``max_block`` bytes.

    A reply that arrives damaged is asked for again at once (a new try), not after the command timeout; on a
    noisy line a long reply rarely arrives intact, so after :data:`READ_SHRINK_AFTER` failed tries the READ
    asks for :data:`READ_CHUNK_SHRINK` times fewer bytes, and after :data:`READ_CHUNK_GROW_AFTER` intact
    answers the reads grow back.  Each try has a sequence number of its own, so a late reply to an abandoned
    try is ignored as stale."""

    def __init__(
        self, host: HostConnection, info: DeviceInfo, slot: int, clock: Callable[[], float], report: Report
    ) -> None:
        self.host = host
        self._info = info
        self._slot = slot
        self._clock = clock
        self._report = report
        self._chunk = max(MIN_READ_CHUNK, min(info.max_block, MAX_PAYLOAD - 7))
        self._max = self._chunk
        self._seq = int.from_bytes(os.urandom(1), "little")

    def read(self, size: int) -> Generator[IoRequest, PumpResult, bytes]:
        parts: list[bytes] = []
        done = failures = clean = 0
        self._report(Progress(phase="read", done=0, total=size))
        while done < size:
            length = min(self._chunk, size - done)
            data = yield from self._try(done, length)
            if data is None:
                failures += 1
                clean = 0
                if failures % READ_SHRINK_AFTER:
                    continue
                if failures >= READ_CHUNK_ATTEMPTS:
                    raise ProtocolTimeoutError(
                        f"no intact answer to a {length}-byte read at offset {done} of slot {self._slot} "
                        f"after {failures} tries",
                        hint="the line is too noisy: check the cable and lower the baud rate",
                    )
                smaller = max(MIN_READ_CHUNK, self._chunk // READ_CHUNK_SHRINK)
                if smaller < self._chunk:
                    self._chunk = smaller
                    self._report(_step(Phase.READ, f"damaged answers to {length}-byte reads: going on in {smaller}"))
                continue
            failures = 0
            clean += 1
            if clean >= READ_CHUNK_GROW_AFTER and self._chunk < self._max:
                self._chunk, clean = min(self._max, self._chunk * 2), 0
            parts.append(data)
            done += len(data)
            self._report(Progress(phase="read", done=done, total=size))
        return b"".join(parts)

    def _try(self, offset: int, length: int) -> Generator[IoRequest, PumpResult, bytes | None]:
        """One READ on a fresh core; ``None`` when its reply arrived damaged, or none came at all."""
        self._seq = (self._seq + 1) & 0xFF
        host = self.host = HostConnection(baud=self.host.baud, info=self._info, first_seq=self._seq)
        host.read(self._slot, offset, length)
        budget = host.discarded_bytes + (length + 16) // 2  # most of a reply frame went to waste
        steps = pump(host, self._clock(), until=lambda e: isinstance(e, SlotRead), on_event=self._report)
        reply: PumpResult = None
        got = 0
        try:
            while True:
                request = steps.send(reply)
                reply = yield request
                if host.discarded_bytes >= budget:
                    return None  # damaged: ask again now rather than after the command timeout
                if reply is not None:
                    if reply[0]:
                        got += len(reply[0])
                    elif got:
                        return None  # the reply stopped half-way (a byte lost): it will never complete
        except StopIteration as stop:
            event = stop.value
            assert isinstance(event, SlotRead)
            return event.data
        except ProtocolTimeoutError:
            return None
        finally:
            steps.close()


def _read_iap(clock: Callable[[], float], report: Report) -> Generator[IoRequest, PumpResult, ReadResult]:
    """An AN4657 menu's upload option: the application area by YMODEM (each block CRC-16 checked)."""
    report(_step(Phase.PROBE, "classic YMODEM device (AN4657 IAP menu): choosing 'Upload image'"))
    yield Write(IAP_UPLOAD_KEY)
    receiver = YmodemReceiver(start_requests=IAP_UPLOAD_REQUESTS)
    parts: list[bytes] = []
    size: list[int | None] = [None]
    start = clock()

    def on_event(event: Event) -> None:
        if isinstance(event, FileData):
            parts.append(event.data)
        elif isinstance(event, FileStarted):
            size[0] = event.size
            report(_step(Phase.READ, f"the IAP sends {event.name} ({event.size} bytes)"))
        elif isinstance(event, Progress):
            report(Progress(phase="read", done=event.done, total=event.total))
        else:
            report(event)

    yield from pump(receiver, start, until=lambda e: isinstance(e, BatchComplete), on_event=on_event)
    final = receiver.data_to_send()  # the end-of-batch ACK is queued with BatchComplete: the menu waits for it
    if final:
        yield Write(final)
    data = b"".join(parts)
    if size[0] is not None and len(data) != size[0]:
        raise DeviceCommandError(
            f"the IAP announced {size[0]} bytes and sent {len(data)}", hint="read again; check the cable"
        )
    return ReadResult(
        slot=PRIMARY_SLOT,
        data=data,
        raw=False,
        image=None,
        seconds=clock() - start,
        checks=("YMODEM block CRC-16s",),
        source="iap-upload",
    )


def read_slot_steps(
    slot: int, *, baud: int, clock: Callable[[], float], on_event: Report = _noop, raw: bool = False
) -> Generator[IoRequest, PumpResult, ReadResult]:
    on_event(_step(Phase.PROBE, "probing the device"))
    if (yield from detect_protocol(clock)) == "ymodem":
        if slot != PRIMARY_SLOT or raw:
            raise _iap_error("read")
        result = yield from _read_iap(clock, on_event)
        return result
    host, info = yield from _connect("read", baud, clock, on_event, probed=True)
    _check_slot(info, slot)
    region = info.flash.slot(slot)
    image = _slot(info, slot)
    if raw:
        size = region.size
    elif image is None or image.state is SlotState.EMPTY or image.image_size == 0:
        raise DeviceCommandError(
            f"slot {slot} holds no image: nothing to read",
            hint=f"`stm32ota read -p PORT --slot {slot} --raw OUT.bin` reads the whole slot as it is",
        )
    else:
        size = min(image.image_size, region.size)
    start = clock()
    reader = _ChunkedReader(host, info, slot, clock, on_event)
    try:
        data = yield from reader.read(size)
    except DeviceError as err:
        if err.status != Status.NOT_ALLOWED:
            raise
        yield from _end_transfer(reader.host, clock, on_event)
        reader = _ChunkedReader(reader.host, info, slot, clock, on_event)
        data = yield from reader.read(size)
    host = reader.host
    host.read_digest(slot, 0, size)
    event = yield from pump(host, clock(), until=lambda e: isinstance(e, SlotDigest), on_event=on_event)
    assert isinstance(event, SlotDigest)
    if event.digest != hashlib.sha256(data).digest():
        raise DeviceCommandError(
            f"the bytes read from slot {slot} do not match the device's own SHA-256 of them",
            hint="read again; if it persists, check the cable and lower the baud rate",
        )
    checks = ["the device's SHA-256 of the range"]
    if image is not None and image.state is not SlotState.EMPTY and len(image.digest) == DIGEST_SIZE:
        if image.digest in image_digests(data):
            checks.append("the image digest in the slot table")
        elif not raw:
            raise DeviceCommandError(
                f"the image read from slot {slot} does not match the digest the device reports for it",
                hint="read again; `stm32ota info` shows the slot table",
            )
    return ReadResult(
        slot=slot,
        data=data,
        raw=raw,
        image=image if image is not None and image.state is not SlotState.EMPTY else None,
        seconds=clock() - start,
        checks=tuple(checks),
    )


def read_slot(link: SerialLink, slot: int, *, raw: bool = False, on_event: Report = _noop) -> ReadResult:
    """READ a slot: its image (trimmed to the image's size), or with ``raw`` every byte of it, verified by
    the device's SHA-256 of the range and by the image digest of its slot table.  From an AN4657 IAP menu
    (slot 0, not raw): the application area its upload option sends."""
    return link.execute(read_slot_steps(slot, baud=link.baud, clock=time.monotonic, on_event=on_event, raw=raw))


# --- terminal ------------------------------------------------------------------------------------------------

_HEAD = struct.Struct("<BBBH")


class LogFrameSplitter:
    """Splits what a device sends into raw bytes (a menu, printf output) and its LOG frames.

    :meth:`feed` returns, in order, ``bytes`` that are not part of a frame and a
    :class:`~protocol.sansio.DeviceLog` per LOG frame; other frames (replies, progress) are protocol, not
    text, and are dropped.  Bytes that may start a frame are held until the frame is complete or proven
    false; :meth:`flush` releases them as raw bytes (call it when the line has been quiet for a moment)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0  # protocol frames seen (LOG included)

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> list[bytes | DeviceLog]:
        self._buf += data
        return self._drain(final=False)

    def flush(self) -> list[bytes | DeviceLog]:
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[bytes | DeviceLog]:
        out: list[bytes | DeviceLog] = []
        raw = bytearray()
        buf = self._buf
        while buf:
            at = buf.find(SOF)
            if at < 0:
                raw += buf
                buf.clear()
                break
            raw += buf[:at]
            del buf[:at]
            if len(buf) < FRAME_HEADER_SIZE:
                if not final:
                    break
                raw += buf[:1]
                del buf[:1]
                continue
            _sof, ftype, _seq, length = _HEAD.unpack_from(buf)
            hcrc = int.from_bytes(buf[5:7], "little")
            if length > MAX_PAYLOAD or hcrc != crc16_xmodem(bytes(buf[:5])):
                raw += buf[:1]
                del buf[:1]
                continue
            end = FRAME_HEADER_SIZE + length + FRAME_TRAILER_SIZE
            if len(buf) < end:
                if not final:
                    break
                raw += buf[:1]
                del buf[:1]
                continue
            payload = bytes(buf[FRAME_HEADER_SIZE : FRAME_HEADER_SIZE + length])
            if int.from_bytes(buf[end - 2 : end], "little") != crc16_xmodem(payload):
                raw += buf[:1]
                del buf[:1]
                continue
            del buf[:end]
            self.frames += 1
            if ftype == FrameType.LOG and len(payload) >= 5:
                if raw:
                    out.append(bytes(raw))
                    raw.clear()
                record = LogRecord.decode(payload)
                out.append(DeviceLog(level=record.level, text=record.text, timestamp_ms=record.timestamp_ms))
        if raw:
            out.append(bytes(raw))
        return out


@dataclass(kw_only=True)
class TerminalResult:
    received: int = 0  # bytes from the device
    sent: int = 0  # bytes typed to the device
    logs: int = 0  # LOG frames shown as log lines
    reason: Literal["exit-key", "end-of-input", "deadline"] = "exit-key"


def terminal(
    link: SerialLink,
    *,
    keys: Callable[[], bytes | None],
    on_output: Callable[[bytes], None],
    on_log: Callable[[DeviceLog], None],
    exit_key: bytes = EXIT_KEY,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TerminalResult:
    """An interactive serial terminal until ``exit_key`` is typed.

    ``keys()`` returns what was typed since the last call (``b""``: nothing, ``None``: the input ended);
    every byte of it goes to the port.  What the device sends goes to ``on_output`` as it came, except its
    LOG frames, which go to ``on_log``.  After the input ended the session ends once the line has been quiet
    for :data:`TERMINAL_QUIET_EXIT_S` (so piped input gets its answer); ``deadline`` (monotonic) ends it
    too."""
    splitter = LogFrameSplitter()
    result = TerminalResult()
    last_rx = clock()
    ended_at: float | None = None

    def dispatch(items: Sequence[bytes | DeviceLog]) -> None:
        for item in items:
            if isinstance(item, DeviceLog):
                result.logs += 1
                on_log(item)
            else:
                on_output(item)

    try:
        while True:
            data = link.read(TERMINAL_POLL_S)
            now = clock()
            if data:
                result.received += len(data)
                last_rx = now
                dispatch(splitter.feed(data))
            elif splitter.pending and now - last_rx >= TERMINAL_HOLD_S:
                dispatch(splitter.flush())
            if deadline is not None and now >= deadline:
                result.reason = "deadline"
                break
            if ended_at is not None:
                if now - max(last_rx, ended_at) >= TERMINAL_QUIET_EXIT_S:
                    result.reason = "end-of-input"
                    break
                continue
            typed = keys()
            if typed is None:
                ended_at = now
                continue
            if not typed:
                continue
            cut = typed.find(exit_key) if exit_key else -1
            if cut >= 0:
                if typed[:cut]:
                    link.write(typed[:cut])
                    result.sent += cut
                result.reason = "exit-key"
                break
            link.write(typed)
            result.sent += len(typed)
    finally:
        dispatch(splitter.flush())
    return result
