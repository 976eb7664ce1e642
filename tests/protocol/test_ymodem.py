"""YMODEM wire pieces: block 0, file names, and the receiver's parser fed whole, byte by byte and with
trailing bytes (h11 style); hypothesis checks that no byte stream breaks either core."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.errors import ProtocolError, ProtocolTimeoutError, RemoteProtocolError, TransferAborted
from protocol.sansio import Connection, Event
from protocol.ymodem import (
    ACK,
    CRC_REQUEST,
    EOT,
    FINAL_ACK_RESENDS,
    FINAL_ACK_TIMEOUT_S,
    LOSSES_BEFORE_HOLDING,
    NAK,
    REPLY_DELAY_S,
    REQUEST_SETTLE_QUIET_S,
    REQUEST_SETTLE_S,
    BatchComplete,
    FileData,
    FileReceived,
    FileSent,
    FileStarted,
    YmodemFile,
    YmodemReceiver,
    YmodemSender,
    encode_header,
    parse_header,
    safe_filename,
)
from tests.protocol.test_ymodem_backtoback import Pair, files_of

MAX_FRAME = 3 + 1024 + 2


# -- block 0 ---------------------------------------------------------------------------------------------
def test_header_round_trip() -> None:
    raw = encode_header("fw.bin", 123456, 0o14_000_000_000, 0o100644).ljust(128, b"\0")
    assert parse_header(raw) == FileStarted(name="fw.bin", size=123456, mtime=0o14_000_000_000, mode=0o100644)
    assert encode_header("a", 5) == b"a\x005"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"image.bin\x0012345\x00" + bytes(100), FileStarted(name="image.bin", size=12345)),  # ST's IAP
        (
            b"f\x00" + b"10 15301336341 100644 0 1 10\x00",
            FileStarted(name="f", size=10, mtime=0o15301336341, mode=0o100644),
        ),  # lrzsz sb
        (b"f\x00\x00", FileStarted(name="f", size=None)),  # no size at all
        (b"f\x0010 zz 99\x00", FileStarted(name="f", size=10)),  # unreadable optional fields are ignored
        (b"noterminator", FileStarted(name="noterminator", size=None)),
    ],
)
def test_parse_header_variants(payload: bytes, expected: FileStarted) -> None:
    assert parse_header(payload) == expected


def test_empty_block_0_ends_the_batch_and_a_bad_size_is_the_peers_fault() -> None:
    assert parse_header(bytes(128)) is None
    with pytest.raises(RemoteProtocolError):
        parse_header(b"f\x00-12\x00")


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("", {}), ("a\0b", {}), ("x" * 1100, {}), ("ok", {"mtime": -1}), ("ok", {"mode": -1})],
)
def test_ymodem_file_rejects_what_block_0_cannot_carry(name: str, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        YmodemFile(name, b"", **kwargs)


def test_sender_rejects_bad_options() -> None:
    with pytest.raises(ValueError):
        YmodemSender([], block_size=512)
    with pytest.raises(ValueError):
        YmodemSender([], max_retries=0)
    with pytest.raises(ValueError):
        YmodemReceiver(max_errors=0)


# -- file names from the wire ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("received", "safe"),
    [
        ("firmware.bin", "firmware.bin"),
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("dir/sub/file.txt", "file.txt"),
        ("C:\\Windows\\evil.dll", "evil.dll"),
        ("C:evil", "evil"),
        ("..\\..\\x", "x"),
        ("a\x01b\x7f", "a_b_"),
        (".hidden", ".hidden"),
        ("naïve.txt", "naïve.txt"),
    ],
)
def test_safe_filename_strips_every_path(received: str, safe: str) -> None:
    assert safe_filename(received) == safe


@pytest.mark.parametrize("received", ["", ".", "..", "dir/", "../..", "/", "C:", "a/..", "x" * 300])
def test_safe_filename_refuses_unusable_names(received: str) -> None:
    with pytest.raises(RemoteProtocolError):
        safe_filename(received)


@given(st.text())
def test_safe_filename_never_yields_a_path(name: str) -> None:
    try:
        safe = safe_filename(name)
    except RemoteProtocolError:
        return
    assert "/" not in safe and "\\" not in safe
    assert safe not in ("", ".", "..")
    assert not any(ord(c) < 32 for c in safe)


# -- the receiver's parser: whole, byte by byte, trailing bytes ---------------------------------------------
def _sender_stream(sizes: tuple[int, ...], block_size: int) -> tuple[bytes, list[YmodemFile]]:
    """Everything a sender puts on the wire in an undisturbed conversation."""
    files = files_of(*sizes)
    chunks: list[bytes] = []

    def record(data: bytes, index: int) -> bytes:
        chunks.append(data)
        return data

    Pair(YmodemSender(files, block_size=block_size), YmodemReceiver(), to_receiver=record).run()
    return b"".join(chunks), files


def _drain(core: Connection, limit: int = 100_000) -> list[Event]:
    events: list[Event] = []
    for _ in range(limit):
        event = core.next_event()
        if event is None:
            return events
        events.append(event)
    raise AssertionError("next_event() never returned None")


def _summary(events: list[Event]) -> list[object]:
    """Events with the data blocks merged (byte-by-byte feeding yields the same blocks, but check content)."""
    out: list[object] = []
    data = b""
    for event in events:
        if isinstance(event, FileData):
            data += event.data
            continue
        if isinstance(event, FileStarted | FileReceived | BatchComplete):
            if data:
                out.append(("data", data))
                data = b""
            out.append(event)
    return out


@pytest.mark.parametrize("block_size", [128, 1024])
def test_receiver_parses_a_stream_whole_byte_by_byte_and_with_trailing_bytes(block_size: int) -> None:
    stream, files = _sender_stream((0, 1, 1024, 1500), block_size)
    whole = YmodemReceiver()
    whole.receive_data(stream)
    events = _drain(whole)
    assert whole.finished
    expected: list[object] = []
    for f in files:
        expected += [FileStarted(name=f.name, size=len(f.data))]
        if f.data:
            expected.append(("data", f.data))
        expected.append(FileReceived(name=f.name, size=len(f.data)))
    expected.append(BatchComplete())
    assert _summary(events) == expected

    single = YmodemReceiver()
    byte_events: list[Event] = []
    for k in range(len(stream)):
        single.receive_data(stream[k : k + 1])
        byte_events += _drain(single)
    assert byte_events == events
    assert single.finished

    trailing = YmodemReceiver()
    trailing.receive_data(stream + b"\r\nIAP menu> ")
    assert _drain(trailing) == events
    assert trailing.finished
    assert trailing.trailing_data == b"\r\nIAP menu> "


def test_receiver_skips_noise_before_a_block_and_reacks_duplicates() -> None:
    stream, files = _sender_stream((300,), 128)
    block0_end = 3 + 128 + 2
    block1 = stream[block0_end : block0_end + 133]
    noisy = (
        b"\xfe\x00garbage\x01\x00" + stream[:block0_end] + b"\x99\x98" + block1 + block1 + stream[block0_end + 133 :]
    )
    receiver = YmodemReceiver()
    receiver.receive_data(noisy)
    events = _drain(receiver)
    assert receiver.finished
    assert _summary(events)[1] == ("data", files[0].data)


def test_out_of_sequence_block_aborts_with_can_can() -> None:
    stream, _ = _sender_stream((3000,), 1024)
    block0_end = 133
    receiver = YmodemReceiver()
    receiver.receive_data(stream[:block0_end] + stream[block0_end + 1029 : block0_end + 2 * 1029])  # skip block 1
    with pytest.raises(RemoteProtocolError):
        for _ in range(5):
            _drain(receiver)
            receiver.data_to_send()
    assert receiver.finished


def test_short_file_is_an_error() -> None:
    stream, _ = _sender_stream((3000,), 1024)
    receiver = YmodemReceiver(ack_first_eot=True)
    receiver.receive_data(stream[: 133 + 1029] + b"\x04")  # one block of three, then EOT
    with pytest.raises(RemoteProtocolError, match="ended after"):
        for _ in range(5):
            _drain(receiver)
            receiver.data_to_send()


# -- hypothesis: no byte stream breaks a core ---------------------------------------------------------------
def _hammer(core: YmodemSender | YmodemReceiver, chunks: list[bytes], timeouts: list[bool]) -> None:
    """Feed chunks (with timeouts in between); only our typed errors may escape, and buffers stay bounded."""
    try:
        for chunk, timeout in zip(chunks, timeouts + [False] * len(chunks), strict=False):
            core.data_to_send()
            if chunk:
                core.receive_data(chunk)
            _drain(core)
            assert len(core._in) <= MAX_FRAME + 1, len(core._in)
            if core.finished:
                return
            if timeout and core.timeout is not None:
                core.handle_timeout()
                core.data_to_send()
                _drain(core)
    except ProtocolError:
        assert core.finished or core._pending_error is None


_CHUNKS = st.lists(st.binary(max_size=1100), max_size=30)
_INTERESTING = st.lists(
    st.sampled_from([b"C", b"\x06", b"\x15", b"\x18", b"\x04", b"\x01\x00\xff", b"\x02\x01\xfe", b"x" * 50]),
    max_size=40,
).map(lambda parts: [b"".join(parts[i : i + 3]) for i in range(0, len(parts), 3)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.one_of(_CHUNKS, _INTERESTING), timeouts=st.lists(st.booleans(), max_size=30))
def test_receiver_survives_any_bytes(chunks: list[bytes], timeouts: list[bool]) -> None:
    _hammer(YmodemReceiver(), chunks, timeouts)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.one_of(_CHUNKS, _INTERESTING), timeouts=st.lists(st.booleans(), max_size=30))
def test_receiver_in_a_file_survives_any_bytes(chunks: list[bytes], timeouts: list[bool]) -> None:
    stream, _ = _sender_stream((5000,), 1024)
    receiver = YmodemReceiver(nak_duplicates=True, keep_padding=True)
    receiver.receive_data(stream[:133])
    _drain(receiver)
    _hammer(receiver, chunks, timeouts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.one_of(_CHUNKS, _INTERESTING), timeouts=st.lists(st.booleans(), max_size=30))
def test_sender_survives_any_bytes(chunks: list[bytes], timeouts: list[bool]) -> None:
    _hammer(YmodemSender([YmodemFile("a", os.urandom(3000)), YmodemFile("b", b"")]), chunks, timeouts)


def test_sender_ignores_console_text_before_the_request() -> None:
    sender = YmodemSender([YmodemFile("a", b"x")])
    sender.receive_data(b"Main Menu\r\n Download image (CRC) --- 1\r\n")
    assert _drain(sender) == []
    assert sender.timeout == 60.0  # text alone is no request (not even the 'C' in "CRC")
    with pytest.raises(ProtocolTimeoutError, match="never asked"):
        sender.handle_timeout()
    assert sender.data_to_send() == b""  # nobody to cancel: the peer never spoke


def test_sender_answers_a_request_once_the_line_is_quiet() -> None:
    sender = YmodemSender([YmodemFile("a", b"x")])
    sender.receive_data(b"Waiting for the file to be sent ... (press 'a' to abort)\r\n" + bytes([CRC_REQUEST]))
    assert _drain(sender) == []
    assert sender.data_to_send() == b""
    assert sender.timeout == REQUEST_SETTLE_S  # after text: long enough for a USB-UART's bursts
    sender.handle_timeout()
    block0 = sender.data_to_send()
    assert block0[:3] == b"\x01\x00\xff" and block0[3:5] == b"a\x00"
    sender.receive_data(bytes([ACK, CRC_REQUEST]))
    assert isinstance(_drain(sender)[0], FileStarted)
    _drain(sender)
    assert sender.timeout == REQUEST_SETTLE_QUIET_S  # a request alone on the line: a short wait will do
    sender.handle_timeout()
    assert sender.data_to_send()[:3] == b"\x01\x01\xfe"
    sender.receive_data(bytes([NAK]))
    _drain(sender)
    sender.handle_timeout()  # the reply waits for a quiet line, then the block goes again
    assert sender.data_to_send()[:3] == b"\x01\x01\xfe"


def test_a_request_alone_on_the_line_is_answered_after_a_short_quiet_wait() -> None:
    sender = YmodemSender([YmodemFile("a", b"x")])
    sender.receive_data(bytes([CRC_REQUEST]))  # lrzsz rb: no banner, just 'C' (then it flushes its input)
    _drain(sender)
    assert sender.timeout == REQUEST_SETTLE_QUIET_S
    sender.receive_data(b"RC")  # ... unless more text follows: then it was text, and the next 'C' waits longer
    _drain(sender)
    sender.receive_data(bytes([CRC_REQUEST]))
    _drain(sender)
    assert sender.timeout == REQUEST_SETTLE_S


# -- replies: at once, until a receiver loses one (lrzsz rb flushes its input after every ACK) -----------------
def _sender_in_data_phase(**kwargs: float | None) -> YmodemSender:
    """A sender whose block 1 is out and awaits its ACK."""
    sender = YmodemSender([YmodemFile("a", os.urandom(5000))], **kwargs)  # type: ignore[arg-type]
    sender.receive_data(bytes([CRC_REQUEST]))
    _drain(sender)
    sender.handle_timeout()  # the start request settles
    sender.data_to_send()
    sender.receive_data(bytes([ACK, CRC_REQUEST]))
    _drain(sender)
    sender.handle_timeout()
    assert sender.data_to_send()[:3] == b"\x02\x01\xfe"
    return sender


def test_by_default_the_next_block_answers_an_ack_at_once() -> None:
    sender = _sender_in_data_phase()
    for seq in (2, 3):
        sender.receive_data(bytes([ACK]))
        _drain(sender)
        assert sender.data_to_send()[:3] == bytes((0x02, seq, 0xFF - seq))


def test_a_retransmission_waits_for_a_quiet_line_and_two_losses_make_every_reply_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="protocol.ymodem")
    sender = _sender_in_data_phase()
    sender.receive_data(bytes([NAK]))  # rb's NAK 5 s after it flushed our block
    _drain(sender)
    assert sender.data_to_send() == b""  # the retransmission waits: rb flushes after its NAK as well
    assert sender.timeout == REPLY_DELAY_S
    sender.handle_timeout()
    assert sender.data_to_send()[:3] == b"\x02\x01\xfe"
    sender.receive_data(bytes([ACK]))
    _drain(sender)
    assert sender.data_to_send()[:3] == b"\x02\x02\xfd"  # one loss is the rare race: ACKs still answered at once
    assert "replies now wait" not in caplog.text
    sender.receive_data(bytes([NAK]))  # a second loss: this receiver flushes, or the line is bad
    _drain(sender)
    sender.handle_timeout()
    assert sender.data_to_send()[:3] == b"\x02\x02\xfd"
    assert "2 blocks lost; replies now wait 1 ms" in caplog.text
    sender.receive_data(bytes([ACK]))
    _drain(sender)
    assert sender.data_to_send() == b""  # from now on every reply waits
    assert sender.timeout == REPLY_DELAY_S
    sender.handle_timeout()
    assert sender.data_to_send()[:3] == b"\x02\x03\xfc"


def test_ack_timeouts_count_as_losses_too() -> None:
    sender = _sender_in_data_phase()
    for _ in range(LOSSES_BEFORE_HOLDING):
        sender.handle_timeout()  # 10 s of silence: the block goes again at once (the line is quiet by now)
        assert sender.data_to_send()[:3] == b"\x02\x01\xfe"
    sender.receive_data(bytes([ACK]))
    _drain(sender)
    assert sender.data_to_send() == b""
    assert sender.timeout == REPLY_DELAY_S


@pytest.mark.parametrize(("reply_delay", "held"), [(0.0, False), (0.004, True)])
def test_a_fixed_reply_delay_does_not_adapt(reply_delay: float, held: bool) -> None:
    sender = _sender_in_data_phase(reply_delay=reply_delay)
    for reply in (ACK, NAK, ACK):
        sender.receive_data(bytes([reply]))
        _drain(sender)
        if held:
            assert sender.data_to_send() == b"" and sender.timeout == reply_delay
            sender.handle_timeout()
        assert sender.data_to_send()[:1] == b"\x02"


def test_an_abort_waits_for_a_quiet_line_even_before_any_loss() -> None:
    sender = _sender_in_data_phase()
    sender.abort("stop")
    assert sender.data_to_send() == b""
    assert sender.timeout == REPLY_DELAY_S
    sender.handle_timeout()
    assert sender.data_to_send() == b"\x18" * 5
    with pytest.raises(TransferAborted):
        sender.next_event()


# -- the end-of-batch block: rb may flush it with its input ----------------------------------------------------
def _sender_at_end_of_batch() -> YmodemSender:
    """A sender whose only file was ACKed at its EOT and whose end-of-batch block is out."""
    sender = YmodemSender([YmodemFile("a", b"x")])
    sender.receive_data(bytes([CRC_REQUEST]))
    _drain(sender)
    sender.handle_timeout()
    sender.data_to_send()  # block 0
    sender.receive_data(bytes([ACK, CRC_REQUEST]))
    _drain(sender)
    sender.handle_timeout()
    sender.data_to_send()  # block 1
    sender.receive_data(bytes([ACK]))
    _drain(sender)
    assert sender.data_to_send() == bytes([EOT])
    sender.receive_data(bytes([NAK]))  # rb NAKs the first EOT
    _drain(sender)
    sender.handle_timeout()
    assert sender.data_to_send() == bytes([EOT])
    sender.receive_data(bytes([ACK, CRC_REQUEST]))
    assert isinstance(_drain(sender)[0], FileSent)
    sender.handle_timeout()  # the request settles
    assert sender.data_to_send()[:5] == b"\x01\x00\xff\x00\x00"
    return sender


def test_a_silent_end_of_batch_block_is_sent_again_and_its_late_ack_completes(caplog: pytest.LogCaptureFixture) -> None:
    sender = _sender_at_end_of_batch()
    assert sender.timeout == FINAL_ACK_TIMEOUT_S
    sender.handle_timeout()  # rb flushed it with its input and waits: it goes once more
    assert sender.data_to_send()[:5] == b"\x01\x00\xff\x00\x00"
    assert _drain(sender) == []
    sender.receive_data(bytes([ACK]))
    assert _drain(sender) == [BatchComplete()]
    assert "no ACK" not in caplog.text


def test_an_end_of_batch_block_never_answered_still_completes_the_delivered_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = _sender_at_end_of_batch()
    for _ in range(FINAL_ACK_RESENDS):
        sender.handle_timeout()
        assert sender.data_to_send()[:3] == b"\x01\x00\xff"
    sender.handle_timeout()  # rb exited before its ACK left the tty: every file was ACKed, the batch is done
    assert sender.data_to_send() == b""
    assert _drain(sender) == [BatchComplete()]
    assert "no ACK for the end-of-batch block" in caplog.text
