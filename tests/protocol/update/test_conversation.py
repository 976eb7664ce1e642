"""Host and device cores back to back: every feature of the protocol, no I/O."""

from __future__ import annotations

import hashlib

import pytest

from protocol.errors import DeviceError, LocalProtocolError, ProtocolTimeoutError, RemoteProtocolError
from protocol.sansio import DeviceLog, Event, Progress
from protocol.update import (
    STATUS_TABLE,
    AbortRequested,
    ActivateRequested,
    BaudChanged,
    BaudChangeFailed,
    BaudChangeRequested,
    BlockReceived,
    CommandComplete,
    DeviceConnection,
    FrameType,
    HostConnection,
    InfoReceived,
    InfoRequested,
    LoggingChanged,
    Option,
    Status,
    TransferComplete,
    TransferStarted,
    VerifyRequested,
    encode_frame,
)
from protocol.update.constants import PROTOCOL_VERSION
from protocol.update.messages import encode_data_block

from .helpers import BAUDS, Owner, Wire, image_bytes, make_info, pair


def is_(cls: type[Event]) -> object:
    return lambda e: isinstance(e, cls)


def transfer(wire: Wire, image: bytes, **kwargs: object) -> TransferComplete:
    wire.host.begin_transfer(image, **kwargs)  # type: ignore[arg-type]
    event = wire.run(is_(TransferComplete))  # type: ignore[arg-type]
    assert isinstance(event, TransferComplete)
    return event


def flashed(wire: Wire, image: bytes) -> bool:
    return bytes(wire.owner.flash[: len(image)]) == image


# --- commands -----------------------------------------------------------------------------------------------


def test_info() -> None:
    wire = pair()
    wire.host.request_info()
    event = wire.run(is_(InfoReceived))
    assert isinstance(event, InfoReceived)
    assert event.info.chip_id == 0x413
    assert event.info.baud_rates == BAUDS
    assert wire.host.info == event.info
    assert wire.host.idle


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda h: h.ping(), "ping"),
        (lambda h: h.verify(), "verify"),
        (lambda h: h.activate(permanent=True), "activate"),
        (lambda h: h.reboot(), "reboot"),
        (lambda h: h.confirm(), "confirm"),
        (lambda h: h.rollback(), "rollback"),
        (lambda h: h.abort(), "abort"),
        (lambda h: h.set_logging(3), "set_logging"),
    ],
)
def test_simple_commands_complete(call: object, name: str) -> None:
    wire = pair()
    call(wire.host)  # type: ignore[operator]
    event = wire.run(is_(CommandComplete))
    assert event == CommandComplete(command=name)


def test_activate_reaches_the_owner_with_its_arguments() -> None:
    wire = pair()
    wire.host.activate(permanent=True, slot=1)
    wire.run(is_(CommandComplete))
    assert ActivateRequested(slot=1, permanent=True) in wire.owner.events
    wire.host.verify(slot=0)
    wire.run(is_(CommandComplete))
    assert VerifyRequested(slot=0) in wire.owner.events


def test_one_command_at_a_time() -> None:
    wire = pair()
    wire.host.ping()
    with pytest.raises(LocalProtocolError):
        wire.host.request_info()
    wire.run(is_(CommandComplete))  # the connection was not disturbed
    wire.host.request_info()
    wire.run(is_(InfoReceived))


def test_lost_reply_is_replayed_not_reexecuted() -> None:
    wire = pair()
    wire.host.activate()
    # the device answers, but the reply is lost on the way back
    wire.dev.receive_data(wire.host.data_to_send())
    wire.owner.service()
    assert wire.dev.data_to_send()  # dropped
    wire.run(is_(CommandComplete))  # the host times out and resends the same frame
    assert sum(isinstance(e, ActivateRequested) for e in wire.owner.events) == 1


def test_silence_raises_timeout_and_is_sticky() -> None:
    wire = pair()
    wire.owner.service = lambda: None  # type: ignore[method-assign]  # the bootloader hangs
    wire.host.request_info()
    with pytest.raises(ProtocolTimeoutError):
        wire.run(is_(InfoReceived))
    assert wire.host.finished
    with pytest.raises(LocalProtocolError):
        wire.host.ping()
    with pytest.raises(LocalProtocolError):
        wire.host.next_event()


