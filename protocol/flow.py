"""The host update flow: connect → INFO → pick the protocol → transfer → verify → activate → reboot → confirm.

The flow is a generator of I/O requests built from :func:`protocol.pump.pump`, so the blocking driver
(``SerialLink.execute``), the asyncio driver (``AsyncSerialLink.execute``) and the GUI's worker thread all run
the same code::

    with SerialLink(port, 115200) as link:
        result = link.execute(flash_image(image, FlashOptions(), on_event=reporter, clock=time.monotonic),
                              cancel=token)

It reports through ``on_event``: the cores' :class:`~protocol.sansio.Progress` and
:class:`~protocol.sansio.DeviceLog`, plus :class:`FlowStep` milestones a person can read.  Cancelling is
cooperative: the driver checks its :class:`~protocol.link.CancelToken` between I/O steps; the device keeps its
resume record, so the next run continues where this one stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Literal

from .errors import DeviceError, ImageError, LinkTooNoisyError, ProtocolTimeoutError, Stm32OtaError
from .image import TrustedKey, parse_image
from .preflight import GENERIC_IAP, check_application, check_image
from .progress import PhaseTiming, ProgressMeter
from .pump import IoRequest, PumpResult, SetBaud, Write, pump, with_deadline
from .sansio import Event, Progress
from .update.constants import MIN_BLOCK_SIZE
from .update.events import BaudChanged, BaudChangeFailed, CommandComplete, InfoReceived, TransferComplete
from .update.host import HostConnection
from .update.messages import DeviceInfo, Option, SlotInfo, SlotState
from .update.status import Status
from .ymodem import BatchComplete, YmodemFile, YmodemSender
from .ymodem.iap import IAP_DOWNLOAD_KEY, LineProbe, looks_like_iap

__all__ = [
    "FlashOptions",
    "FlashResult",
    "FlowStep",
    "UpdateError",
    "detect_protocol",
    "flash_image",
    "image_digests",
    "read_info",
]

FlowGen = Generator[IoRequest, PumpResult, "object"]

PRIMARY_SLOT = 0
SECONDARY_SLOT = 1
REBOOT_TIMEOUT_S = 60.0  # the bootloader may swap two slots with real flash timings before the app answers
REBOOT_POLL_S = 0.5
NOISY_LINK_ATTEMPTS = 4  # transfers tried, each with blocks NOISY_LINK_SHRINK times smaller than the last
NOISY_LINK_SHRINK = 4


class UpdateError(Stm32OtaError):
    """The update did not end where it should (e.g. the device came back with the old image)."""


@dataclass(frozen=True, kw_only=True)
class FlowStep(Event):
    """A milestone of the flow, for people: ``step`` is a stable name, ``message`` a sentence."""

    step: str
    message: str


@dataclass(frozen=True, kw_only=True)
class FlashOptions:
    protocol: Literal["auto", "ota", "ymodem"] = "auto"
    compress: bool | None = None  # None: deflate when the device offers it
    fast_baud: int | None = None  # switch to this rate after INFO when the device lists it
    resume: bool = True
    permanent: bool = False
    reboot: bool = True
    confirm: bool = True
    baud: int = 115200  # the rate the port was opened at
    reboot_timeout: float = REBOOT_TIMEOUT_S
    allow_downgrade: bool = False  # install an image that is not newer than the running one
    force: bool = False  # install the version that already runs
    keys: tuple[TrustedKey, ...] = ()  # public keys the host checks signatures with (protocol.preflight)


@dataclass(kw_only=True)
class FlashResult:
    protocol: Literal["ota", "ymodem"]
    image_size: int
    digest: bytes
    resumed_from: int = 0
    wire_bytes: int = 0
    retransmits: int = 0
    compressed: bool = False
    baud: int = 0
    info_before: DeviceInfo | None = None
    info_after: DeviceInfo | None = None
    phases: list[PhaseTiming] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "image_size": self.image_size,
            "digest": self.digest.hex(),
            "resumed_from": self.resumed_from,
            "wire_bytes": self.wire_bytes,
            "retransmits": self.retransmits,
            "compressed": self.compressed,
            "baud": self.baud,
            "slots_after": [_slot_json(s) for s in self.info_after.slots] if self.info_after else None,
            "phases": [
                {
                    "phase": p.phase,
                    "seconds": round(p.seconds, 4),
                    "bytes": p.amount,
                    "rate": round(p.rate, 1),
                }
                for p in self.phases
            ],
        }


def _slot_json(slot: SlotInfo) -> dict[str, object]:
    return {
        "index": slot.index,
        "state": slot.state.name.lower(),
        "version": slot.version_text,
        "size": slot.image_size,
        "digest": slot.digest.hex(),
        "security_counter": slot.security_counter,
    }


def detect_protocol(clock: Callable[[], float]) -> Generator[IoRequest, PumpResult, Literal["ota", "ymodem"]]:
    """Probe the line: an AN4657-style menu (or a receiver already sending 'C') means classic YMODEM."""
    probe = LineProbe()
    yield from pump(probe, clock())
    return "ymodem" if looks_like_iap(bytes(probe.received)) else "ota"


def read_info(
    host: HostConnection, clock: Callable[[], float], on_event: Callable[[Event], None] | None = None
) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    host.request_info()
    event = yield from pump(host, clock(), until=lambda e: isinstance(e, InfoReceived), on_event=on_event)
    assert isinstance(event, InfoReceived)
    return event.info


def _command(
    host: HostConnection, clock: Callable[[], float], on_event: Callable[[Event], None] | None
) -> Generator[IoRequest, PumpResult, None]:
    yield from pump(host, clock(), until=lambda e: isinstance(e, CommandComplete), on_event=on_event)


def flash_image(
    image: bytes,
    options: FlashOptions,
    *,
    on_event: Callable[[Event], None],
    clock: Callable[[], float],
    name: str = "firmware.bin",
) -> Generator[IoRequest, PumpResult, FlashResult]:
    """The whole update of one device with ``image``; returns what happened, phase by phase."""
    meter = ProgressMeter()

    def report(event: Event) -> None:
        if isinstance(event, Progress):
            meter.update(event, clock())
        on_event(event)

    def step(name_: str, message: str) -> None:
        on_event(FlowStep(step=name_, message=message))

    digest = hashlib.sha256(image).digest()
    protocol = options.protocol
    if protocol == "auto":
        step("connect", "probing the device")
        protocol = yield from detect_protocol(clock)
    ctx = _Context(options, report, step, meter, clock, name)
    if protocol == "ymodem":
        result = yield from _flash_ymodem(image, name, ctx)
    else:
        result = yield from _flash_ota(image, digest, ctx)
    result.phases = list(meter.phases.values())
    step("done", "update complete")
    return result


@dataclass(frozen=True)
class _Context:
    options: FlashOptions
    report: Callable[[Event], None]
    step: Callable[[str, str], None]
    meter: ProgressMeter
    clock: Callable[[], float]
    name: str = "firmware.bin"


def _checked(image: bytes, info: DeviceInfo, ctx: _Context) -> tuple[bytes, bytes]:
    """:func:`protocol.preflight.check_image` against INFO: the bytes to send (a .hex/.srec/.elf as its
    binary) and their digest; raises the typed ImageError of the first check that fails."""
    options = ctx.options
    report = check_image(
        image,
        info,
        slot=SECONDARY_SLOT,
        allow_downgrade=options.allow_downgrade,
        force=options.force,
        name=ctx.name,
        keys=options.keys,
    )
    running = f" over {report.running_version}" if report.running_version else ""
    signature = "signature ok" if report.signature_checked else "signature left to the device (no public key)"
    notes = "".join(f"; {note}" for note in report.notes if not note.startswith("signature"))
    ctx.step("check", f"image {report.version}{running} fits slot {SECONDARY_SLOT}: {signature}{notes}")
    return report.data, hashlib.sha256(report.data).digest()


def _flash_ymodem(image: bytes, name: str, ctx: _Context) -> Generator[IoRequest, PumpResult, FlashResult]:
    options, report, step, meter, clock = ctx.options, ctx.report, ctx.step, ctx.meter, ctx.clock
    image = check_application(image, GENERIC_IAP, name=name).data  # before anything is erased or sent
    step("connect", "classic YMODEM device (AN4657 IAP menu): choosing 'Download image'")
    yield Write(IAP_DOWNLOAD_KEY)
    # An AN4657 receiver does not flush its input after an ACK (lrzsz's rb does), so no quiet-line wait
    # before each block: stop-and-wait YMODEM needs every millisecond of turnaround it can save.
    sender = YmodemSender([YmodemFile(name=name, data=image)], reply_delay=0.0)
    start = clock()
    meter.start_phase("transfer", start)
    yield from pump(sender, start, until=lambda e: isinstance(e, BatchComplete), on_event=report)
    meter.end_phase("transfer", clock(), len(image))
    step("transfer", f"sent {len(image)} bytes with YMODEM")
    return FlashResult(
        protocol="ymodem", image_size=len(image), digest=hashlib.sha256(image).digest(), baud=options.baud
    )


def _flash_ota(image: bytes, digest: bytes, ctx: _Context) -> Generator[IoRequest, PumpResult, FlashResult]:
    options, report, step, meter, clock = ctx.options, ctx.report, ctx.step, ctx.meter, ctx.clock
    host = HostConnection(baud=options.baud)
    info = yield from read_info(host, clock, report)
    step("info", _describe(info))
    image, digest = _checked(image, info, ctx)  # before anything is erased or sent
    result = FlashResult(protocol="ota", image_size=len(image), digest=digest, info_before=info, baud=options.baud)

    if options.fast_baud and options.fast_baud != options.baud:
        if Option.BAUD_SWITCH in info.options and options.fast_baud in info.baud_rates:
            host.change_baud(options.fast_baud)
            event = yield from pump(
                host, clock(), until=lambda e: isinstance(e, BaudChanged | BaudChangeFailed), on_event=report
            )
            if isinstance(event, BaudChanged):
                result.baud = event.baud
                step("baud", f"line rate now {event.baud} baud")
            else:
                step("baud", f"device did not follow to {options.fast_baud} baud; staying at {options.baud}")
        else:
            step("baud", f"device does not offer {options.fast_baud} baud; staying at {options.baud}")

    compress = options.compress
    if compress is None:
        compress = Option.DEFLATE in info.options
    result.compressed = compress
    start = clock()
    meter.start_phase("transfer", start)
    event, host = yield from _transfer(host, image, compress, ctx)
    meter.end_phase("transfer", clock(), event.size - event.resumed_from)
    result.resumed_from = event.resumed_from
    result.wire_bytes = event.wire_bytes
    result.retransmits = event.retransmits
    resumed = f" (resumed at {event.resumed_from})" if event.resumed_from else ""
    step("transfer", f"{event.size} bytes on the device{resumed}, {event.retransmits} blocks resent")

    meter.start_phase("verify", clock())
    host.verify(SECONDARY_SLOT)
    yield from _command(host, clock, report)
    meter.end_phase("verify", clock(), len(image))
    step("verify", "the device checked the image: digest, signature, chip and security counter")

    host.activate(options.permanent, slot=SECONDARY_SLOT)
    yield from _command(host, clock, report)
    step("activate", "marked for a permanent boot" if options.permanent else "marked for a test boot")
    if not options.reboot:
        result.info_after = yield from read_info(host, clock, report)
        return result

    meter.start_phase("reboot", clock())
    host.reboot()
    yield from _command(host, clock, report)
    step("reboot", "device is restarting (the bootloader swaps the slots)")
    if result.baud != options.baud:  # a reset brings the UART back to the start rate
        yield SetBaud(options.baud)
        result.baud = options.baud
    info_after = yield from _wait_for_device(options, clock, report)
    meter.end_phase("reboot", clock(), 0)
    primary = _slot(info_after, PRIMARY_SLOT)
    if primary is None or primary.digest not in image_digests(image):
        raise UpdateError(
            "the device came back without the new image (the bootloader refused or reverted it)",
            hint="run `stm32ota info` and `stm32ota monitor` to see what the bootloader reported",
        )
    step("boot", f"running {primary.version_text} ({primary.state.name.lower()})")
    if primary.state is SlotState.ACTIVE and options.confirm and not options.permanent:
        host = HostConnection(baud=options.baud)
        host.confirm()
        yield from _command(host, clock, report)
        info_after = yield from read_info(host, clock, report)
        step("confirm", "new image confirmed")
    elif primary.state is SlotState.CONFIRMED and not options.permanent:
        step("confirm", "the new image confirmed itself after its self-test")
    result.info_after = info_after
    return result


def _transfer(
    host: HostConnection, image: bytes, compress: bool, ctx: _Context
) -> Generator[IoRequest, PumpResult, tuple[TransferComplete, HostConnection]]:
    """The data phase.  On a link too noisy for the block size, start again with smaller blocks: the device
    resumes where the failed attempt stopped, so nothing that got through is sent twice."""
    block_size: int | None = None
    resume = ctx.options.resume
    for attempt in range(NOISY_LINK_ATTEMPTS):
        host.begin_transfer(image, slot=SECONDARY_SLOT, compress=compress, resume=resume, block_size=block_size)
        try:
            event = yield from pump(
                host, ctx.clock(), until=lambda e: isinstance(e, TransferComplete), on_event=ctx.report
            )
        except LinkTooNoisyError as err:
            smaller = max(MIN_BLOCK_SIZE, err.block_size // NOISY_LINK_SHRINK)
            if smaller >= err.block_size or attempt == NOISY_LINK_ATTEMPTS - 1:
                raise
            ctx.step("transfer", f"{err}; resuming with {smaller}-byte blocks")
            block_size, resume = smaller, True
            host = HostConnection(baud=host.baud, info=host.info)
            continue
        assert isinstance(event, TransferComplete)
        return event, host
    raise AssertionError("unreachable")


def _slot(info: DeviceInfo, index: int) -> SlotInfo | None:
    return next((s for s in info.slots if s.index == index), None)


def image_digests(image: bytes) -> set[bytes]:
    """Digests a device may report for ``image`` in its slot table: SHA-256 of the MCUboot image (header,
    payload, TLV areas) without slot padding or trailer, its hash TLV, or SHA-256 of the whole file."""
    digests = {hashlib.sha256(image).digest()}
    try:
        parsed = parse_image(image)
    except ImageError:
        return digests
    digests.add(hashlib.sha256(image[: parsed.end]).digest())
    digests.add(parsed.digest)
    return digests


def _wait_for_device(
    options: FlashOptions, clock: Callable[[], float], report: Callable[[Event], None]
) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    """Poll INFO until the rebooted device answers (it may be swapping slots with real flash timings)."""
    deadline = clock() + options.reboot_timeout
    while True:
        host = HostConnection(baud=options.baud)
        try:
            info: DeviceInfo = yield from read_info(host, clock, report)
        except (ProtocolTimeoutError, DeviceError) as err:
            if isinstance(err, DeviceError) and err.status != Status.BUSY:
                raise
            if clock() > deadline:
                raise ProtocolTimeoutError(
                    f"the device did not answer within {options.reboot_timeout:.0f} s after reboot",
                    hint="check power and the cable; `stm32ota monitor` shows what it prints",
                ) from err
            # listen (device logs still show) for a moment before asking again
            yield from with_deadline(
                pump(HostConnection(baud=options.baud), clock(), on_event=report), clock() + REBOOT_POLL_S
            )
            continue
        return info


def _describe(info: DeviceInfo) -> str:
    primary = _slot(info, PRIMARY_SLOT)
    running = f"running {primary.version_text} ({primary.state.name.lower()})" if primary else "no image"
    loader = info.bootloader_version or "?"
    return f"chip 0x{info.chip_id:03x}, uid {info.uid.hex()}, bootloader {loader}, {running}"
