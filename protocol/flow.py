"""The host update flow: connect → INFO → pick the protocol → transfer → verify → activate → reboot → confirm.

The flow is a generator of I/O requests built from :func:`protocol.pump.pump`, so the blocking driver
(``SerialLink.execute``), the asyncio driver (``AsyncSerialLink.execute``) and the GUI's worker thread all run
the same code::

    with SerialLink(port, DEFAULT_BAUD) as link:
        result = link.execute(flash_image(image, FlashOptions(), on_event=reporter, clock=time.monotonic),
                              cancel=token)

It reports through ``on_event``: :class:`~protocol.progress.ProgressSnapshot` (one per phase start and end,
and while bytes move; built by the flow's one :class:`~protocol.progress.ProgressMeter`) and the device's
:class:`~protocol.sansio.DeviceLog` lines.  The result (:class:`FlashResult`) carries the phases in the order
they ran, the totals, the compression and the line rate the data phase used (taken from the flow's own
:class:`~protocol.pump.SetBaud` requests, so it cannot disagree with the link).  A cancel (the driver's
:class:`~protocol.drivers.link.CancelToken`, Ctrl-C, a task cancel) is thrown into the flow, which tells the
device (ABORT, and back to the start rate: :func:`_abort_on_cancel`) before it re-raises; the device keeps its
resume record, so the next run continues where this one stopped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TypeVar

from .errors import (
    Cancelled,
    DeviceError,
    ImageError,
    LinkTooNoisyError,
    ProtocolTimeoutError,
    RemoteProtocolError,
    Stm32OtaError,
)
from .image import TrustedKey, parse_image
from .preflight import GENERIC_IAP, check_application, check_image
from .progress import Phase, PhaseTiming, ProgressMeter, ProgressSnapshot
from .pump import CANCEL_CLEANUP_S, IoRequest, PumpResult, Read, SetBaud, Write, pump, with_deadline
from .sansio import DeviceLog, Event, Progress
from .update.constants import DEFAULT_BAUD, MIN_BLOCK_SIZE, PRIMARY_SLOT, SECONDARY_SLOT
from .update.events import BaudChanged, BaudChangeFailed, CommandComplete, InfoReceived, TransferComplete
from .update.host import HostConnection
from .update.messages import DeviceInfo, LogLevel, Option, SlotInfo, SlotState
from .update.status import Status
from .ymodem import ABORT_SEQUENCE, BatchComplete, YmodemFile, YmodemSender
from .ymodem.iap import IAP_DOWNLOAD_KEY, LineProbe, is_iap_answer, looks_like_iap

__all__ = [
    "FlashOptions",
    "FlashResult",
    "IapMenuError",
    "NextStep",
    "UpdateError",
    "detect_protocol",
    "flash_image",
    "image_digests",
    "read_info",
    "slot_json",
]

T = TypeVar("T")
log = logging.getLogger(__name__)

REBOOT_TIMEOUT_S = 60.0  # the bootloader may swap two slots with real flash timings before the app answers
REBOOT_POLL_S = 0.5
# After a test boot the application judges itself (MCUboot's boot_set_confirmed() after its own self-test).  The
# flow gives it this long to confirm itself, or to report an error, before the host confirms for it.
SELF_TEST_WAIT_S = 3.0
SELF_TEST_POLL_S = 0.25
BUSY_RETRY_TIMEOUT_S = 60.0  # how long INFO is retried while the device answers BUSY (a swap, a long erase)
BUSY_BACKOFF_FIRST_S = 0.25  # the first wait after a BUSY; doubled after each, up to BUSY_BACKOFF_MAX_S
BUSY_BACKOFF_MAX_S = 2.0
NOISY_LINK_ATTEMPTS = 4  # transfers tried, each with blocks NOISY_LINK_SHRINK times smaller than the last
NOISY_LINK_SHRINK = 4
ACTIVATE_ATTEMPTS = 2  # a trailer left half-written (power loss during ACTIVATE) is erased by a new BEGIN
_TRAILER_WRITE_FAILURES = frozenset(
    {Status.PROGRAM_SEQUENCE, Status.PROGRAM_FAILED, Status.PROGRAM_ALIGNMENT, Status.VERIFY_FAILED}
)
ABORT_REPLY_WAIT_S = 0.6  # after a cancel: how long the device's answer to our ABORT is awaited


class UpdateError(Stm32OtaError):
    """The update did not end where it should (e.g. the device came back with the old image)."""


class IapMenuError(RemoteProtocolError):
    """The port answers with an AN4657 IAP menu (classic YMODEM), not with the stm32ota update protocol."""


class NextStep(StrEnum):
    """What is left to do when a flash stops early on purpose (``--no-reboot``, ``--no-confirm``)."""

    REBOOT = "reboot"  # restart the device: the bootloader installs the marked image (stm32ota reset)
    CONFIRM = "confirm"  # keep the image running under test (stm32ota confirm), or go back (stm32ota rollback)


@dataclass(frozen=True, kw_only=True)
class FlashOptions:
    protocol: Literal["auto", "ota", "ymodem"] = "auto"
    compress: bool | None = None  # None: deflate when the device offers it
    fast_baud: int | None = None  # switch to this rate after INFO when the device lists it
    resume: bool = True
    permanent: bool = False
    reboot: bool = True
    confirm: bool = True
    # The rate the device listens at after a reset.  The flow's first request sets the link to it, and every
    # later change is the flow's own SetBaud, so the rate it reports is the link's, never a second opinion.
    baud: int = DEFAULT_BAUD
    reboot_timeout: float = REBOOT_TIMEOUT_S
    self_test_wait: float = SELF_TEST_WAIT_S  # 0: confirm at once, without waiting for the image's own verdict
    allow_downgrade: bool = False  # install an image that is not newer than the running one
    force: bool = False  # install the version that already runs
    keys: tuple[TrustedKey, ...] = ()  # public keys the host checks signatures with (protocol.preflight)


@dataclass(kw_only=True)
class FlashResult:
    """What one flash did.  ``phases`` are in the order they ran (each phase once, its time summed if it was
    entered again); ``baud`` is the rate the data phase ran at; ``sent_bytes`` the image bytes this run moved
    (``image_size - resumed_from``), ``payload_bytes`` those bytes as sent (deflated when ``compressed``),
    ``wire_bytes`` every byte the host wrote during the transfer (framing and retransmissions included)."""

    protocol: Literal["ota", "ymodem"]
    image_size: int
    digest: bytes
    baud: int
    resumed_from: int = 0
    sent_bytes: int = 0
    payload_bytes: int = 0
    wire_bytes: int = 0
    retransmits: int = 0
    compressed: bool = False
    info_before: DeviceInfo | None = None
    info_after: DeviceInfo | None = None
    phases: list[PhaseTiming] = field(default_factory=list)
    left_to_do: tuple[NextStep, ...] = ()
    started: float = 0.0
    ended: float = 0.0

    @property
    def complete(self) -> bool:
        """The new image runs and is there to stay (nothing :attr:`left_to_do`)."""
        return not self.left_to_do

    @property
    def total_seconds(self) -> float:
        return max(self.ended - self.started, 0.0)

    @property
    def compression_ratio(self) -> float:
        """``payload_bytes / sent_bytes``: the share of the image that travelled (1.0 uncompressed)."""
        return self.payload_bytes / self.sent_bytes if self.sent_bytes else 1.0

    def to_json(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "complete": self.complete,
            "left_to_do": [step.value for step in self.left_to_do],
            "image_size": self.image_size,
            "digest": self.digest.hex(),
            "resumed_from": self.resumed_from,
            "sent_bytes": self.sent_bytes,
            "payload_bytes": self.payload_bytes,
            "wire_bytes": self.wire_bytes,
            "retransmits": self.retransmits,
            "compressed": self.compressed,
            "compression_ratio": round(self.compression_ratio, 4),
            "baud": self.baud,
            "seconds": round(self.total_seconds, 4),
            "slots_after": [slot_json(s) for s in self.info_after.slots] if self.info_after else None,
            "phases": [p.to_json() for p in self.phases],
        }


def slot_json(slot: SlotInfo) -> dict[str, object]:
    """One row of a device's slot table as ``--json`` shows it, the same in every command's output."""
    return {
        "index": slot.index,
        "state": slot.state.name.lower(),
        "version": slot.version_text,
        "size": slot.image_size,
        "digest": slot.digest.hex(),
        "security_counter": slot.security_counter,
    }


class _Wire:
    """Watches the flow's I/O requests: the bytes the host wrote and the line rate it set last."""

    def __init__(self, baud: int) -> None:
        self.baud = baud
        self.written = 0

    def run(self, steps: Generator[IoRequest, PumpResult, T]) -> Generator[IoRequest, PumpResult, T]:
        try:
            request = next(steps)
            while True:
                if type(request) is Read:
                    self.written += len(request.out)
                elif type(request) is Write:
                    self.written += len(request.data)
                else:
                    assert isinstance(request, SetBaud)
                    self.baud = request.baud
                try:
                    reply = yield request
                except GeneratorExit:
                    raise
                except BaseException as exc:  # a driver's throw() reaches the flow's own cleanup
                    request = steps.throw(exc)
                    continue
                request = steps.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            steps.close()


