"""The device role of the stm32ota update protocol, as a sans-I/O core.

The core is the wire; its *owner* (the emulated bootloader, or C firmware written from ``docs/protocol.md``)
is the business logic.  The core parses and validates frames, answers duplicates from its reply cache,
numbers and windows data blocks, asks for lost or damaged blocks again (NAK), inflates compressed data, and
runs the baud-switch handshake.  Everything that needs flash or policy becomes a request event the owner
answers with one method call:

==========================================  ==================================================================
event (``next_event()``)                     owner answers with
==========================================  ==================================================================
:class:`InfoRequested`                      ``reply_info(info)``
:class:`TransferRequested`                  ``accept_transfer(resume_offset)`` or ``reject(status)``
:class:`BlockReceived` (in order, inflated) ``block_written(end_offset)`` - gives window credit back; delay it
                                            while erasing/programming (``report_progress`` meanwhile)
:class:`TransferEnded`                      ``complete()`` once flushed, or ``reject(status)``
:class:`VerifyRequested`,                   ``complete()`` or ``reject(status)``
:class:`ActivateRequested`,
:class:`ConfirmRequested`,
:class:`RollbackRequested`,
:class:`RebootRequested`
:class:`BaudChangeRequested`                ``complete()`` (the core then switches: ``ChangeBaud``) or
                                            ``reject(status)``
:class:`EraseRequested`                     ``reply_erase(erased, resetting=...)`` or ``reject(status)``
                                            (``SLOT_IN_USE``: the running image's slot, unless ``force``)
:class:`ReadRequested`                      ``reply_read(data)`` (``reply_digest(sha256)`` when ``digest``)
                                            or ``reject(status)`` (``BAD_SLOT``, ``BAD_ARGUMENT``)
:class:`AbortRequested`                     nothing (already answered); drop the pending work
:class:`LoggingChanged`                     nothing (``log()`` already filters)
``ChangeBaud`` (:mod:`protocol.sansio`)     the driver switches the port after draining output
==========================================  ==================================================================

At any time the owner may call ``report_progress(phase, done, total)`` (a PROGRESS frame: "busy, still
alive"; send one at least every ``BUSY_REPORT_INTERVAL_S`` while busy), ``log(level, text, timestamp_ms)``,
and, during the data phase, ``fail_transfer(status)`` to end it with a failure (a flash error;
``reject(status)`` does the same when no request is pending).  PING, SYNC,
SET_LOG and ABORT are answered by the core itself.

The core never raises on input: any byte stream yields events or nothing.  Owner API misuse (answering
a request that is not pending) raises :class:`~protocol.errors.LocalProtocolError`.
"""

from __future__ import annotations

import logging
import zlib
from collections import deque
from dataclasses import dataclass
from enum import Enum, auto

from ..crc import crc16_xmodem
from ..errors import LocalProtocolError, RemoteProtocolError
from ..sansio import ChangeBaud, Event
from .constants import (
    BAUD_SYNC_WINDOW_S,
    DEFAULT_BAUD,
    DEFAULT_BLOCK_SIZE,
    DEFAULT_WINDOW,
    MAX_BLOCK_SIZE,
    MAX_DEFLATE_WBITS,
    MAX_PAYLOAD,
    MAX_WINDOW,
    MIN_BLOCK_SIZE,
    PROTOCOL_VERSION,
)
from .events import (
    AbortRequested,
    ActivateRequested,
    BaudChanged,
    BaudChangeRequested,
    BlockReceived,
    ConfirmRequested,
    EraseRequested,
    InfoRequested,
    LoggingChanged,
    ReadRequested,
    RebootRequested,
    RollbackRequested,
    TransferEnded,
    TransferRequested,
    VerifyRequested,
)
from .frames import COMMAND_TYPES, CorruptFrame, Frame, FrameDecoder, FrameType, encode_frame
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
    LogLevel,
    LogRecord,
    Nak,
    Option,
    ProgressReport,
    ReadDigestReply,
    ReadReply,
    ReadRequest,
    Reply,
    decode_data_block,
)
from .status import Status

