"""No byte stream makes either core raise anything but its own typed errors, hang, or grow without bound.

Plus h11-style feeding of the cores: a reply whole, byte by byte, and with trailing bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.errors import Stm32OtaError
from protocol.sansio import DeviceLog, Event
from protocol.update import (
    DeviceConnection,
    FrameType,
    HostConnection,
    InfoReceived,
    InfoRequested,
    TransferStarted,
    encode_frame,
)
from protocol.update.constants import FRAME_OVERHEAD, MAX_PAYLOAD
from protocol.update.messages import Ack, LogRecord, Nak, ProgressReport, Reply, encode_data_block

from .helpers import Owner, make_info

MAX_EVENTS = 2000

# streams of whole frames (valid CRCs, random payloads) mixed with raw noise: reaches deeper than bytes alone
_frame = st.builds(
    encode_frame,
    st.sampled_from([int(t) for t in FrameType] + [0x00, 0x3F, 0x7F, 0xFF]),
    st.integers(0, 255),
    st.binary(max_size=80),
)
_piece = st.one_of(_frame, st.binary(min_size=1, max_size=40))
_stream = st.lists(st.tuples(_piece, st.booleans()), max_size=40)  # (bytes, then a timeout?)


def _drain(conn: HostConnection | DeviceConnection) -> list[Event]:
    events = []
    for _ in range(MAX_EVENTS):
        event = conn.next_event()
        if event is None:
            return events
        events.append(event)
    raise AssertionError("a bounded input produced an unbounded number of events")


def _device_in_transfer(compressed: bool) -> tuple[DeviceConnection, Owner]:
    dev = DeviceConnection(max_window=8)
    owner = Owner(dev=dev)
    host = HostConnection(first_seq=1)
    host.begin_transfer(b"\x5a" * 20_000, compress=compressed, window=8)
    dev.receive_data(host.data_to_send())
    owner.service()
    dev.data_to_send()
    return dev, owner


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stream, st.sampled_from(["idle", "transfer", "compressed"]))
def test_device_core_never_raises(stream: list[tuple[bytes, bool]], state: str) -> None:
    if state == "idle":
        dev = DeviceConnection()
        owner = Owner(dev=dev)
    else:
        dev, owner = _device_in_transfer(state == "compressed")
    total_out = 0
    for data, timeout in stream:
        dev.receive_data(data)
        if timeout:
            dev.handle_timeout()
        owner.service()  # the owner answers what it can (answers to cancelled requests are ignored)
        total_out += len(dev.data_to_send())
        assert dev._decoder.buffered <= FRAME_OVERHEAD + MAX_PAYLOAD
    # the device answers in proportion to what it hears (no reply storms)
    assert total_out <= 200 * (sum(len(d) for d, _ in stream) + 1) + 100_000


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stream, st.sampled_from(["idle", "info", "transfer", "baud"]))
def test_host_core_raises_only_its_own_errors(stream: list[tuple[bytes, bool]], state: str) -> None:
    host = HostConnection(first_seq=1)
    if state == "info":
        host.request_info()
    elif state == "baud":
        host.change_baud(921600)
    elif state == "transfer":
        host.begin_transfer(b"\xa5" * 30_000, window=8)
        host.data_to_send()
        host.receive_data(
            encode_frame(
                FrameType.REPLY,
                1,
                Reply(command=FrameType.BEGIN, status=0, body=bytes((0, 0, 0, 0, 8, 0, 0, 4))).encode(),
            )
        )
        assert isinstance(host.next_event(), TransferStarted)
    try:
        for data, timeout in stream:
            host.receive_data(data)
            if timeout:
                host.handle_timeout()
            _drain(host)
            host.data_to_send()
            assert host._decoder.buffered <= FRAME_OVERHEAD + MAX_PAYLOAD
    except Stm32OtaError:
        pass


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(
                lambda n, lim, w: encode_frame(FrameType.ACK, 1, Ack(next=n, limit=lim, written=w).encode()),
                st.integers(0, 40),
                st.integers(0, 60),
                st.integers(0, 40_000),
            ),
            st.builds(
                lambda b: encode_frame(FrameType.NAK, 1, Nak(blocks=tuple(b)).encode()),
                st.lists(st.integers(0, 2**32 - 1), max_size=10),
            ),
            st.builds(
                lambda d, t: encode_frame(
                    FrameType.PROGRESS, 1, ProgressReport(phase="erase", done=d, total=t).encode()
                ),
                st.integers(0, 9),
                st.integers(0, 9),
            ),
        ),
        max_size=60,
    )
)
def test_host_data_phase_with_arbitrary_acks(frames: list[bytes]) -> None:
    host = HostConnection(first_seq=1)
    host.begin_transfer(b"\x00" * 30_000, window=8, block_size=1024)
    host.data_to_send()
    host.receive_data(
        encode_frame(
            FrameType.REPLY, 1, Reply(command=FrameType.BEGIN, status=0, body=bytes((0, 0, 0, 0, 8, 0, 0, 4))).encode()
        )
    )
    try:
        for frame in frames:
            host.receive_data(frame)
            _drain(host)
            out = host.data_to_send()
            assert len(out) <= 8 * 1024 * 2 * (FRAME_OVERHEAD + 1026)  # never more than the window (twice)
    except Stm32OtaError:
        pass


# --- h11-style feeding of the cores -----------------------------------------------------------------------------


def _info_reply_bytes(seq: int) -> bytes:
    dev = DeviceConnection()
    reply = Reply(command=FrameType.INFO, status=0, body=make_info(dev).encode())
    return encode_frame(FrameType.REPLY, seq, reply.encode())


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
def test_host_reads_a_reply(mode: str) -> None:
    host = HostConnection(first_seq=7)
    host.device_protocol = 0x0100  # a 1.0 device: the whole record in one INFO, no PING first
    host.request_info()
    host.data_to_send()
    data = _info_reply_bytes(7)
    log = encode_frame(FrameType.LOG, 0, LogRecord(level=2, timestamp_ms=1, text="after").encode())
    events: list[Event] = []
    if mode == "whole":
        host.receive_data(data)
        events += _drain(host)
    elif mode == "bytewise":
        for i in range(len(data)):
            host.receive_data(data[i : i + 1])
            got = _drain(host)
            assert got == [] or i == len(data) - 1
            events += got
    else:
        host.receive_data(data + log[:6])
        events += _drain(host)
        host.receive_data(log[6:])
        events += _drain(host)
    assert isinstance(events[0], InfoReceived)
    if mode == "trailing":
        assert events[1] == DeviceLog(level=2, text="after", timestamp_ms=1)


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
def test_device_reads_commands_and_blocks(mode: str) -> None:
    dev, owner = _device_in_transfer(False)
    blocks = b"".join(encode_frame(FrameType.DATA, n, encode_data_block(n, bytes([n]) * 1024)) for n in range(3))
    info = encode_frame(FrameType.INFO, 99, b"")
    data = blocks + info
    if mode == "whole":
        dev.receive_data(data)
    elif mode == "bytewise":
        for i in range(len(data)):
            dev.receive_data(data[i : i + 1])
    else:
        dev.receive_data(data + encode_frame(FrameType.PING, 100)[:4])
    owner.service()
    assert owner.flash[: 3 * 1024] == b"".join(bytes([n]) * 1024 for n in range(3))
    assert any(isinstance(e, InfoRequested) for e in owner.events)
