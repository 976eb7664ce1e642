"""Payload encode/decode round trips, short payloads, and fuzzed payloads."""

from __future__ import annotations

import dataclasses
import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import RemoteProtocolError
from protocol.update import DeviceConnection
from protocol.update.constants import PROTOCOL_VERSION
from protocol.update.messages import (
    Ack,
    BeginReply,
    BeginRequest,
    Capabilities,
    DeviceInfo,
    EndRequest,
    FlashLayout,
    LogRecord,
    Nak,
    Option,
    PartialTransfer,
    ProgressReport,
    Reply,
    SectorRun,
    SlotInfo,
    SlotRegion,
    SlotState,
    decode_data_block,
    encode_data_block,
)

from .helpers import make_info

DIGEST = hashlib.sha256(b"image").digest()


def full_info() -> DeviceInfo:
    dev = DeviceConnection(baud_rates=(115200, 921600))
    partial = PartialTransfer(slot=1, size=5000, written=2048, digest=DIGEST)
    return make_info(dev, partial)


def test_info_round_trip() -> None:
    info = full_info()
    data = info.encode()
    assert DeviceInfo.decode(data) == info
    assert DeviceInfo.decode(data + b"future fields") == info  # newer devices may append
    caps = Capabilities(
        signatures=frozenset({"ecdsa-p256", "rsa-2048"}),
        digests=frozenset({"sha256"}),
        encryption=frozenset({"ecies-x25519"}),
        aes_bits=frozenset({128, 256}),
    )
    with_caps = dataclasses.replace(info, capabilities=caps)
    data = with_caps.encode()
    assert data.startswith(info.encode()[:-1])  # 1.2 appends its field after what a 1.1 peer reads
    assert DeviceInfo.decode(data) == with_caps
    assert DeviceInfo.decode(data + b"future fields") == with_caps
    longer = data[:-7] + bytes([data[-7] + 3]) + data[-6:] + b"abc"  # a later version's longer field
    assert DeviceInfo.decode(longer) == with_caps


def test_info_of_an_older_peer_has_no_capabilities() -> None:
    old = dataclasses.replace(full_info(), protocol_version=0x0101)
    assert DeviceInfo.decode(old.encode() + b"\x06junk!!").capabilities is None  # 1.1 tail bytes are not caps
    assert DeviceInfo.decode(old.encode()).capabilities is None
    short = dataclasses.replace(full_info(), capabilities=Capabilities(signatures=frozenset({"ed25519"})))
    data = short.encode()
    first = data[:-7] + b"\x02" + data[-6:-4]  # an early peer's 2-byte field: the rest reads as empty
    assert DeviceInfo.decode(first).capabilities == Capabilities(signatures=frozenset({"ed25519"}))


def test_info_without_partial_round_trip() -> None:
    info = DeviceInfo()
    assert DeviceInfo.decode(info.encode()) == info


def test_info_fixed_header_layout() -> None:
    data = full_info().encode()
    protocol_version, chip_id, board_id = struct.unpack_from("<HHH", data, 0)
    assert (protocol_version, chip_id, board_id) == (PROTOCOL_VERSION, 0x413, 0)
    assert data[6:18] == bytes(range(12))
    max_block, max_window, options, ram, wbits = struct.unpack_from("<HBBIB", data, 18)
    assert (max_block, max_window, ram) == (4096, 16, 4096 * 16)
    assert options == int(Option.DEFLATE | Option.RESUME | Option.BAUD_SWITCH)
    assert wbits == 15


@pytest.mark.parametrize("cut", [0, 1, 6, 17, 20, 30, 60, 100, 200, -40, -2])  # -1: only the 1.2 field goes
def test_info_truncated_is_a_remote_error(cut: int) -> None:
    data = full_info().encode()
    with pytest.raises(RemoteProtocolError):
        DeviceInfo.decode(data[:cut])