def detect_protocol(clock: Callable[[], float]) -> Generator[IoRequest, PumpResult, Literal["ota", "ymodem"]]:
    """Probe the line: an AN4657-style menu (or a receiver already sending 'C') means classic YMODEM."""
    probe = LineProbe()
    yield from pump(probe, clock())
    return "ymodem" if looks_like_iap(bytes(probe.received)) else "ota"


def read_info(
    host: HostConnection,
    clock: Callable[[], float],
    on_event: Callable[[Event], None] | None = None,
    *,
    meter: ProgressMeter | None = None,
    busy_timeout: float = BUSY_RETRY_TIMEOUT_S,
) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    """The handshake as one :attr:`Phase.INFO` (snapshots to ``on_event``; timed by ``meter`` if given): PING,
    INFO in pieces, retried with backoff while the device answers BUSY.  A port that answers with an AN4657
    IAP menu raises :class:`IapMenuError`."""
    meter = meter if meter is not None else ProgressMeter()
    emit = on_event if on_event is not None else _ignore
    emit(meter.start(Phase.INFO, clock(), "reading the device's INFO"))
    report = _reporter(meter, clock, emit)
    try:
        info = yield from _handshake(host, clock, report, lambda text: emit(meter.note(text, clock())), busy_timeout)
    except Stm32OtaError as err:
        emit(meter.end(clock(), str(err), failed=True))
        raise
    emit(meter.end(clock(), _describe(info)))
    return info


