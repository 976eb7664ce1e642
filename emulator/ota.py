"""The OTA personality: the stm32ota bootloader + application, serving the device role of the update protocol.

At every reset :meth:`OtaPersonality.boot` runs the MCUboot-style bootloader (:mod:`emulator.boot`: resume or
run a swap, check the images, pick the one to run), then starts the emulated application
(:mod:`emulator.app`).  The running application embeds the update agent, as MCUboot-based firmware embeds
mcumgr: the host talks the update protocol to it, the agent writes the secondary slot, and a reboot lets the
bootloader swap.  With no bootable image the bootloader itself serves the protocol (serial recovery).

The agent owns a :class:`protocol.update.device.DeviceConnection` and answers its requests with the flash:

* INFO: chip id, board, 96-bit UID, flash layout, slot table (state, version, size, digest, security
  counter), limits, options (deflate, resume, baud switch), trusted key hashes, the resumable transfer.
* BEGIN: slot 1 only; the slot's sectors are erased ahead of the write pointer.  On a chip whose secondary
  slot sits in another bank (``read_while_write``) erasing runs in the background while blocks arrive and
  credit is held back only while the write pointer waits for a sector; on a single-bank chip, whose CPU
  stalls while its only bank erases, the sectors are erased before BEGIN is answered (PROGRESS frames
  meanwhile) so that no byte arrives while the UART is deaf.  Blocks are programmed as they arrive, within a
  busy budget the UART's RX ring covers; ``written`` goes into the resume record in the persisted state.
* VERIFY: every MCUboot check; a failure is the status mapped from the ``ImageError`` ``reason``.
* ACTIVATE: check, then write the secondary trailer (magic; ``image_ok`` too when permanent).
* REBOOT (after the reply drained), CONFIRM (``boot_set_confirmed``), ROLLBACK, ABORT, baud switch.
* ERASE: slot 0 or 1 only (the bootloader, scratch and state areas have no slot index), sector by sector with
  PROGRESS before each (the CPU stalls while its bank erases); the slot the running image lives in only with
  the force flag, and then the device resets into its bootloader (serial recovery) after the reply.
* READ: slot-relative ranges of slot 0 or 1, as bytes (at most ``max_block`` per request) or as the SHA-256
  of a range.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization

from protocol.errors import ImageError
from protocol.image import (
    Image,
    PublicKey,
    TlvType,
    check_digest,
    key_hash,
    load_public_key,
    reason_of,
)
from protocol.image.encryption import EncryptionPrivateKey, EncryptionPrivateKeyTypes, load_encryption_key
from protocol.update.constants import BUSY_REPORT_INTERVAL_S, DIGEST_SIZE, PRIMARY_SLOT, SECONDARY_SLOT
from protocol.update.device import DeviceConnection
from protocol.update.events import (
    AbortRequested,
    ActivateRequested,
    BaudChanged,
    BaudChangeRequested,
    BlockReceived,
    ConfirmRequested,
    EraseRequested,
    InfoRequested,
    LoggingChanged,
    ReadRequested,
    RebootRequested,
    RollbackRequested,
    TransferEnded,
    TransferRequested,
    VerifyRequested,
)
from protocol.update.messages import (
    DeviceInfo,
    FlashLayout,
    LogLevel,
    Option,
    PartialTransfer,
    SectorRun,
    SlotInfo,
    SlotRegion,
    SlotState,
)
from protocol.update.status import Status

from .app import HEARTBEAT_INTERVAL_S, SELF_TEST_DELAY_S, EmulatedApp
from .boot import STATE_KEY as BOOT_STATE_KEY
from .boot import Bootloader, BootResult, Flag, MagicState, SlotView, SwapType
from .chips import ChipProfile
from .driver import BITS_PER_BYTE, CoreDriver
from .flash import FlashAlignmentError, FlashError, FlashProgramError
from .line import DEFAULT_RX_BUFFER

if TYPE_CHECKING:
    from .device import DeviceContext

__all__ = [
    "BAUD_RATES",
    "BOOTLOADER_VERSION",
    "PRIMARY_SLOT",
    "SECONDARY_SLOT",
    "OtaPersonality",
    "device_limits",
    "status_for_image_error",
]

log = logging.getLogger(__name__)

BOOTLOADER_VERSION = "1.0.0"
BAUD_RATES = (115200, 230400, 460800, 921600)
DEFLATE_WBITS = 12  # a 4 KiB inflate window: what a small C inflater (uzlib) holds on any STM32
PROGRAM_CHUNK = 1024  # bytes programmed per flash operation during the data phase
RX_RING_SHARE = 0.5  # the share of the UART RX ring a busy spell may fill before the firmware reads it
REBOOT_DRAIN_MARGIN_S = 0.05  # after the REBOOT reply has left the UART, before the reset
COMMAND_FEED = 16  # bytes parsed per main-loop pass outside a data phase (a command frame is 9..60 bytes)
STATE_KEY = "ota"
ENC_KEY_STATE = "enc_key"  # the provisioned decryption key (PKCS#8 PEM) in the bootloader's state entry

_REASON_STATUS: dict[str, Status] = {
    "truncated": Status.TRUNCATED,
    "bad-magic": Status.BAD_MAGIC,
    "bad-tlv": Status.BAD_TLV,
    "tlv-overrun": Status.BAD_TLV,
    "too-large": Status.TOO_BIG,
    "digest-mismatch": Status.DIGEST_MISMATCH,
    "bad-signature": Status.BAD_SIGNATURE,
    "wrong-key-type": Status.BAD_SIGNATURE,
    "unknown-key": Status.UNKNOWN_KEY,
    "wrong-chip": Status.WRONG_CHIP,
    "wrong-board": Status.WRONG_CHIP,
    "security-counter": Status.SECURITY_COUNTER,
    "unsupported": Status.BAD_TLV,
    "non-bootable": Status.NON_BOOTABLE,
    "rom-fixed": Status.WRONG_ADDRESS,
    "misplaced-trailer": Status.BAD_TRAILER,
    "no-decrypt-key": Status.NO_DECRYPT_KEY,
    "dependency": Status.DEPENDENCY,
    "compressed": Status.COMPRESSED,
    "unsupported-signature": Status.BAD_SIGNATURE,
    "unsupported-digest": Status.BAD_SIGNATURE,
}


_SIGNATURE_TLVS = (TlvType.ED25519, TlvType.ECDSA_SIG, TlvType.RSA2048_PSS, TlvType.RSA3072_PSS)


def status_for_image_error(err: ImageError, image: Image | None = None) -> Status:
    """The protocol status for a failed image check (the table of ``reason`` slugs; a missing TLV becomes
    the status of the check it defeats: hardware tag -> WRONG_CHIP, security counter -> SECURITY_COUNTER,
    digest -> DIGEST_MISMATCH, signature or key -> BAD_SIGNATURE)."""
    reason = reason_of(err)
    if reason == "missing-tlv":  # the checks run in this order; the first TLV missing is the one reported
        if image is not None:
            if not image.find(TlvType.SHA256, protected=False):
                return Status.DIGEST_MISMATCH
            if not any(image.find(t, protected=False) for t in _SIGNATURE_TLVS):
                return Status.BAD_SIGNATURE
            if not image.find(TlvType.SEC_CNT, protected=True):
                return Status.SECURITY_COUNTER
            if not image.find(TlvType.HW_TAG, protected=True):
                return Status.WRONG_CHIP
        return Status.BAD_SIGNATURE
    return _REASON_STATUS.get(reason, Status.BAD_MAGIC)


def _flash_status(err: FlashError) -> Status:
    if isinstance(err, FlashProgramError):
        return Status.PROGRAM_SEQUENCE
    if isinstance(err, FlashAlignmentError):
        return Status.PROGRAM_ALIGNMENT
    return Status.PROGRAM_FAILED


@dataclass(frozen=True)
class Limits:
    max_block: int
    max_window: int

    @property
    def ram_buffer(self) -> int:
        return self.max_block * self.max_window


def device_limits(chip: ChipProfile) -> Limits:
    """Block size and window the chip's RAM affords (at most half the SRAM for the receive window)."""
    budget = chip.ram_size // 2
    block = 4096 if budget >= 64 * 1024 else 2048 if budget >= 32 * 1024 else 1024
    return Limits(max_block=block, max_window=max(1, min(16, budget // block)))


def _sector_runs(chip: ChipProfile) -> tuple[SectorRun, ...]:
    runs: list[SectorRun] = []
    for sector in chip.sectors:
        if runs and runs[-1].size == sector.size:
            runs[-1] = SectorRun(count=runs[-1].count + 1, size=sector.size)
        else:
            runs.append(SectorRun(count=1, size=sector.size))
    return tuple(runs)


class _Transfer:
    """The data phase in progress: image bytes not yet programmed, and the sectors still to erase."""

    def __init__(self, slot: SlotView, size: int, digest: bytes, start: int, to_erase: list[int]) -> None:
        self.slot = slot
        self.size = size
        self.digest = digest
        self.programmed = start  # image offset: everything below is in flash
        self.buffer = bytearray()  # image bytes from ``programmed`` on, received but not yet programmed
        self.to_erase = to_erase  # sector indexes, in address order
        self.ended = False


class OtaPersonality:
    """The stm32ota bootloader and its application (``stm32ota emulate --mode ota``)."""

    def __init__(
        self,
        *,
        auto_confirm: bool = True,
        self_test_delay: float = SELF_TEST_DELAY_S,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.auto_confirm = auto_confirm
        self.self_test_delay = self_test_delay
        self.heartbeat_interval = heartbeat_interval
        self.ctx: DeviceContext | None = None
        self.conn: DeviceConnection | None = None
        self.driver: CoreDriver | None = None
        self.bootloader: Bootloader | None = None
        self.result: BootResult | None = None
        self.app: EmulatedApp | None = None
        self.keys: list[PublicKey] = []
        self._xfer: _Transfer | None = None
        self._reset_at: float | None = None
        self._budget_left: float | None = None
        self._pass_busy = False
        self._pass_from_bytes = False
        self._boot_time = 0.0
        self._last_report = 0.0

    # -- helpers ---------------------------------------------------------------------------------------------
    @property
    def _c(self) -> DeviceContext:
        assert self.ctx is not None, "boot() first"
        return self.ctx

    @property
    def _conn(self) -> DeviceConnection:
        assert self.conn is not None, "boot() first"
        return self.conn

    @property
    def _driver(self) -> CoreDriver:
        assert self.driver is not None, "boot() first"
        return self.driver

    @property
    def _boot(self) -> Bootloader:
        assert self.bootloader is not None, "boot() first"
        return self.bootloader

    @property
    def _store(self) -> dict[str, Any]:
        entry = self._c.state.setdefault(STATE_KEY, {})
        assert isinstance(entry, dict)
        return entry

    def _flush(self) -> None:
        """Hand whatever the protocol core wants to send to the UART."""
        self._driver.flush()

    def say(self, level: int, text: str) -> None:
        """A device log line: a LOG frame (if the host subscribed) and the emulator's own log."""
        ctx = self._c
        ctx.log.log(logging.WARNING if level <= LogLevel.WARNING else logging.INFO, "%s", text)
        stamp = int((ctx.now() - self._boot_time) * 1000)
        self._conn.log(level, text, stamp)

    def _progress(self, phase: str, done: int, total: int, *, force: bool = False) -> None:
        now = self._c.now()
        if force or now - self._last_report >= BUSY_REPORT_INTERVAL_S / 2:
            self._last_report = now
            self._conn.report_progress(phase, done, total)
            self._flush()

    # -- Personality -----------------------------------------------------------------------------------------
    def boot(self, ctx: DeviceContext) -> None:
        self.ctx = ctx
        self._boot_time = ctx.now()
        self._xfer = None
        self._reset_at = None
        self.app = None
        limits = device_limits(ctx.chip)
        self.conn = DeviceConnection(
            max_block=limits.max_block,
            max_window=limits.max_window,
            options=Option.DEFLATE | Option.RESUME | Option.BAUD_SWITCH,
            deflate_wbits=DEFLATE_WBITS,
            baud_rates=BAUD_RATES,
            baud=ctx.baud,
            log_level=LogLevel.INFO,
        )
        self.driver = CoreDriver(self.conn, ctx)
        self.keys = self._load_keys(ctx.trusted_keys)
        self.bootloader = Bootloader(
            ctx.flash,
            ctx.chip,
            self.keys,
            ctx.state,
            enc_key=self._load_enc_key(ctx),
            say=lambda text: self.say(LogLevel.INFO, f"boot: {text}"),
        )
        self.say(LogLevel.INFO, f"boot: stm32ota bootloader {BOOTLOADER_VERSION} on {ctx.chip.name.upper()}")
        result = self.bootloader.boot()
        self.result = result
        if result.swap is not SwapType.NONE:
            self._store.pop("partial", None)  # the secondary slot now holds something else
        if result.image is not None:
            self.app = EmulatedApp(
                result.image,
                ctx.chip,
                under_test=result.under_test,
                say=self.say,
                confirm=self._boot.set_confirmed,
                auto_confirm=self.auto_confirm,
                self_test_delay=self.self_test_delay,
                heartbeat_interval=self.heartbeat_interval,
            )
            self.app.start(ctx.now())
        else:
            self.say(LogLevel.WARNING, "boot: serial recovery: waiting for an image on the UART")
        self._flush()

    def _new_pass(self) -> None:
        """A main-loop pass starts: it may keep the CPU busy (programming) for as long as the UART's RX ring
        covers at the current rate, then it must come back to read the UART."""
        ctx = self._c
        self._budget_left = None
        self._pass_busy = False
        if ctx.time_scale > 0:
            self._budget_left = DEFAULT_RX_BUFFER * RX_RING_SHARE * BITS_PER_BYTE / max(1, ctx.baud)

    def on_bytes(self, data: bytes) -> None:
        if self._reset_at is not None:
            return  # shutting down for the requested reset: the firmware no longer reads its UART
        self._new_pass()
        self._pass_from_bytes = True  # the on_idle() that follows in the same loop pass shares the budget
        conn = self._conn
        driver = self._driver
        if conn.in_transfer:
            driver.feed(data)
            self._process()
            return
        # commands are answered one at a time, as a firmware's main loop would: commands that queued up while
        # the chip was busy (e.g. a host polling INFO during a swap) each get their answer, not BUSY
        view = memoryview(data)
        for pos in range(0, len(data), COMMAND_FEED):
            driver.feed(bytes(view[pos : pos + COMMAND_FEED]))
            self._process()

    def on_idle(self, now: float) -> None:
        if not self._pass_from_bytes:
            self._new_pass()
        self._pass_from_bytes = False
        if self.app is not None and self._reset_at is None:
            self.app.tick(now)
        self._work_flash()
        if self._reset_at is None:
            self._driver.poll(now)  # a torn frame, an unfollowed baud switch, a host gone mid-transfer
        self._process()
        if self._reset_at is not None and now >= self._reset_at:
            self._reset_at = None
            self._c.reset()

    # -- the protocol ----------------------------------------------------------------------------------------
    def _process(self) -> None:
        conn = self._conn
        driver = self._driver
        while True:
            event = driver.next_event()
            if event is None:
                break
            if isinstance(event, InfoRequested):
                conn.reply_info(self.info())
            elif isinstance(event, TransferRequested):
                self._on_begin(event)
            elif isinstance(event, BlockReceived):
                self._on_block(event)
            elif isinstance(event, TransferEnded):
                self._on_end()
            elif isinstance(event, VerifyRequested):
                self._answer(self._verify(event.slot))
            elif isinstance(event, ActivateRequested):
                self._answer(self._activate(event.slot, event.permanent))
            elif isinstance(event, ConfirmRequested):
                self._answer(self._confirm())
            elif isinstance(event, RollbackRequested):
                self._answer(self._rollback())
            elif isinstance(event, RebootRequested):
                conn.complete()
                self._flush()
                self.say(LogLevel.INFO, "boot: reset requested by the host")
                self._flush()
                self._reset_at = max(self._c.now(), driver.tx_free_at) + REBOOT_DRAIN_MARGIN_S
            elif isinstance(event, EraseRequested):
                self._on_erase(event)
            elif isinstance(event, ReadRequested):
                self._on_read(event)
            elif isinstance(event, BaudChangeRequested):
                conn.complete()
            elif isinstance(event, BaudChanged):
                self._c.log.info("UART now at %d baud", event.baud)
            elif isinstance(event, AbortRequested):
                if self._xfer is not None:
                    self.say(LogLevel.WARNING, f"ota: transfer ended: {Status(event.status).name}")
                self._xfer = None
            elif isinstance(event, LoggingChanged):
                pass
        self._work_flash()
        self._flush()

    def _answer(self, status: Status) -> None:
        if status == Status.OK:
            self._conn.complete()
        else:
            self._conn.reject(status)

    # -- INFO ------------------------------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        ctx = self._c
        chip = ctx.chip
        limits = device_limits(chip)
        boot = self._boot
        uid_hex = self._c.state.get("uid")
        uid = bytes.fromhex(uid_hex) if isinstance(uid_hex, str) and len(uid_hex) == 24 else chip.uid
        return DeviceInfo(
            bootloader_version=BOOTLOADER_VERSION,
            chip_id=chip.dev_id,
            board_id=chip.board_id,
            uid=uid,
            flash=FlashLayout(
                base=chip.flash_base,
                size=chip.flash_size,
                sectors=_sector_runs(chip),
                slots=(
                    SlotRegion(index=PRIMARY_SLOT, address=boot.primary.start, size=boot.primary.size),
                    SlotRegion(index=SECONDARY_SLOT, address=boot.secondary.start, size=boot.secondary.size),
                ),
            ),
            slots=(self._slot_info(PRIMARY_SLOT), self._slot_info(SECONDARY_SLOT)),
            max_block=limits.max_block,
            max_window=limits.max_window,
            ram_buffer=limits.ram_buffer,
            options=self._conn.options,
            deflate_wbits=DEFLATE_WBITS,
            baud_rates=BAUD_RATES,
            key_hashes=tuple(key_hash(k) for k in self.keys),
            partial=self._partial(),
            capabilities=boot.capabilities,
        )

    def _slot_info(self, index: int) -> SlotInfo:
        boot = self._boot
        slot = boot.primary if index == PRIMARY_SLOT else boot.secondary
        try:
            image = boot.plain_image(slot, slot.parse())  # an encrypted secondary image: its plaintext's digest
            check_digest(image, decrypted=True)
        except ImageError:
            return SlotInfo(index=index, state=SlotState.EMPTY)
        trailer = slot.trailer()
        if index == PRIMARY_SLOT:
            if self.result is None or self.result.image is None:
                state = SlotState.INACTIVE
            elif boot.primary_under_test():
                state = SlotState.ACTIVE
            else:
                state = SlotState.CONFIRMED
        elif trailer.magic is MagicState.GOOD:
            state = SlotState.PENDING_PERMANENT if trailer.image_ok is Flag.SET else SlotState.PENDING_TEST
        else:
            state = SlotState.INACTIVE
        v = image.version
        return SlotInfo(
            index=index,
            state=state,
            version=(v.major & 0xFF, v.minor & 0xFF, v.revision & 0xFFFF, v.build & 0xFFFFFFFF),
            image_size=image.end,
            digest=image.digest,
            security_counter=image.security_counter or 0,
        )

    def _partial(self) -> PartialTransfer | None:
        record = self._store.get("partial")
        if not isinstance(record, dict):
            return None
        try:
            size, written = int(record["size"]), int(record["written"])
            digest = bytes.fromhex(str(record["digest"]))
            slot = int(record["slot"])
        except (KeyError, ValueError):
            return None
        if written >= size or len(digest) != DIGEST_SIZE:
            return None
        return PartialTransfer(slot=slot, size=size, written=written, digest=digest)

    def _save_partial(self, xfer: _Transfer) -> None:
        self._store["partial"] = {
            "slot": SECONDARY_SLOT,
            "size": xfer.size,
            "digest": xfer.digest.hex(),
            "written": xfer.programmed,
        }

    # -- data phase ------------------------------------------------------------------------------------------
    def _on_begin(self, event: TransferRequested) -> None:
        conn = self._conn
        flash = self._c.flash
        slot = self._boot.secondary
        if event.slot != SECONDARY_SLOT:
            conn.reject(Status.BAD_SLOT)
            return
        if event.size > slot.capacity and event.size != slot.size:  # padded to the slot's size (--pad) fits
            self.say(LogLevel.ERROR, f"ota: {event.size} bytes do not fit the {slot.capacity}-byte slot")
            conn.reject(Status.TOO_BIG)
            return
        start = 0
        record = self._store.get("partial")
        if (
            event.resume
            and isinstance(record, dict)
            and record.get("size") == event.size
            and record.get("digest") == event.digest.hex()
        ):
            start = int(record.get("written", 0))
            start -= start % flash.chip.write_width
            if start < event.size:
                addr = slot.start + start
                sector = flash.sector_at(addr)
                if not flash.is_erased(addr, sector.end - addr):
                    start = sector.start - slot.start  # a block cut half-way: redo its sector
        first = slot.start + start
        to_erase = [s.index for s in flash.sectors_in(first, max(event.size - start, 1))]
        if start and flash.sector_at(first).start < first:
            to_erase = to_erase[1:]  # the sector holding the resume point keeps what it has
        last = slot.sectors[-1]
        if last.index not in to_erase and not flash.is_erased(slot.trailer_start, slot.trailer_reserve):
            to_erase.append(last.index)  # an old trailer must not make the new image look pending
        xfer = _Transfer(slot, event.size, event.digest, start, to_erase)
        self._save_partial(xfer)
        if not flash.chip.read_while_write:
            try:
                self._erase_all(xfer)
            except FlashError as err:
                self.say(LogLevel.ERROR, f"ota: erase failed: {err}")
                conn.reject(Status.ERASE_FAILED)
                return
        self._xfer = xfer
        resumed = f", resuming at {start}" if start else ""
        self.say(LogLevel.INFO, f"ota: receiving {event.size} bytes into slot {SECONDARY_SLOT}{resumed}")
        conn.accept_transfer(start)

    def _erase_all(self, xfer: _Transfer) -> None:
        """Erase every sector the transfer needs now (PROGRESS between sectors)."""
        flash = self._c.flash
        sectors = [flash.sectors[index] for index in xfer.to_erase]
        total = sum(s.size for s in sectors)
        done = 0
        for sector in sectors:
            self._progress("erase", done, total, force=True)
            if not flash.is_erased(sector.start, sector.size):
                flash.erase_sector(sector.index)
            done += sector.size
        if total:
            self._progress("erase", total, total, force=True)
        xfer.to_erase = []

    def _on_block(self, event: BlockReceived) -> None:
        xfer = self._xfer
        if xfer is None:
            return
        expected = xfer.programmed + len(xfer.buffer)
        if event.offset != expected:  # cannot happen with an in-order core; refuse rather than corrupt
            self._fail(Status.INTERNAL, f"block at {event.offset}, expected {expected}")
            return
        xfer.buffer += event.data  # programmed at the end of this pass (_process)

    def _on_end(self) -> None:
        xfer = self._xfer
        if xfer is None:
            self._conn.reject(Status.NOT_ALLOWED)
            return
        xfer.ended = True
        self._work_flash(unlimited=True)
        if self._xfer is None:
            return  # failed (already answered)
        if xfer.buffer or xfer.programmed < xfer.size:
            self._fail(Status.SIZE_MISMATCH, "the transfer ended short")
            return
        self._xfer = None
        self.say(LogLevel.INFO, f"ota: {xfer.size} bytes written to slot {SECONDARY_SLOT}")
        self._conn.complete()

    def _fail(self, status: Status, why: str) -> None:
        self.say(LogLevel.ERROR, f"ota: transfer failed: {why}")
        self._xfer = None
        self._conn.reject(status)

    def _work_flash(self, *, unlimited: bool = False) -> None:
        """Erase ahead and program what is buffered, within a busy budget the UART's RX ring covers."""
        xfer = self._xfer
        if xfer is None:
            return
        ctx = self._c
        flash = ctx.flash
        width = flash.chip.write_width
        rww = flash.chip.read_while_write
        # on a dual-bank chip the secondary slot programs while the code (and its UART) runs from the other bank
        background_program = rww and not unlimited
        budget = None if unlimited or background_program else self._budget_left
        spent = 0.0
        try:
            while True:
                addr = xfer.slot.start + xfer.programmed
                sector = flash.sector_at(addr) if xfer.programmed < xfer.size else None
                if sector is not None and sector.index in xfer.to_erase:
                    # the write pointer reached a sector that still has to be erased
                    if flash.busy and not unlimited:
                        break  # a background erase is running: hold credit, keep receiving
                    self._erase_next(xfer, background=not unlimited)
                    continue
                n = len(xfer.buffer)
                if not xfer.ended:
                    n -= n % width
                n = min(n, PROGRAM_CHUNK)
                if sector is not None:
                    n = min(n, sector.end - addr)
                if n <= 0:
                    if xfer.to_erase and not flash.busy and rww:
                        self._erase_next(xfer, background=True)  # nothing to program: erase ahead
                    break
                if flash.busy and not unlimited:
                    break  # the flash is still working in the background: keep the UART serviced
                unit_time = flash.chip.program_time_s * ctx.time_scale
                if budget is not None and unit_time > 0:
                    # a deaf spell must fit the UART's RX ring: program no more than the budget allows
                    if (spent > 0 or self._pass_busy) and spent + unit_time > budget:
                        break  # back to the UART first
                    units = max(1, int((budget - spent) / unit_time))
                    n = min(n, units * width)
                cost = (n + width - 1) // width * unit_time
                chunk = bytes(xfer.buffer[:n])
                flash.program_padded(addr, chunk, wait=not background_program)
                spent += cost
                self._pass_busy = True
                if self._budget_left is not None and not unlimited:
                    self._budget_left -= cost
                del xfer.buffer[:n]
                xfer.programmed += n
                self._save_partial(xfer)
                self._conn.block_written(xfer.programmed)
                if xfer.programmed >= xfer.size:
                    break
        except FlashError as err:
            self._fail(_flash_status(err), f"flash error at 0x{xfer.slot.start + xfer.programmed:08X}: {err}")
            return
        self._flush()

    def _erase_next(self, xfer: _Transfer, *, background: bool) -> None:
        flash = self._c.flash
        index = xfer.to_erase.pop(0)
        sector = flash.sectors[index]
        self._progress("erase", xfer.programmed, xfer.size)
        if not flash.is_erased(sector.start, sector.size):
            flash.erase_sector(index, wait=not background)

    # -- image commands --------------------------------------------------------------------------------------
    def _slot(self, index: int) -> SlotView | None:
        if index == PRIMARY_SLOT:
            return self._boot.primary
        if index == SECONDARY_SLOT:
            return self._boot.secondary
        return None

    def _transferred_size(self, slot: SlotView) -> int | None:
        """The size of the last complete transfer into ``slot`` (what VERIFY looks at), if any."""
        record = self._store.get("partial")
        if slot is not self._boot.secondary or not isinstance(record, dict):
            return None
        size, written = record.get("size"), record.get("written")
        if isinstance(size, int) and isinstance(written, int) and written >= size:
            return size
        return None

    def _check(self, slot: SlotView) -> Status:
        if slot.is_empty():
            return Status.NO_IMAGE
        size = self._transferred_size(slot)
        image: Image | None = None
        try:
            image = slot.parse(size)
            self._progress("verify", 0, image.end, force=True)
            verified = self._boot.check_upload(slot, size)
        except ImageError as err:
            status = status_for_image_error(err, image)
            self.say(LogLevel.ERROR, f"ota: image in the {slot.name} slot refused: {err} [{status.name}]")
            return status
        self._progress("verify", image.end, image.end, force=True)
        self.say(LogLevel.INFO, f"ota: {slot.name} slot holds {verified.version}: signature and checks ok")
        return Status.OK

    def _verify(self, index: int) -> Status:
        slot = self._slot(index)
        if slot is None:
            return Status.BAD_SLOT
        return self._check(slot)

    def _activate(self, index: int, permanent: bool) -> Status:
        if index != SECONDARY_SLOT:
            return Status.BAD_SLOT
        slot = self._boot.secondary
        status = self._check(slot)
        if status != Status.OK:
            return status
        try:
            ok = self._boot.set_pending(permanent)
        except FlashError as err:
            self.say(LogLevel.ERROR, f"ota: writing the trailer failed: {err}")
            return _flash_status(err)
        if not ok:
            self.say(LogLevel.ERROR, "ota: the secondary trailer is damaged: transfer the image again")
            return Status.PROGRAM_SEQUENCE
        kind = "permanent" if permanent else "test"
        self.say(LogLevel.INFO, f"ota: slot {SECONDARY_SLOT} marked for a {kind} boot at the next reset")
        return Status.OK

    def _confirm(self) -> Status:
        result = self.result
        if result is None or result.image is None or not result.under_test:
            return Status.NOT_CONFIRMABLE
        try:
            ok = self._boot.set_confirmed()
        except FlashError as err:
            return _flash_status(err)
        if not ok:
            return Status.PROGRAM_SEQUENCE
        if self.app is not None:
            self.app.confirmed = True
        self.say(LogLevel.INFO, "boot: running image confirmed by the host")
        return Status.OK

    def _rollback(self) -> Status:
        boot = self._boot
        if self.result is not None and self.result.image is not None and boot.primary_under_test():
            if self.app is not None:
                self.app.hold_confirm = True
            self.say(LogLevel.INFO, "boot: the test image is not confirmed: the next reset goes back")
            return Status.OK
        try:
            boot.validate(boot.secondary)
        except ImageError as err:
            self.say(LogLevel.WARNING, f"ota: no image to roll back to ({reason_of(err)})")
            return Status.NO_ROLLBACK
        try:
            ok = boot.set_pending(permanent=True)
        except FlashError as err:
            return _flash_status(err)
        if not ok:
            return Status.NO_ROLLBACK
        self.say(LogLevel.INFO, "boot: the previous image runs again after the next reset")
        return Status.OK

    # -- ERASE and READ --------------------------------------------------------------------------------------
    def _on_erase(self, event: EraseRequested) -> None:
        conn = self._conn
        slot = self._slot(event.slot)
        if slot is None:
            self.say(LogLevel.WARNING, f"ota: there is no slot {event.slot} to erase (slots: 0, 1)")
            conn.reject(Status.BAD_SLOT)
            return
        running = slot is self._boot.primary and self.result is not None and self.result.image is not None
        if running and not event.force:
            self.say(LogLevel.WARNING, "ota: not erasing the primary slot: the running image lives there")
            conn.reject(Status.SLOT_IN_USE)
            return
        flash = self._c.flash
        done = 0
        try:
            for sector in slot.sectors:
                self._progress("erase", done, slot.size, force=True)  # before the CPU stalls on the erase
                if not flash.is_erased(sector.start, sector.size):
                    flash.erase_sector(sector.index)
                done += sector.size
        except FlashError as err:
            self.say(LogLevel.ERROR, f"ota: erasing the {slot.name} slot failed: {err}")
            conn.reject(Status.ERASE_FAILED)
            return
        self._progress("erase", slot.size, slot.size, force=True)
        if slot is self._boot.secondary:
            self._store.pop("partial", None)  # nothing left to resume
        if running:
            self.app = None  # its code is gone
            self.say(LogLevel.WARNING, "ota: the running image is erased: resetting into the bootloader")
            conn.reply_erase(slot.size, resetting=True)
            self._flush()
            self._reset_at = max(self._c.now(), self._driver.tx_free_at) + REBOOT_DRAIN_MARGIN_S
            return
        self.say(LogLevel.INFO, f"ota: {slot.name} slot erased ({slot.size} bytes)")
        conn.reply_erase(slot.size)

    def _on_read(self, event: ReadRequested) -> None:
        conn = self._conn
        slot = self._slot(event.slot)
        if slot is None:
            conn.reject(Status.BAD_SLOT)
            return
        if event.offset + event.length > slot.size:
            conn.reject(Status.BAD_ARGUMENT)
            return
        data = self._c.flash.read(slot.start + event.offset, event.length)
        if event.digest:
            self._progress("verify", 0, event.length, force=True)
            conn.reply_digest(hashlib.sha256(data).digest())
        else:
            conn.reply_read(data)

    # -- keys ------------------------------------------------------------------------------------------------
    def _load_enc_key(self, ctx: DeviceContext) -> EncryptionPrivateKey | None:
        """The bootloader's decryption key: ``--enc-key`` (then kept in the persisted state, as a chip keeps
        the key it was provisioned with), else the one kept from an earlier run, else none."""
        store = ctx.state.setdefault(BOOT_STATE_KEY, {})
        given: Path | None = getattr(ctx, "enc_key", None)  # a test harness's context may not carry one
        if given is not None:
            try:
                key = load_encryption_key(Path(given).read_bytes())
            except (OSError, ImageError) as err:
                ctx.log.warning("cannot load the encryption key %s: %s", given, err)
                return None
            if not isinstance(key, EncryptionPrivateKeyTypes):
                ctx.log.warning("the encryption key %s is a public key: the device decrypts nothing", given)
                return None
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii")
            store[ENC_KEY_STATE] = pem
            return key
        pem = store.get(ENC_KEY_STATE)
        if not isinstance(pem, str):
            return None
        try:
            stored = load_encryption_key(pem.encode("ascii"))
        except ImageError as err:
            ctx.log.warning("the stored encryption key does not load: %s", err)
            return None
        return stored if isinstance(stored, EncryptionPrivateKeyTypes) else None

    def _load_keys(self, paths: Sequence[Path]) -> list[PublicKey]:
        keys: list[PublicKey] = []
        for path in paths:
            try:
                keys.append(load_public_key(Path(path).read_bytes()))
            except (OSError, ImageError) as err:
                self._c.log.warning("cannot load trusted key %s: %s", path, err)
        return keys