__all__ = ["DeviceConnection"]

log = logging.getLogger(__name__)

_INFLATE_CHUNK = 16384  # most bytes one inflate step may produce (bounds memory per BlockReceived)
_NO_CACHE = frozenset({FrameType.PING, FrameType.INFO, FrameType.SYNC, FrameType.SET_LOG})
_LOG_TEXT_MAX = MAX_PAYLOAD - 5
_INFO_PIECE_MAX = MAX_PAYLOAD - 9  # REPLY header (3) and piece header (6)
_PING_BODY = PROTOCOL_VERSION.to_bytes(2, "little")


class _State(Enum):
    IDLE = auto()
    DATA = auto()
    BAUD_SYNC = auto()


@dataclass
class _Request:
    ftype: FrameType
    seq: int
    payload: bytes
    begin: BeginRequest | None = None
    baud: int = 0
    read: ReadRequest | None = None
    piece: InfoPieceRequest | None = None


class _Transfer:
    """Device-side state of one data phase."""

    def __init__(self, request: BeginRequest, tag: int, resume_offset: int, window: int, block: int) -> None:
        self.request = request
        self.tag = tag
        self.window = window
        self.block_size = block
        self.next = 0  # blocks < next were delivered in order
        self.buffer: dict[int, bytes] = {}  # out-of-order blocks within the window
        self.naked: set[int] = set()
        self.out_pos = resume_offset  # uncompressed offset of the next byte delivered
        self.written = resume_offset  # the owner's contiguous-written offset
        self.released = 0  # blocks < released gave their credit back
        self.unreleased: deque[tuple[int, int]] = deque()  # (block, uncompressed end offset)
        self.stream_bytes = 0
        self.inflater = zlib.decompressobj(-MAX_DEFLATE_WBITS) if request.compressed else None
        self.failed = False

    @property
    def limit(self) -> int:
        return self.released + self.window