def _ignore(event: Event) -> None:
    pass


def _reporter(
    meter: ProgressMeter, clock: Callable[[], float], emit: Callable[[Event], None]
) -> Callable[[Event], None]:
    """The ``on_event`` of the flow's pumps: raw core progress goes through the meter; device logs pass on."""

    def report(event: Event) -> None:
        if isinstance(event, Progress) and not isinstance(event, ProgressSnapshot):
            snapshot = meter.progress(event, clock())
            if snapshot is not None:
                emit(snapshot)
        elif isinstance(event, DeviceLog | ProgressSnapshot):
            emit(event)

    return report


def _handshake(
    host: HostConnection,
    clock: Callable[[], float],
    report: Callable[[Event], None],
    note: Callable[[str], None],
    busy_timeout: float,
) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    first_busy: float | None = None
    wait = BUSY_BACKOFF_FIRST_S
    while True:
        host.request_info()
        try:
            event = yield from pump(host, clock(), until=lambda e: isinstance(e, InfoReceived), on_event=report)
        except DeviceError as err:
            if err.status != Status.BUSY:
                raise
            now = clock()
            first_busy = now if first_busy is None else first_busy
            if now + wait > first_busy + busy_timeout:
                raise DeviceError(
                    f"the device is still busy: it answered INFO with BUSY for {now - first_busy:.0f} s",
                    status=Status.BUSY,
                    hint="it may be swapping slots or erasing: wait until it is done and run the command again",
                ) from err
            note(f"the device is busy (it may be swapping slots); retrying in {wait:.2g} s")
            yield from with_deadline(pump(host, clock(), on_event=report), clock() + wait)
            wait = min(wait * 2, BUSY_BACKOFF_MAX_S)
            continue
        except ProtocolTimeoutError as err:
            if host.frames_received == 0 and is_iap_answer(host.received_tail):
                raise IapMenuError(
                    "the port answers with an AN4657 IAP menu (classic YMODEM), not the stm32ota bootloader",
                    hint="INFO and the device commands need the stm32ota bootloader; to load an application "
                    "into the IAP menu, `stm32ota flash -p PORT app.bin` picks its download option and sends "
                    "the file with YMODEM",
                ) from err
            raise
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
    """The whole update of one device with ``image``; returns what happened, phase by phase.  ``name`` is the
    file as the user gave it: hints name it so that their commands work as written (YMODEM sends its last
    component)."""
    wire = _Wire(options.baud)
    return (yield from wire.run(_flash(image, options, wire=wire, on_event=on_event, clock=clock, name=name)))


