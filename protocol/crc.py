"""Checksums shared by every core: CRC-16/XMODEM (YMODEM blocks, update frames) and the XMODEM checksum."""

from __future__ import annotations

from collections.abc import Callable

import crcmod.predefined

__all__ = ["checksum8", "crc16_xmodem", "crc32"]

# crcmod's C extension: poly 0x1021, init 0, no reflection, no xor-out; check value of b"123456789" is 0x31C3.
crc16_xmodem: Callable[[bytes], int] = crcmod.predefined.mkCrcFun("xmodem")
crc32: Callable[[bytes], int] = crcmod.predefined.mkCrcFun("crc-32")


def checksum8(data: bytes) -> int:
    """The original XMODEM checksum: the sum of the data bytes modulo 256."""
    return sum(data) & 0xFF
