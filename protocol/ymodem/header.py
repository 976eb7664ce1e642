"""The parts of the wire with no state: block 0's header codec, file names, and the framing of one block."""

from __future__ import annotations

from dataclasses import dataclass

from ..crc import checksum8, crc16_xmodem
from ..errors import RemoteProtocolError
from .constants import BLOCK_1K, BLOCK_128, SOH, STX
from .events import FileStarted

__all__ = ["YmodemFile", "encode_block", "encode_header", "parse_header", "safe_filename"]

_MAX_NAME_BYTES = 255


# -- files and block 0 ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class YmodemFile:
    """One file of a batch to send: its name as the receiver will see it, and its contents."""

    name: str
    data: bytes
    mtime: int | None = None
    mode: int | None = None

    def __post_init__(self) -> None:
        if not self.name or "\0" in self.name:
            raise ValueError(f"unusable YMODEM file name {self.name!r}")
        if self.mtime is not None and self.mtime < 0:
            raise ValueError("mtime must not be negative")
        if self.mode is not None and self.mode < 0:
            raise ValueError("mode must not be negative")
        if len(encode_header(self.name, len(self.data), self.mtime, self.mode)) > BLOCK_1K:
            raise ValueError(f"file name too long for block 0: {self.name!r}")


def encode_header(name: str, size: int, mtime: int | None = None, mode: int | None = None) -> bytes:
    """The meaningful part of block 0: ``name NUL size[ mtime-octal[ mode-octal]]`` (unpadded)."""
    fields = [str(size)]
    if mtime is not None or mode is not None:
        fields.append(f"{mtime or 0:o}")
    if mode is not None:
        fields.append(f"{mode:o}")
        fields.append("0")  # serial number: lrzsz's rb expects it after a mode (it crashes without)
    return name.encode("utf-8") + b"\0" + " ".join(fields).encode("ascii")


def parse_header(payload: bytes) -> FileStarted | None:
    """Parse the payload of a block 0; ``None`` for the empty block 0 that ends a batch.

    Tolerant where senders differ (ST's IAP ends the size with NUL, lrzsz adds mtime, mode, serial and more);
    a size that is not a decimal number raises :class:`~protocol.errors.RemoteProtocolError`.
    """
    end = payload.find(b"\0")
    raw_name = payload if end < 0 else payload[:end]
    if not raw_name:
        return None
    rest = b"" if end < 0 else payload[end + 1 :]
    info_end = rest.find(b"\0")
    fields = (rest if info_end < 0 else rest[:info_end]).split()
    size: int | None = None
    mtime: int | None = None
    mode: int | None = None
    if fields:
        if not fields[0].isdigit():
            raise RemoteProtocolError(f"block 0 carries an unreadable file size {fields[0][:20]!r}")
        size = int(fields[0])
    if len(fields) > 1:
        mtime = _octal(fields[1])
    if len(fields) > 2:
        mode = _octal(fields[2])
    name = raw_name.decode("utf-8", errors="replace")
    return FileStarted(name=name, size=size, mtime=mtime, mode=mode)


def _octal(field: bytes) -> int | None:
    try:
        return int(field, 8)
    except ValueError:
        return None


def safe_filename(name: str) -> str:
    """A received file name made safe to create inside a download directory.

    Directory parts (``/`` or ``\\``, drive letters) are dropped, so the result is a bare name: never
    absolute, never ``..``.  Control characters become ``_``.  A name with nothing usable left (empty,
    ``.``, ``..``) or longer than 255 bytes raises :class:`~protocol.errors.RemoteProtocolError`.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if len(base) >= 2 and base[1] == ":" and base[0].isalpha():
        base = base[2:]
    base = "".join("_" if (ord(ch) < 32 or ord(ch) == 127) else ch for ch in base).strip()
    if base in ("", ".", ".."):
        raise RemoteProtocolError(
            f"the sender's file name {name!r} is not usable as a file name",
            hint="rename the file on the sending side",
        )
    if len(base.encode("utf-8", errors="surrogateescape")) > _MAX_NAME_BYTES:
        raise RemoteProtocolError(f"the sender's file name is too long ({len(base)} characters)")
    return base


def encode_block(seq: int, payload: bytes, crc: bool) -> bytes:
    """One block on the wire: SOH/STX, number, complement, payload (128 or 1024 bytes), CRC or checksum."""
    seq &= 0xFF
    head = bytes((SOH if len(payload) == BLOCK_128 else STX, seq, 0xFF - seq))
    trailer = crc16_xmodem(payload).to_bytes(2, "big") if crc else bytes((checksum8(payload),))
    return head + payload + trailer