def _flash(
    image: bytes,
    options: FlashOptions,
    *,
    wire: _Wire,
    on_event: Callable[[Event], None],
    clock: Callable[[], float],
    name: str,
) -> Generator[IoRequest, PumpResult, FlashResult]:
    started = clock()
    yield SetBaud(options.baud)  # the link runs at the rate the flow believes in, whatever it was opened at
    meter = ProgressMeter()
    ctx = _Context(options, meter, wire, clock, on_event, _reporter(meter, clock, on_event), name=name)
    protocol = options.protocol
    try:
        if protocol == "auto":
            ctx.start(Phase.PROBE, "probing the device")
            protocol = yield from detect_protocol(clock)
            ctx.end("classic YMODEM device (AN4657 IAP menu)" if protocol == "ymodem" else "stm32ota bootloader")
        if protocol == "ymodem":
            flow = _flash_ymodem(image, name, ctx)
        else:
            flow = _flash_ota(image, hashlib.sha256(image).digest(), ctx)
        result = yield from _abort_on_cancel(flow, protocol, options.baud, clock)
    except Stm32OtaError as err:
        ctx.fail(err)
        raise
    result.phases = list(meter.timings)
    result.started, result.ended = started, clock()
    return result


@dataclass
class _Context:
    options: FlashOptions
    meter: ProgressMeter
    wire: _Wire
    clock: Callable[[], float]
    emit: Callable[[Event], None]
    report: Callable[[Event], None]  # the pumps' on_event
    mark: int = 0  # bytes written when the running phase started
    name: str = "firmware.bin"

    def collect_device_errors(self) -> list[str]:
        """From now on, every ERROR-level device log line that passes ``report`` is also kept in the list."""
        errors: list[str] = []
        forward = self.report

        def report(event: Event) -> None:
            if isinstance(event, DeviceLog) and event.level == LogLevel.ERROR:
                errors.append(event.text)
            forward(event)

        self.report = report
        return errors

    def start(self, phase: Phase, message: str, *, total: int = 0) -> None:
        self.mark = self.wire.written
        self.emit(self.meter.start(phase, self.clock(), message, total=total))

    def note(self, message: str) -> None:
        self.emit(self.meter.note(message, self.clock()))

    def end(self, message: str, *, amount: int | None = None) -> None:
        wire_bytes = self.wire.written - self.mark
        self.emit(self.meter.end(self.clock(), message, amount=amount, wire_bytes=wire_bytes))

    def fail(self, error: Stm32OtaError) -> None:
        """The running phase (if any) ends with ``error``; the flow then raises it."""
        if self.meter.phase is not None:
            wire_bytes = self.wire.written - self.mark
            self.emit(self.meter.end(self.clock(), str(error), wire_bytes=wire_bytes, failed=True))