class DeviceConnection:
    """Device role.  See the module docstring for the owner's side of the contract."""

    def __init__(
        self,
        *,
        max_block: int = DEFAULT_BLOCK_SIZE * 4,
        max_window: int = DEFAULT_WINDOW,
        options: Option = Option.DEFLATE | Option.RESUME | Option.BAUD_SWITCH,
        deflate_wbits: int = MAX_DEFLATE_WBITS,
        baud_rates: tuple[int, ...] = (),
        baud: int = DEFAULT_BAUD,
        log_level: int | None = LogLevel.INFO,
    ) -> None:
        """Limits the core enforces (they should match what ``reply_info`` reports): largest block, largest
        window, offered options, largest deflate window, baud rates (empty: any), the current rate, and the
        initial log subscription."""
        if not MIN_BLOCK_SIZE <= max_block <= MAX_BLOCK_SIZE:
            raise ValueError(f"max_block must be {MIN_BLOCK_SIZE}..{MAX_BLOCK_SIZE}")
        if not 1 <= max_window <= MAX_WINDOW:
            raise ValueError(f"max_window must be 1..{MAX_WINDOW}")
        self.max_block = max_block
        self.max_window = max_window
        self.options = options
        self.deflate_wbits = deflate_wbits
        self.baud_rates = baud_rates
        self.baud = baud
        self.log_level = log_level
        self._decoder = FrameDecoder()
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._state = _State.IDLE
        self._request: _Request | None = None
        self._transfer: _Transfer | None = None
        self._last_reply: tuple[int, int, bytes, bytes] | None = None  # seq, command, its payload, reply
        self._old_baud = baud
        self._inbound: tuple[int, int, bytes] | None = None  # the command frame being dispatched

    @classmethod
    def from_info(
        cls, info: DeviceInfo, *, baud: int = DEFAULT_BAUD, log_level: int | None = LogLevel.INFO
    ) -> DeviceConnection:
        """A core enforcing exactly the limits ``info`` reports (block, window, options, deflate window, rates)."""
        return cls(
            max_block=info.max_block,
            max_window=info.max_window,
            options=info.options,
            deflate_wbits=info.deflate_wbits,
            baud_rates=info.baud_rates,
            baud=baud,
            log_level=log_level,
        )

    # -- Connection ------------------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        self._decoder.feed(data)
        while (item := self._decoder.next()) is not None:
            if isinstance(item, Frame):
                self._on_frame(item)
            else:
                self._on_corrupt(item)

    def handle_timeout(self) -> None:
        self._decoder.skip_stalled()
        if self._state is _State.BAUD_SYNC:
            log.info("no SYNC at %d baud; reverting to %d", self.baud, self._old_baud)
            self.baud = self._old_baud
            self._state = _State.IDLE
            self._last_reply = None
            self._decoder.clear()
            self._events.append(ChangeBaud(baud=self.baud))

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    @property
    def timeout(self) -> float | None:
        return BAUD_SYNC_WINDOW_S if self._state is _State.BAUD_SYNC else None

    @property
    def finished(self) -> bool:
        return False  # a bootloader listens until it is reset

    # -- introspection ---------------------------------------------------------------------------------------
    @property
    def in_transfer(self) -> bool:
        return self._state is _State.DATA

    @property
    def pending(self) -> FrameType | None:
        """The command whose answer the owner owes, if any."""
        return self._request.ftype if self._request is not None else None

    # -- owner answers ---------------------------------------------------------------------------------------
    def reply_info(self, info: DeviceInfo) -> None:
        """Answer INFO with ``info``: the whole record, or the piece the host asked for (protocol 1.1)."""
        request = self._take(FrameType.INFO)
        if request is None:
            return
        record = info.encode()
        piece = request.piece
        if piece is None:
            self._reply(request.ftype, request.seq, Status.OK, record, request.payload)
            return
        if piece.offset > len(record):
            self._reply(request.ftype, request.seq, Status.BAD_ARGUMENT, payload=request.payload)
            return
        data = record[piece.offset : piece.offset + min(piece.length, _INFO_PIECE_MAX)]
        body = InfoPiece(total=len(record), crc=crc16_xmodem(record), offset=piece.offset, data=data).encode()
        self._reply(request.ftype, request.seq, Status.OK, body, request.payload)

    def accept_transfer(self, resume_offset: int = 0) -> None:
        """Accept BEGIN; the data phase starts at uncompressed ``resume_offset`` (0 unless resuming)."""
        request = self._peek(FrameType.BEGIN)
        if request is None:
            return
        begin = request.begin
        assert begin is not None
        if not 0 <= resume_offset <= begin.size or (resume_offset and not begin.resume):
            raise LocalProtocolError(f"resume offset {resume_offset} is not allowed for this BEGIN")
        self._request = None
        window = min(begin.window or self.max_window, self.max_window)
        block = min(begin.block_size or DEFAULT_BLOCK_SIZE, self.max_block)
        self._transfer = _Transfer(begin, request.seq, resume_offset, window, block)
        self._state = _State.DATA
        body = BeginReply(resume_offset=resume_offset, window=window, block_size=block).encode()
        self._reply(FrameType.BEGIN, request.seq, Status.OK, body, request.payload)

    def block_written(self, offset: int) -> None:
        """Everything of the image below absolute ``offset`` is in flash: release window credit."""
        transfer = self._transfer
        if transfer is None or self._state is not _State.DATA:
            return  # late answer after an abort: ignored
        if offset <= transfer.written:
            return
        transfer.written = min(offset, transfer.out_pos)
        if self._release(transfer):
            self._send_ack(transfer)

    def complete(self) -> None:
        """Answer the pending VERIFY, ACTIVATE, CONFIRM, ROLLBACK, REBOOT, END or CHANGE_BAUD with OK."""
        request = self._take(None)
        if request is None:
            return
        if request.ftype in (FrameType.INFO, FrameType.BEGIN, FrameType.ERASE, FrameType.READ):
            self._request = request
            raise LocalProtocolError(
                "answer INFO with reply_info(), BEGIN with accept_transfer(), ERASE with reply_erase() and "
                "READ with reply_read() or reply_digest()"
            )
        self._reply(request.ftype, request.seq, Status.OK, payload=request.payload)
        if request.ftype == FrameType.END:
            self._transfer = None
            self._state = _State.IDLE
        elif request.ftype == FrameType.CHANGE_BAUD:
            self._old_baud = self.baud
            self.baud = request.baud
            self._state = _State.BAUD_SYNC
            self._decoder.clear()
            self._events.append(ChangeBaud(baud=request.baud))

    def reply_erase(self, erased: int, *, resetting: bool = False) -> None:
        """Answer ERASE with OK: ``erased`` bytes of the slot are blank; ``resetting`` when the device resets as
        soon as the reply has left (it erased the image it was running)."""
        request = self._take(FrameType.ERASE)
        if request is not None:
            body = EraseReply(erased=erased & 0xFFFFFFFF, resetting=resetting).encode()
            self._reply(request.ftype, request.seq, Status.OK, body, request.payload)

    def reply_read(self, data: bytes) -> None:
        """Answer READ with the requested bytes (exactly the requested length)."""
        request = self._peek(FrameType.READ)
        if request is None:
            return
        read = request.read
        assert read is not None
        if read.digest or len(data) != read.length:
            raise LocalProtocolError(f"READ wants {read.length} bytes{' (a digest)' if read.digest else ''}")
        self._request = None
        body = ReadReply(offset=read.offset, data=bytes(data)).encode()
        self._reply(request.ftype, request.seq, Status.OK, body, request.payload)

    def reply_digest(self, digest: bytes) -> None:
        """Answer a READ with the digest flag: the SHA-256 of the requested range."""
        request = self._peek(FrameType.READ)
        if request is None:
            return
        read = request.read
        assert read is not None
        if not read.digest:
            raise LocalProtocolError("this READ wants the bytes: answer with reply_read()")
        self._request = None
        body = ReadDigestReply(offset=read.offset, length=read.length, digest=digest).encode()
        self._reply(request.ftype, request.seq, Status.OK, body, request.payload)

    def reject(self, status: int) -> None:
        """Answer the pending request with failure ``status``; with none pending during the data phase, end
        the data phase with ``status`` (a flash error while writing)."""
        if status == Status.OK or not 0 < status <= 0xFFFF:
            raise LocalProtocolError(f"reject() needs a failure status, not {status}")
        request = self._request
        if request is not None:
            self._request = None
            self._reply(request.ftype, request.seq, status, payload=request.payload)
            if request.ftype == FrameType.END:
                self._transfer = None
                self._state = _State.IDLE
            return
        transfer = self._transfer
        if transfer is not None and self._state is _State.DATA:
            self._end_transfer(transfer, status)
            return
        raise LocalProtocolError("nothing to reject: no request pending and no transfer running")

    def fail_transfer(self, status: int) -> None:
        """End the running data phase with failure ``status`` (a flash error while writing a block), whatever
        request may be pending.  The host raises ``DeviceError(status)``; the owner gets ``AbortRequested``."""
        if status == Status.OK or not 0 < status <= 0xFFFF:
            raise LocalProtocolError(f"fail_transfer() needs a failure status, not {status}")
        transfer = self._transfer
        if transfer is None or self._state is not _State.DATA:
            raise LocalProtocolError("no transfer is running")
        self._end_transfer(transfer, status)

    def report_progress(self, phase: str, done: int, total: int) -> None:
        """Send a PROGRESS frame ("busy, still alive").  ``phase``: erase, program, verify, copy, busy."""
        if self._state is _State.BAUD_SYNC:
            return
        seq = self._request.seq if self._request is not None else 0
        if self._transfer is not None and self._request is None:
            seq = self._transfer.tag
        report = ProgressReport(phase=phase, done=done & 0xFFFFFFFF, total=total & 0xFFFFFFFF)
        self._out.append(encode_frame(FrameType.PROGRESS, seq, report.encode()))

    def log(self, level: int, text: str, timestamp_ms: int = 0) -> None:
        """Send a LOG frame if the host subscribed to ``level`` (:class:`LogLevel`)."""
        if self._state is _State.BAUD_SYNC or self.log_level is None or level > self.log_level:
            return
        data = text.encode()[:_LOG_TEXT_MAX].decode("utf-8", "ignore")
        record = LogRecord(level=level, timestamp_ms=timestamp_ms, text=data)
        self._out.append(encode_frame(FrameType.LOG, 0, record.encode()))

    # -- internals -------------------------------------------------------------------------------------------
    def _peek(self, ftype: FrameType) -> _Request | None:
        request = self._request
        if request is None:
            return None  # cancelled by ABORT (or a new BEGIN): late answers are dropped
        if request.ftype != ftype:
            raise LocalProtocolError(f"the pending request is {request.ftype.name}, not {ftype.name}")
        return request

    def _take(self, ftype: FrameType | None) -> _Request | None:
        request = self._request if ftype is None else self._peek(ftype)
        self._request = None
        return request

    def _reply(self, command: int, seq: int, status: int, body: bytes = b"", payload: bytes | None = None) -> None:
        """Queue a REPLY; cache it against the command's ``payload`` (or the frame being handled)."""
        frame = encode_frame(FrameType.REPLY, seq, Reply(command=command, status=status, body=body).encode())
        if payload is None and self._inbound is not None and self._inbound[:2] == (seq, command):
            payload = self._inbound[2]
        if command not in _NO_CACHE and payload is not None:
            self._last_reply = (seq, command, payload, frame)
        self._out.append(frame)

    def _on_frame(self, frame: Frame) -> None:
        if self._state is _State.BAUD_SYNC:
            # any good frame at the new rate proves the link: settle
            self._state = _State.IDLE
            self._events.append(BaudChanged(baud=self.baud))
        ftype = frame.type
        last = self._last_reply
        if last is not None and (last[0], last[1], last[2]) == (frame.seq, ftype, frame.payload):
            self._out.append(last[3])  # the reply was lost: send it again, do not act twice
            return
        # the cache answers only an immediate, identical repeat: any other frame retires it, so a restarted
        # host whose sequence numbers happen to collide is never answered from the past
        self._last_reply = None
        if ftype == FrameType.DATA:
            self._on_data(frame)
            return
        if ftype not in COMMAND_TYPES:
            if ftype < FrameType.REPLY:
                self._reply(ftype, frame.seq, Status.UNSUPPORTED)
            return  # device-to-host frame types (an echo on the line): ignore
        cmd = FrameType(ftype)
        request = self._request
        if request is not None and request.seq == frame.seq and request.ftype == cmd:
            return  # still working on it
        self._inbound = (frame.seq, cmd, frame.payload)
        try:
            self._dispatch(cmd, frame.seq, frame.payload)
        except RemoteProtocolError:
            self._reply(cmd, frame.seq, Status.BAD_FRAME)
        finally:
            self._inbound = None

    def _busy(self, cmd: FrameType, seq: int) -> bool:
        request = self._request
        if request is None:
            return False
        inbound = self._inbound
        same_payload = inbound is None or inbound[2] == request.payload
        if request.ftype == cmd and request.seq == seq and same_payload:
            # The host resent the command we are still working on (its reply timer ran out while we were
            # busy, e.g. booting or swapping): the answer to the first copy answers both.
            return True
        self._reply(cmd, seq, Status.BUSY)
        return True

    def _dispatch(self, cmd: FrameType, seq: int, payload: bytes) -> None:
        if cmd == FrameType.PING:
            self._reply(cmd, seq, Status.OK, _PING_BODY)  # the version tells the host INFO comes in pieces
        elif cmd == FrameType.SYNC:
            self._reply(cmd, seq, Status.OK)
        elif cmd == FrameType.SET_LOG:
            if not payload:
                raise RemoteProtocolError("SET_LOG without a level")
            self.log_level = None if payload[0] == LOG_OFF else payload[0]
            self._events.append(LoggingChanged(level=self.log_level))
            self._reply(cmd, seq, Status.OK)
        elif cmd == FrameType.ABORT:
            had_work = self._request is not None or self._transfer is not None
            self._request = None
            self._transfer = None
            self._state = _State.IDLE
            if had_work:
                self._events.append(AbortRequested())
            self._reply(cmd, seq, Status.OK)
        elif cmd == FrameType.INFO:
            # an empty payload asks for the whole record (1.0); offset and length for a piece (1.1)
            piece = InfoPieceRequest.decode(payload) if payload else None
            if not self._busy(cmd, seq):
                self._request = _Request(cmd, seq, payload, piece=piece)
                self._events.append(InfoRequested())
        elif cmd == FrameType.BEGIN:
            self._on_begin(seq, payload, BeginRequest.decode(payload))
        elif cmd == FrameType.END:
            self._on_end(seq, payload, EndRequest.decode(payload))
        elif cmd == FrameType.CHANGE_BAUD:
            self._on_change_baud(seq, payload)
        elif cmd in (FrameType.ERASE, FrameType.READ):
            self._on_slot_command(cmd, seq, payload)
        else:
            self._on_simple(cmd, seq, payload)

    def _on_simple(self, cmd: FrameType, seq: int, payload: bytes) -> None:
        if self._state is _State.DATA:
            self._reply(cmd, seq, Status.NOT_ALLOWED)
            return
        if self._busy(cmd, seq):
            return
        event: Event
        if cmd == FrameType.VERIFY:
            if not payload:
                raise RemoteProtocolError("VERIFY without a slot")
            event = VerifyRequested(slot=payload[0])
        elif cmd == FrameType.ACTIVATE:
            if len(payload) < 2:
                raise RemoteProtocolError("ACTIVATE without slot and mode")
            event = ActivateRequested(slot=payload[0], permanent=bool(payload[1]))
        elif cmd == FrameType.CONFIRM:
            event = ConfirmRequested()
        elif cmd == FrameType.ROLLBACK:
            event = RollbackRequested()
        else:
            event = RebootRequested()
        self._request = _Request(cmd, seq, payload)
        self._events.append(event)

    def _on_slot_command(self, cmd: FrameType, seq: int, payload: bytes) -> None:
        """ERASE and READ: refused during a data phase, like every command that touches the slots."""
        erase = EraseRequest.decode(payload) if cmd == FrameType.ERASE else None
        read = ReadRequest.decode(payload) if cmd == FrameType.READ else None
        if self._state is _State.DATA:
            self._reply(cmd, seq, Status.NOT_ALLOWED)
            return
        if read is not None and (
            read.length == 0
            or (not read.digest and read.length > min(self.max_block, MAX_PAYLOAD - 7))
            or read.offset + read.length > 0xFFFFFFFF
        ):
            self._reply(cmd, seq, Status.BAD_ARGUMENT)
            return
        if self._busy(cmd, seq):
            return
        self._request = _Request(cmd, seq, payload, read=read)
        if erase is not None:
            self._events.append(EraseRequested(slot=erase.slot, force=erase.force))
        elif read is not None:
            self._events.append(
                ReadRequested(slot=read.slot, offset=read.offset, length=read.length, digest=read.digest)
            )

    def _on_change_baud(self, seq: int, payload: bytes) -> None:
        cmd = FrameType.CHANGE_BAUD
        if len(payload) < 4:
            raise RemoteProtocolError("CHANGE_BAUD without a rate")
        baud = int.from_bytes(payload[:4], "little")
        if self._state is _State.DATA:
            self._reply(cmd, seq, Status.NOT_ALLOWED)
        elif Option.BAUD_SWITCH not in self.options:
            self._reply(cmd, seq, Status.UNSUPPORTED)
        elif baud == 0 or (self.baud_rates and baud not in self.baud_rates):
            self._reply(cmd, seq, Status.BAUD_UNSUPPORTED)
        elif not self._busy(cmd, seq):
            self._request = _Request(cmd, seq, payload, baud=baud)
            self._events.append(BaudChangeRequested(baud=baud))

    def _on_begin(self, seq: int, payload: bytes, begin: BeginRequest) -> None:
        cmd = FrameType.BEGIN
        if self._request is not None and self._request.ftype != FrameType.BEGIN:
            self._reply(cmd, seq, Status.BUSY)
            return
        if begin.compressed and (Option.DEFLATE not in self.options or not 0 < begin.wbits <= self.deflate_wbits):
            self._reply(cmd, seq, Status.UNSUPPORTED)
            return
        if begin.size == 0 or (begin.block_size and begin.block_size < MIN_BLOCK_SIZE):
            self._reply(cmd, seq, Status.BAD_ARGUMENT)
            return
        if self._transfer is not None:
            log.info("BEGIN during a transfer: the old transfer is dropped")
        self._transfer = None
        self._state = _State.IDLE
        if Option.RESUME not in self.options and begin.resume:
            begin = BeginRequest(
                slot=begin.slot,
                size=begin.size,
                digest=begin.digest,
                compressed=begin.compressed,
                resume=False,
                window=begin.window,
                block_size=begin.block_size,
                wbits=begin.wbits,
            )
        self._request = _Request(cmd, seq, payload, begin=begin)
        self._events.append(
            TransferRequested(
                slot=begin.slot,
                size=begin.size,
                digest=begin.digest,
                compressed=begin.compressed,
                resume=begin.resume,
            )
        )

    def _on_end(self, seq: int, payload: bytes, end: EndRequest) -> None:
        cmd = FrameType.END
        transfer = self._transfer
        if transfer is None or self._state is not _State.DATA or self._request is not None:
            self._reply(cmd, seq, Status.NOT_ALLOWED)
            return
        if end.blocks != transfer.next or end.stream_bytes != transfer.stream_bytes:
            self._end_transfer(transfer, Status.SIZE_MISMATCH, seq=seq, command=cmd)
            return
        inflater = transfer.inflater
        if inflater is not None and (not inflater.eof or inflater.unused_data):
            self._end_transfer(transfer, Status.DECOMPRESS_FAILED, seq=seq, command=cmd)
            return
        if transfer.out_pos != transfer.request.size:
            self._end_transfer(transfer, Status.SIZE_MISMATCH, seq=seq, command=cmd)
            return
        self._request = _Request(cmd, seq, payload)
        self._events.append(TransferEnded(size=transfer.request.size))

    def _end_transfer(
        self, transfer: _Transfer, status: int, *, seq: int | None = None, command: int = FrameType.DATA
    ) -> None:
        """End the data phase with a failure, telling both the host and the owner."""
        self._transfer = None
        self._state = _State.IDLE
        self._reply(command, transfer.tag if seq is None else seq, status)
        self._events.append(AbortRequested(status=status))

    # -- data phase ------------------------------------------------------------------------------------------
    def _on_corrupt(self, item: CorruptFrame) -> None:
        transfer = self._transfer
        if item.type != FrameType.DATA or transfer is None or self._state is not _State.DATA:
            return
        n = self._absolute(transfer, item.seq)
        if transfer.next <= n < transfer.limit and n not in transfer.buffer:
            transfer.naked.add(n)
            self._out.append(encode_frame(FrameType.NAK, transfer.tag, Nak(blocks=(n,)).encode()))

    @staticmethod
    def _absolute(transfer: _Transfer, number: int) -> int:
        delta = (number - transfer.next) & 0xFF
        return transfer.next + delta if delta < 128 else transfer.next + delta - 256

    def _on_data(self, frame: Frame) -> None:
        transfer = self._transfer
        if transfer is None or self._state is not _State.DATA:
            return  # blocks of a transfer this device no longer runs
        decoded = decode_data_block(frame.payload)
        if decoded is None or decoded[0] != frame.seq or len(decoded[1]) > transfer.block_size:
            self._on_corrupt(CorruptFrame(type=frame.type, seq=frame.seq, length=len(frame.payload)))
            return
        number, data = decoded
        n = self._absolute(transfer, number)
        if n >= transfer.limit:
            log.warning("block %d is beyond the granted window (limit %d)", n, transfer.limit)
            self._end_transfer(transfer, Status.WINDOW_OVERFLOW)
            return
        if n >= transfer.next and n not in transfer.buffer:
            transfer.buffer[n] = data
            transfer.naked.discard(n)
            if n > transfer.next:
                missing = tuple(
                    k for k in range(transfer.next, n) if k not in transfer.buffer and k not in transfer.naked
                )
                if missing:
                    transfer.naked.update(missing)
                    self._out.append(encode_frame(FrameType.NAK, transfer.tag, Nak(blocks=missing).encode()))
            while transfer.next in transfer.buffer:
                if not self._deliver(transfer, transfer.buffer.pop(transfer.next)):
                    return
                transfer.next += 1
            self._release(transfer)
        self._send_ack(transfer)

    def _deliver(self, transfer: _Transfer, data: bytes) -> bool:
        """Hand one in-order block to the owner (inflated).  False when the data phase failed."""
        transfer.stream_bytes += len(data)
        size = transfer.request.size
        inflater = transfer.inflater
        if inflater is None:
            if transfer.out_pos + len(data) > size:
                self._end_transfer(transfer, Status.SIZE_MISMATCH)
                return False
            self._emit_block(transfer, data)
        else:
            pending = data
            try:
                while True:
                    if inflater.eof:
                        if pending or inflater.unused_data:
                            self._end_transfer(transfer, Status.DECOMPRESS_FAILED)
                            return False
                        break
                    out = inflater.decompress(pending, _INFLATE_CHUNK)
                    pending = inflater.unconsumed_tail
                    if out:
                        if transfer.out_pos + len(out) > size:
                            self._end_transfer(transfer, Status.SIZE_MISMATCH)
                            return False
                        self._emit_block(transfer, out)
                    if not pending and len(out) < _INFLATE_CHUNK:
                        break
            except zlib.error:
                self._end_transfer(transfer, Status.DECOMPRESS_FAILED)
                return False
        transfer.unreleased.append((transfer.next, transfer.out_pos))
        return True

    def _emit_block(self, transfer: _Transfer, data: bytes) -> None:
        self._events.append(BlockReceived(offset=transfer.out_pos, data=data))
        transfer.out_pos += len(data)

    def _release(self, transfer: _Transfer) -> bool:
        """Give back credit for delivered blocks whose bytes are all written.  True if the limit moved."""
        moved = False
        while transfer.unreleased and transfer.unreleased[0][1] <= transfer.written:
            number, _end = transfer.unreleased.popleft()
            transfer.released = number + 1
            moved = True
        return moved

    def _send_ack(self, transfer: _Transfer) -> None:
        ack = Ack(next=transfer.next, limit=transfer.limit, written=transfer.written)
        self._out.append(encode_frame(FrameType.ACK, transfer.tag, ack.encode()))
