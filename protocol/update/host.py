"""The host role of the stm32ota update protocol, as a sans-I/O core.

Usage (any driver from :mod:`protocol.drivers.link` / :mod:`protocol.drivers.aio` runs it)::

    conn = HostConnection(baud=DEFAULT_BAUD)
    conn.request_info()
    info = link.run(conn, until=lambda e: isinstance(e, InfoReceived)).info
    conn.begin_transfer(image, slot=1, compress=Option.DEFLATE in info.options)
    link.run(conn, until=lambda e: isinstance(e, TransferComplete), on_event=reporter)

Rules:

* Exactly one command is outstanding at a time.  Each command method queues a frame and completes with one
  event: ``ping()``/``verify()``/``activate()``/``reboot()``/``confirm()``/``rollback()``/``abort()``/
  ``set_logging()`` -> :class:`CommandComplete`; ``request_info()`` -> :class:`InfoReceived`;
  ``change_baud()`` -> :class:`~protocol.sansio.ChangeBaud` (for the driver), then :class:`BaudChanged` or,
  when the device did not hear us at the new rate, ``ChangeBaud(old)`` and :class:`BaudChangeFailed`;
  ``begin_transfer()`` -> :class:`TransferStarted`, ``Progress("erase"|"transfer", ...)``, then
  :class:`TransferComplete`; ``erase()`` -> :class:`SlotErased`; ``read()`` -> :class:`SlotRead`;
  ``read_digest()`` -> :class:`SlotDigest`.  Calling a command method while another is outstanding raises
  :class:`LocalProtocolError` before anything is queued (the connection is unchanged).  ``abort()`` is the
  exception: it may interrupt anything but a baud switch.
* A failure status from the device is raised out of :meth:`next_event` as
  :class:`~protocol.errors.DeviceError` (``status`` = the code, text from :mod:`.status`); the connection
  stays usable.  Silence past the retries raises :class:`ProtocolTimeoutError`; a malformed reply raises
  :class:`RemoteProtocolError`.  Both are sticky: afterwards ``finished`` is True and every call raises
  :class:`LocalProtocolError`.
* :class:`~protocol.sansio.DeviceLog` may arrive at any time, idle included; ``Progress`` too while busy.
* :attr:`timeout` is the silence the current phase allows (``None`` when idle).
"""

from __future__ import annotations

import hashlib
import logging
import random
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from ..crc import crc16_xmodem
from ..errors import (
    LinkTooNoisyError,
    LocalProtocolError,
    ProtocolError,
    ProtocolTimeoutError,
    RemoteProtocolError,
    Stm32OtaError,
)
from ..sansio import ChangeBaud, DeviceLog, Event, Progress
from ..wirelog import log_frame, tracing
from .constants import (
    ACK_TIMEOUT_BASE_S,
    BAUD_REVERT_MARGIN_S,
    BAUD_SYNC_REPLY_TIMEOUT_S,
    BAUD_SYNC_RETRIES,
    BAUD_SYNC_WINDOW_S,
    BUSY_TIMEOUT_S,
    COMMAND_RETRIES,
    COMMAND_TIMEOUT_S,
    DATA_RETRIES,
    DEFAULT_BAUD,
    DEFAULT_DEFLATE_WBITS,
    FRAME_OVERHEAD,
    INFO_PIECE_MIN,
    INFO_PIECE_RETRIES,
    INFO_PIECE_START,
    INFO_RESTARTS,
    MAX_BLOCK_RETRANSMITS,
    MAX_BLOCK_SIZE,
    MAX_DEFLATE_WBITS,
    MAX_WINDOW,
    MIN_BLOCK_SIZE,
    MIN_DEFLATE_WBITS,
)
from .events import (
    BaudChanged,
    BaudChangeFailed,
    CommandComplete,
    InfoReceived,
    SlotDigest,
    SlotErased,
    SlotRead,
    TransferComplete,
    TransferStarted,
)
from .frames import CorruptFrame, Frame, FrameDecoder, FrameType, encode_frame
from .messages import (
    LOG_OFF,
    Ack,
    BeginReply,
    BeginRequest,
    DeviceInfo,
    EndRequest,
    EraseReply,
    EraseRequest,
    InfoPiece,
    InfoPieceRequest,
    LogRecord,
    Nak,
    Option,
    ProgressReport,
    ReadDigestReply,
    ReadReply,
    ReadRequest,
    Reply,
    encode_data_block,
)
from .status import Status, device_error

__all__ = ["HostConnection"]

log = logging.getLogger(__name__)

_COMMAND_NAMES = {
    FrameType.PING: "ping",
    FrameType.INFO: "info",
    FrameType.CHANGE_BAUD: "change_baud",
    FrameType.SYNC: "sync",
    FrameType.BEGIN: "begin_transfer",
    FrameType.END: "end_transfer",
    FrameType.VERIFY: "verify",
    FrameType.ACTIVATE: "activate",
    FrameType.REBOOT: "reboot",
    FrameType.CONFIRM: "confirm",
    FrameType.ROLLBACK: "rollback",
    FrameType.ABORT: "abort",
    FrameType.SET_LOG: "set_logging",
    FrameType.ERASE: "erase",
    FrameType.READ: "read",
}


