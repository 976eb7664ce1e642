"""The AN4657 personality (``--mode iap``): ST's UART IAP example as technicians know it.

At reset the chip prints the banner and the main menu and waits for a key:

``1``  download: YMODEM receive of a raw ``.bin`` into the application area (after erasing it),
``2``  upload: after the host's ``C``, YMODEM send of the application area,
``3``  execute: jump to the application,
``4``  toggle write protection of the application area (then the chip restarts).

During a download ``a``/``A`` at a block boundary or CAN CAN from the sender aborts.  The application area is
everything above the IAP itself: 0x08004000 on the F4 (ST's STM324xG-EVAL example), 0x08003000 on the F1
(AN2557), 0x08008000 on the L4 (``IAP_APP_ADDRESS``).

The real example's quirks are kept, each switchable off (:class:`IapQuirks`, ``--iap-quirks``):

``erase-before-ack``  the whole application area is erased (taking the chip's erase time) before block 0 is
                      ACKed; off: sectors are erased as the data reaches them, and block 0 is ACKed at once;
``ack-first-eot``     the first EOT is ACKed at once (the spec NAKs it and waits for a second);
``nak-duplicates``    a duplicate block is NAKed rather than re-ACKed;
``five-errors``       five errors in a row abort (the spec allows ten);
``write-padding``     the 0x1A padding of the last block is written to flash too.

Where the example is simply broken we do the right thing and say so in docs/emulator.md: its size check
tests the wrong variable (we refuse a file larger than the area with CAN CAN), it ignores erase errors, and
after five errors it sends CAN CAN but keeps receiving (we end the download).  Uploads send the size of the
last downloaded image (the example sends the whole area), so an upload gives back exactly what was loaded.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from protocol.errors import ProtocolError, ProtocolTimeoutError, Stm32OtaError, TransferAborted
from protocol.sansio import Event
from protocol.ymodem import (
    CAN,
    MAX_ERRORS,
    BatchComplete,
    FileData,
    FileReceived,
    FileStarted,
    YmodemFile,
    YmodemReceiver,
    YmodemSender,
)

from .driver import CoreDriver

if TYPE_CHECKING:
    from .device import DeviceContext

__all__ = [
    "IAP_APP_ADDRESS",
    "IAP_ERRORS",
    "IAP_TIMEOUT_S",
    "QUIRK_NAMES",
    "UPLOAD_FILE_NAME",
    "IapPersonality",
    "IapQuirkError",
    "IapQuirks",
    "parse_quirks",
]

log = logging.getLogger(__name__)

# Where the application starts, per chip (the IAP itself sits below).
IAP_APP_ADDRESS: dict[str, int] = {
    "stm32f407vg": 0x0800_4000,  # STM32CubeF4 STM324xG_EVAL IAP: sectors 1..11
    "stm32f103c8": 0x0800_3000,  # AN2557 (STM32F10x IAP): 12 KiB of IAP
    "stm32l476rg": 0x0800_8000,  # STM32CubeL4 IAP examples: 32 KiB of IAP
}
DEFAULT_IAP_SIZE = 0x4000  # for a chip not in the table: the first 16 KiB hold the IAP
IAP_TIMEOUT_S = 1.0  # DOWNLOAD_TIMEOUT and NAK_TIMEOUT of the example (1 s)
IAP_ERRORS = 5  # MAX_ERRORS of the example
UPLOAD_FILE_NAME = "UploadedFlashImage.bin"
ABORT_KEYS = b"aA"
_ACK = b"\x06"
_FW_VERSION = "1.0.0"
_STATE_KEY = "iap"  # our entry in the persisted device state


class IapQuirkError(Stm32OtaError, ValueError):
    """An ``--iap-quirks`` list that names an unknown quirk."""


@dataclass(frozen=True, kw_only=True)
class IapQuirks:
    """Which of the real example's quirks to keep (all on by default)."""

    erase_before_ack: bool = True
    ack_first_eot: bool = True
    nak_duplicates: bool = True
    five_errors: bool = True
    write_padding: bool = True

    @classmethod
    def none(cls) -> IapQuirks:
        return cls(**{f.name: False for f in fields(cls)})


