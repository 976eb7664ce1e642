"""The device core's own timeouts: a torn frame is dropped, an unfollowed baud switch reverts (a deadline that
garble does not extend), and a data phase whose host is gone ends with the resume record left to the owner."""

from __future__ import annotations

import hashlib

from protocol.sansio import ChangeBaud, Event
from protocol.update import AbortRequested, DeviceConnection, InfoRequested, Status, TransferRequested
from protocol.update.constants import (
    BAUD_SYNC_WINDOW_S,
    DATA_IDLE_TIMEOUT_S,
    FRAME_HEADER_SIZE,
    FRAME_STALL_TIMEOUT_S,
)
from protocol.update.frames import Frame, FrameDecoder, FrameType, encode_frame
from protocol.update.messages import BeginRequest, Reply, encode_data_block


def _events(dev: DeviceConnection) -> list[Event]:
    out = []
    while (event := dev.next_event()) is not None:
        out.append(event)
    return out


def _replies(data: bytes) -> list[Reply]:
    decoder = FrameDecoder()
    decoder.feed(data)
    replies = []
    while (item := decoder.next()) is not None:
        if isinstance(item, Frame) and item.type == FrameType.REPLY:
            replies.append(Reply.decode(item.payload))
    return replies


def _torn_data_frame() -> bytes:
    """A DATA frame cut after its header and 100 bytes of a 4 KiB payload (a host killed mid-frame)."""
    frame = encode_frame(FrameType.DATA, 0, encode_data_block(0, bytes(4096)))
    return frame[: FRAME_HEADER_SIZE + 100]


def test_a_torn_frame_is_dropped_after_the_stall_timeout_and_what_followed_is_answered() -> None:
    dev = DeviceConnection()
    assert dev.timeout is None  # an idle bootloader waits for ever
    dev.receive_data(_torn_data_frame() + encode_frame(FrameType.INFO, 7))
    assert _events(dev) == []  # the INFO is swallowed as payload of the torn frame
    assert dev.timeout == FRAME_STALL_TIMEOUT_S
    dev.handle_timeout()
    assert [type(e) for e in _events(dev)] == [InfoRequested]
    assert dev.timeout is None


def test_every_stalled_start_goes_and_a_half_header_too() -> None:
    dev = DeviceConnection()
    dev.receive_data(_torn_data_frame() + _torn_data_frame() + b"\xa5\x02")
    dev.handle_timeout()
    assert dev.timeout is None
    dev.receive_data(encode_frame(FrameType.PING, 3))
    assert [r.status for r in _replies(dev.data_to_send())] == [Status.OK]


def test_the_stall_timeout_is_below_the_command_timeout() -> None:
    from protocol.update.constants import COMMAND_TIMEOUT_S

    assert FRAME_STALL_TIMEOUT_S < COMMAND_TIMEOUT_S  # so the host's first resend is heard


def _switched(dev: DeviceConnection) -> None:
    dev.receive_data(encode_frame(FrameType.CHANGE_BAUD, 1, (921600).to_bytes(4, "little")))
    assert [type(e).__name__ for e in _events(dev)] == ["BaudChangeRequested"]
    dev.complete()
    assert _events(dev) == [ChangeBaud(baud=921600)]
    dev.data_to_send()


def test_an_unfollowed_baud_switch_reverts_and_garble_does_not_extend_the_window() -> None:
    dev = DeviceConnection(baud=115200)
    _switched(dev)
    assert dev.timeout == BAUD_SYNC_WINDOW_S
    assert not dev.timer_counts_input  # a deadline: the driver does not restart it on garble
    dev.receive_data(bytes(range(256)))  # the host, still at 115200, heard as noise
    dev.handle_timeout()
    assert _events(dev) == [ChangeBaud(baud=115200)]
    assert dev.baud == 115200 and dev.timer_counts_input
    dev.receive_data(encode_frame(FrameType.INFO, 2))
    assert [type(e) for e in _events(dev)] == [InfoRequested]


def _in_data_phase(dev: DeviceConnection) -> None:
    image = bytes(8192)
    begin = BeginRequest(slot=1, size=len(image), digest=hashlib.sha256(image).digest(), resume=True)
    dev.receive_data(encode_frame(FrameType.BEGIN, 5, begin.encode()))
    assert [type(e) for e in _events(dev)] == [TransferRequested]
    dev.accept_transfer(0)
    dev.data_to_send()


def test_a_host_gone_mid_transfer_ends_the_data_phase() -> None:
    dev = DeviceConnection(baud=115200)
    _in_data_phase(dev)
    timeout = dev.timeout
    assert timeout is not None and timeout > DATA_IDLE_TIMEOUT_S  # plus two block times
    dev.handle_timeout()
    assert _events(dev) == [AbortRequested(status=Status.ABORTED)]
    assert not dev.in_transfer and dev.timeout is None
    # told into the void, in case the host is merely slow: the data phase it runs is over
    assert [(r.command, r.status) for r in _replies(dev.data_to_send())] == [(FrameType.DATA, Status.ABORTED)]
    # the device takes commands again that the data phase refuses
    dev.receive_data(encode_frame(FrameType.VERIFY, 6, b"\x01"))
    assert [type(e).__name__ for e in _events(dev)] == ["VerifyRequested"]


def test_no_data_phase_timeout_while_the_owner_owes_an_answer() -> None:
    dev = DeviceConnection(baud=115200)
    _in_data_phase(dev)
    for n in range(8):
        dev.receive_data(encode_frame(FrameType.DATA, n, encode_data_block(n, bytes(1024))))
    _events(dev)
    dev.receive_data(encode_frame(FrameType.END, 9, (8).to_bytes(4, "little") + (8192).to_bytes(4, "little")))
    assert [type(e).__name__ for e in _events(dev)] == ["TransferEnded"]
    assert dev.timeout is None  # the owner is flushing: the host waits for it, not the other way round