def _frame_name(ftype: int) -> str:
    try:
        return FrameType(ftype).name
    except ValueError:
        return f"0x{ftype:02x}"


class _State(Enum):
    IDLE = auto()
    COMMAND = auto()  # one command frame outstanding (includes BEGIN and END of a transfer)
    DATA = auto()  # data phase: blocks and ACK/NAK
    BAUD_SYNC = auto()  # switched to the new rate, SYNC outstanding
    BAUD_REVERT_WAIT = auto()  # switched back, waiting (silent) until the device has surely reverted
    ERROR = auto()


@dataclass
class _Pending:
    ftype: FrameType
    seq: int
    frame: bytes
    retries_left: int


@dataclass
class _InfoRead:
    """An INFO being read: PING first (unless the device's version is known), then the record in pieces."""

    piece: int = INFO_PIECE_START  # bytes asked for per piece; halved after a failed try
    record: bytearray = field(default_factory=bytearray)
    total: int | None = None
    crc: int | None = None
    restarts: int = 0


@dataclass
class _BaudSwitch:
    old: int
    new: int
    fell_back: bool = False


class _Transfer:
    """Host-side state of one data phase."""

    def __init__(
        self,
        *,
        image_size: int,
        resumed_from: int,
        stream: bytes,
        block_size: int,
        window: int,
        tag: int,
        compressed: bool,
    ) -> None:
        self.image_size = image_size
        self.resumed_from = resumed_from
        self.stream = stream
        self.view = memoryview(stream)
        self.block_size = block_size
        self.window = window
        self.tag = tag
        self.compressed = compressed
        self.nblocks = -(-len(stream) // block_size)
        self.acked = 0  # blocks < acked arrived
        self.limit = window  # blocks < limit may be sent
        self.sent = 0  # blocks < sent were sent at least once
        self.written = resumed_from
        self.resends: dict[int, int] = {}
        self.retransmits = 0
        self.wire_bytes = 0
        self.timeouts = 0

    def frame(self, n: int) -> bytes:
        start = n * self.block_size
        data = bytes(self.view[start : start + self.block_size])
        return encode_frame(FrameType.DATA, n, encode_data_block(n, data))


_QueueItem = Event | Stm32OtaError | Callable[[], None]
_INFO_PIECES_VERSION = 0x0101  # a device of this protocol version or later serves INFO in pieces
_RX_TAIL = 512  # bytes of what the device sent last, kept to tell what answered (an IAP menu's text)
_NO_EARLY_RESEND = frozenset({FrameType.CHANGE_BAUD, FrameType.SYNC})  # their timing is the handshake


class HostConnection:
    """Host role.  See the module docstring for the rules."""

    def __init__(
        self, *, baud: int = DEFAULT_BAUD, info: DeviceInfo | None = None, first_seq: int | None = None
    ) -> None:
        """``baud`` is the line rate the driver opened (it scales data-phase timeouts); ``info`` a DeviceInfo
        already known (``request_info()`` sets it too).  Sequence numbers start at a random value (or
        ``first_seq``) so a restarted host does not collide with the device's cached last reply."""
        self.baud = baud
        self.info = info
        self._decoder = FrameDecoder()
        self._out: list[bytes] = []
        self._queue: deque[_QueueItem] = deque()
        self._state = _State.IDLE
        self._seq = (random.randrange(256) if first_seq is None else first_seq - 1) & 0xFF
        self._pending: _Pending | None = None
        self._busy = False
        self._transfer: _Transfer | None = None
        self._baud_switch: _BaudSwitch | None = None
        self._error: ProtocolError | None = None
        self._image = b""
        self._begin: BeginRequest | None = None
        self._slot_request: EraseRequest | ReadRequest | None = None  # the ERASE or READ outstanding
        self._info_read: _InfoRead | None = None
        # the device's protocol version: from INFO or a PING reply (None until one arrived)
        self.device_protocol: int | None = info.protocol_version if info is not None else None
        self.frames_received = 0  # good frames from the device (any type)
        self.received_tail = b""  # the last bytes received outside the data phase
        self._heard = 0  # bytes received while the outstanding command waited (tells silence from noise)
        self._heard_frames: set[int] = set()  # frame types received meanwhile (LOG, PROGRESS: alive, busy)
        self._heard_damaged = 0  # frames received meanwhile whose payload failed its CRC
        self._heard_mark = 0  # _heard at the last try
        self._tries = 0  # tries of the outstanding command (a shrunk INFO piece counts on)

    # -- Connection ------------------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        self._check_usable()
        self._decoder.feed(data)
        if self._state is not _State.DATA:
            self.received_tail = (self.received_tail + data)[-_RX_TAIL:]
            self._heard += len(data)
        while self._state is not _State.ERROR:
            item = self._decoder.next()
            if item is None:
                break
            if isinstance(item, Frame):
                if tracing():
                    log_frame("rx", _frame_name(item.type), item.seq, item.payload)
                self.frames_received += 1
                self._heard_frames.add(item.type)
                self._on_frame(item)
            elif isinstance(item, CorruptFrame):
                log.debug("corrupt frame from device (type 0x%02x, seq %d)", item.type, item.seq)
                self._heard_damaged += 1
                pending = self._pending
                if (
                    item.type == FrameType.REPLY
                    and self._state is _State.COMMAND
                    and pending is not None
                    and item.seq == pending.seq
                    and pending.ftype not in _NO_EARLY_RESEND
                ):
                    self._command_timeout()  # its reply arrived damaged: ask again now, not after the timeout

    def handle_timeout(self) -> None:
        self._check_usable()
        self._decoder.skip_stalled()
        state = self._state
        if state is _State.COMMAND:
            self._command_timeout()
        elif state is _State.DATA:
            self._data_timeout()
        elif state is _State.BAUD_SYNC:
            self._sync_timeout()
        elif state is _State.BAUD_REVERT_WAIT:
            switch = self._baud_switch
            assert switch is not None
            self._state = _State.COMMAND
            self._send_command(FrameType.SYNC, switch.old.to_bytes(4, "little"))

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        if tracing():
            trace = FrameDecoder()
            trace.feed(out)
            while (item := trace.next()) is not None:
                if isinstance(item, Frame):
                    log_frame("tx", _frame_name(item.type), item.seq, item.payload)
        return out

    def next_event(self) -> Event | None:
        if self._error is not None and not self._queue:
            raise LocalProtocolError("connection is in an error state", hint=str(self._error))
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, Event):
                return item
            if isinstance(item, Stm32OtaError):
                raise item
            item()
        return None

    @property
    def timeout(self) -> float | None:
        state = self._state
        if state is _State.COMMAND:
            assert self._pending is not None
            if self._busy:
                return BUSY_TIMEOUT_S
            if self._pending.ftype == FrameType.CHANGE_BAUD:
                # the reply may be lost after the device switched: resend only once it has surely reverted
                return BAUD_SYNC_WINDOW_S + BAUD_REVERT_MARGIN_S
            return COMMAND_TIMEOUT_S + self._line_time(len(self._pending.frame))
        if state is _State.DATA:
            if self._busy:
                return BUSY_TIMEOUT_S
            transfer = self._transfer
            assert transfer is not None
            return ACK_TIMEOUT_BASE_S + 2 * self._line_time(transfer.block_size + FRAME_OVERHEAD + 2)
        if state is _State.BAUD_SYNC:
            return BAUD_SYNC_REPLY_TIMEOUT_S
        if state is _State.BAUD_REVERT_WAIT:
            return BAUD_SYNC_WINDOW_S + BAUD_REVERT_MARGIN_S
        return None

    @property
    def finished(self) -> bool:
        return self._state is _State.ERROR

    # -- introspection ---------------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """No command outstanding: a command method may be called."""
        return self._state is _State.IDLE

    @property
    def discarded_bytes(self) -> int:
        """Bytes from the device that were not part of a good frame (noise, torn frames)."""
        return self._decoder.discarded

    # -- commands --------------------------------------------------------------------------------------------
    def ping(self) -> None:
        """PING -> ``CommandComplete("ping")``."""
        self._start(FrameType.PING)

    def request_info(self) -> None:
        """INFO -> :class:`InfoReceived` (also stored in :attr:`info`).

        The handshake survives a noisy line: a short PING first tells the device's protocol version; from 1.1
        on the record comes in pieces (``INFO`` with offset and length), each resent up to
        ``INFO_PIECE_RETRIES`` times and halved after a try whose answer was damaged on the line; a 1.0 device
        gets one INFO (docs/protocol.md, "Handshake")."""
        self._check_idle()
        self._info_read = _InfoRead()
        if self.device_protocol is None:
            self._start(FrameType.PING)
        else:
            self._state = _State.COMMAND
            self._next_info_request()

    def change_baud(self, baud: int) -> None:
        """CHANGE_BAUD -> ``ChangeBaud(baud)`` for the driver, then :class:`BaudChanged` or, after a safe
        fall-back to the current rate, ``ChangeBaud(old)`` and :class:`BaudChangeFailed`."""
        if not 300 <= baud <= 0xFFFFFFFF:
            raise LocalProtocolError(f"invalid baud rate {baud}")
        if self.info is not None and self.info.baud_rates and baud not in self.info.baud_rates:
            raise LocalProtocolError(
                f"the device does not offer {baud} baud",
                hint="rates offered: " + ", ".join(str(b) for b in self.info.baud_rates),
            )
        self._start(FrameType.CHANGE_BAUD, baud.to_bytes(4, "little"))
        self._baud_switch = _BaudSwitch(old=self.baud, new=baud)

    def begin_transfer(
        self,
        image: bytes,
        *,
        slot: int = 1,
        compress: bool = False,
        resume: bool = True,
        window: int | None = None,
        block_size: int | None = None,
    ) -> None:
        """BEGIN, then the windowed data phase and END, by themselves.

        Emits :class:`TransferStarted`, ``Progress("erase", ...)`` while the device erases,
        ``Progress("transfer", written, size)`` as the device reports bytes written, and finally
        :class:`TransferComplete`.  ``window``/``block_size`` are proposals (``None``: the device's choice,
        capped by its INFO limits)."""
        self._check_idle()
        if not 0 <= slot <= 0xFF:
            raise LocalProtocolError(f"invalid slot {slot}")
        if not image or len(image) > 0xFFFFFFFF:
            raise LocalProtocolError("the image is empty or larger than 4 GiB")
        if window is not None and not 1 <= window <= MAX_WINDOW:
            raise LocalProtocolError(f"window must be 1..{MAX_WINDOW}")
        if block_size is not None and not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
            raise LocalProtocolError(f"block size must be {MIN_BLOCK_SIZE}..{MAX_BLOCK_SIZE}")
        wbits = 0
        if compress:
            wbits = DEFAULT_DEFLATE_WBITS
            if self.info is not None:
                if Option.DEFLATE not in self.info.options:
                    raise LocalProtocolError("the device does not offer compression", hint="flash without --compress")
                if self.info.deflate_wbits:
                    wbits = self.info.deflate_wbits
            wbits = max(MIN_DEFLATE_WBITS, min(MAX_DEFLATE_WBITS, wbits))
        request = BeginRequest(
            slot=slot,
            size=len(image),
            digest=hashlib.sha256(image).digest(),
            compressed=compress,
            resume=resume,
            window=window or 0,
            block_size=block_size or 0,
            wbits=wbits,
        )
        self._image = image
        self._begin = request
        self._start(FrameType.BEGIN, request.encode())

    def verify(self, slot: int = 1) -> None:
        """VERIFY: the device checks digest, signature, key, chip tag, counter and size of ``slot``."""
        self._start(FrameType.VERIFY, bytes((slot & 0xFF,)))

    def activate(self, permanent: bool = False, *, slot: int = 1) -> None:
        """ACTIVATE ``slot``'s image for a test boot (or permanently)."""
        self._start(FrameType.ACTIVATE, bytes((slot & 0xFF, int(permanent))))

    def reboot(self) -> None:
        """REBOOT: the device replies, then resets."""
        self._start(FrameType.REBOOT)

    def confirm(self) -> None:
        """CONFIRM the running test image."""
        self._start(FrameType.CONFIRM)

    def rollback(self) -> None:
        """ROLLBACK to the previous image at the next reset."""
        self._start(FrameType.ROLLBACK)

    def erase(self, slot: int, *, force: bool = False) -> None:
        """ERASE every sector of ``slot`` -> :class:`SlotErased` (``Progress("erase", ...)`` meanwhile).  The
        device refuses the slot its running image lives in (``SLOT_IN_USE``) unless ``force``."""
        if not 0 <= slot <= 0xFF:
            raise LocalProtocolError(f"invalid slot {slot}")
        request = EraseRequest(slot=slot, force=force)
        self._start(FrameType.ERASE, request.encode())
        self._slot_request = request

    def read(self, slot: int, offset: int, length: int) -> None:
        """READ ``length`` bytes of ``slot`` from slot-relative ``offset`` -> :class:`SlotRead`.  ``length`` is
        at most the device's ``max_block`` (INFO)."""
        limit = self.info.max_block if self.info is not None else MAX_BLOCK_SIZE
        if not 1 <= length <= min(limit, MAX_BLOCK_SIZE):
            raise LocalProtocolError(f"read length must be 1..{min(limit, MAX_BLOCK_SIZE)}, not {length}")
        self._start_read(ReadRequest(slot=slot, offset=offset, length=length))

    def read_digest(self, slot: int, offset: int, length: int) -> None:
        """READ with the digest flag: the SHA-256 of ``length`` bytes of ``slot`` from ``offset`` ->
        :class:`SlotDigest` (the device may send PROGRESS while it hashes)."""
        if length < 1:
            raise LocalProtocolError(f"digest length must be at least 1, not {length}")
        self._start_read(ReadRequest(slot=slot, offset=offset, length=length, digest=True))

    def _start_read(self, request: ReadRequest) -> None:
        if not 0 <= request.slot <= 0xFF or request.offset < 0 or request.offset + request.length > 0xFFFFFFFF:
            raise LocalProtocolError(f"invalid read of slot {request.slot} at {request.offset}+{request.length}")
        self._start(FrameType.READ, request.encode())
        self._slot_request = request

    def _on_slot_reply(self, ftype: FrameType, body: bytes) -> None:
        """The OK reply of ERASE or READ, checked against what was asked."""
        request = self._slot_request
        self._slot_request = None
        assert request is not None
        if isinstance(request, EraseRequest):
            erased = EraseReply.decode(body)
            self._queue.append(SlotErased(slot=request.slot, erased=erased.erased, resetting=erased.resetting))
        elif request.digest:
            digest = ReadDigestReply.decode(body)
            if (digest.offset, digest.length) != (request.offset, request.length):
                raise RemoteProtocolError(
                    f"READ digest of {digest.offset}+{digest.length} answers {request.offset}+{request.length}"
                )
            self._queue.append(
                SlotDigest(slot=request.slot, offset=request.offset, length=request.length, digest=digest.digest)
            )
        else:
            data = ReadReply.decode(body)
            if data.offset != request.offset or len(data.data) != request.length:
                raise RemoteProtocolError(
                    f"READ of {request.length} bytes at {request.offset} answered with "
                    f"{len(data.data)} bytes at {data.offset}"
                )
            self._queue.append(SlotRead(slot=request.slot, offset=request.offset, data=data.data))

    def set_logging(self, level: int | None) -> None:
        """SET_LOG: send device logs up to ``level`` (:class:`~.messages.LogLevel`), ``None`` for none."""
        value = LOG_OFF if level is None else level
        if not 0 <= value <= 0xFF:
            raise LocalProtocolError(f"invalid log level {level}")
        self._start(FrameType.SET_LOG, bytes((value,)))

    def abort(self) -> None:
        """ABORT whatever runs (a transfer, a command) -> ``CommandComplete("abort")``."""
        self._check_usable()
        if self._state in (_State.BAUD_SYNC, _State.BAUD_REVERT_WAIT) or (
            self._pending is not None and self._pending.ftype in (FrameType.CHANGE_BAUD, FrameType.SYNC)
        ):
            raise LocalProtocolError("cannot abort during a baud switch")
        self._pending = None
        self._transfer = None
        self._info_read = None
        self._state = _State.IDLE
        self._start(FrameType.ABORT)

    # -- internals: sending ---------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if self._error is not None:
            raise LocalProtocolError("connection is in an error state", hint=str(self._error))

    def _check_idle(self) -> None:
        self._check_usable()
        if self._state is not _State.IDLE:
            raise LocalProtocolError("another command is outstanding; wait for its reply (or abort())")

    def _start(self, ftype: FrameType, payload: bytes = b"") -> None:
        self._check_idle()
        self._state = _State.COMMAND
        self._send_command(ftype, payload)

    def _send_command(self, ftype: FrameType, payload: bytes = b"", *, retries: int | None = None) -> None:
        self._seq = (self._seq + 1) & 0xFF
        frame = encode_frame(ftype, self._seq, payload)
        if retries is None:
            retries = BAUD_SYNC_RETRIES - 1 if self._state is _State.BAUD_SYNC else COMMAND_RETRIES
        self._pending = _Pending(ftype=ftype, seq=self._seq, frame=frame, retries_left=retries)
        self._tries = 1
        self._busy = False
        log.debug("-> %s (seq %d, %d B)", _frame_name(ftype), self._seq, len(payload))
        self._heard = 0
        self._heard_frames = set()
        self._heard_damaged = 0
        self._heard_mark = 0
        self._out.append(frame)

    def _next_info_request(self, retries: int = INFO_PIECE_RETRIES) -> None:
        """Ask for the next piece of the INFO record (or, from a 1.0 device, the whole record)."""
        read = self._info_read
        assert read is not None
        if self.device_protocol is None or self.device_protocol < _INFO_PIECES_VERSION:
            self._send_command(FrameType.INFO, retries=retries)
            return
        request = InfoPieceRequest(offset=len(read.record), length=read.piece)
        self._send_command(FrameType.INFO, request.encode(), retries=retries)

    def _line_time(self, nbytes: int) -> float:
        return nbytes * 10 / self.baud

    def _fail(self, error: ProtocolError) -> None:
        """Enter the sticky error state; ``error`` is raised from next_event."""
        self._error = error
        self._state = _State.ERROR
        self._pending = None
        self._transfer = None
        self._queue.append(error)

    def _device_failure(self, command: FrameType, status: int) -> None:
        """A device "no": raise DeviceError from next_event, stay usable."""
        if command in (FrameType.PING, FrameType.INFO) and self._info_read is not None:
            command = FrameType.INFO  # the handshake of request_info() answers for INFO
        self._info_read = None
        self._pending = None
        self._transfer = None
        self._baud_switch = None
        self._state = _State.IDLE
        self._queue.append(device_error(status, _COMMAND_NAMES.get(command)))

    # -- internals: receiving --------------------------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:
        ftype = frame.type
        try:
            if ftype == FrameType.LOG:
                rec = LogRecord.decode(frame.payload)
                self._queue.append(DeviceLog(level=rec.level, text=rec.text, timestamp_ms=rec.timestamp_ms))
            elif ftype == FrameType.PROGRESS:
                if self._state in (_State.COMMAND, _State.DATA):
                    report = ProgressReport.decode(frame.payload)
                    self._busy = True
                    if self._transfer is not None:
                        self._transfer.timeouts = 0
                    self._queue.append(Progress(phase=report.phase, done=report.done, total=report.total))
            elif ftype == FrameType.REPLY:
                self._on_reply(frame)
            elif ftype in (FrameType.ACK, FrameType.NAK):
                transfer = self._transfer
                if self._state is _State.DATA and transfer is not None and frame.seq == transfer.tag:
                    if ftype == FrameType.ACK:
                        self._on_ack(transfer, Ack.decode(frame.payload))
                    else:
                        self._on_nak(transfer, Nak.decode(frame.payload))
            else:
                log.debug("ignoring frame type 0x%02x from device", ftype)
        except RemoteProtocolError as err:
            self._fail(err)

    def _on_reply(self, frame: Frame) -> None:
        reply = Reply.decode(frame.payload)
        pending = self._pending
        transfer = self._transfer
        if (
            transfer is not None
            and frame.seq == transfer.tag
            and reply.command in (FrameType.DATA, FrameType.BEGIN)
            and reply.status != Status.OK
        ):
            # the device ended the data phase with a failure (flash error, window overflow, ...)
            self._device_failure(FrameType.BEGIN, reply.status)
            return
        if pending is None or frame.seq != pending.seq or reply.command != pending.ftype:
            log.debug("ignoring stale reply (seq %d, command 0x%02x)", frame.seq, reply.command)
            return
        if self._state is _State.BAUD_SYNC or (self._baud_switch is not None and pending.ftype == FrameType.SYNC):
            self._on_sync_reply(reply)
            return
        if reply.status != Status.OK:
            self._device_failure(pending.ftype, reply.status)
            return
        self._pending = None
        self._busy = False
        self._state = _State.IDLE
        ftype = pending.ftype
        log.debug("<- %s OK (seq %d, %d B)", _frame_name(ftype), frame.seq, len(reply.body))
        if ftype == FrameType.PING:
            body = reply.body
            self.device_protocol = int.from_bytes(body[:2], "little") if len(body) >= 2 else 0x0100
            if self._info_read is not None:  # the handshake's first step: now the record
                self._state = _State.COMMAND
                self._next_info_request()
                return
        if ftype == FrameType.INFO:
            self._on_info_reply(reply, pending)
            return
        if ftype == FrameType.PING:
            self._queue.append(CommandComplete(command="ping"))
        elif ftype == FrameType.CHANGE_BAUD:
            switch = self._baud_switch
            assert switch is not None
            self._state = _State.BAUD_SYNC
            self._queue.append(ChangeBaud(baud=switch.new))
            self._queue.append(self._after_switch)
        elif ftype == FrameType.BEGIN:
            self._start_data(BeginReply.decode(reply.body))
        elif ftype == FrameType.END:
            self._finish_data()
        elif ftype in (FrameType.ERASE, FrameType.READ):
            self._on_slot_reply(ftype, reply.body)
        else:
            self._queue.append(CommandComplete(command=_COMMAND_NAMES[ftype]))

    def _on_info_reply(self, reply: Reply, pending: _Pending) -> None:
        read = self._info_read
        if read is None or len(pending.frame) == FRAME_OVERHEAD:  # asked for the whole record (a 1.0 device)
            self._info_done(reply.body)
            return
        piece = InfoPiece.decode(reply.body)
        if read.total is not None and (piece.total, piece.crc) != (read.total, read.crc):
            read.restarts += 1
            if read.restarts > INFO_RESTARTS:
                raise RemoteProtocolError("the INFO record kept changing while it was read")
            log.info("the INFO record changed while it was read: starting over")
            read.record.clear()
            read.total = None
        else:
            if piece.offset != len(read.record) or piece.offset + len(piece.data) > piece.total:
                raise RemoteProtocolError(
                    f"INFO piece at offset {piece.offset} (+{len(piece.data)} of {piece.total}) does not follow "
                    f"the {len(read.record)} bytes read"
                )
            read.total, read.crc = piece.total, piece.crc
            read.record += piece.data
            if len(read.record) >= piece.total:
                record = bytes(read.record)
                if crc16_xmodem(record) != piece.crc:
                    raise RemoteProtocolError("the INFO record read in pieces fails its CRC")
                self._info_done(record)
                return
            if not piece.data:
                raise RemoteProtocolError(f"the device sent an empty INFO piece at offset {piece.offset}")
        self._state = _State.COMMAND
        self._next_info_request()

    def _info_done(self, record: bytes) -> None:
        self._info_read = None
        try:
            info = DeviceInfo.decode(record)
        except ValueError as err:  # a field the record's own checks refuse
            raise RemoteProtocolError(f"INFO: {err}") from None
        self.info = info
        self.device_protocol = info.protocol_version
        self._queue.append(InfoReceived(info=info))

    def _after_switch(self) -> None:
        """Runs once the driver has taken ChangeBaud (and switched the port): send SYNC at the new rate."""
        switch = self._baud_switch
        if switch is None or self._state is not _State.BAUD_SYNC:
            return
        self.baud = switch.old if switch.fell_back else switch.new
        self._decoder.clear()
        if not switch.fell_back:
            self._send_command(FrameType.SYNC, switch.new.to_bytes(4, "little"))

    def _on_sync_reply(self, reply: Reply) -> None:
        switch = self._baud_switch
        assert switch is not None
        self._pending = None
        self._busy = False
        self._state = _State.IDLE
        self._baud_switch = None
        if reply.status != Status.OK:
            self._queue.append(device_error(reply.status, "sync"))
        elif switch.fell_back:
            self._queue.append(BaudChangeFailed(requested=switch.new, baud=switch.old))
        else:
            self._queue.append(BaudChanged(baud=switch.new))

    # -- timeouts --------------------------------------------------------------------------------------------
    def _command_timeout(self) -> None:
        pending = self._pending
        assert pending is not None
        if pending.retries_left <= 0:
            name = _COMMAND_NAMES.get(pending.ftype, "command")
            if self._info_read is not None:
                name = "info"
            if self._baud_switch is not None and self._baud_switch.fell_back:
                self._fail(
                    ProtocolTimeoutError(
                        f"device lost during baud switch: no answer at {self._baud_switch.new} "
                        f"or at {self._baud_switch.old} baud",
                        hint="reset the device and retry without --fast-baud",
                    )
                )
                return
            self._fail(self._silence_error(name, pending))
            return
        pending.retries_left -= 1
        self._busy = False
        log.debug("no reply to %s (seq %d): sent again", _frame_name(pending.ftype), pending.seq)
        tries = self._tries + 1
        read = self._info_read
        answered, self._heard_mark = self._heard > self._heard_mark, self._heard
        if answered and read is not None and pending.ftype == FrameType.INFO and len(pending.frame) > FRAME_OVERHEAD:
            # The device answered (bytes came back) but the piece did not survive the line: a shorter piece has
            # a better chance.  It is a new command (new seq); safe, as the device is done with the old one.
            # After silence the request itself was lost: the same frame again, its size is not the problem.
            smaller = max(INFO_PIECE_MIN, read.piece // 2)
            if smaller < read.piece:
                read.piece = smaller
                self._next_info_request(retries=pending.retries_left)
                self._tries = tries
                return
        self._tries = tries
        self._out.append(pending.frame)

    def _silence_error(self, name: str, pending: _Pending) -> ProtocolTimeoutError:
        """Why the device did not answer, as far as the bytes that did arrive tell."""
        tries = f"no reply to {name}"
        if self._info_read is not None and pending.ftype == FrameType.INFO and len(self._info_read.record):
            tries += f" (at byte {len(self._info_read.record)} of the record)"
        if FrameType.PROGRESS in self._heard_frames:
            return ProtocolTimeoutError(
                f"{tries}: the device reports it is busy (PROGRESS) but did not answer",
                hint="it may be swapping slots or erasing: wait until it is done and run the command again",
            )
        if self._heard_damaged:
            return ProtocolTimeoutError(
                f"{tries}: {self._heard_damaged} answers arrived damaged: the line is too noisy",
                hint="lower the baud rate or check the cable",
            )
        if self._heard_frames:
            return ProtocolTimeoutError(
                f"{tries}: the device sends frames (logs) but no reply, even after resends",
                hint="the line corrupts what we send: lower the baud rate or check the cable",
            )
        if self._heard:
            return ProtocolTimeoutError(
                f"{tries}: only {self._heard} bytes that are no stm32ota frame came back",
                hint="check the baud rate (-b); the port may not be an stm32ota bootloader",
            )
        return ProtocolTimeoutError(
            f"{tries} after {self._tries} tries: nothing came back",
            hint="check the port, the cable, the baud rate, and that the device is in its bootloader",
        )

    def _sync_timeout(self) -> None:
        pending = self._pending
        switch = self._baud_switch
        assert switch is not None
        if pending is not None and pending.retries_left > 0:
            pending.retries_left -= 1
            self._out.append(pending.frame)
            return
        log.info("no SYNC reply at %d baud; falling back to %d", switch.new, switch.old)
        switch.fell_back = True
        self._pending = None
        self.baud = switch.old
        self._decoder.clear()
        self._state = _State.BAUD_REVERT_WAIT
        self._queue.append(ChangeBaud(baud=switch.old))

    def _data_timeout(self) -> None:
        transfer = self._transfer
        assert transfer is not None
        transfer.timeouts += 1
        self._busy = False
        if transfer.timeouts > DATA_RETRIES:
            self._fail(
                ProtocolTimeoutError(
                    f"the device stopped acknowledging at block {transfer.acked} of {transfer.nblocks}",
                    hint="check the cable; `stm32ota flash` again resumes where it stopped",
                )
            )
            return
        if transfer.sent > transfer.acked:
            for n in range(transfer.acked, transfer.sent):
                self._resend(transfer, n)
        elif transfer.acked > 0:
            # nothing in flight and no credit: a duplicate of the last block makes the device re-ACK
            self._resend(transfer, transfer.acked - 1, count=False)
        self._send_blocks(transfer)

    # -- data phase ------------------------------------------------------------------------------------------
    def _start_data(self, reply: BeginReply) -> None:
        request = self._begin
        image = self._image
        assert request is not None
        if reply.resume_offset > request.size:
            self._fail(RemoteProtocolError(f"device resumes at {reply.resume_offset}, past the image end"))
            return
        if not 1 <= reply.window <= MAX_WINDOW or not MIN_BLOCK_SIZE <= reply.block_size <= MAX_BLOCK_SIZE:
            self._fail(RemoteProtocolError(f"device chose window {reply.window}, block {reply.block_size}"))
            return
        rest = image[reply.resume_offset :]
        if request.compressed:
            packer = zlib.compressobj(9, zlib.DEFLATED, -request.wbits)
            stream = packer.compress(rest) + packer.flush()
        else:
            stream = rest
        self._image = b""
        transfer = _Transfer(
            image_size=request.size,
            resumed_from=reply.resume_offset,
            stream=stream,
            block_size=reply.block_size,
            window=reply.window,
            tag=self._seq,
            compressed=request.compressed,
        )
        self._transfer = transfer
        self._state = _State.DATA
        self._queue.append(
            TransferStarted(
                size=request.size,
                resumed_from=reply.resume_offset,
                window=reply.window,
                block_size=reply.block_size,
                compressed=request.compressed,
            )
        )
        self._queue.append(Progress(phase="transfer", done=reply.resume_offset, total=request.size))
        self._send_blocks(transfer)

    def _send_blocks(self, transfer: _Transfer) -> None:
        end = min(transfer.limit, transfer.nblocks)
        while transfer.sent < end:
            frame = transfer.frame(transfer.sent)
            transfer.wire_bytes += len(frame)
            self._out.append(frame)
            transfer.sent += 1
        if transfer.acked >= transfer.nblocks and self._state is _State.DATA:
            self._state = _State.COMMAND
            self._send_command(
                FrameType.END, EndRequest(blocks=transfer.nblocks, stream_bytes=len(transfer.stream)).encode()
            )

    def _resend(self, transfer: _Transfer, n: int, *, count: bool = True) -> None:
        if count:
            tries = transfer.resends.get(n, 0) + 1
            if tries > MAX_BLOCK_RETRANSMITS:
                self._fail(
                    LinkTooNoisyError(
                        f"block {n} failed {tries} times: the link is too noisy",
                        block_size=transfer.block_size,
                        hint="lower the baud rate or check the cable",
                    )
                )
                return
            transfer.resends[n] = tries
            transfer.retransmits += 1
        frame = transfer.frame(n)
        transfer.wire_bytes += len(frame)
        self._out.append(frame)

    def _on_ack(self, transfer: _Transfer, ack: Ack) -> None:
        if ack.next > transfer.sent or ack.limit < ack.next:
            raise RemoteProtocolError(f"device acknowledged block {ack.next} but only {transfer.sent} were sent")
        self._busy = False
        progressed = ack.next > transfer.acked or ack.limit > transfer.limit or ack.written > transfer.written
        if progressed:
            transfer.timeouts = 0
        for n in range(transfer.acked, ack.next):
            transfer.resends.pop(n, None)
        transfer.acked = max(transfer.acked, ack.next)
        transfer.limit = max(transfer.limit, ack.limit)
        if ack.written > transfer.written:
            transfer.written = min(ack.written, transfer.image_size)
            self._queue.append(Progress(phase="transfer", done=transfer.written, total=transfer.image_size))
        self._send_blocks(transfer)

    def _on_nak(self, transfer: _Transfer, nak: Nak) -> None:
        self._busy = False
        for n in nak.blocks[:MAX_WINDOW]:
            if transfer.acked <= n < transfer.sent and self._state is _State.DATA:
                self._resend(transfer, n)

    def _finish_data(self) -> None:
        # the END reply arrived: self._transfer still holds the phase's numbers
        transfer = self._transfer
        assert transfer is not None
        self._transfer = None
        self._queue.append(Progress(phase="transfer", done=transfer.image_size, total=transfer.image_size))
        self._queue.append(
            TransferComplete(
                size=transfer.image_size,
                resumed_from=transfer.resumed_from,
                wire_bytes=transfer.wire_bytes,
                payload_bytes=len(transfer.stream),
                retransmits=transfer.retransmits,
            )
        )