def _checked(image: bytes, info: DeviceInfo, ctx: _Context) -> tuple[bytes, bytes]:
    """:func:`protocol.preflight.check_image` against INFO: the bytes to send (a .hex/.srec/.elf as its
    binary) and their digest; raises the typed ImageError of the first check that fails."""
    options = ctx.options
    ctx.start(Phase.CHECK, "checking the image against the device")
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
    ctx.end(f"image {report.version}{running} fits slot {SECONDARY_SLOT}: {signature}{notes}")
    return report.data, hashlib.sha256(report.data).digest()


def _flash_ymodem(image: bytes, name: str, ctx: _Context) -> Generator[IoRequest, PumpResult, FlashResult]:
    image = check_application(image, GENERIC_IAP, name=name).data  # before anything is erased or sent
    ctx.start(Phase.TRANSFER, "choosing the IAP menu's 'Download image' and sending with YMODEM")
    yield Write(IAP_DOWNLOAD_KEY)
    # An AN4657 receiver does not flush its input after an ACK (lrzsz's rb does), so no quiet-line wait
    # before each block: stop-and-wait YMODEM needs every millisecond of turnaround it can save.
    # the file's own name (the flow is given the path as typed, so that hints name a file that exists)
    base = name.replace("\\", "/").rsplit("/", 1)[-1] or "firmware.bin"
    sender = YmodemSender([YmodemFile(name=base, data=image)], reply_delay=0.0)
    yield from pump(sender, ctx.clock(), until=lambda e: isinstance(e, BatchComplete), on_event=ctx.report)
    wire_bytes = ctx.wire.written - ctx.mark
    ctx.end(f"sent {len(image)} bytes with YMODEM", amount=len(image))
    return FlashResult(
        protocol="ymodem",
        image_size=len(image),
        digest=hashlib.sha256(image).digest(),
        baud=ctx.wire.baud,
        sent_bytes=len(image),
        payload_bytes=len(image),
        wire_bytes=wire_bytes,
    )


def _flash_ota(image: bytes, digest: bytes, ctx: _Context) -> Generator[IoRequest, PumpResult, FlashResult]:
    options, clock = ctx.options, ctx.clock
    host = HostConnection(baud=ctx.wire.baud)
    info = yield from read_info(host, clock, ctx.emit, meter=ctx.meter)
    image, digest = _checked(image, info, ctx)  # before anything is erased or sent
    result = FlashResult(protocol="ota", image_size=len(image), digest=digest, info_before=info, baud=ctx.wire.baud)
    if options.fast_baud and options.fast_baud != ctx.wire.baud:
        yield from _switch_baud(host, options.fast_baud, info, ctx)

    compress = options.compress
    if compress is None:
        compress = Option.DEFLATE in info.options
    result.compressed = compress
    resume = options.resume
    for attempt in range(1, ACTIVATE_ATTEMPTS + 1):
        host = yield from _transfer(host, image, ctx, compress=compress, resume=resume, result=result)
        ctx.start(Phase.VERIFY, "the device checks the image", total=len(image))
        host.verify(SECONDARY_SLOT)
        yield from _command(host, clock, ctx.report)
        ctx.end("the device checked the image: digest, signature, chip and security counter")
        kind = "permanent" if options.permanent else "test"
        ctx.start(Phase.ACTIVATE, f"marking the image for a {kind} boot")
        host.activate(options.permanent, slot=SECONDARY_SLOT)
        try:
            yield from _command(host, clock, ctx.report)
        except DeviceError as err:
            if attempt == ACTIVATE_ATTEMPTS or err.status not in _TRAILER_WRITE_FAILURES:
                raise
            # The slot's trailer could not be written: it is half-written (a power loss or reset while the
            # device wrote it, and the device already restarted).  A new BEGIN erases it; the image resumes.
            ctx.end(f"{err}: the slot's trailer is half-written (a reset while it was written?)")
            ctx.note("sending the image again (it resumes), which erases the trailer, then activating again")
            resume = True
            continue
        ctx.end(f"marked for a {kind} boot")
        break

    if not options.reboot:
        ctx.start(Phase.INFO, "reading the device's INFO")
        result.info_after = yield from _handshake(host, clock, ctx.report, ctx.note, BUSY_RETRY_TIMEOUT_S)
        ctx.end("the device keeps running its old image until it restarts")
        result.left_to_do = (NextStep.REBOOT,) if options.permanent else (NextStep.REBOOT, NextStep.CONFIRM)
        return result

    ctx.start(Phase.REBOOT, "restarting the device (the bootloader swaps the slots)")
    errors = ctx.collect_device_errors()  # what the new image says about itself from its first line on
    info_after = yield from _restart(host, ctx)
    primary = _slot(info_after, PRIMARY_SLOT)
    if primary is None or primary.digest not in image_digests(image):
        ctx.end("the device came back without the new image")
        raise UpdateError(
            "the device came back without the new image (the bootloader refused or reverted it)",
            hint="run `stm32ota info` and `stm32ota monitor` to see what the bootloader reported",
        )
    if primary.state is SlotState.ACTIVE and options.confirm and not options.permanent:
        info_after = yield from _await_self_test(info_after, errors, ctx)
        primary = _slot(info_after, PRIMARY_SLOT) or primary
    running = f"running {primary.version_text} ({primary.state.name.lower()})"
    if primary.state is SlotState.CONFIRMED and not options.permanent:
        running += ": the image confirmed itself after its self-test"
    ctx.end(running)
    if primary.state is SlotState.ACTIVE:
        if options.confirm and not options.permanent:
            ctx.start(Phase.CONFIRM, "confirming the new image")
            host = HostConnection(baud=ctx.wire.baud, info=info_after)  # its version is known: no PING
            host.confirm()
            yield from _command(host, clock, ctx.report)
            info_after = yield from _handshake(host, clock, ctx.report, ctx.note, BUSY_RETRY_TIMEOUT_S)
            ctx.end("new image confirmed")
        else:
            result.left_to_do = (NextStep.CONFIRM,)
    result.info_after = info_after
    return result