QUIRK_NAMES: dict[str, str] = {f.name.replace("_", "-"): f.name for f in fields(IapQuirks)}


def parse_quirks(text: str) -> IapQuirks:
    """``"all"``, ``"none"`` or a comma list of quirk names to keep (the others are off)."""
    spec = text.strip().lower()
    if spec in ("", "all"):
        return IapQuirks()
    if spec == "none":
        return IapQuirks.none()
    chosen: dict[str, bool] = {name: False for name in QUIRK_NAMES.values()}
    for raw in spec.split(","):
        name = raw.strip()
        if name not in QUIRK_NAMES:
            raise IapQuirkError(
                f"unknown IAP quirk {name!r}",
                hint=f"use all, none, or a comma list of: {', '.join(QUIRK_NAMES)}",
            )
        chosen[QUIRK_NAMES[name]] = True
    return IapQuirks(**chosen)


def _family(chip_name: str) -> str:
    """``stm32f407vg`` -> ``STM32F4xx``."""
    return chip_name[:7].upper() + "xx" if len(chip_name) >= 7 else chip_name.upper()


class _Mode:
    MENU = "menu"
    DOWNLOAD = "download"
    UPLOAD_WAIT = "upload-wait"
    UPLOAD = "upload"
    APP = "app"
    HALTED = "halted"  # jumped into an empty or invalid application: a hard fault, silent until reset