def test_malformed_reply_is_a_sticky_remote_error() -> None:
    host = HostConnection(first_seq=10)
    host.device_protocol = 0x0100  # a 1.0 device: the whole record in one INFO, no PING first
    host.request_info()
    host.data_to_send()
    host.receive_data(encode_frame(FrameType.REPLY, 10, bytes((FrameType.INFO, 0, 0)) + b"\x01"))
    with pytest.raises(RemoteProtocolError):
        host.next_event()
    assert host.finished
    with pytest.raises(LocalProtocolError):
        host.receive_data(b"x")


def test_stale_and_unknown_frames_are_ignored() -> None:
    host = HostConnection(first_seq=10)
    host.ping()
    host.data_to_send()
    host.receive_data(encode_frame(FrameType.REPLY, 9, bytes((FrameType.PING, 0, 0))))  # stale seq
    host.receive_data(encode_frame(0x99, 10, b"from the future"))
    assert host.next_event() is None
    host.receive_data(encode_frame(FrameType.REPLY, 10, bytes((FrameType.PING, 0, 0))))
    assert host.next_event() == CommandComplete(command="ping")


def test_invalid_arguments_are_local_errors() -> None:
    host = HostConnection()
    with pytest.raises(LocalProtocolError):
        host.begin_transfer(b"")
    with pytest.raises(LocalProtocolError):
        host.begin_transfer(b"x", window=0)
    with pytest.raises(LocalProtocolError):
        host.begin_transfer(b"x", block_size=10)
    with pytest.raises(LocalProtocolError):
        host.change_baud(1)
    with pytest.raises(LocalProtocolError):
        host.set_logging(300)
    assert host.idle and not host.finished


# --- every status code --------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(c for c in STATUS_TABLE if c != Status.OK))
def test_every_status_reaches_the_host_as_device_error(code: int) -> None:
    wire = pair()
    wire.owner.reject[VerifyRequested] = code
    wire.host.verify()
    with pytest.raises(DeviceError) as info:
        wire.run(is_(CommandComplete))
    row = STATUS_TABLE[code]
    assert info.value.status == code
    assert row.text in str(info.value)
    assert row.name in str(info.value)
    assert info.value.hint == row.hint
    # a device "no" is not a protocol break
    assert not wire.host.finished
    wire.host.ping()
    wire.run(is_(CommandComplete))


def test_unknown_status_still_names_the_number() -> None:
    wire = pair()
    wire.owner.reject[VerifyRequested] = 0x1234
    wire.host.verify()
    with pytest.raises(DeviceError, match="0x1234") as info:
        wire.run(is_(CommandComplete))
    assert info.value.status == 0x1234


def test_rejected_transfer_and_info() -> None:
    from protocol.update import TransferRequested

    wire = pair()
    wire.owner.reject[TransferRequested] = Status.TOO_BIG
    wire.host.begin_transfer(b"x" * 100)
    with pytest.raises(DeviceError) as info:
        wire.run(is_(TransferComplete))
    assert info.value.status == Status.TOO_BIG
    wire.owner.reject[InfoRequested] = Status.INTERNAL
    wire.host.request_info()
    with pytest.raises(DeviceError):
        wire.run(is_(InfoReceived))


# --- data phase ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("window,block", [(1, 1024), (4, 128), (16, 1024), (32, 4096)])
def test_transfer_respects_the_window(window: int, block: int) -> None:
    wire = pair(dev_kwargs={"max_window": 32})
    image = image_bytes(50_000)
    inflight: list[int] = []
    original = wire.host.data_to_send

    def spy() -> bytes:
        out = original()
        t = wire.host._transfer
        if t is not None:
            inflight.append(t.sent - t.acked)
        return out

    wire.host.data_to_send = spy  # type: ignore[method-assign]
    done = transfer(wire, image, window=window, block_size=block)
    assert flashed(wire, image)
    assert done.size == len(image) and done.resumed_from == 0 and done.retransmits == 0
    assert max(inflight) == window if len(image) // block > window else True
    assert max(inflight) <= window
    started = next(e for e in wire.host_events if isinstance(e, TransferStarted))
    assert (started.window, started.block_size) == (window, block)


def test_window_and_block_are_capped_by_the_device() -> None:
    wire = pair(dev_kwargs={"max_window": 4, "max_block": 512})
    transfer(wire, image_bytes(10_000), window=100, block_size=8192)
    started = next(e for e in wire.host_events if isinstance(e, TransferStarted))
    assert (started.window, started.block_size) == (4, 512)


