"""The pieces of the device commands that need no device: the ERASE/READ messages and both cores' rules, the
terminal's frame splitter, the USB bridge table and the port list."""

from __future__ import annotations

import hashlib
import os

import pytest

from protocol.device_commands import USB_BRIDGES, LogFrameSplitter, PortInfo, bridge_name, list_serial_ports
from protocol.errors import LocalProtocolError, PortError, RemoteProtocolError
from protocol.sansio import DeviceLog
from protocol.update import (
    DeviceConnection,
    EraseRequested,
    HostConnection,
    ReadRequested,
    SlotDigest,
    SlotErased,
    SlotRead,
    Status,
)
from protocol.update.frames import FrameDecoder, FrameType, encode_frame
from protocol.update.messages import (
    EraseReply,
    EraseRequest,
    LogRecord,
    ReadDigestReply,
    ReadReply,
    ReadRequest,
    Reply,
)

# --- messages ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        EraseRequest(slot=1),
        EraseRequest(slot=0, force=True),
        EraseReply(erased=393216, resetting=True),
        ReadRequest(slot=0, offset=4096, length=4096),
        ReadRequest(slot=1, offset=0, length=393216, digest=True),
        ReadReply(offset=8, data=b"\xa5" * 10),
        ReadDigestReply(offset=0, length=5, digest=hashlib.sha256(b"hello").digest()),
    ],
)
def test_erase_and_read_messages_round_trip_and_ignore_trailing_bytes(message: object) -> None:
    encoded = message.encode()  # type: ignore[attr-defined]
    assert type(message).decode(encoded) == message  # type: ignore[attr-defined]
    if not isinstance(message, ReadReply):  # a read reply's data runs to the end
        assert type(message).decode(encoded + b"\x00\x01") == message  # type: ignore[attr-defined]


def test_the_documented_layouts() -> None:
    assert EraseRequest(slot=1, force=True).encode() == b"\x01\x01"
    assert ReadRequest(slot=1, offset=0x100, length=0x40, digest=True).encode() == (
        b"\x01\x01\x00\x00" + (0x100).to_bytes(4, "little") + (0x40).to_bytes(4, "little")
    )
    assert EraseReply(erased=7, resetting=False).encode() == b"\x07\x00\x00\x00\x00"
    with pytest.raises(RemoteProtocolError):
        ReadRequest.decode(b"\x01\x00\x00")


# --- the cores back to back ----------------------------------------------------------------------------------


def _exchange(host: HostConnection, device: DeviceConnection) -> None:
    device.receive_data(host.data_to_send())


def _answer(host: HostConnection, device: DeviceConnection) -> object:
    host.receive_data(device.data_to_send())
    return host.next_event()


def test_erase_and_read_conversations() -> None:
    host, device = HostConnection(first_seq=1), DeviceConnection(max_block=1024)
    host.erase(1, force=True)
    _exchange(host, device)
    assert device.next_event() == EraseRequested(slot=1, force=True)
    device.report_progress("erase", 0, 2048)
    device.reply_erase(2048)
    host.receive_data(device.data_to_send())
    assert host.next_event() is not None  # Progress("erase")
    assert host.next_event() == SlotErased(slot=1, erased=2048, resetting=False)

    host.read(0, 16, 4)
    _exchange(host, device)
    assert device.next_event() == ReadRequested(slot=0, offset=16, length=4, digest=False)
    with pytest.raises(LocalProtocolError):
        device.reply_read(b"abc")  # not the length asked for
    with pytest.raises(LocalProtocolError):
        device.complete()  # READ has a body
    device.reply_read(b"abcd")
    assert _answer(host, device) == SlotRead(slot=0, offset=16, data=b"abcd")

    host.read_digest(0, 0, 100_000)
    _exchange(host, device)
    assert device.next_event() == ReadRequested(slot=0, offset=0, length=100_000, digest=True)
    digest = hashlib.sha256(b"x").digest()
    device.reply_digest(digest)
    assert _answer(host, device) == SlotDigest(slot=0, offset=0, length=100_000, digest=digest)


def test_a_resent_read_is_answered_from_the_reply_cache_not_read_again() -> None:
    host, device = HostConnection(first_seq=1), DeviceConnection(max_block=1024)
    host.read(1, 0, 8)
    frame = host.data_to_send()
    device.receive_data(frame)
    assert isinstance(device.next_event(), ReadRequested)
    device.reply_read(b"\xff" * 8)
    first = device.data_to_send()
    device.receive_data(frame)  # the reply was lost: the host sends the same frame again
    assert device.next_event() is None
    assert device.data_to_send() == first


def test_the_device_core_refuses_reads_it_cannot_answer_in_one_frame() -> None:
    device = DeviceConnection(max_block=1024)
    for seq, request in enumerate(
        (ReadRequest(slot=0, offset=0, length=0), ReadRequest(slot=0, offset=0, length=1025)), start=1
    ):
        device.receive_data(encode_frame(FrameType.READ, seq, request.encode()))
        assert device.next_event() is None
        decoder = FrameDecoder()
        decoder.feed(device.data_to_send())
        frame = decoder.next()
        assert frame is not None and hasattr(frame, "payload")
        reply = Reply.decode(frame.payload)  # type: ignore[union-attr]
        assert (reply.command, reply.status) == (FrameType.READ, Status.BAD_ARGUMENT)