class IapPersonality:
    """ST's AN4657 IAP on the emulated chip (see the module docstring)."""

    def __init__(self, *, quirks: IapQuirks | None = None, app_address: int | None = None) -> None:
        self.quirks = quirks if quirks is not None else IapQuirks()
        self._app_address_override = app_address
        self.ctx: DeviceContext | None = None
        self.mode = _Mode.MENU
        self._run: CoreDriver | None = None
        self._dest = 0
        self._file: FileStarted | None = None
        self._erased: set[int] = set()
        self._result: str | None = None
        self.app: _RawApp | None = None

    # -- layout --------------------------------------------------------------------------------------------
    @property
    def _c(self) -> DeviceContext:
        assert self.ctx is not None, "boot() first"
        return self.ctx

    @property
    def app_address(self) -> int:
        if self._app_address_override is not None:
            return self._app_address_override
        chip = self._c.chip
        return IAP_APP_ADDRESS.get(chip.name, chip.flash_base + DEFAULT_IAP_SIZE)

    @property
    def app_size(self) -> int:
        chip = self._c.chip
        end = chip.flash_base + sum(s.size for s in chip.sectors)
        return end - self.app_address

    @property
    def _store(self) -> dict[str, Any]:
        entry = self._c.state.setdefault(_STATE_KEY, {})
        assert isinstance(entry, dict)
        return entry

    @property
    def write_protected(self) -> bool:
        return bool(self._store.get("write_protected", False))

    # -- Personality ---------------------------------------------------------------------------------------
    def boot(self, ctx: DeviceContext) -> None:
        self.ctx = ctx
        self.mode = _Mode.MENU
        self._run = None
        self._say(
            "\r\n======================================================================"
            "\r\n=              (C) COPYRIGHT 2016 STMicroelectronics                 ="
            "\r\n=                                                                    ="
            f"\r\n=  {_family(ctx.chip.name)} In-Application Programming Application"
            f"  (Version {_FW_VERSION}) ="
            "\r\n=                                                                    ="
            "\r\n=                                   By MCD Application Team          ="
            "\r\n======================================================================"
            "\r\n\r\n"
        )
        self._menu()

    def on_bytes(self, data: bytes) -> None:
        now = self._c.now()
        while data:
            mode = self.mode
            if mode == _Mode.MENU:
                key, data = data[:1], data[1:]
                self._on_key(key)
            elif mode == _Mode.UPLOAD_WAIT:
                first, data = data[:1], data[1:]
                if first == b"C":
                    self._start_upload(now)
                    # the 'C' that started the upload is the sender's start request
                    self._drive(now, first)
                else:
                    self._menu()
            elif mode == _Mode.DOWNLOAD:
                if self._at_block_boundary() and data[:1] in (b"a", b"A"):
                    self._abort_download("\r\n\nAborted by user.\n\r")
                    data = data[1:]
                    continue
                chunk, data = data, b""
                self._drive(now, chunk)
            elif mode == _Mode.UPLOAD:
                chunk, data = data, b""
                self._drive(now, chunk)
            elif mode == _Mode.APP:
                chunk, data = data, b""
                if self.app is not None:
                    self.app.on_bytes(chunk)
            else:
                return  # HALTED: nobody reads the UART

    def on_idle(self, now: float) -> None:
        if self.mode in (_Mode.DOWNLOAD, _Mode.UPLOAD):
            self._drive(now, timeout=True)

    # -- menu ----------------------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self._c.write(text.encode("latin-1"))

    def _menu(self) -> None:
        self.mode = _Mode.MENU
        self._run = None
        toggle = "Disable" if self.write_protected else "Enable "
        self._say(
            "\r\n=================== Main Menu ============================\r\n\n"
            "  Download image to the internal Flash ----------------- 1\r\n\n"
            "  Upload image from the internal Flash ----------------- 2\r\n\n"
            "  Execute the loaded application ----------------------- 3\r\n\n"
            f"  {toggle} the write protection -------------------------- 4\r\n\n"
            "==========================================================\r\n\n"
        )

    def _on_key(self, key: bytes) -> None:
        if key == b"1":
            self._start_download()
        elif key == b"2":
            self._say("\n\n\rSelect Receive File\n\r")
            self.mode = _Mode.UPLOAD_WAIT
        elif key == b"3":
            self._say("Start program execution......\r\n\n")
            self._execute()
        elif key == b"4":
            protect = not self.write_protected
            self._store["write_protected"] = protect
            self._say(f"Write Protection {'enabled' if protect else 'disabled'}...\r\n")
            self._say("System will now restart...\r\n")
            self._c.reset()
        else:
            self._say("Invalid Number ! ==> The number should be either 1, 2, 3 or 4\r")
            self._menu()

    # -- download ------------------------------------------------------------------------------------------
    def _start_download(self) -> None:
        self._say("Waiting for the file to be sent ... (press 'a' to abort)\n\r")
        q = self.quirks
        receiver = YmodemReceiver(
            nak_duplicates=q.nak_duplicates,
            ack_first_eot=q.ack_first_eot,
            max_errors=IAP_ERRORS if q.five_errors else MAX_ERRORS,
            keep_padding=q.write_padding,
            c_on_error=True,
            hold_header_ack=True,
            hold_data_ack=True,
            crc_requests=None,  # the example never falls back to the checksum
            start_requests=None,  # ... and asks with 'C' every second until a sender answers
            request_interval=IAP_TIMEOUT_S,
            block_timeout=IAP_TIMEOUT_S,
            char_timeout=IAP_TIMEOUT_S,
        )
        self.mode = _Mode.DOWNLOAD
        self._dest = self.app_address
        self._file = None
        self._erased = set()
        self._run = CoreDriver(receiver, self._c)
        self._drive(self._c.now())

    def _at_block_boundary(self) -> bool:
        """True when the receiver holds no partial block (the example reads 'a' only as a packet's first
        byte)."""
        run = self._run
        if run is None:
            return False
        pending: bytearray = getattr(run.core, "_in", bytearray())
        return not pending

    def _abort_download(self, message: str) -> None:
        self._c.log.info("iap: download aborted: %s", message.strip())
        self._c.write(bytes((CAN, CAN)))
        self._say(message)
        self._menu()

    def _drive(self, now: float, data: bytes = b"", *, timeout: bool = False) -> None:
        """Feed ``data`` (or a timeout) to the current core, then handle its events until it needs input;
        errors end the transfer with the example's messages."""
        run = self._run
        if run is None:
            return
        try:
            run.feed(data)
            if timeout and not run.poll(now):
                return  # not silent for long enough yet
            while True:
                event = run.next_event()
                if event is None:
                    break
                self._on_event(event)
                if self._run is not run:
                    return  # the event ended the transfer
                run.flush()
        except ProtocolError as err:
            run.flush()
            self._transfer_failed(err)

    def _on_event(self, event: Event) -> None:
        if self.mode == _Mode.UPLOAD:
            if isinstance(event, BatchComplete):
                self._say("\n\rFile uploaded successfully \n\r")
                self._menu()
            return  # FileStarted / FileSent / Progress of our own upload
        if isinstance(event, FileStarted):
            self._on_file_started(event)
        elif isinstance(event, FileData):
            self._on_file_data(event.data)
        elif isinstance(event, FileReceived):
            self._store["image_size"] = event.size
            self._store["image_name"] = event.name
        elif isinstance(event, BatchComplete):
            self._download_done()

    def _on_file_started(self, header: FileStarted) -> None:
        receiver = self._receiver()
        if header.size is not None and header.size > self.app_size:
            self._result = "\n\n\rThe image size is higher than the allowed space memory!\n\r"
            receiver.reject_file(f"image of {header.size} bytes does not fit the {self.app_size}-byte area")
            return
        self._file = header
        if self.quirks.erase_before_ack:
            self._erase(self.app_address, self.app_size)
        receiver.accept_file()

    def _on_file_data(self, data: bytes) -> None:
        receiver = self._receiver()
        end = self.app_address + self.app_size
        if self._dest + len(data) > end:
            data = data[: max(0, end - self._dest)]
            if not data:
                self._result = "\n\n\rThe image size is higher than the allowed space memory!\n\r"
                receiver.reject_data("data beyond the end of the application area")
                return
        if not self._program(self._dest, data):
            self._result = "\n\n\rVerification failed!\n\r"
            receiver.reject_data("flash programming failed")
            return
        self._dest += len(data)
        receiver.accept_data()

    def _download_done(self) -> None:
        name = self._file.name if self._file is not None else ""
        size = self._store.get("image_size", 0)
        self._say(
            "\n\n\r Programming Completed Successfully!\n\r--------------------------------\r\n Name: "
            f"{name}\n\r Size: {size} Bytes\r\n-------------------\n"
        )
        self._c.log.info("IAP: %s (%d bytes) programmed at 0x%08X", name, size, self.app_address)
        self._menu()

    def _receiver(self) -> YmodemReceiver:
        assert self._run is not None and isinstance(self._run.core, YmodemReceiver)
        return self._run.core

    def _transfer_failed(self, err: ProtocolError) -> None:
        downloading = self.mode == _Mode.DOWNLOAD
        self._c.log.info("IAP transfer ended: %s", err)
        if downloading:
            if isinstance(err, TransferAborted) and err.by_peer:
                self._c.write(_ACK)  # the example ACKs the sender's CAN CAN
                message = "\r\n\nAborted by user.\n\r"
            elif self._result is not None:
                message = self._result
            else:
                message = "\n\rFailed to receive the file!\n\r"
        else:
            message = "\n\rError Occurred while Transmitting File\n\r"
            if isinstance(err, ProtocolTimeoutError):
                log.debug("upload timed out")
        self._result = None
        self._say(message)
        self._menu()

    # -- flash ---------------------------------------------------------------------------------------------
    def _erase(self, addr: int, size: int) -> bool:
        """Erase the sectors covering ``addr..addr+size`` (not yet erased in this download)."""
        from .flash import FlashError

        ok = True
        with self._c.deaf():  # FLASH_If_Erase loops over the sectors without a look at the UART
            for sector in self._c.flash.sectors_in(addr, size):
                if sector.index in self._erased:
                    continue
                self._erased.add(sector.index)
                if self.write_protected:
                    ok = False  # FLASH_If_Erase fails on protected sectors (and the example ignores it)
                    continue
                try:
                    self._c.flash.erase_sector(sector.index)
                except FlashError as err:
                    self._c.log.warning("IAP: erase of sector %d failed: %s", sector.index, err)
                    ok = False
        return ok

    def _program(self, addr: int, data: bytes) -> bool:
        """FLASH_If_Write: program and verify ``data``; False on any failure."""
        from .flash import FlashError

        if self.write_protected:
            return False
        if not self.quirks.erase_before_ack:
            self._erase(addr, len(data))
        width = self._c.chip.write_width
        start = addr - (addr % width)
        head = addr - start
        tail = (-(head + len(data))) % width
        # a partial unit at either end is filled with 0xFF, which leaves those flash bits as they are
        chunk = b"\xff" * head + data + b"\xff" * tail
        try:
            self._c.flash.program(start, chunk)
        except FlashError as err:
            self._c.log.warning("IAP: programming 0x%08X failed: %s", addr, err)
            return False
        return bytes(self._c.flash.read(addr, len(data))) == bytes(data)

    # -- upload --------------------------------------------------------------------------------------------
    def _start_upload(self, now: float) -> None:
        size = int(self._store.get("image_size", self.app_size))
        size = min(size, self.app_size)
        data = bytes(self._c.flash.read(self.app_address, size))
        sender = YmodemSender(
            [YmodemFile(UPLOAD_FILE_NAME, data)],
            start_timeout=IAP_TIMEOUT_S * 10,
            ack_timeout=IAP_TIMEOUT_S,
            header_ack_timeout=IAP_TIMEOUT_S,
            max_retries=IAP_ERRORS,
        )
        self.mode = _Mode.UPLOAD
        self._run = CoreDriver(sender, self._c)

    # -- execute -------------------------------------------------------------------------------------------
    def _execute(self) -> None:
        head = bytes(self._c.flash.read(self.app_address, 8))
        stack = int.from_bytes(head[:4], "little")
        ram_size = int(getattr(self._c.chip, "ram_size", 0x20000))
        if not 0x2000_0000 < stack <= 0x2000_0000 + ram_size:
            # the example jumps anyway: an erased or foreign area hard-faults, and the chip goes silent
            self._c.log.warning("IAP: no valid application at 0x%08X (stack pointer 0x%08X)", self.app_address, stack)
            self.mode = _Mode.HALTED
            return
        self.mode = _Mode.APP
        self.app = self._start_app()

    def _start_app(self) -> _RawApp:
        """The jumped-to code "runs".  A build that carries the stm32ota app descriptor (the demo firmware)
        talks like the demo: its banner, 'v' for the version, 'r' to reset (back into this menu); any other
        raw binary runs without a word the emulator could know."""
        app = _RawApp(self._c, self.app_address, self.app_size)
        app.start()
        return app