def test_overhead_per_block() -> None:
    wire = pair()
    image = image_bytes(100 * 1024)
    done = transfer(wire, image, block_size=1024)
    # 11 bytes of framing per 1 KiB block: at most 1.5 % over the payload
    assert done.wire_bytes == 100 * (1024 + 11)
    assert done.wire_bytes / len(image) <= 1.015


def test_progress_reaches_the_total() -> None:
    wire = pair()
    image = image_bytes(20_000)
    transfer(wire, image)
    progress = [e for e in wire.host_events if isinstance(e, Progress) and e.phase == "transfer"]
    assert progress[0].done == 0 and progress[-1].done == len(image)
    assert [p.done for p in progress] == sorted(p.done for p in progress)


@pytest.mark.parametrize("seed", range(6))
def test_selective_retransmit_under_loss_and_corruption(seed: int) -> None:
    wire = pair(seed=seed, drop=0.08, corrupt=0.12, chunk=700)
    image = image_bytes(60_000, seed=seed)
    done = transfer(wire, image, window=8)
    assert flashed(wire, image)
    assert done.retransmits > 0
    # selective: far fewer blocks resent than a go-back-N of the whole window on every loss would need
    blocks = -(-len(image) // 1024)
    assert done.retransmits < blocks


def test_corrupt_block_is_naked_and_resent_once() -> None:
    wire = pair()
    image = image_bytes(8 * 1024)
    wire.host.begin_transfer(image, window=8)
    wire.run(is_(TransferStarted))
    out = bytearray(wire.host.data_to_send())
    out[3 * 1035 + 100] ^= 0x10  # damage the payload of block 3
    wire.dev.receive_data(bytes(out))
    wire.owner.service()
    wire.host.receive_data(wire.dev.data_to_send())
    resent = wire.host.data_to_send()
    assert resent[0] == 0xA5 and resent[1] == FrameType.DATA and resent[2] == 3
    assert len(resent) == 1035  # only block 3
    wire.dev.receive_data(resent)
    done = wire.run(is_(TransferComplete))
    assert isinstance(done, TransferComplete) and done.retransmits == 1
    assert flashed(wire, image)


def test_lost_final_ack_is_recovered_by_timeout() -> None:
    wire = pair()
    image = image_bytes(3000)
    wire.host.begin_transfer(image)
    wire.run(is_(TransferStarted))
    wire.dev.receive_data(wire.host.data_to_send())
    wire.owner.service()
    wire.dev.data_to_send()  # every ACK lost
    done = wire.run(is_(TransferComplete))
    assert flashed(wire, image)
    assert isinstance(done, TransferComplete) and done.retransmits == 3


def test_device_holds_credit_while_busy() -> None:
    wire = pair()
    wire.owner.hold_credit = 6
    image = image_bytes(40_000)
    done = transfer(wire, image, window=8)
    assert flashed(wire, image) and done.retransmits == 0


def test_long_erase_with_progress_does_not_time_out() -> None:
    wire = pair()
    image = image_bytes(30_000)
    wire.owner.hold_credit = 4  # the owner keeps every block unwritten: an erase that blocks programming
    wire.host.begin_transfer(image, window=4)
    wire.run(lambda e: isinstance(e, Progress) and e.phase == "transfer" and e.done == 0)
    # run until the window is exhausted and the device has said nothing for a while
    for _ in range(50):
        wire.step()
    t = wire.host._transfer
    assert t is not None and t.sent == t.limit == 4 and t.acked == 4
    # the device erases for 20 s, reporting progress every second (simulated time)
    for second in range(20):
        wire.now += 1.0
        wire.dev.report_progress("erase", second + 1, 20)
        wire.step()
        while (event := wire.host.next_event()) is not None:
            wire.host_events.append(event)
        assert wire.host.timeout is not None and wire.host.timeout >= 2.0
    wire.owner.hold_credit = 0
    wire.owner.flush_held()
    done = wire.run(is_(TransferComplete))
    assert flashed(wire, image)
    assert isinstance(done, TransferComplete) and done.retransmits == 0
    erase = [e for e in wire.host_events if isinstance(e, Progress) and e.phase == "erase"]
    assert erase[-1] == Progress(phase="erase", done=20, total=20)


def test_erase_progress_before_begin_reply() -> None:
    wire = pair()
    wire.owner.erase_reports = 3
    transfer(wire, image_bytes(5000))
    erase = [e for e in wire.host_events if isinstance(e, Progress) and e.phase == "erase"]
    assert [e.done for e in erase] == [1, 2, 3]


def test_device_stops_acknowledging() -> None:
    wire = pair()
    wire.host.begin_transfer(image_bytes(50_000))
    wire.run(is_(TransferStarted))
    wire.dev.receive_data = lambda data: None  # type: ignore[method-assign]  # unplugged
    with pytest.raises(ProtocolTimeoutError, match="stopped acknowledging"):
        wire.run(is_(TransferComplete))


def test_link_too_noisy_gives_up() -> None:
    wire = pair(corrupt=1.0)
    wire.host.begin_transfer(image_bytes(50_000))
    with pytest.raises((RemoteProtocolError, ProtocolTimeoutError)):
        wire.run(is_(TransferComplete), max_steps=100_000)


def test_flash_error_mid_transfer_is_a_device_error() -> None:
    wire = pair()
    wire.owner.fail_write_at = 20_000
    wire.owner.fail_write_status = Status.PROGRAM_SEQUENCE
    wire.host.begin_transfer(image_bytes(50_000))
    with pytest.raises(DeviceError) as info:
        wire.run(is_(TransferComplete))
    assert info.value.status == Status.PROGRAM_SEQUENCE
    assert "PGSERR" in str(info.value)
    wire.host.ping()
    wire.run(is_(CommandComplete))  # still usable


def test_window_overflow_from_a_rogue_host() -> None:
    wire = pair()
    wire.host.begin_transfer(image_bytes(50_000), window=4)
    wire.run(is_(TransferStarted))
    wire.host.data_to_send()  # the real blocks 0-3 are never delivered
    wire.dev.receive_data(encode_frame(FrameType.DATA, 9, encode_data_block(9, b"x" * 1024)))
    with pytest.raises(DeviceError) as info:
        wire.run(is_(TransferComplete))
    assert info.value.status == Status.WINDOW_OVERFLOW
    assert AbortRequested(status=Status.WINDOW_OVERFLOW) in wire.owner.events


def test_abort_mid_transfer() -> None:
    wire = pair()
    wire.host.begin_transfer(image_bytes(50_000))
    wire.run(lambda e: isinstance(e, Progress) and e.done > 10_000)
    wire.host.abort()
    assert wire.run(is_(CommandComplete)) == CommandComplete(command="abort")
    assert AbortRequested() in wire.owner.events
    assert not wire.dev.in_transfer
    wire.host.ping()
    wire.run(is_(CommandComplete))


def test_commands_during_a_transfer_are_refused_by_the_device() -> None:
    wire = pair()
    wire.host.begin_transfer(image_bytes(50_000))
    wire.run(is_(TransferStarted))
    rogue = HostConnection(first_seq=200)
    rogue.verify()
    wire.dev.receive_data(rogue.data_to_send())
    rogue.receive_data(wire.dev.data_to_send())
    with pytest.raises(DeviceError) as info:
        rogue.next_event()
    assert info.value.status == Status.NOT_ALLOWED


# --- compression --------------------------------------------------------------------------------------------


def test_compressed_transfer() -> None:
    wire = pair()
    wire.host.request_info()
    wire.run(is_(InfoReceived))
    image = image_bytes(200_000, compressible=True)
    done = transfer(wire, image, compress=True)
    assert flashed(wire, image)
    assert done.payload_bytes < len(image) / 3
    assert done.wire_bytes < len(image) / 3
    offsets = [e.offset for e in wire.owner.events if isinstance(e, BlockReceived)]
    assert offsets == sorted(offsets) and offsets[0] == 0


def test_compressed_transfer_under_loss() -> None:
    wire = pair(seed=3, drop=0.1, corrupt=0.1, chunk=500)
    image = image_bytes(100_000, compressible=True)
    transfer(wire, image, compress=True)
    assert flashed(wire, image)


def test_compression_not_offered() -> None:
    wire = pair(dev_kwargs={"options": Option.RESUME})
    wire.host.begin_transfer(b"x" * 1000, compress=True)  # host did not ask INFO: the device refuses
    with pytest.raises(DeviceError) as info:
        wire.run(is_(TransferComplete))
    assert info.value.status == Status.UNSUPPORTED
    wire.host.request_info()
    wire.run(is_(InfoReceived))
    with pytest.raises(LocalProtocolError):  # now the host knows
        wire.host.begin_transfer(b"x" * 1000, compress=True)


def test_corrupt_deflate_stream_is_refused() -> None:
    dev = DeviceConnection()
    owner = Owner(dev=dev)
    host = HostConnection(first_seq=1)
    host.begin_transfer(b"A" * 5000, compress=True)
    dev.receive_data(host.data_to_send())
    owner.service()
    host.receive_data(dev.data_to_send())
    assert isinstance(host.next_event(), TransferStarted)
    dev.receive_data(encode_frame(FrameType.DATA, 0, encode_data_block(0, b"\xff" * 100)))
    owner.service()
    host.data_to_send()
    host.receive_data(dev.data_to_send())
    with pytest.raises(DeviceError) as info:
        while host.next_event() is not None:
            pass
    assert info.value.status == Status.DECOMPRESS_FAILED


def test_inflate_bomb_stops_at_the_declared_size() -> None:
    import zlib

    dev = DeviceConnection()
    owner = Owner(dev=dev)
    host = HostConnection(first_seq=1)
    host.begin_transfer(b"\x00" * 1000, compress=True)  # declares 1000 bytes
    dev.receive_data(host.data_to_send())
    owner.service()
    host.receive_data(dev.data_to_send())
    packer = zlib.compressobj(9, zlib.DEFLATED, -12)
    bomb = packer.compress(bytes(10_000_000)) + packer.flush()
    dev.receive_data(encode_frame(FrameType.DATA, 0, encode_data_block(0, bomb[:1024])))
    events = []
    while (e := dev.next_event()) is not None:
        events.append(e)
    assert sum(len(e.data) for e in events if isinstance(e, BlockReceived)) <= 1000 + 16384
    assert AbortRequested(status=Status.SIZE_MISMATCH) in events


# --- resume -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_resume_after_a_cut_link_with_a_new_host(compress: bool) -> None:
    wire = pair(seed=5)
    image = image_bytes(150_000, compressible=compress)
    wire.host.begin_transfer(image, compress=compress)
    wire.run(lambda e: isinstance(e, Progress) and e.phase == "transfer" and e.done >= 60_000)
    # the host process dies; a new one starts and flashes the same image
    assert wire.owner.partial is not None
    written = wire.owner.partial.written
    assert 0 < written < len(image)
    wire.host = HostConnection()
    wire.host.request_info()
    info = wire.run(is_(InfoReceived))
    assert isinstance(info, InfoReceived) and info.info.partial is not None
    assert info.info.partial.written == written
    done = transfer(wire, image, compress=compress)
    assert done.resumed_from == written
    assert flashed(wire, image)
    if not compress:
        assert done.payload_bytes == len(image) - written


def test_resume_of_another_image_starts_over() -> None:
    wire = pair()
    first = image_bytes(80_000, seed=1)
    wire.host.begin_transfer(first)
    wire.run(lambda e: isinstance(e, Progress) and e.done >= 30_000)
    wire.host = HostConnection()
    second = image_bytes(80_000, seed=2)
    done = transfer(wire, second)
    assert done.resumed_from == 0
    assert flashed(wire, second)


def test_no_resume_starts_over() -> None:
    wire = pair()
    image = image_bytes(80_000)
    wire.host.begin_transfer(image)
    wire.run(lambda e: isinstance(e, Progress) and e.done >= 30_000)
    wire.host = HostConnection()
    done = transfer(wire, image, resume=False)
    assert done.resumed_from == 0 and flashed(wire, image)


def test_resume_of_a_finished_image_sends_nothing() -> None:
    wire = pair()
    image = image_bytes(10_000)
    transfer(wire, image)
    wire.host = HostConnection()
    done = transfer(wire, image)
    assert done.resumed_from == len(image) and done.payload_bytes == 0 and done.wire_bytes == 0


def test_resume_offset_the_host_did_not_ask_for_is_refused_locally() -> None:
    dev = DeviceConnection()
    host = HostConnection()
    host.begin_transfer(b"x" * 100, resume=False)
    dev.receive_data(host.data_to_send())
    assert dev.next_event() is not None
    with pytest.raises(LocalProtocolError):
        dev.accept_transfer(50)


# --- baud switch --------------------------------------------------------------------------------------------


def test_baud_change() -> None:
    wire = pair()
    wire.host.change_baud(921600)
    assert wire.run(is_(BaudChanged)) == BaudChanged(baud=921600)
    assert wire.host.baud == wire.dev.baud == wire.host_baud == wire.dev_baud == 921600
    image = image_bytes(30_000)
    transfer(wire, image)
    assert flashed(wire, image)


def test_baud_change_falls_back_when_the_new_rate_is_dead() -> None:
    wire = pair(dead_rate=921600)
    wire.host.change_baud(921600)
    event = wire.run(is_(BaudChangeFailed))
    assert event == BaudChangeFailed(requested=921600, baud=115200)
    assert wire.host.baud == wire.dev.baud == wire.host_baud == wire.dev_baud == 115200
    assert wire.host.idle
    wire.host.request_info()
    wire.run(is_(InfoReceived))


def test_baud_change_to_an_unsupported_rate() -> None:
    wire = pair()
    wire.host.change_baud(57600)
    with pytest.raises(DeviceError) as info:
        wire.run(is_(BaudChanged))
    assert info.value.status == Status.BAUD_UNSUPPORTED
    wire.host.request_info()
    wire.run(is_(InfoReceived))
    with pytest.raises(LocalProtocolError, match="does not offer"):
        wire.host.change_baud(57600)


def test_baud_change_not_offered() -> None:
    wire = pair(dev_kwargs={"options": Option.NONE})
    wire.host.change_baud(921600)
    with pytest.raises(DeviceError) as info:
        wire.run(is_(BaudChanged))
    assert info.value.status == Status.UNSUPPORTED


def test_abort_is_refused_during_a_baud_switch() -> None:
    host = HostConnection()
    host.change_baud(921600)
    with pytest.raises(LocalProtocolError):
        host.abort()


# --- device logs --------------------------------------------------------------------------------------------


def test_logs_interleave_with_the_data_phase() -> None:
    wire = pair(seed=1, chunk=333)
    wire.owner.log_every_block = True
    image = image_bytes(40_000)
    transfer(wire, image)
    logs = [e for e in wire.host_events if isinstance(e, DeviceLog)]
    assert len(logs) == -(-len(image) // 1024)
    assert logs[1] == DeviceLog(level=2, text="block at 1024", timestamp_ms=1024)
    assert flashed(wire, image)


def test_logs_arrive_while_idle_and_follow_the_subscription() -> None:
    wire = pair()
    wire.dev.log(1, "warning while idle", 5)
    wire.dev.log(3, "debug is filtered by default")
    wire.step()
    assert wire.host.next_event() == DeviceLog(level=1, text="warning while idle", timestamp_ms=5)
    assert wire.host.next_event() is None
    wire.host.set_logging(3)
    wire.run(is_(CommandComplete))
    assert LoggingChanged(level=3) in wire.owner.events
    wire.dev.log(3, "debug now")
    wire.step()
    assert wire.host.next_event() == DeviceLog(level=3, text="debug now", timestamp_ms=0)
    wire.host.set_logging(None)
    wire.run(is_(CommandComplete))
    wire.dev.log(0, "silenced")
    wire.step()
    assert wire.host.next_event() is None


def test_digest_is_sha256_of_the_image() -> None:
    from protocol.update import TransferRequested

    wire = pair()
    image = image_bytes(3000)
    transfer(wire, image)
    request = next(e for e in wire.owner.events if isinstance(e, TransferRequested))
    assert request.digest == hashlib.sha256(image).digest()


@pytest.mark.parametrize("first_seq", [1, 2, 3, 200])
def test_restarted_host_with_colliding_sequence_numbers_is_not_answered_from_the_past(first_seq: int) -> None:
    wire = pair()
    wire.host = HostConnection(first_seq=first_seq)
    image = image_bytes(80_000)
    wire.host.begin_transfer(image)  # BEGIN carries seq first_seq
    wire.run(lambda e: isinstance(e, Progress) and e.done >= 30_000)
    wire.host = HostConnection(first_seq=first_seq)  # same sequence numbers again
    done = transfer(wire, image)
    assert done.resumed_from > 0 and flashed(wire, image)


def test_device_from_info_enforces_the_reported_limits() -> None:
    from .helpers import make_info

    info = make_info(DeviceConnection(max_block=512, max_window=3, options=Option.RESUME, baud_rates=(9600,)))
    dev = DeviceConnection.from_info(info)
    assert (dev.max_block, dev.max_window, dev.options, dev.baud_rates) == (512, 3, Option.RESUME, (9600,))


def test_lost_change_baud_reply_is_retried_after_the_device_reverted() -> None:
    wire = pair()
    wire.host.change_baud(921600)
    wire.dev.receive_data(wire.host.data_to_send())
    wire.owner.service()
    wire.dev.data_to_send()  # the OK (at the old rate) is lost; the device switches anyway
    wire._device_baud_events()
    assert wire.dev_baud == 921600
    event = wire.run(lambda e: isinstance(e, (BaudChanged, BaudChangeFailed)))
    assert event == BaudChanged(baud=921600)
    assert wire.host.baud == wire.dev.baud == 921600
    assert sum(isinstance(e, BaudChangeRequested) for e in wire.owner.events) == 2


# --- property and soak sweeps ---------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(1, 40_000),
    drop=st.sampled_from([0.0, 0.05, 0.2]),
    corrupt=st.sampled_from([0.0, 0.05, 0.2]),
    chunk=st.sampled_from([0, 1, 97, 1500]),
    window=st.integers(1, 16),
    block=st.sampled_from([64, 1000, 1024, 4096]),
    compress=st.booleans(),
)
def test_any_lossy_link_delivers_the_image_or_fails_typed(
    seed: int, size: int, drop: float, corrupt: float, chunk: int, window: int, block: int, compress: bool
) -> None:
    wire = pair(seed=seed, drop=drop, corrupt=corrupt, chunk=chunk)
    image = image_bytes(size, seed=seed, compressible=compress)
    try:
        transfer(wire, image, window=window, block_size=block, compress=compress)
    except (ProtocolTimeoutError, RemoteProtocolError):
        assert drop or corrupt  # a clean link never fails
        return
    assert flashed(wire, image)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(40))
