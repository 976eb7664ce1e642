from __future__ import annotations

import binascii
import zlib

from hypothesis import given
from hypothesis import strategies as st

from protocol.crc import checksum8, crc16_xmodem, crc32


def test_check_values() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3
    assert crc32(b"123456789") == 0xCBF43926
    assert checksum8(b"\xff\x02") == 0x01


@given(st.binary(max_size=2048))
def test_agrees_with_stdlib(data: bytes) -> None:
    assert crc16_xmodem(data) == binascii.crc_hqx(data, 0)
    assert crc32(data) == zlib.crc32(data)