APP_INFO_OFFSET = 0x188  # the demo firmware's descriptor: right after its vector table
APP_INFO_MAGIC = 0x4F54_4133
_APP_INFO = struct.Struct("<IBBHHH24s24s")


class _RawApp:
    """A raw application started by the IAP's "Execute" (see :meth:`IapPersonality._start_app`)."""

    def __init__(self, ctx: DeviceContext, address: int, size: int) -> None:
        self.ctx = ctx
        self.address = address
        self.name: str | None = None
        self.version: str | None = None
        raw = ctx.flash.read(address + APP_INFO_OFFSET, _APP_INFO.size) if size > APP_INFO_OFFSET else b""
        if len(raw) == _APP_INFO.size:
            magic, major, minor, revision, _dev, _board, name, _build = _APP_INFO.unpack(raw)
            if magic == APP_INFO_MAGIC:
                self.name = name.split(b"\0", 1)[0].decode("ascii", errors="replace")
                self.version = f"{major}.{minor}.{revision}"

    def start(self) -> None:
        if self.name is None:
            self.ctx.log.info("IAP: started a raw application at 0x%08X", self.address)
            return
        self.ctx.write(
            f"\n{self.name} {self.version} running from 0x{self.address:08X}\n"
            "press 'r' to reset into the bootloader, 'v' for the version\n".encode()
        )

    def on_bytes(self, data: bytes) -> None:
        if self.name is None:
            return
        for key in data:
            if key == ord("v"):
                self.ctx.write(f"{self.name} {self.version}\n".encode())
            elif key == ord("r"):
                self.ctx.write(b"resetting\n")
                self.ctx.reset()
                return