def test_soak_lossy_transfers_with_resume(seed: int) -> None:
    wire = pair(seed=seed, drop=0.05, corrupt=0.05, chunk=400)
    wire.host = HostConnection(first_seq=seed)
    image = image_bytes(120_000, seed=seed, compressible=bool(seed % 2))
    wire.host.begin_transfer(image, compress=bool(seed % 2))
    wire.run(lambda e: isinstance(e, Progress) and e.phase == "transfer" and e.done >= 40_000)
    wire.host = HostConnection(first_seq=seed + 100)
    done = transfer(wire, image, compress=bool(seed % 2))
    assert done.resumed_from >= 40_000
    assert flashed(wire, image)


def test_owner_misuse_is_a_local_error() -> None:
    dev = DeviceConnection()
    with pytest.raises(LocalProtocolError):
        dev.reject(Status.INTERNAL)  # nothing pending
    with pytest.raises(LocalProtocolError):
        dev.reject(Status.OK)
    with pytest.raises(LocalProtocolError):
        dev.fail_transfer(Status.PROGRAM_FAILED)  # no transfer
    host = HostConnection(first_seq=1)
    host.device_protocol = PROTOCOL_VERSION  # known: INFO goes out at once, without the PING
    host.request_info()
    dev.receive_data(host.data_to_send())
    assert isinstance(dev.next_event(), InfoRequested)
    with pytest.raises(LocalProtocolError):
        dev.complete()  # INFO needs reply_info
    with pytest.raises(LocalProtocolError):
        dev.accept_transfer()
    dev.reply_info(make_info(dev))
    dev.complete()  # nothing pending any more: ignored (a late answer)
    dev.block_written(100)  # no transfer: ignored


def test_flash_error_while_a_request_is_pending_still_ends_the_transfer() -> None:
    wire = pair()
    wire.host.begin_transfer(image_bytes(50_000))
    wire.run(is_(TransferStarted))
    rogue = HostConnection(first_seq=50)
    rogue.device_protocol = PROTOCOL_VERSION  # INFO at once, without the PING
    rogue.request_info()
    wire.dev.receive_data(rogue.data_to_send())
    assert wire.dev.pending == FrameType.INFO
    wire.dev.fail_transfer(Status.ERASE_FAILED)
    with pytest.raises(DeviceError) as info:
        wire.run(is_(TransferComplete))
    assert info.value.status == Status.ERASE_FAILED
