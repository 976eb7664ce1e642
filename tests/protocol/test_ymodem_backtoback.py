"""Sender core against receiver core, no I/O: a virtual clock stands in for the wire (h11's back-to-back
style).  Covers every AN4657 quirk switch, injected loss and corruption, and CAN CAN both ways."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from protocol.errors import (
    LocalProtocolError,
    ProtocolError,
    ProtocolTimeoutError,
    RemoteProtocolError,
    TransferAborted,
)
from protocol.sansio import Event, Progress
from protocol.ymodem import (
    ABORT_SEQUENCE,
    ACK,
    BatchComplete,
    FileData,
    FileReceived,
    FileSent,
    FileStarted,
    YmodemFile,
    YmodemReceiver,
    YmodemSender,
)

Filter = Callable[[bytes, int], bytes]  # (chunk, index of the chunk in that direction) -> what arrives


def passthrough(data: bytes, index: int) -> bytes:
    return data


@dataclass
class Side:
    core: YmodemSender | YmodemReceiver
    name: str
    events: list[Event] = field(default_factory=list)
    error: ProtocolError | None = None
    last_activity: float = 0.0
    sent_chunks: int = 0

    @property
    def live(self) -> bool:
        return self.error is None and not self.core.finished


@dataclass
class Pair:
    """Runs a sender and a receiver against each other on a virtual clock until both stop."""

    sender: YmodemSender
    receiver: YmodemReceiver
    to_receiver: Filter = passthrough
    to_sender: Filter = passthrough
    on_receiver_event: Callable[[YmodemReceiver, Event], None] | None = None
    on_sender_event: Callable[[YmodemSender, Event], None] | None = None
    byte_by_byte: bool = False  # feed every chunk one byte at a time, draining events in between
    now: float = 0.0
    max_steps: int = 200_000

    def __post_init__(self) -> None:
        self.s = Side(self.sender, "sender")
        self.r = Side(self.receiver, "receiver")

    def _guard(self, side: Side, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except ProtocolError as err:
            assert side.error is None, f"{side.name} raised twice: {side.error!r} then {err!r}"
            side.error = err
            return None

    def _move(self, src: Side, dst: Side, filt: Filter) -> bool:
        data = src.core.data_to_send()
        if not data:
            return False
        src.last_activity = self.now
        arrived = filt(data, src.sent_chunks)
        src.sent_chunks += 1
        if arrived and dst.live:
            dst.last_activity = self.now
            if self.byte_by_byte:
                hook = self.on_sender_event if dst is self.s else self.on_receiver_event
                for k in range(len(arrived)):
                    if dst.live:
                        self._guard(dst, lambda k=k: dst.core.receive_data(arrived[k : k + 1]))  # type: ignore[misc]
                        self._drain(dst, hook)
            else:
                self._guard(dst, lambda: dst.core.receive_data(arrived))
        return True

    def _drain(self, side: Side, hook: Callable[..., None] | None) -> bool:
        moved = False
        while side.live:
            event = self._guard(side, side.core.next_event)
            if event is None:
                break
            assert isinstance(event, Event)
            side.events.append(event)
            if hook is not None:
                hook(side.core, event)
            moved = True
        return moved

    def run(self) -> Pair:
        for _ in range(self.max_steps):
            busy = self._move(self.s, self.r, self.to_receiver)
            busy |= self._move(self.r, self.s, self.to_sender)
            busy |= self._drain(self.s, self.on_sender_event)
            busy |= self._drain(self.r, self.on_receiver_event)
            if busy:
                continue
            live = [side for side in (self.s, self.r) if side.live and side.core.timeout is not None]
            if not live:
                return self
            side = min(live, key=lambda sd: sd.last_activity + (sd.core.timeout or 0.0))
            self.now = max(self.now, side.last_activity + (side.core.timeout or 0.0))
            side.last_activity = self.now
            self._guard(side, side.core.handle_timeout)
        raise AssertionError("the conversation did not end")

    # -- results -----------------------------------------------------------------------------------------
    def received(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        current = None
        for event in self.r.events:
            if isinstance(event, FileStarted):
                current = event.name
                files[current] = b""
            elif isinstance(event, FileData):
                assert current is not None
                files[current] += event.data
        return files


def files_of(*sizes: int) -> list[YmodemFile]:
    return [YmodemFile(f"f{i}.bin", os.urandom(size)) for i, size in enumerate(sizes)]


def assert_clean(pair: Pair, files: list[YmodemFile]) -> None:
    assert pair.s.error is None, pair.s.error
    assert pair.r.error is None, pair.r.error
    assert pair.sender.finished and pair.receiver.finished
    assert pair.received() == {f.name: f.data for f in files}
    assert isinstance(pair.s.events[-1], BatchComplete)
    assert isinstance(pair.r.events[-1], BatchComplete)
    sent = [e for e in pair.s.events if isinstance(e, FileSent)]
    got = [e for e in pair.r.events if isinstance(e, FileReceived)]
    assert [(e.name, e.size) for e in sent] == [(f.name, len(f.data)) for f in files]
    assert [(e.name, e.size) for e in got] == [(f.name, len(f.data)) for f in files]


# -- plain conversations ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 127, 128, 129, 1023, 1024, 1025, 3 * 1024 + 7, 70_000])
@pytest.mark.parametrize("block_size", [128, 1024])
def test_one_file_round_trip(size: int, block_size: int) -> None:
    files = files_of(size)
    pair = Pair(YmodemSender(files, block_size=block_size), YmodemReceiver()).run()
    assert_clean(pair, files)
    progress = [e for e in pair.s.events if isinstance(e, Progress)]
    assert all(e.phase == "transfer" and e.total == size for e in progress)
    assert [e.done for e in progress] == sorted(e.done for e in progress)


@pytest.mark.parametrize("block_size", [128, 1024])
def test_byte_by_byte_conversation(block_size: int) -> None:
    files = files_of(0, 1, 1025, 3000)
    pair = Pair(YmodemSender(files, block_size=block_size), YmodemReceiver(), byte_by_byte=True).run()
    assert_clean(pair, files)


def test_batch_of_three_and_empty_batch() -> None:
    files = files_of(5, 0, 4000)
    assert_clean(Pair(YmodemSender(files), YmodemReceiver()).run(), files)
    pair = Pair(YmodemSender([]), YmodemReceiver()).run()
    assert_clean(pair, [])


def test_block_numbers_wrap_past_255() -> None:
    files = files_of(300 * 128 + 5)
    assert_clean(Pair(YmodemSender(files, block_size=128), YmodemReceiver()).run(), files)


def test_mtime_and_mode_travel_in_block_0() -> None:
    file = YmodemFile("a.txt", b"abc", mtime=1_700_000_000, mode=0o100644)
    pair = Pair(YmodemSender([file]), YmodemReceiver()).run()
    started = next(e for e in pair.r.events if isinstance(e, FileStarted))
    assert started == FileStarted(name="a.txt", size=3, mtime=1_700_000_000, mode=0o100644)


def test_receiver_falls_back_to_checksum_when_c_goes_unanswered() -> None:
    files = files_of(3000)
    lost = {"n": 0}

    def drop_first_cs(data: bytes, index: int) -> bytes:
        if data == b"C" and lost["n"] < 3:
            lost["n"] += 1
            return b""
        return data

    receiver = YmodemReceiver()
    pair = Pair(YmodemSender(files), receiver, to_sender=drop_first_cs).run()
    assert_clean(pair, files)
    assert not receiver.crc


def test_receiver_takes_a_plain_xmodem_sender() -> None:
    """An XMODEM sender answers the request with block 1 directly: one file, no name, padding kept."""
    from protocol.crc import crc16_xmodem

    receiver = YmodemReceiver()
    assert receiver.data_to_send() == b"C"
    payload = b"hello".ljust(128, b"\x1a")
    receiver.receive_data(b"\x01\x01\xfe" + payload + crc16_xmodem(payload).to_bytes(2, "big"))
    assert receiver.next_event() == FileStarted(name="", size=None)
    assert receiver.next_event() == FileData(data=payload)
    assert isinstance(receiver.next_event(), Progress)
    assert receiver.data_to_send() == bytes([ACK])
    receiver.receive_data(b"\x04")
    assert receiver.next_event() is None
    assert receiver.data_to_send() == b"\x15"  # first EOT NAKed
    receiver.receive_data(b"\x04")
    assert receiver.next_event() == FileReceived(name="", size=128)
    assert receiver.next_event() == BatchComplete()
    assert receiver.data_to_send() == bytes([ACK])
    assert receiver.finished


# -- the AN4657 quirks, every combination -------------------------------------------------------------------
QUIRKS = list(itertools.product([False, True], repeat=4))


@pytest.mark.parametrize(("nak_duplicates", "ack_first_eot", "keep_padding", "c_on_error"), QUIRKS)
def test_quirk_combinations_with_lost_acks_and_corruption(
    nak_duplicates: bool, ack_first_eot: bool, keep_padding: bool, c_on_error: bool
) -> None:
    files = files_of(5 * 1024 + 100, 130)

    # lose the receiver's 2nd, 5th and 9th replies (ACKs), corrupt the sender's 4th chunk
    def lose_some(data: bytes, index: int) -> bytes:
        return b"" if index in (2, 5, 9) else data

    def corrupt_one(data: bytes, index: int) -> bytes:
        if index == 4 and len(data) > 10:
            return data[:10] + bytes([data[10] ^ 0xFF]) + data[11:]
        return data

    receiver = YmodemReceiver(
        nak_duplicates=nak_duplicates,
        ack_first_eot=ack_first_eot,
        keep_padding=keep_padding,
        c_on_error=c_on_error,
    )
    pair = Pair(YmodemSender(files), receiver, to_receiver=corrupt_one, to_sender=lose_some).run()
    assert pair.s.error is None and pair.r.error is None, (pair.s.error, pair.r.error)
    got = pair.received()
    for file in files:
        if keep_padding:
            assert got[file.name][: len(file.data)] == file.data
            assert set(got[file.name][len(file.data) :]) <= {0x1A}
            assert len(got[file.name]) % 128 == 0
        else:
            assert got[file.name] == file.data


def test_nak_duplicates_receiver_with_lost_ack_does_not_trap_the_sender() -> None:
    """AN4657 NAKs a duplicate: after a lost ACK the retransmitted block is NAKed forever unless the sender
    concludes the block arrived (see docs/ymodem.md)."""
    files = files_of(10 * 1024)
    acks = {"n": 0}

    def lose_third_ack(data: bytes, index: int) -> bytes:
        if data == bytes([ACK]):
            acks["n"] += 1
            if acks["n"] == 3:
                return b""
        return data

    pair = Pair(
        YmodemSender(files), YmodemReceiver(nak_duplicates=True, c_on_error=True), to_sender=lose_third_ack
    ).run()
    assert_clean(pair, files)


def test_nak_duplicates_receiver_with_lost_block_0_ack() -> None:
    files = files_of(2048)

    def lose_first_reply_after_header(data: bytes, index: int) -> bytes:
        return b"" if index == 1 else data  # index 0 is the first 'C'; 1 is "ACK C" for block 0

    pair = Pair(
        YmodemSender(files),
        YmodemReceiver(nak_duplicates=True, c_on_error=True),
        to_sender=lose_first_reply_after_header,
    ).run()
    assert_clean(pair, files)


def test_hold_header_ack_until_the_owner_accepts() -> None:
    files = files_of(3000)
    seen: list[str] = []

    def owner(core: YmodemReceiver, event: Event) -> None:
        if isinstance(event, FileStarted):
            assert core.timeout is None  # the owner takes its time (a flash erase)
            assert core.data_to_send() == b""  # no ACK yet
            seen.append(event.name)
            core.accept_file()
        elif isinstance(event, FileData):
            core.accept_data()

    receiver = YmodemReceiver(hold_header_ack=True, hold_data_ack=True)
    pair = Pair(YmodemSender(files), receiver, on_receiver_event=owner).run()
    assert_clean(pair, files)
    assert seen == ["f0.bin"]


def test_reject_file_cancels_with_can_can_and_a_typed_error() -> None:
    files = files_of(3000)

    def owner(core: YmodemReceiver, event: Event) -> None:
        if isinstance(event, FileStarted):
            core.reject_file("image too big for the application area")

    pair = Pair(YmodemSender(files), YmodemReceiver(hold_header_ack=True), on_receiver_event=owner).run()
    assert isinstance(pair.r.error, TransferAborted) and not pair.r.error.by_peer
    assert "too big" in str(pair.r.error)
    assert isinstance(pair.s.error, TransferAborted) and pair.s.error.by_peer


def test_reject_data_cancels() -> None:
    def owner(core: YmodemReceiver, event: Event) -> None:
        if isinstance(event, FileData):
            core.reject_data("flash write failed")

    pair = Pair(YmodemSender(files_of(3000)), YmodemReceiver(hold_data_ack=True), on_receiver_event=owner)
    pair.run()
    assert isinstance(pair.r.error, TransferAborted) and not pair.r.error.by_peer
    assert isinstance(pair.s.error, TransferAborted) and pair.s.error.by_peer


def test_accept_without_a_held_block_is_a_local_error() -> None:
    receiver = YmodemReceiver()
    for call in (receiver.accept_file, receiver.accept_data):
        with pytest.raises(LocalProtocolError):
            call()
    with pytest.raises(LocalProtocolError):
        receiver.reject_file("x")
    with pytest.raises(LocalProtocolError):
        receiver.reject_data("x")


def test_max_errors_aborts_the_receiver() -> None:
    def corrupt_all_blocks(data: bytes, index: int) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if len(data) > 100 and data[1] != 0 else data

    pair = Pair(
        YmodemSender(files_of(2000), max_retries=50), YmodemReceiver(max_errors=5), to_receiver=corrupt_all_blocks
    ).run()
    assert isinstance(pair.r.error, RemoteProtocolError)
    assert isinstance(pair.s.error, TransferAborted) and pair.s.error.by_peer


# -- aborts ------------------------------------------------------------------------------------------------
def test_sender_abort_reaches_the_receiver() -> None:
    def abort_midway(core: YmodemSender, event: Event) -> None:
        if isinstance(event, Progress) and event.done >= 2048:
            core.abort("user pressed Ctrl-C")

    pair = Pair(YmodemSender(files_of(8000)), YmodemReceiver(), on_sender_event=abort_midway).run()
    assert isinstance(pair.s.error, TransferAborted) and not pair.s.error.by_peer
    assert isinstance(pair.r.error, TransferAborted) and pair.r.error.by_peer


def test_receiver_abort_reaches_the_sender() -> None:
    def abort_midway(core: YmodemReceiver, event: Event) -> None:
        if isinstance(event, Progress) and event.done >= 2048:
            core.abort()

    pair = Pair(YmodemSender(files_of(8000)), YmodemReceiver(), on_receiver_event=abort_midway).run()
    assert isinstance(pair.r.error, TransferAborted) and not pair.r.error.by_peer
    assert isinstance(pair.s.error, TransferAborted) and pair.s.error.by_peer


def test_abort_sends_can_can_then_raises_and_stays_finished() -> None:
    receiver = YmodemReceiver()
    receiver.data_to_send()
    receiver.abort("stop")
    assert receiver.next_event() is None  # the CANs have not gone out yet
    assert receiver.data_to_send() == ABORT_SEQUENCE
    with pytest.raises(TransferAborted):
        receiver.next_event()
    assert receiver.finished
    with pytest.raises(LocalProtocolError):
        receiver.receive_data(b"x")
    with pytest.raises(LocalProtocolError):
        receiver.next_event()
    receiver.abort()  # a no-op once finished


# -- silence -------------------------------------------------------------------------------------------------
def test_dead_receiver_makes_the_sender_time_out() -> None:
    def nothing(data: bytes, index: int) -> bytes:
        return b"" if index > 0 else data  # only the first 'C' arrives

    pair = Pair(YmodemSender(files_of(100)), YmodemReceiver(), to_sender=nothing).run()
    assert isinstance(pair.s.error, ProtocolTimeoutError)


def test_no_receiver_at_all() -> None:
    sender = YmodemSender(files_of(10))
    assert sender.timeout == 60.0
    with pytest.raises(ProtocolTimeoutError):
        sender.handle_timeout()


def test_dead_sender_makes_the_receiver_time_out() -> None:
    receiver = YmodemReceiver(start_requests=4)
    requests = [receiver.data_to_send()]
    with pytest.raises(ProtocolTimeoutError):
        for _ in range(10):
            receiver.handle_timeout()
            requests.append(receiver.data_to_send())
    assert requests == [b"C", b"C", b"C", b"\x15"]
