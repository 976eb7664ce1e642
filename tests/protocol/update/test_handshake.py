"""The handshake of protocol 1.1 (docs/protocol.md, "Handshake"): PING tells the version, INFO comes in pieces.

Both cores back to back (clean and lossy wires), each peer against a 1.0 peer, and the host's answers to a
record that changes, a record that fails its CRC, damaged replies, and the different kinds of silence.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from protocol.crc import crc16_xmodem
from protocol.errors import ProtocolTimeoutError, RemoteProtocolError
from protocol.sansio import Event
from protocol.update import DeviceConnection, HostConnection, InfoReceived, InfoRequested, Status
from protocol.update.constants import INFO_PIECE_MIN, INFO_PIECE_START, PROTOCOL_VERSION
from protocol.update.frames import Frame, FrameDecoder, FrameType, encode_frame
from protocol.update.messages import DeviceInfo, InfoPiece, InfoPieceRequest, Reply

from .helpers import make_info, pair


def is_(cls: type[Event]) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, cls)


def _frames(data: bytes) -> list[Frame]:
    decoder = FrameDecoder()
    decoder.feed(data)
    out = []
    while (item := decoder.next()) is not None:
        assert isinstance(item, Frame)
        out.append(item)
    return out


def _reply(seq: int, command: int, body: bytes = b"", status: int = Status.OK) -> bytes:
    return encode_frame(FrameType.REPLY, seq, Reply(command=command, status=status, body=body).encode())


def test_ping_then_pieces_back_to_back() -> None:
    wire = pair()
    wire.host.request_info()
    event = wire.run(is_(InfoReceived))
    assert isinstance(event, InfoReceived)
    assert event.info == make_info(wire.dev)
    assert wire.host.device_protocol == PROTOCOL_VERSION
    record = make_info(wire.dev).encode()
    assert len(record) > INFO_PIECE_START  # so it really came in more than one piece
    # a second INFO on the same connection skips the PING: the version is known
    wire.host.request_info()
    (frame,) = _frames(wire.host.data_to_send())
    assert frame.type == FrameType.INFO and InfoPieceRequest.decode(frame.payload).offset == 0


@pytest.mark.parametrize("seed", range(6))
def test_pieces_get_through_a_lossy_wire(seed: int) -> None:
    wire = pair(seed=seed, drop=0.15, corrupt=0.15)
    wire.host.request_info()
    event = wire.run(is_(InfoReceived))
    assert isinstance(event, InfoReceived) and event.info == make_info(wire.dev)


def test_the_device_serves_the_piece_asked_for() -> None:
    dev = DeviceConnection()
    info = make_info(dev)
    record = info.encode()
    dev.receive_data(encode_frame(FrameType.PING, 1))
    (ping,) = _frames(dev.data_to_send())
    assert Reply.decode(ping.payload).body == struct.pack("<H", PROTOCOL_VERSION)
    for offset, length in ((0, 40), (40, 1000), (len(record), 16), (5, 0)):
        dev.receive_data(encode_frame(FrameType.INFO, 2, InfoPieceRequest(offset=offset, length=length).encode()))
        assert isinstance(dev.next_event(), InfoRequested)
        dev.reply_info(info)
        (frame,) = _frames(dev.data_to_send())
        piece = InfoPiece.decode(Reply.decode(frame.payload).body)
        assert (piece.total, piece.crc, piece.offset) == (len(record), crc16_xmodem(record), offset)
        assert piece.data == record[offset : offset + length]
    dev.receive_data(encode_frame(FrameType.INFO, 3, InfoPieceRequest(offset=len(record) + 1, length=8).encode()))
    assert isinstance(dev.next_event(), InfoRequested)
    dev.reply_info(info)
    (frame,) = _frames(dev.data_to_send())
    assert Reply.decode(frame.payload).status == Status.BAD_ARGUMENT


def test_a_1_0_host_still_gets_the_whole_record_from_a_1_1_device() -> None:
    dev = DeviceConnection()
    dev.receive_data(encode_frame(FrameType.INFO, 4))  # INFO with no payload: the 1.0 request
    assert isinstance(dev.next_event(), InfoRequested)
    dev.reply_info(make_info(dev))
    (frame,) = _frames(dev.data_to_send())
    assert DeviceInfo.decode(Reply.decode(frame.payload).body) == make_info(dev)


def test_a_1_1_host_reads_a_1_0_device_with_one_info() -> None:
    host = HostConnection(first_seq=20)
    host.request_info()
    (ping,) = _frames(host.data_to_send())
    assert ping.type == FrameType.PING
    host.receive_data(_reply(ping.seq, FrameType.PING))  # a 1.0 device: no body
    (info_request,) = _frames(host.data_to_send())
    assert info_request.type == FrameType.INFO and info_request.payload == b""
    info = make_info(DeviceConnection())
    host.receive_data(_reply(info_request.seq, FrameType.INFO, info.encode()))
    assert host.next_event() == InfoReceived(info=info)
    assert host.device_protocol == info.protocol_version


def _host_after_ping() -> tuple[HostConnection, Frame]:
    host = HostConnection(first_seq=30)
    host.request_info()
    (ping,) = _frames(host.data_to_send())
    host.receive_data(_reply(ping.seq, FrameType.PING, struct.pack("<H", PROTOCOL_VERSION)))
    (request,) = _frames(host.data_to_send())
    return host, request


def _piece(request: Frame, record: bytes, *, crc: int | None = None) -> bytes:
    ask = InfoPieceRequest.decode(request.payload)
    data = record[ask.offset : ask.offset + ask.length]
    crc = crc16_xmodem(record) if crc is None else crc
    body = InfoPiece(total=len(record), crc=crc, offset=ask.offset, data=data).encode()
    return _reply(request.seq, FrameType.INFO, body)


def test_a_record_that_changes_between_pieces_is_read_again() -> None:
    dev = DeviceConnection()
    first, second = make_info(dev).encode(), DeviceInfo(bootloader_version="2.0").encode()
    host, request = _host_after_ping()
    host.receive_data(_piece(request, first))
    (request,) = _frames(host.data_to_send())
    assert InfoPieceRequest.decode(request.payload).offset == INFO_PIECE_START
    host.receive_data(_piece(request, second))  # the record changed: start over
    (request,) = _frames(host.data_to_send())
    assert InfoPieceRequest.decode(request.payload).offset == 0
    while True:
        host.receive_data(_piece(request, second))
        event = host.next_event()
        if event is not None:
            break
        (request,) = _frames(host.data_to_send())
    assert event == InfoReceived(info=DeviceInfo(bootloader_version="2.0"))


def test_an_assembled_record_that_fails_its_crc_is_a_protocol_error() -> None:
    record = DeviceInfo().encode()
    host, request = _host_after_ping()
    assert len(record) <= INFO_PIECE_START
    host.receive_data(_piece(request, record, crc=crc16_xmodem(record) ^ 1))
    with pytest.raises(RemoteProtocolError, match="CRC"):
        host.next_event()
    assert host.finished


def test_a_damaged_reply_is_asked_again_at_once_with_a_smaller_piece() -> None:
    host, request = _host_after_ping()
    damaged = bytearray(_piece(request, make_info(DeviceConnection()).encode()))
    damaged[-3] ^= 0xFF  # the payload, not the header: the frame is known to be the reply, and damaged
    host.receive_data(bytes(damaged))
    (again,) = _frames(host.data_to_send())  # no timeout needed
    assert again.type == FrameType.INFO and again.seq != request.seq
    assert InfoPieceRequest.decode(again.payload).length == INFO_PIECE_START // 2


def test_after_silence_the_same_request_goes_again() -> None:
    host, request = _host_after_ping()
    host.handle_timeout()
    (again,) = _frames(host.data_to_send())
    assert again == request  # the request was lost: the reply's size is not the problem


def test_pieces_shrink_down_to_the_minimum_only() -> None:
    host, request = _host_after_ping()
    lengths = []
    for _ in range(8):
        host.receive_data(b"\x00garbage\x00")  # bytes came back, but no reply survived
        host.handle_timeout()
        (request,) = _frames(host.data_to_send())
        lengths.append(InfoPieceRequest.decode(request.payload).length)
    assert lengths[:2] == [INFO_PIECE_START // 2, INFO_PIECE_START // 4]
    assert min(lengths) == INFO_PIECE_MIN == lengths[-1]


def test_invalid_utf8_in_the_bootloader_version_is_a_typed_protocol_error() -> None:
    record = bytearray(DeviceInfo(bootloader_version="x" * 200).encode())
    record[-200:] = b"\xff" * 200
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        DeviceInfo.decode(bytes(record))
    host = HostConnection(first_seq=5)
    host.device_protocol = 0x0100
    host.request_info()
    (request,) = _frames(host.data_to_send())
    host.receive_data(_reply(request.seq, FrameType.INFO, bytes(record)))
    with pytest.raises(RemoteProtocolError, match="UTF-8") as err:
        host.next_event()
    assert not isinstance(err.value, ValueError)


def _exhaust(host: HostConnection, answer: bytes = b"") -> ProtocolTimeoutError:
    host.data_to_send()
    for _ in range(100):
        if answer:
            host.receive_data(answer)
        host.handle_timeout()
        host.data_to_send()
        try:
            while host.next_event() is not None:  # Progress from the PROGRESS frames
                pass
        except ProtocolTimeoutError as err:
            return err
    raise AssertionError("the host never gave up")


def test_silence_blames_the_cable_but_a_busy_device_does_not() -> None:
    quiet = _exhaust(_started(HostConnection(first_seq=1)))
    assert "no reply to info after 6 tries: nothing came back" in str(quiet) and "cable" in (quiet.hint or "")
    progress = encode_frame(FrameType.PROGRESS, 0, bytes((3,)) + struct.pack("<II", 1, 10))
    busy = _exhaust(_started(HostConnection(first_seq=1)), progress)
    assert "busy" in str(busy) and "cable" not in (busy.hint or "")
    garbled = _exhaust(_started(HostConnection(first_seq=1)), b"Main Menu\r\n")
    assert "no stm32ota frame" in str(garbled) and "baud rate" in (garbled.hint or "")


def _started(host: HostConnection) -> HostConnection:
    host.request_info()
    return host
