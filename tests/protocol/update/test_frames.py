"""Frame encode/decode, h11-style: whole, byte by byte, with trailing bytes; resync after garbage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.crc import crc16_xmodem
from protocol.update.constants import FRAME_OVERHEAD, MAX_PAYLOAD, SOF
from protocol.update.frames import CorruptFrame, Frame, FrameDecoder, FrameType, encode_frame

FRAMES = [
    (FrameType.PING, 1, b""),
    (FrameType.DATA, 0xA5, bytes((0xA5, 0x5A)) + bytes(range(256)) * 4),
    (FrameType.LOG, 0, b"\x02\x00\x00\x00\x00hello \xa5\xa5 world"),
    (FrameType.REPLY, 255, bytes([SOF] * 40)),
]


def decode_all(decoder: FrameDecoder) -> list[Frame | CorruptFrame]:
    out = []
    while (item := decoder.next()) is not None:
        out.append(item)
    return out


def test_layout_matches_the_spec() -> None:
    frame = encode_frame(FrameType.INFO, 7, b"ab")
    assert frame[0] == SOF
    assert frame[1] == FrameType.INFO
    assert frame[2] == 7
    assert struct.unpack_from("<H", frame, 3)[0] == 2
    assert struct.unpack_from("<H", frame, 5)[0] == crc16_xmodem(frame[:5])
    assert frame[7:9] == b"ab"
    assert struct.unpack_from("<H", frame, 9)[0] == crc16_xmodem(b"ab")
    assert len(frame) == FRAME_OVERHEAD + 2


def test_empty_payload_has_zero_crc() -> None:
    assert encode_frame(FrameType.PING, 3)[-2:] == b"\x00\x00"


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_frame(FrameType.DATA, 0, bytes(MAX_PAYLOAD + 1))


@pytest.mark.parametrize("ftype,seq,payload", FRAMES)
def test_whole(ftype: int, seq: int, payload: bytes) -> None:
    d = FrameDecoder()
    d.feed(encode_frame(ftype, seq, payload))
    assert decode_all(d) == [Frame(type=ftype, seq=seq, payload=payload)]
    assert d.buffered == 0 and d.discarded == 0


@pytest.mark.parametrize("ftype,seq,payload", FRAMES)
def test_byte_by_byte(ftype: int, seq: int, payload: bytes) -> None:
    d = FrameDecoder()
    data = encode_frame(ftype, seq, payload)
    got: list[Frame | CorruptFrame] = []
    for i in range(len(data)):
        d.feed(data[i : i + 1])
        got += decode_all(d)
        if i < len(data) - 1:
            assert got == []
    assert got == [Frame(type=ftype, seq=seq, payload=payload)]


@pytest.mark.parametrize("ftype,seq,payload", FRAMES)
def test_with_trailing_bytes(ftype: int, seq: int, payload: bytes) -> None:
    d = FrameDecoder()
    nxt = encode_frame(FrameType.PING, 9)
    d.feed(encode_frame(ftype, seq, payload) + nxt[:5])
    assert decode_all(d) == [Frame(type=ftype, seq=seq, payload=payload)]
    assert d.buffered == 5  # the start of the next frame waits
    d.feed(nxt[5:])
    assert decode_all(d) == [Frame(type=FrameType.PING, seq=9, payload=b"")]


def test_resync_after_garbage_full_of_sof_bytes() -> None:
    d = FrameDecoder()
    garbage = bytes([SOF, 0, SOF, SOF, 1, 2, 3, SOF]) * 10
    d.feed(garbage + encode_frame(FrameType.ACK, 4, b"x" * 12) + b"\x00\x11" + encode_frame(FrameType.LOG, 0, b"z"))
    frames = decode_all(d)
    assert [f.type for f in frames] == [FrameType.ACK, FrameType.LOG]
    assert d.discarded == len(garbage) + 2


def test_damaged_payload_is_reported_and_the_next_frame_still_decodes() -> None:
    bad = bytearray(encode_frame(FrameType.DATA, 17, b"\x11\xee" + bytes(100)))
    bad[50] ^= 0x01
    d = FrameDecoder()
    d.feed(bytes(bad) + encode_frame(FrameType.DATA, 18, b"\x12\xed" + bytes(100)))
    items = decode_all(d)
    assert items[0] == CorruptFrame(type=FrameType.DATA, seq=17, length=102)
    assert items[-1] == Frame(type=FrameType.DATA, seq=18, payload=b"\x12\xed" + bytes(100))
    assert d.corrupt == 1


def test_damaged_header_is_skipped() -> None:
    bad = bytearray(encode_frame(FrameType.PING, 1))
    bad[2] ^= 0x40
    d = FrameDecoder()
    d.feed(bytes(bad) + encode_frame(FrameType.PING, 2))
    assert decode_all(d) == [Frame(type=FrameType.PING, seq=2, payload=b"")]


def test_torn_frame_then_timeout_rescans() -> None:
    # a header whose payload never comes (the link was cut) must not hide the frames after a timeout
    torn = encode_frame(FrameType.DATA, 1, bytes(500))[:100]
    d = FrameDecoder()
    d.feed(torn)
    assert decode_all(d) == []
    d.skip_stalled()
    d.feed(encode_frame(FrameType.PING, 5))
    assert decode_all(d) == [Frame(type=FrameType.PING, seq=5, payload=b"")]


def test_length_beyond_limit_is_noise() -> None:
    head = struct.pack("<BBBH", SOF, 1, 1, MAX_PAYLOAD + 1)
    d = FrameDecoder()
    d.feed(head + struct.pack("<H", crc16_xmodem(head)) + encode_frame(FrameType.PING, 2))
    assert decode_all(d) == [Frame(type=FrameType.PING, seq=2, payload=b"")]


def test_clear_forgets_buffered_bytes() -> None:
    d = FrameDecoder()
    d.feed(encode_frame(FrameType.PING, 2)[:4])
    d.clear()
    assert d.buffered == 0
    d.feed(encode_frame(FrameType.PING, 3))
    assert decode_all(d) == [Frame(type=FrameType.PING, seq=3, payload=b"")]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(1, 64), max_size=50))
def test_any_bytes_never_raise_and_stay_bounded(data: bytes, cuts: list[int]) -> None:
    d = FrameDecoder()
    pos = 0
    for cut in [*cuts, len(data)]:
        d.feed(data[pos : pos + cut])
        pos += cut
        for item in decode_all(d):
            assert isinstance(item, (Frame, CorruptFrame))
        assert d.buffered <= FRAME_OVERHEAD + MAX_PAYLOAD
    # after a timeout and enough rescans everything is consumed or waiting on one header
    for _ in range(len(data) + 1):
        d.skip_stalled()
        decode_all(d)
    assert d.buffered < FRAME_OVERHEAD


@settings(max_examples=100, deadline=None)
@given(
    st.binary(max_size=300),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=600),
    st.integers(1, 97),
)
def test_frame_survives_leading_garbage(garbage: bytes, ftype: int, seq: int, payload: bytes, step: int) -> None:
    data = garbage + encode_frame(ftype, seq, payload)
    d = FrameDecoder()
    got = []
    for i in range(0, len(data), step):
        d.feed(data[i : i + step])
        got += [f for f in decode_all(d) if isinstance(f, Frame)]
    assert got[-1] == Frame(type=ftype, seq=seq, payload=payload)
