"""Every status code of the stm32ota update protocol: ONE table, number -> name, text, hint.

A device answers every command with a status (``Status.OK`` or a failure).  The host turns a failure into
:class:`protocol.errors.DeviceError` with :func:`device_error`; nothing else in the code base spells out a
status text.  ``docs/protocol.md`` carries the same table (a test checks the two agree).

Ranges: ``0x00`` OK; ``0x01-0x1F`` protocol; ``0x20-0x3F`` image checks; ``0x40-0x5F`` flash;
``0x60-0x7F`` device state and internal errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..errors import DeviceError

__all__ = ["SIGN_EXAMPLE", "STATUS_TABLE", "Status", "StatusInfo", "describe", "device_error"]


class Status(IntEnum):
    """Status codes (u16 on the wire)."""

    OK = 0x00
    # protocol
    BAD_FRAME = 0x01
    BAD_SEQUENCE = 0x02
    WINDOW_OVERFLOW = 0x03
    NOT_ALLOWED = 0x04
    BUSY = 0x05
    UNSUPPORTED = 0x06
    RESUME_MISMATCH = 0x07
    ABORTED = 0x08
    BAD_ARGUMENT = 0x09
    BAUD_UNSUPPORTED = 0x0A
    DECOMPRESS_FAILED = 0x0B
    SIZE_MISMATCH = 0x0C
    BAD_SLOT = 0x0D
    # image checks
    BAD_MAGIC = 0x20
    TRUNCATED = 0x21
    DIGEST_MISMATCH = 0x22
    BAD_SIGNATURE = 0x23
    UNKNOWN_KEY = 0x24
    WRONG_CHIP = 0x25
    SECURITY_COUNTER = 0x26
    TOO_BIG = 0x27
    BAD_TLV = 0x28
    NO_IMAGE = 0x29
    NON_BOOTABLE = 0x2A
    WRONG_ADDRESS = 0x2B
    BAD_TRAILER = 0x2C
    NO_DECRYPT_KEY = 0x2D
    DEPENDENCY = 0x2E
    COMPRESSED = 0x2F
    # flash
    ERASE_FAILED = 0x40
    PROGRAM_FAILED = 0x41
    PROGRAM_SEQUENCE = 0x42
    PROGRAM_ALIGNMENT = 0x43
    WRITE_PROTECTED = 0x44
    VERIFY_FAILED = 0x45
    # device state / internal
    NO_ROLLBACK = 0x60
    NOT_CONFIRMABLE = 0x61
    SLOT_IN_USE = 0x62
    INTERNAL = 0x7F


@dataclass(frozen=True, kw_only=True)
class StatusInfo:
    code: int
    name: str
    text: str
    hint: str | None = None


def _row(status: Status, text: str, hint: str | None = None) -> tuple[int, StatusInfo]:
    return int(status), StatusInfo(code=int(status), name=status.name, text=text, hint=hint)


SIGN_EXAMPLE = (
    "stm32ota sign -k KEY.pem -v 1.0.1 -H 0x200 --pad-header -S 0x60000 --align 4 -s 1 --chip 0x413 --board 1"
    " app.bin app.signed.bin"
)
_RETRY = "retry; if it persists, check the cable and lower the baud rate"

STATUS_TABLE: dict[int, StatusInfo] = dict(
    [
        _row(Status.OK, "ok"),
        _row(Status.BAD_FRAME, "the device received a malformed frame", _RETRY),
        _row(Status.BAD_SEQUENCE, "a data block arrived out of sequence", _RETRY),
        _row(
            Status.WINDOW_OVERFLOW,
            "the host sent a block beyond the window the device granted",
            "this is a host bug: report it with a --trace log",
        ),
        _row(
            Status.NOT_ALLOWED,
            "the command is not allowed in the device's current state",
            "finish or abort the running transfer first (stm32ota flash restarts cleanly)",
        ),
        _row(Status.BUSY, "the device is busy with another request", "wait and retry"),
        _row(
            Status.UNSUPPORTED,
            "the device does not support this command or option",
            "check `stm32ota info`: the options line lists what the bootloader offers",
        ),
        _row(
            Status.RESUME_MISMATCH,
            "the device's partial transfer does not match this image",
            "flash again with --no-resume to start from offset 0",
        ),
        _row(Status.ABORTED, "the transfer was aborted"),
        _row(Status.BAD_ARGUMENT, "a command parameter is out of range", "check block size, window and slot"),
        _row(
            Status.BAUD_UNSUPPORTED,
            "the device cannot switch to the requested baud rate",
            "pick one of the rates `stm32ota info` lists",
        ),
        _row(
            Status.DECOMPRESS_FAILED,
            "the compressed data stream is corrupt or uses a larger window than the device supports",
            "flash again with --no-compress",
        ),
        _row(
            Status.SIZE_MISMATCH,
            "the transfer ended with a different number of bytes than announced",
            _RETRY,
        ),
        _row(Status.BAD_SLOT, "no such slot, or the slot cannot be written", "use the download slot (1)"),
        _row(
            Status.BAD_MAGIC,
            "the image has no valid header magic",
            f"sign it first (KEY.pem: a key the device trusts): {SIGN_EXAMPLE}"
            " (slot size and chip of the emulated STM32F407; `stm32ota flash` prints the one for your device)",
        ),
        _row(Status.TRUNCATED, "the image is shorter than its header says", "rebuild and re-sign the image"),
        _row(
            Status.DIGEST_MISMATCH,
            "the image digest does not match its contents",
            "the transfer or the file is corrupt: flash again with --no-resume",
        ),
        _row(
            Status.BAD_SIGNATURE,
            "the image signature is invalid, or the image is not signed",
            f"sign it with a key the device trusts (KEY.pem): {SIGN_EXAMPLE}",
        ),
        _row(
            Status.UNKNOWN_KEY,
            "the image is signed with a key the device does not trust",
            "compare `stm32ota getpub` with the key hashes `stm32ota info` shows",
        ),
        _row(
            Status.WRONG_CHIP,
            "the image is built for another chip or board",
            "check the hardware tag: stm32ota inspect app.signed.bin",
        ),
        _row(
            Status.SECURITY_COUNTER,
            "the image's security counter is lower than the device's (downgrade refused)",
            "sign with --security-counter at least the device's value",
        ),
        _row(Status.TOO_BIG, "the image is too big for the slot", "check the slot size in `stm32ota info`"),
        _row(Status.BAD_TLV, "the image's TLV area is malformed", "rebuild and re-sign the image"),
        _row(Status.NO_IMAGE, "the slot holds no image", "flash an image first"),
        _row(
            Status.NON_BOOTABLE,
            "the image is marked non-bootable (imgtool sign --non-bootable)",
            "sign it again without --non-bootable",
        ),
        _row(
            Status.WRONG_ADDRESS,
            "the image is built for a fixed address (ROM_FIXED) other than the slot it runs from",
            "sign it again without --rom-fixed, or with the primary slot's address `stm32ota info` shows",
        ),
        _row(
            Status.BAD_TRAILER,
            "the image is padded for another slot size: its trailer is not at this slot's end",
            "sign it without --pad, or with --pad -S set to the slot size `stm32ota info` shows",
        ),
        _row(
            Status.NO_DECRYPT_KEY,
            "the image is encrypted for a key this device does not hold",
            "encrypt it for this device's public key (sign -E), or flash the plain image;"
            " `stm32ota info` lists what the device decrypts",
        ),
        _row(
            Status.DEPENDENCY,
            "the image depends on an image or version the device does not have (imgtool sign -d)",
            "sign it again with dependencies this device meets: `stm32ota inspect` shows them",
        ),
        _row(
            Status.COMPRESSED,
            "the image is compressed and the device's swapping bootloader does not decompress",
            "sign it again without --compression",
        ),
        _row(Status.ERASE_FAILED, "flash erase failed", "the sector may be worn or write-protected"),
        _row(Status.PROGRAM_FAILED, "flash programming failed (PROGERR)", _RETRY),
        _row(
            Status.PROGRAM_SEQUENCE,
            "flash programming sequence error (PGSERR)",
            "a bootloader bug or a missed erase: report it with the device log",
        ),
        _row(Status.PROGRAM_ALIGNMENT, "flash programming alignment or parallelism error (PGAERR/PGPERR)"),
        _row(
            Status.WRITE_PROTECTED,
            "the flash area is write-protected (WRPERR)",
            "clear the write protection with STM32CubeProgrammer",
        ),
        _row(Status.VERIFY_FAILED, "flash read-back differs from the data written", _RETRY),
        _row(
            Status.NO_ROLLBACK,
            "there is no previous image to roll back to",
            "the other slot holds no valid image: `stm32ota info` shows both slots",
        ),
        _row(
            Status.NOT_CONFIRMABLE,
            "the running image is not under test, so there is nothing to confirm",
            "nothing is under test: flash an image with --no-confirm first",
        ),
        _row(
            Status.SLOT_IN_USE,
            "the slot holds the image the device is running",
            "add --force to erase it anyway: the device then restarts into serial recovery and waits for an image",
        ),
        _row(Status.INTERNAL, "internal bootloader error", "reset the device and retry"),
    ]
)


def describe(code: int) -> StatusInfo:
    """The table row for ``code``; an unknown code gets a generic row that still names the number."""
    info = STATUS_TABLE.get(code)
    if info is None:
        return StatusInfo(
            code=code,
            name=f"UNKNOWN_0x{code:02X}",
            text=f"unknown status 0x{code:02X}",
            hint="the bootloader is newer than this host tool: update stm32ota",
        )
    return info


def device_error(code: int, command: str | None = None) -> DeviceError:
    """The :class:`DeviceError` for a failure ``code`` (optionally naming the command that failed)."""
    info = describe(code)
    where = f"{command}: " if command else ""
    return DeviceError(f"device: {where}{info.text} [{info.name}, 0x{code:02X}]", status=code, hint=info.hint)