def test_the_host_core_refuses_a_read_reply_of_the_wrong_size() -> None:
    host, device = HostConnection(first_seq=1), DeviceConnection(max_block=1024)
    host.read(0, 0, 8)
    _exchange(host, device)
    device.next_event()
    body = ReadReply(offset=0, data=b"short").encode()
    host.receive_data(encode_frame(FrameType.REPLY, 1, Reply(command=FrameType.READ, status=0, body=body).encode()))
    with pytest.raises(RemoteProtocolError, match="answered with 5 bytes"):
        host.next_event()


def test_host_read_arguments_are_checked_before_anything_is_sent() -> None:
    host = HostConnection()
    with pytest.raises(LocalProtocolError):
        host.read(0, 0, 0)
    with pytest.raises(LocalProtocolError):
        host.read(0, 0, 9000)
    with pytest.raises(LocalProtocolError):
        host.read_digest(0, 0xFFFFFFF0, 0x100)
    with pytest.raises(LocalProtocolError):
        host.erase(256)
    assert host.data_to_send() == b"" and host.idle


# --- the terminal's splitter ---------------------------------------------------------------------------------


def _log_frame(text: str, level: int = 2, stamp: int = 1234) -> bytes:
    return encode_frame(FrameType.LOG, 0, LogRecord(level=level, timestamp_ms=stamp, text=text).encode())


def _split(chunks: list[bytes]) -> list[bytes | DeviceLog]:
    splitter = LogFrameSplitter()
    items: list[bytes | DeviceLog] = []
    for chunk in chunks:
        items += splitter.feed(chunk)
    items += splitter.flush()
    merged: list[bytes | DeviceLog] = []
    for item in items:  # raw bytes may arrive in several pieces: join neighbours
        if isinstance(item, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += item
        else:
            merged.append(item)
    return merged


STREAM = (
    b"Main Menu\r\n\xa5 not a frame\r\n"
    + _log_frame("boot: hello")
    + encode_frame(FrameType.REPLY, 3, Reply(command=1, status=0).encode())  # protocol, not text: dropped
    + b"tail \xa5"
)
EXPECTED = [
    b"Main Menu\r\n\xa5 not a frame\r\n",
    DeviceLog(level=2, text="boot: hello", timestamp_ms=1234),
    b"tail \xa5",
]


def test_the_splitter_separates_text_from_log_frames_whole_and_byte_by_byte() -> None:
    assert _split([STREAM]) == EXPECTED
    assert _split([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_the_splitter_holds_a_possible_frame_start_until_flushed() -> None:
    splitter = LogFrameSplitter()
    frame = _log_frame("x")
    assert splitter.feed(b"ok" + frame[:6]) == [b"ok"]
    assert splitter.pending
    assert splitter.flush() == [frame[:6]]  # never completed: shown as it came
    damaged = bytearray(frame)
    damaged[-1] ^= 0xFF
    assert b"".join(i for i in _split([bytes(damaged)]) if isinstance(i, bytes)) == bytes(damaged)


# --- ports ---------------------------------------------------------------------------------------------------


def test_the_common_usb_uart_bridges_are_named() -> None:
    for pid in (0x374B, 0x374E, 0x374F, 0x3752, 0x3753):
        assert "ST" in (bridge_name(0x0483, pid) or "") and "LINK" in (bridge_name(0x0483, pid) or "")
    assert "CP210x" in (bridge_name(0x10C4, 0xEA60) or "")
    assert "CH340" in (bridge_name(0x1A86, 0x7523) or "")
    for pid in (0x6001, 0x6010, 0x6014, 0x6015):
        assert "FTDI" in (bridge_name(0x0403, pid) or "")
    assert bridge_name(0x1234, 0x5678) is None and bridge_name(None, None) is None
    assert len(USB_BRIDGES) == 11


def test_a_port_s_json_names_vid_pid_and_its_bridge() -> None:
    port = PortInfo(
        device="/dev/ttyACM0",
        description="STM32 STLink",
        hwid="USB VID:PID=0483:374B",
        vid=0x0483,
        pid=0x374B,
        serial_number="0667FF",
    )
    data = port.to_json()
    assert data["vid_pid"] == "0483:374B" and data["serial_number"] == "0667FF"
    assert data["bridge"] == "ST-LINK/V2-1 virtual COM port"


def test_list_serial_ports_describes_a_real_pty_and_refuses_a_missing_one() -> None:
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        ports = list_serial_ports([name])
        mine = [p for p in ports if p.device == name]
        assert len(mine) == 1 and "pseudo-terminal" in mine[0].description and mine[0].vid_pid is None
        assert [p.device for p in ports] == sorted(p.device for p in ports)
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(PortError, match="no such port"):
        list_serial_ports(["/dev/no-such-tty-stm32ota"])
    with pytest.raises(PortError, match="not a serial port"):
        list_serial_ports([__file__])
    url = list_serial_ports(["socket://127.0.0.1:1"])
    assert any(p.device == "socket://127.0.0.1:1" and "socket://" in p.description for p in url)