def _switch_baud(
    host: HostConnection, baud: int, info: DeviceInfo, ctx: _Context
) -> Generator[IoRequest, PumpResult, None]:
    start = ctx.wire.baud
    ctx.start(Phase.BAUD, f"switching to {baud} baud")
    if Option.BAUD_SWITCH not in info.options or baud not in info.baud_rates:
        ctx.end(f"the device does not offer {baud} baud; staying at {start}")
        return
    host.change_baud(baud)
    event = yield from pump(
        host, ctx.clock(), until=lambda e: isinstance(e, BaudChanged | BaudChangeFailed), on_event=ctx.report
    )
    if isinstance(event, BaudChanged):
        ctx.end(f"line rate now {event.baud} baud")
    else:
        ctx.end(f"the device did not follow to {baud} baud; staying at {start}")


def _transfer(
    host: HostConnection, image: bytes, ctx: _Context, *, compress: bool, resume: bool, result: FlashResult
) -> Generator[IoRequest, PumpResult, HostConnection]:
    """The data phase.  On a link too noisy for the block size, start again with smaller blocks: the device
    resumes where the failed attempt stopped, so nothing that got through is sent twice."""
    how = "deflated" if compress else "uncompressed"
    ctx.start(Phase.ERASE, "preparing the download slot (the device erases it)")
    first_mark = ctx.mark
    meter, report = ctx.meter, ctx.report

    def data_started() -> None:
        erased = meter.timings[-1].amount if meter.timings else 0
        ctx.end(f"erased {erased} bytes of the download slot" if erased else "download slot ready")
        ctx.start(Phase.TRANSFER, f"sending {len(image)} bytes ({how}) at {ctx.wire.baud} baud", total=len(image))

    def on_event(event: Event) -> None:
        # the first transfer progress (BEGIN answered, resume point known) ends the erase
        if meter.phase is Phase.ERASE and isinstance(event, Progress) and event.phase == Phase.TRANSFER:
            data_started()
        report(event)

    block_size: int | None = None
    for attempt in range(NOISY_LINK_ATTEMPTS):
        host.begin_transfer(image, slot=SECONDARY_SLOT, compress=compress, resume=resume, block_size=block_size)
        try:
            event = yield from pump(
                host, ctx.clock(), until=lambda e: isinstance(e, TransferComplete), on_event=on_event
            )
        except LinkTooNoisyError as err:
            smaller = max(MIN_BLOCK_SIZE, err.block_size // NOISY_LINK_SHRINK)
            if smaller >= err.block_size or attempt == NOISY_LINK_ATTEMPTS - 1:
                raise
            ctx.note(f"{err}; resuming with {smaller}-byte blocks")
            block_size, resume = smaller, True
            host = HostConnection(baud=host.baud, info=host.info)
            continue
        assert isinstance(event, TransferComplete)
        break
    else:  # pragma: no cover - the loop either breaks or raises
        raise AssertionError("unreachable")
    if meter.phase is Phase.ERASE:
        data_started()
    sent = event.size - event.resumed_from
    wire_bytes = ctx.wire.written - first_mark
    result.baud = ctx.wire.baud
    result.resumed_from = event.resumed_from
    result.sent_bytes += sent
    result.payload_bytes += event.payload_bytes
    result.wire_bytes += wire_bytes
    result.retransmits += event.retransmits
    resumed = f" (resumed at {event.resumed_from})" if event.resumed_from else ""
    packed = f", deflated to {event.payload_bytes}" if compress and sent else ""
    ctx.end(
        f"{event.size} bytes on the device{resumed}{packed}, {event.retransmits} blocks resent",
        amount=sent,
    )
    return host


def _restart(host: HostConnection, ctx: _Context) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    """REBOOT, back to the start rate (a reset brings the UART back to it), and INFO once the device answers."""
    host.reboot()
    yield from _command(host, ctx.clock, ctx.report)
    ctx.note("the device is restarting; waiting for it to answer")
    if ctx.wire.baud != ctx.options.baud:
        yield SetBaud(ctx.options.baud)
    return (yield from _wait_for_device(ctx.options, ctx))


def _wait_for_device(options: FlashOptions, ctx: _Context) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    """Poll INFO until the rebooted device answers (it may be swapping slots with real flash timings)."""
    clock = ctx.clock
    deadline = clock() + options.reboot_timeout
    while True:
        host = HostConnection(baud=options.baud)
        try:
            info: DeviceInfo = yield from _handshake(host, clock, ctx.report, ctx.note, max(deadline - clock(), 0.0))
        except ProtocolTimeoutError as err:
            if clock() > deadline:
                raise ProtocolTimeoutError(
                    f"the device did not answer within {options.reboot_timeout:.0f} s after reboot",
                    hint="check power and the cable; `stm32ota monitor` shows what it prints",
                ) from err
            # listen (device logs still show) for a moment before asking again
            yield from with_deadline(
                pump(HostConnection(baud=options.baud), clock(), on_event=ctx.report), clock() + REBOOT_POLL_S
            )
            continue
        return info


def _await_self_test(
    info: DeviceInfo, errors: list[str], ctx: _Context
) -> Generator[IoRequest, PumpResult, DeviceInfo]:
    """Give a test-booted image up to ``options.self_test_wait`` to judge itself: it confirms itself (returned
    INFO shows CONFIRMED), stays silent (returned as is: the host confirms), or logs an ERROR (``errors``
    collects them from the reboot on).  An image that reports an error is never confirmed by the host: the
    device is restarted so that its bootloader reverts to the image it ran before, and the flash fails with the
    device's own words."""
    clock = ctx.clock
    deadline = clock() + ctx.options.self_test_wait
    listen = ctx.report

    host = HostConnection(baud=ctx.wire.baud, info=info)
    while not errors and clock() < deadline:
        yield from with_deadline(pump(host, clock(), on_event=listen), min(clock() + SELF_TEST_POLL_S, deadline))
        if errors:
            break
        info = yield from _handshake(host, clock, listen, ctx.note, BUSY_RETRY_TIMEOUT_S)
        primary = _slot(info, PRIMARY_SLOT)
        if primary is None or primary.state is not SlotState.ACTIVE:
            return info  # it confirmed itself (or something else changed: the caller judges the slot)
    if not errors:
        return info
    ctx.end(f"the new image reported an error during its test boot: {errors[0]}")
    ctx.start(Phase.REBOOT, "restarting the device so that its bootloader brings back the previous image")
    back = yield from _restart(host, ctx)
    primary = _slot(back, PRIMARY_SLOT)
    now_running = f"; the device runs {primary.version_text} again" if primary is not None else ""
    ctx.end(f"restarted{now_running}")
    raise UpdateError(
        f"the new image failed on the device and was not confirmed: {errors[0]}{now_running}",
        hint="the device kept its previous image; `stm32ota monitor` shows its log, `stm32ota info` its slots",
    )


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
    if parsed.stored_digest is not None and len(parsed.stored_digest) == len(parsed.digest):
        digests.add(parsed.stored_digest)  # an encrypted image: the device reports its plaintext's digest
    return digests


def _describe(info: DeviceInfo) -> str:
    primary = _slot(info, PRIMARY_SLOT)
    running = f"running {primary.version_text} ({primary.state.name.lower()})" if primary else "no image"
    loader = info.bootloader_version or "?"
    return f"chip 0x{info.chip_id:03x}, uid {info.uid.hex()}, bootloader {loader}, {running}"


def _abort_on_cancel(
    flow: Generator[IoRequest, PumpResult, FlashResult],
    protocol: Literal["ota", "ymodem"],
    start_baud: int,
    clock: Callable[[], float],
) -> Generator[IoRequest, PumpResult, FlashResult]:
    """Run ``flow``; when the driver throws :class:`~protocol.errors.Cancelled` in (the cancel contract of
    ``SerialLink.execute``), tell the device, then re-raise.

    The device must hear a cancel: an OTA device gets ABORT (it drops the transfer or command it was busy with
    and keeps its resume record) and, if the flow had switched the line rate, is switched back to the start
    rate, so the next ``flash`` in the same process starts (or resumes) at once with no input to discard.  A
    YMODEM receiver gets CAN CAN and returns to its menu.  The cleanup is bounded by
    :data:`~protocol.pump.CANCEL_CLEANUP_S`; if the device does not answer within it, the cancel stands."""
    baud = start_baud  # the line rate now: follows the flow's SetBaud requests
    reply: PumpResult = None
    thrown: Cancelled | None = None
    try:
        while True:
            try:
                request = flow.send(reply) if thrown is None else flow.throw(thrown)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            thrown = None
            if type(request) is SetBaud:
                baud = request.baud
            try:
                reply = yield request
            except Cancelled as err:
                thrown, reply = err, None
    except (Cancelled, KeyboardInterrupt):  # a Ctrl-C that hit the flow's own code rather than a wait
        log.info("cancelled: telling the device")
        if protocol == "ymodem":
            yield Write(ABORT_SEQUENCE)
        else:
            yield from _tell_the_device(baud, start_baud, clock)
        raise


def _tell_the_device(baud: int, start_baud: int, clock: Callable[[], float]) -> Generator[IoRequest, PumpResult, None]:
    """ABORT at the current rate, then back to ``start_baud`` (both sides), within CANCEL_CLEANUP_S."""
    deadline = clock() + CANCEL_CLEANUP_S * 0.9  # inside the driver's own limit
    host = HostConnection(baud=baud)
    host.abort()
    try:
        done = yield from with_deadline(
            pump(host, clock(), until=lambda e: isinstance(e, CommandComplete)),
            min(deadline, clock() + ABORT_REPLY_WAIT_S),
        )
        if done is None:
            log.warning("the device did not answer the ABORT of a cancel")
    except Stm32OtaError as err:
        log.warning("the device did not take the ABORT of a cancel: %s", err)
    if baud == start_baud:
        return
    host = HostConnection(baud=baud)
    try:
        host.change_baud(start_baud)
        yield from with_deadline(
            pump(host, clock(), until=lambda e: isinstance(e, BaudChanged | BaudChangeFailed)), deadline
        )
    except Stm32OtaError as err:
        log.warning("could not switch the device back to %d baud: %s", start_baud, err)
    yield SetBaud(start_baud)  # our side returns to the start rate whatever the device did