def test_flash_layout_helpers() -> None:
    flash = full_info().flash
    assert flash.sector_sizes()[:5] == [16384] * 4 + [65536]
    assert flash.sector_at(0x08020000) == (5, 0x08020000, 131072)
    assert flash.slot(1).address == 0x08080000
    with pytest.raises(ValueError):
        flash.sector_at(0x09000000)
    with pytest.raises(KeyError):
        flash.slot(7)


def test_slot_info_version_and_state() -> None:
    slot = SlotInfo(index=0, state=SlotState.ACTIVE, version=(1, 2, 3, 4))
    assert slot.version_text == "1.2.3+4"
    bad = bytearray(slot.encode())
    bad[1] = 99
    info = DeviceInfo(slots=(slot,))
    data = bytearray(info.encode())
    data[data.index(slot.encode()) + 1] = 99
    with pytest.raises(RemoteProtocolError, match="slot state"):
        DeviceInfo.decode(bytes(data))


def test_dataclass_validation() -> None:
    with pytest.raises(ValueError):
        SlotInfo(index=0, state=SlotState.EMPTY, digest=b"short")
    with pytest.raises(ValueError):
        DeviceInfo(uid=b"123")
    with pytest.raises(ValueError):
        BeginRequest(slot=1, size=1, digest=b"")


@pytest.mark.parametrize(
    "message",
    [
        BeginRequest(
            slot=1,
            size=100000,
            digest=DIGEST,
            compressed=True,
            resume=False,
            window=8,
            block_size=2048,
            wbits=12,
        ),
        BeginRequest(slot=0, size=1, digest=DIGEST),
        BeginReply(resume_offset=4096, window=16, block_size=1024),
        EndRequest(blocks=97, stream_bytes=99000),
        Ack(next=5, limit=21, written=4096),
        Nak(blocks=(3, 4, 9)),
        ProgressReport(phase="erase", done=3, total=7),
        ProgressReport(phase="verify", done=0, total=0),
        LogRecord(level=2, timestamp_ms=123456, text="booting \u00b5C"),
        Reply(command=0x07, status=0x22, body=b"xyz"),
    ],
)
def test_round_trip(message: object) -> None:
    cls = type(message)
    data = message.encode()  # type: ignore[attr-defined]
    assert cls.decode(data) == message  # type: ignore[attr-defined]


def test_begin_layout() -> None:
    data = BeginRequest(
        slot=1,
        size=0x01020304,
        digest=DIGEST,
        compressed=True,
        resume=True,
        window=8,
        block_size=1024,
        wbits=12,
    ).encode()
    assert data[:12] == bytes((1, 3, 8, 12)) + struct.pack("<HHI", 1024, 0, 0x01020304)
    assert data[12:] == DIGEST


def test_unknown_progress_phase_reads_as_busy() -> None:
    assert ProgressReport.decode(bytes((77,)) + bytes(8)).phase == "busy"


def test_data_block() -> None:
    payload = encode_data_block(0x1FE, b"abc")
    assert payload[:2] == b"\xfe\x01"
    assert decode_data_block(payload) == (0xFE, b"abc")
    assert decode_data_block(b"\xfe\x02abc") is None  # complement wrong
    assert decode_data_block(b"\xfe\x01") is None  # no data


DECODERS = [
    DeviceInfo.decode,
    BeginRequest.decode,
    BeginReply.decode,
    EndRequest.decode,
    Ack.decode,
    Nak.decode,
    ProgressReport.decode,
    LogRecord.decode,
    Reply.decode,
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DECODERS), st.binary(max_size=400))
def test_any_payload_decodes_or_raises_remote_error(decode: object, data: bytes) -> None:
    try:
        decode(data)  # type: ignore[operator]
    except RemoteProtocolError:
        pass


def test_layout_from_runs() -> None:
    layout = FlashLayout(
        base=0,
        size=3 * 2048,
        sectors=(SectorRun(count=3, size=2048),),
        slots=(SlotRegion(index=1, address=2048, size=4096),),
    )
    assert layout.sector_at(4095) == (1, 2048, 2048)
