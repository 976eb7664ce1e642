"""Frames of the stm32ota update protocol: encode, and a decoder that resynchronises after garbage.

Layout (all multi-byte fields little-endian; CRC is CRC-16/XMODEM from :mod:`protocol.crc`)::

    offset size field
    0      1    SOF = 0xA5
    1      1    type      (FrameType)
    2      1    seq       (command sequence number, echoed by its reply; block number for DATA)
    3      2    length    payload length, 0..MAX_PAYLOAD
    5      2    hcrc      CRC-16 of bytes 0..4
    7      n    payload
    7+n    2    pcrc      CRC-16 of the payload (0x0000 for an empty payload)

The header has its own CRC, so a receiver that lost its place scans for SOF, checks 7 bytes and knows
whether a frame starts there before it waits for ``length`` more bytes.  A frame whose header is sound but
whose payload CRC fails is reported as :class:`CorruptFrame` (type and seq are trustworthy), so a DATA block
damaged on the wire can be asked for again at once.  The decoder then rescans from the byte after that SOF,
so a false header found inside garbage can never swallow a real frame.

The decoder never raises on input: it returns frames, corrupt-frame notices, or ``None`` (needs more data).
It has no per-byte Python loop: it searches with ``bytearray.find`` and checks with crcmod's C CRC.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from ..crc import crc16_xmodem
from .constants import FRAME_HEADER_SIZE, FRAME_OVERHEAD, FRAME_TRAILER_SIZE, MAX_PAYLOAD, SOF

__all__ = ["CorruptFrame", "Frame", "FrameDecoder", "FrameType", "encode_frame"]

_HEAD = struct.Struct("<BBBH")
_U16 = struct.Struct("<H")
_COMPACT_AT = 4096  # drop consumed bytes from the buffer once this many have piled up


class FrameType(IntEnum):
    """The ``type`` byte.  ``0x01-0x3F`` commands (host to device), ``0x40`` data, ``0x80-`` device frames."""

    PING = 0x01
    INFO = 0x02
    CHANGE_BAUD = 0x03
    SYNC = 0x04
    BEGIN = 0x05
    END = 0x06
    VERIFY = 0x07
    ACTIVATE = 0x08
    REBOOT = 0x09
    CONFIRM = 0x0A
    ROLLBACK = 0x0B
    ABORT = 0x0C
    SET_LOG = 0x0D
    ERASE = 0x0E
    READ = 0x0F
    DATA = 0x40
    REPLY = 0x80
    ACK = 0x81
    NAK = 0x82
    PROGRESS = 0x83
    LOG = 0x84


COMMAND_TYPES = frozenset(t for t in FrameType if t < FrameType.DATA)


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose header and payload CRCs both matched.  ``type`` is the raw byte (may be unknown)."""

    type: int
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class CorruptFrame:
    """A frame with a sound header but a payload that failed its CRC."""

    type: int
    seq: int
    length: int


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes of one frame."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = _HEAD.pack(SOF, ftype & 0xFF, seq & 0xFF, len(payload))
    return b"".join((head, _U16.pack(crc16_xmodem(head)), payload, _U16.pack(crc16_xmodem(payload))))


class FrameDecoder:
    """Incremental frame decoder.  ``feed`` buffers; ``next`` returns the next frame or ``None``."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._max_payload = max_payload
        self.discarded = 0  # bytes skipped while hunting for a frame start (noise, torn frames)
        self.corrupt = 0  # frames with a sound header but a bad payload CRC

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes held but not yet decoded."""
        return len(self._buf) - self._pos

    def clear(self) -> None:
        """Forget everything buffered (after a baud switch the old bytes are meaningless)."""
        self.discarded += self.buffered
        self._buf.clear()
        self._pos = 0

    def skip_stalled(self) -> None:
        """Give up on a frame whose header arrived but whose payload never did (called on a timeout):
        rescan from the byte after its SOF, in case the header was noise."""
        if self.buffered:
            self._pos += 1
            self.discarded += 1

    def _compact(self) -> None:
        if self._pos >= _COMPACT_AT or self._pos == len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0

    def next(self) -> Frame | CorruptFrame | None:
        buf = self._buf
        while True:
            start = buf.find(SOF, self._pos)
            if start < 0:
                self.discarded += len(buf) - self._pos
                self._pos = len(buf)
                self._compact()
                return None
            if start > self._pos:
                self.discarded += start - self._pos
                self._pos = start
            if len(buf) - start < FRAME_HEADER_SIZE:
                self._compact()
                return None
            _sof, ftype, seq, length = _HEAD.unpack_from(buf, start)
            (hcrc,) = _U16.unpack_from(buf, start + 5)
            if length > self._max_payload or crc16_xmodem(bytes(buf[start : start + 5])) != hcrc:
                self._pos = start + 1
                self.discarded += 1
                continue
            end = start + FRAME_OVERHEAD + length
            if len(buf) < end:
                self._compact()
                return None
            payload = bytes(buf[start + FRAME_HEADER_SIZE : end - FRAME_TRAILER_SIZE])
            (pcrc,) = _U16.unpack_from(buf, end - FRAME_TRAILER_SIZE)
            if crc16_xmodem(payload) != pcrc:
                self._pos = start + 1
                self.discarded += 1
                self.corrupt += 1
                return CorruptFrame(type=ftype, seq=seq, length=length)
            self._pos = end
            self._compact()
            return Frame(type=ftype, seq=seq, payload=payload)
