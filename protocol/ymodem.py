"""Classic YMODEM (Chuck Forsberg's ymodem.txt, 1988) as two sans-I/O cores: :class:`YmodemSender` and
:class:`YmodemReceiver`.

Both implement :class:`protocol.sansio.Connection`; both work as the host *and* as the device (the
emulated AN4657 IAP bootloader uses the receiver for downloads and the sender for uploads).  Neither touches
a port or a clock: the driver feeds bytes, reports silence with ``handle_timeout()`` after :attr:`timeout`
seconds, and writes ``data_to_send()``.

The wire, in short (lrzsz ``sb``/``rb`` are the reference implementation)::

    receiver: C                      (CRC-16/XMODEM requested; NAK would ask for the 8-bit checksum)
    sender:   SOH 00 FF name NUL size [mtime [mode [serial]]] NUL... CRC CRC      (block 0)
    receiver: ACK C
    sender:   STX 01 FE data[1024] CRC CRC   ...   SOH nn ~nn data[<=128] 1A... CRC CRC
    receiver: ACK                    (per block)
    sender:   EOT          receiver: NAK
    sender:   EOT          receiver: ACK C
    ...next file's block 0, or an empty block 0 (SOH 00 FF NUL[128]) that ends the batch, ACKed.

Errors: the peer's CAN CAN raises :class:`~protocol.errors.TransferAborted` (``by_peer=True``); our own
:meth:`abort` (or a refusal by the owner, or a fatal protocol error we detect) first queues CAN CAN, then --
once ``data_to_send()`` has handed those bytes out -- raises from the next ``next_event()`` /
``handle_timeout()``.  After any error the core is sticky-finished and further input raises
:class:`~protocol.errors.LocalProtocolError`.  See ``docs/ymodem.md`` for what we do where the spec is silent.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, auto

from .crc import checksum8, crc16_xmodem
from .errors import (
    LocalProtocolError,
    ProtocolError,
    ProtocolTimeoutError,
    RemoteProtocolError,
    TransferAborted,
)
from .sansio import Event, Progress

__all__ = [
    "ABORT_SEQUENCE",
    "ACK",
    "ACK_TIMEOUT_S",
    "BLOCK_1K",
    "BLOCK_128",
    "BLOCK_TIMEOUT_S",
    "CAN",
    "CHAR_TIMEOUT_S",
    "CRC_REQUEST",
    "CRC_REQUESTS",
    "DUPLICATE_NAKS_BEFORE_SKIP",
    "EOT",
    "FINAL_ACK_TIMEOUT_S",
    "HEADER_ACK_TIMEOUT_S",
    "LOSSES_BEFORE_HOLDING",
    "MAX_ERRORS",
    "MAX_RETRIES",
    "NAK",
    "PAD",
    "REPLY_DELAY_S",
    "REQUEST_INTERVAL_S",
    "REQUEST_SETTLE_QUIET_S",
    "REQUEST_SETTLE_S",
    "SOH",
    "START_REQUESTS",
    "START_TIMEOUT_S",
    "STX",
    "BatchComplete",
    "FileData",
    "FileReceived",
    "FileSent",
    "FileStarted",
    "YmodemFile",
    "YmodemReceiver",
    "YmodemSender",
    "encode_header",
    "parse_header",
    "safe_filename",
]

log = logging.getLogger(__name__)

# -- wire bytes ----------------------------------------------------------------------------------------------
SOH = 0x01  # 128-byte block follows
STX = 0x02  # 1024-byte block follows
EOT = 0x04  # end of file
ACK = 0x06
NAK = 0x15  # "send again"; as a start request: "use the 8-bit checksum"
CAN = 0x18  # two in a row abort the transfer
CRC_REQUEST = 0x43  # 'C': "start, and use CRC-16"
PAD = 0x1A  # CP/M EOF, pads the last block of a file

BLOCK_128 = 128
BLOCK_1K = 1024
ABORT_SEQUENCE = bytes([CAN]) * 5  # spec: at least two; a few more survive a byte lost on a noisy line

# -- sender timing (ymodem.txt: 10 s per ACK, 10 retries, a patient wait for the receiver's first 'C') -------
START_TIMEOUT_S = 60.0  # silence tolerated while waiting for the receiver's first 'C' or NAK
ACK_TIMEOUT_S = 10.0  # ACK of a data block or EOT, and the 'C' that asks for the next file
HEADER_ACK_TIMEOUT_S = 60.0  # block-0 ACK: AN4657's IAP erases the whole application area before it ACKs
FINAL_ACK_TIMEOUT_S = 2.0  # ACK of the end-of-batch block; silence after it ends the batch anyway (see below)
MAX_RETRIES = 10  # consecutive failures of one block (timeouts, NAKs) before we give up
DUPLICATE_NAKS_BEFORE_SKIP = 2  # NAKs of a block whose ACK may have been lost before we assume a duplicate
REQUEST_SETTLE_S = 0.05  # quiet line required after a 'C'/NAK start request that followed text (see below)
REQUEST_SETTLE_QUIET_S = 0.002  # the same for a start request on a line that carried nothing else
REPLY_DELAY_S = 0.001  # quiet line before the next block, once a receiver lost blocks sent at once (see below)
LOSSES_BEFORE_HOLDING = 2  # data blocks lost (NAKed or timed out) before replies start waiting for a quiet line

# -- receiver timing -----------------------------------------------------------------------------------------
REQUEST_INTERVAL_S = 3.0  # silence before the start request ('C', later NAK) is repeated
CRC_REQUESTS = 3  # 'C' start requests before falling back to NAK (checksum) for plain XMODEM senders
START_REQUESTS = 10  # start requests in all before the receiver gives up (None in the API: forever)
BLOCK_TIMEOUT_S = 10.0  # silence tolerated between blocks
CHAR_TIMEOUT_S = 1.0  # silence tolerated inside a block (and the line-clearing wait after a bad block)
MAX_ERRORS = 10  # consecutive errors (timeouts, bad blocks, duplicates) before the receiver aborts

_HEADER_RE = re.compile(rb"[\x01\x02\x04\x18]")  # bytes that can start a frame (noise before them is skipped)
_MAX_NAME_BYTES = 255


# -- events --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class FileStarted(Event):
    """Block 0 of a file arrived (receiver), or was ACKed (sender).  ``size`` is ``None`` when the sender gave
    none (plain XMODEM, or a block 0 without a size); ``mtime`` (seconds since the epoch) and ``mode`` (Unix
    mode bits) are ``None`` when absent.  The name is exactly what the peer sent: pass it through
    :func:`safe_filename` before using it as a path."""

    name: str
    size: int | None
    mtime: int | None = None
    mode: int | None = None


@dataclass(frozen=True, kw_only=True)
class FileData(Event):
    """Payload of one accepted block, in order; padding stripped at the declared size unless the receiver was
    built with ``keep_padding=True``."""

    data: bytes


@dataclass(frozen=True, kw_only=True)
class FileReceived(Event):
    """The receiver ACKed the file's EOT.  ``size`` is the number of payload bytes delivered."""

    name: str
    size: int


@dataclass(frozen=True, kw_only=True)
class FileSent(Event):
    """The receiver ACKed our EOT for this file."""

    name: str
    size: int


@dataclass(frozen=True, kw_only=True)
class BatchComplete(Event):
    """The end-of-batch block 0 was sent and ACKed (or a plain XMODEM transfer's single file ended)."""


# -- files and block 0 ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class YmodemFile:
    """One file of a batch to send: its name as the receiver will see it, and its contents."""

    name: str
    data: bytes
    mtime: int | None = None
    mode: int | None = None

    def __post_init__(self) -> None:
        if not self.name or "\0" in self.name:
            raise ValueError(f"unusable YMODEM file name {self.name!r}")
        if self.mtime is not None and self.mtime < 0:
            raise ValueError("mtime must not be negative")
        if self.mode is not None and self.mode < 0:
            raise ValueError("mode must not be negative")
        if len(encode_header(self.name, len(self.data), self.mtime, self.mode)) > BLOCK_1K:
            raise ValueError(f"file name too long for block 0: {self.name!r}")


def encode_header(name: str, size: int, mtime: int | None = None, mode: int | None = None) -> bytes:
    """The meaningful part of block 0: ``name NUL size[ mtime-octal[ mode-octal]]`` (unpadded)."""
    fields = [str(size)]
    if mtime is not None or mode is not None:
        fields.append(f"{mtime or 0:o}")
    if mode is not None:
        fields.append(f"{mode:o}")
        fields.append("0")  # serial number: lrzsz's rb expects it after a mode (it crashes without)
    return name.encode("utf-8") + b"\0" + " ".join(fields).encode("ascii")


def parse_header(payload: bytes) -> FileStarted | None:
    """Parse the payload of a block 0; ``None`` for the empty block 0 that ends a batch.

    Tolerant where senders differ (ST's IAP ends the size with NUL, lrzsz adds mtime, mode, serial and more);
    a size that is not a decimal number raises :class:`~protocol.errors.RemoteProtocolError`.
    """
    end = payload.find(b"\0")
    raw_name = payload if end < 0 else payload[:end]
    if not raw_name:
        return None
    rest = b"" if end < 0 else payload[end + 1 :]
    info_end = rest.find(b"\0")
    fields = (rest if info_end < 0 else rest[:info_end]).split()
    size: int | None = None
    mtime: int | None = None
    mode: int | None = None
    if fields:
        if not fields[0].isdigit():
            raise RemoteProtocolError(f"block 0 carries an unreadable file size {fields[0][:20]!r}")
        size = int(fields[0])
    if len(fields) > 1:
        mtime = _octal(fields[1])
    if len(fields) > 2:
        mode = _octal(fields[2])
    name = raw_name.decode("utf-8", errors="replace")
    return FileStarted(name=name, size=size, mtime=mtime, mode=mode)


def _octal(field: bytes) -> int | None:
    try:
        return int(field, 8)
    except ValueError:
        return None


def safe_filename(name: str) -> str:
    """A received file name made safe to create inside a download directory.

    Directory parts (``/`` or ``\\``, drive letters) are dropped, so the result is a bare name: never
    absolute, never ``..``.  Control characters become ``_``.  A name with nothing usable left (empty,
    ``.``, ``..``) or longer than 255 bytes raises :class:`~protocol.errors.RemoteProtocolError`.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if len(base) >= 2 and base[1] == ":" and base[0].isalpha():
        base = base[2:]
    base = "".join("_" if (ord(ch) < 32 or ord(ch) == 127) else ch for ch in base).strip()
    if base in ("", ".", ".."):
        raise RemoteProtocolError(
            f"the sender's file name {name!r} is not usable as a file name",
            hint="rename the file on the sending side",
        )
    if len(base.encode("utf-8", errors="surrogateescape")) > _MAX_NAME_BYTES:
        raise RemoteProtocolError(f"the sender's file name is too long ({len(base)} characters)")
    return base


def _frame(seq: int, payload: bytes, crc: bool) -> bytes:
    """One block on the wire: SOH/STX, number, complement, payload (128 or 1024 bytes), CRC or checksum."""
    seq &= 0xFF
    head = bytes((SOH if len(payload) == BLOCK_128 else STX, seq, 0xFF - seq))
    trailer = crc16_xmodem(payload).to_bytes(2, "big") if crc else bytes((checksum8(payload),))
    return head + payload + trailer


class _Phase(Enum):
    START = auto()  # sender: waiting for 'C'/NAK before a block 0; receiver: waiting for a block 0
    HEADER_ACK = auto()  # sender: block 0 sent
    DATA_START = auto()  # sender: block 0 ACKed, waiting for 'C'/NAK before block 1
    BLOCK_ACK = auto()  # sender: a data block sent
    EOT_ACK = auto()  # sender: EOT sent
    FINAL_ACK = auto()  # sender: the empty block 0 sent
    DATA = auto()  # receiver: inside a file
    HELD_HEADER = auto()  # receiver: block 0 taken, ACK held for the owner
    HELD_DATA = auto()  # receiver: a data block taken, ACK held for the owner
    DONE = auto()
    ERROR = auto()


class _Core:
    """What both roles share: buffers, event queue, abort handling and the sticky error state."""

    def __init__(self) -> None:
        self._in = bytearray()
        self._out = bytearray()
        self._held = bytearray()  # a reply waiting for the line to settle (sender)
        self._hold_delay = 0.0  # how long the line must be quiet before a reply goes out (0: at once)
        self._held_for = 0.0  # how long the line must be quiet before what is in _held goes out
        self._events: deque[Event] = deque()
        self._phase = _Phase.START
        self._pending_error: ProtocolError | None = None
        self._last_can = False

    # -- Connection --------------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the wire (never ``b""``).  Parsing happens in :meth:`next_event`."""
        if self._phase is _Phase.ERROR:
            raise LocalProtocolError("the YMODEM transfer already failed; start a new one")
        if self._pending_error is not None:
            return  # aborting: whatever the peer still says is irrelevant
        self._in += data

    def data_to_send(self) -> bytes:
        """Bytes to write now (``b""`` if none).  Still hands out a pending abort after an error."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        """The next event, or ``None`` when more input (or a timeout) is needed."""
        # called several times per block: the common case (no error, input waiting or not) stays short
        if self._pending_error is not None or self._phase is _Phase.ERROR:
            if self._phase is _Phase.ERROR:
                raise LocalProtocolError("the YMODEM transfer already failed; start a new one")
            self._raise_pending()
        events = self._events
        if not events and self._in:
            try:
                self._process()
            except ProtocolError as err:
                self._fail(err)
            if self._pending_error is not None:
                self._raise_pending()
        return events.popleft() if events else None

    def handle_timeout(self) -> None:
        """The wire was silent for :attr:`timeout` seconds."""
        if self._phase is _Phase.ERROR:
            raise LocalProtocolError("the YMODEM transfer already failed; start a new one")
        if self._held:  # the line settled: release the reply (or the abort) that waited for it
            self._out += self._held
            self._held.clear()
            return
        self._raise_pending()
        if self._phase is _Phase.DONE:
            return
        try:
            self._on_timeout()
        except ProtocolError as err:
            self._fail(err)
        self._raise_pending()

    @property
    def finished(self) -> bool:
        """True after the batch completed or the transfer failed (the error has been raised)."""
        return self._phase in (_Phase.DONE, _Phase.ERROR)

    @property
    def trailing_data(self) -> bytes:
        """Bytes that arrived after the batch completed (an IAP prints its menu again, say)."""
        return bytes(self._in) if self._phase is _Phase.DONE else b""

    def abort(self, reason: str = "transfer aborted") -> None:
        """Abort: queue CAN CAN for the peer.  Once ``data_to_send()`` has handed them out, the next
        ``next_event()`` / ``handle_timeout()`` raises ``TransferAborted(by_peer=False)``.  A no-op once
        finished.  The sender, like any reply of its, holds the CANs for ``reply_delay`` of quiet line first
        (so keep driving it: ``link.run(core)`` after ``abort()`` sends them and raises)."""
        if self.finished or self._pending_error is not None:
            return
        self._fail(TransferAborted(reason, by_peer=False))

    # -- shared machinery --------------------------------------------------------------------------------
    def _fail(self, err: ProtocolError) -> None:
        """Enter the error path.  Errors of our own making tell the peer with CAN CAN first."""
        if self._pending_error is not None or self._phase is _Phase.ERROR:
            return
        peer_gone = isinstance(err, TransferAborted) and err.by_peer
        # nobody to tell if the peer never spoke (no start request, no block 0 yet)
        peer_gone |= isinstance(err, ProtocolTimeoutError) and self._never_heard()
        self._held.clear()
        if not peer_gone:
            delay = self._abort_delay()
            if delay > 0:
                self._held.extend(ABORT_SEQUENCE)
                self._held_for = delay
            else:
                self._out.extend(ABORT_SEQUENCE)
        self._pending_error = err
        self._in.clear()
        self._events.clear()

    def _raise_pending(self) -> None:
        if self._pending_error is not None and not self._out and not self._held:
            err, self._pending_error = self._pending_error, None
            self._phase = _Phase.ERROR
            raise err

    def _pending_timeout(self) -> float | None:
        """0 while an error waits to be raised (its CAN CAN already handed out), else ``None``."""
        if self._held:
            return self._held_for
        if self._pending_error is not None:
            return 0.0
        return None

    def _abort_delay(self) -> float:
        """Quiet line required before our CAN CAN goes out."""
        return self._hold_delay

    def _never_heard(self) -> bool:
        return self._phase is _Phase.START and bool(getattr(self, "_first_start", False))

    def _process(self) -> None:
        raise NotImplementedError

    def _on_timeout(self) -> None:
        raise NotImplementedError

    def _peer_cancelled(self) -> TransferAborted:
        return TransferAborted(
            "the other side cancelled the transfer (CAN CAN)",
            by_peer=True,
            hint="check the other side's log or screen for the reason",
        )


# =============================================================================================================
class YmodemSender(_Core):
    """Sends a batch of files.  Works as the host (``stm32ota send``) and as a device (an IAP upload): it
    always waits for the receiver's 'C' (CRC-16) or NAK (checksum), ignoring any text before it.

    Events: :class:`FileStarted` (block 0 ACKed), ``Progress(phase="transfer", done, total)`` over the whole
    batch after every ACKed block, :class:`FileSent` (EOT ACKed), :class:`BatchComplete`.

    ``block_size`` is 1024 (STX blocks; a tail of at most 128 bytes goes in one SOH block) or 128.
    Timeouts are per phase: ``start_timeout`` for the first 'C', ``header_ack_timeout`` for each block-0 ACK
    (a receiver may erase flash first), ``ack_timeout`` for everything else.  ``max_retries`` consecutive
    failures of one block give up with CAN CAN.

    A receiver that NAKs a duplicate block instead of re-ACKing it (AN4657's IAP) would otherwise trap us
    after a lost ACK: when a block's ACK went missing (silence, garbage, or a 'C' instead of an ACK) and the
    retransmissions then draw ``duplicate_naks_before_skip`` NAKs in a row, we take the block as delivered and
    go on with the next one; if that next block is NAKed too, we step back and send the previous one again.
    ``duplicate_naks_before_skip=0`` disables this.

    Every file is acknowledged by its EOT ACK; the end-of-batch block only closes the session.  Silence for
    ``FINAL_ACK_TIMEOUT_S`` after it therefore completes the batch (with a warning in the log): lrzsz's
    ``rb`` sometimes exits before its last ACK leaves the tty.

    A start request ('C' or NAK before a block 0 or before block 1) is answered only after the line has been
    quiet for a while: lrzsz's ``rb`` flushes its input (TCIFLUSH) right after writing a 'C', so an immediate
    answer may be lost (and cost a 10 s timeout), and a 'C' followed by more text was part of a menu, not a
    request.  After text (an IAP menu, a banner) the quiet wait is ``request_settle`` seconds, long enough for
    a USB-UART's bursts; a request alone on the line is answered after :data:`REQUEST_SETTLE_QUIET_S`.

    ``rb`` flushes after every ACK and NAK too, so on a link with no latency (a pty, a socket) a block sent
    the moment its ACK arrives is occasionally flushed with it (about one block in 3000-5000 here; ``rb``
    NAKs after 5 s).  Waiting for a quiet line after every ACK would cost a timer
    wake-up per block, more CPU than the whole transfer otherwise needs, so by default (``reply_delay=None``)
    replies to ACKs go out at once until :data:`LOSSES_BEFORE_HOLDING` data blocks were NAKed or timed out (one
    such loss is the rare race above; two mean a receiver that flushes every time, or a noisy line); from then
    on every reply waits :data:`REPLY_DELAY_S` of quiet line.  The retransmission answering a NAK always
    waits (``rb`` flushes after a NAK too).  A number fixes the delay from the start (0: never wait).
    """

    def __init__(
        self,
        files: Iterable[YmodemFile],
        *,
        block_size: int = BLOCK_1K,
        start_timeout: float = START_TIMEOUT_S,
        ack_timeout: float = ACK_TIMEOUT_S,
        header_ack_timeout: float = HEADER_ACK_TIMEOUT_S,
        max_retries: int = MAX_RETRIES,
        duplicate_naks_before_skip: int = DUPLICATE_NAKS_BEFORE_SKIP,
        request_settle: float = REQUEST_SETTLE_S,
        reply_delay: float | None = None,
    ) -> None:
        super().__init__()
        if block_size not in (BLOCK_128, BLOCK_1K):
            raise ValueError(f"block size must be {BLOCK_128} or {BLOCK_1K}, not {block_size}")
        if max_retries < 1:
            raise ValueError("max_retries must be at least 1")
        self._files = list(files)
        self._block_size = block_size
        self._start_timeout = start_timeout
        self._ack_timeout = ack_timeout
        self._header_ack_timeout = header_ack_timeout
        self._max_retries = max_retries
        self._skip_after = duplicate_naks_before_skip
        self._request_settle = request_settle
        self._settling: int | None = None  # a start request seen, answered once the line is quiet
        self._text_seen = False  # bytes other than requests arrived while we waited for a request
        self._adaptive = reply_delay is None  # start with immediate replies, hold them after lost blocks
        self._losses = 0  # data blocks NAKed or timed out (adaptive mode)
        self._answering_request = False  # the output is an answer to a NAK or 'C': rb flushed after sending it
        self._reply_delay = REPLY_DELAY_S if reply_delay is None else reply_delay
        self._hold_delay = 0.0 if reply_delay is None else reply_delay
        self._index = 0  # file being sent
        self._first_start = True
        self._crc = True
        self._retries = 0
        self._last_fail_was_timeout = False
        self._suspect = False  # this block's ACK may have been lost
        self._dup_naks = 0
        self._probing: tuple[_Phase, int, int, int, bytes] | None = None  # state to step back to
        self._seq = 0
        self._offset = 0  # bytes of the current file ACKed
        self._cur_len = 0  # data bytes the outstanding block carries
        self._frame = b""  # the outstanding frame (what a retransmission sends)
        self._done_bytes = 0
        self._total = sum(len(f.data) for f in self._files)

    @property
    def timeout(self) -> float | None:
        pending = self._pending_timeout()
        if pending is not None:
            return pending
        phase = self._phase
        if self._settling is not None:
            return self._request_settle if self._text_seen else min(self._request_settle, REQUEST_SETTLE_QUIET_S)
        if phase is _Phase.START:
            return self._start_timeout if self._first_start else self._ack_timeout
        if phase is _Phase.HEADER_ACK:
            return self._header_ack_timeout
        if phase is _Phase.FINAL_ACK:
            return min(self._ack_timeout, FINAL_ACK_TIMEOUT_S)
        if phase in (_Phase.DONE, _Phase.ERROR):
            return None
        return self._ack_timeout

    @property
    def files_delivered(self) -> bool:
        """Every file's EOT was ACKed: what is left (the end-of-batch block, its ACK) only closes the session.
        A receiver that hangs the line up now (``rb`` exits as soon as it has written that ACK, and closing a
        pty may drop it) has received every file."""
        return self._index >= len(self._files)

    @property
    def current_file(self) -> YmodemFile | None:
        """The file being sent, ``None`` before the first and after the last."""
        return self._files[self._index] if self._index < len(self._files) else None

    # -- input ---------------------------------------------------------------------------------------------
    def _process(self) -> None:
        buf = self._in
        if len(buf) == 1 and buf[0] == ACK and self._phase is _Phase.BLOCK_ACK and not self._held:
            # the steady state, once per block: a lone ACK for the outstanding block (the loop below does the
            # same, with the checks a lone byte never needs)
            buf.clear()
            self._last_can = False
            self._next_after_ack()
        else:
            self._scan(buf)
        if self._out:
            delay = self._hold_delay or (self._reply_delay if self._answering_request else 0.0)
            self._answering_request = False
            if delay > 0:
                self._held_for = delay
                self._held += self._out
                self._out.clear()

    def _scan(self, buf: bytearray) -> None:
        """Handle what the receiver said, byte by byte, until an event or a block sent makes the rest stale."""
        i = 0
        n = len(buf)
        while i < n and not self._events and self._phase not in (_Phase.DONE, _Phase.ERROR):
            b = buf[i]
            i += 1
            if b == CAN:
                if self._last_can:
                    raise self._peer_cancelled()
                self._last_can = True
                continue
            self._last_can = False
            if self._held:
                continue  # a reply waits for the line to settle: what arrives meanwhile is stale
            phase = self._phase
            if phase in (_Phase.START, _Phase.DATA_START):
                if b in (CRC_REQUEST, NAK):
                    self._settling = b  # answered by handle_timeout once the line is quiet
                else:
                    self._text_seen = True
                    if self._settling is not None and self._first_start:
                        self._settling = None  # a 'C' inside console text ("Click", "CRC") is no request
            elif b == ACK:
                if self._on_ack():
                    i = self._skip_stale(i)
            elif b in (NAK, CRC_REQUEST):
                self._on_request(clean=b == NAK)
                i = self._skip_stale(i)
            else:
                self._suspect = True  # garbage where an ACK should be: it may have been the ACK
        del buf[:i]

    def _skip_stale(self, i: int) -> int:
        """A block went out: what is already buffered answers an older one and is dropped, except a cancel."""
        rest = self._in[i:]
        if b"\x18\x18" in rest:
            raise self._peer_cancelled()
        if rest:
            self._last_can = rest.endswith(b"\x18")
        return len(self._in)

    def _on_ack(self) -> bool:
        """Handle an ACK; True when it made us send something."""
        phase = self._phase
        if phase is _Phase.HEADER_ACK:
            file = self._files[self._index]
            self._events.append(FileStarted(name=file.name, size=len(file.data), mtime=file.mtime, mode=file.mode))
            self._reset_errors()
            self._phase = _Phase.DATA_START
        elif phase is _Phase.BLOCK_ACK:
            self._next_after_ack()
            return True
        elif phase is _Phase.EOT_ACK:
            file = self._files[self._index]
            self._events.append(FileSent(name=file.name, size=len(file.data)))
            self._index += 1
            self._reset_errors()
            self._phase = _Phase.START
        elif phase is _Phase.FINAL_ACK:
            self._events.append(BatchComplete())
            self._phase = _Phase.DONE
        # an ACK while waiting for 'C' (DATA_START) is a stray duplicate: ignore it
        return False

    def _next_after_ack(self) -> None:
        """The outstanding data block was ACKed: count it and send the next one (or EOT)."""
        self._block_delivered()
        self._reset_errors()
        self._send_next_block()

    def _answer_request(self) -> None:
        """The line went quiet after a start request: send block 0 (or the end-of-batch block) or block 1."""
        request, self._settling = self._settling, None
        self._text_seen = False
        self._crc = request == CRC_REQUEST
        del self._in[: self._skip_stale(0)]  # anything still buffered is stale
        if self._phase is _Phase.START:
            self._first_start = False
            self._send_header()
        else:
            self._send_next_block()

    def _on_request(self, *, clean: bool) -> None:
        """A NAK (``clean``) or a 'C' while a block or EOT is outstanding."""
        self._answering_request = True
        if self._phase is _Phase.EOT_ACK:  # first EOT NAKed (normal), or a 'C' while our EOT is unanswered
            self._count_failure(timeout=False)
            self._out.append(EOT)
            return
        if self._phase is _Phase.BLOCK_ACK:
            self._hold_replies()
        if not clean:
            self._suspect = True
        elif self._probing is not None and self._phase is _Phase.BLOCK_ACK:
            # the block after a skipped one was refused: the skip was wrong, send the previous block again
            self._phase, self._seq, self._offset, self._cur_len, self._frame = self._probing
            self._probing = None
            self._suspect = False
            self._dup_naks = 0
            self._done_bytes -= self._cur_len
        elif self._suspect and self._skip_after and self._phase in (_Phase.HEADER_ACK, _Phase.BLOCK_ACK):
            self._dup_naks += 1
            if self._dup_naks >= self._skip_after:
                self._skip_duplicate()
                return
        self._count_failure(timeout=False)
        self._out += self._frame

    def _abort_delay(self) -> float:
        return self._reply_delay  # an abort is rare: always let a flushing receiver settle first

    def _hold_replies(self) -> None:
        """A data block was refused or went unanswered.  Sent at once after its ACK, it may have been flushed
        with the receiver's input: after enough of those, replies wait for a quiet line (adaptive mode only)."""
        if not self._adaptive or self._hold_delay > 0:
            return
        self._losses += 1
        if self._losses >= LOSSES_BEFORE_HOLDING:
            self._hold_delay = self._reply_delay
            log.info(
                "%d blocks lost; replies now wait %g ms of quiet line (the receiver may flush its input)",
                self._losses,
                self._reply_delay * 1000,
            )

    def _skip_duplicate(self) -> None:
        """Retransmissions of a block whose ACK went missing keep being NAKed: the receiver has it (and NAKs
        duplicates).  Take it as delivered and send what comes next without waiting for a 'C'."""
        log.info("block %d: NAKed as a duplicate after a lost ACK; going on with the next block", self._seq)
        snapshot = (self._phase, self._seq, self._offset, self._cur_len, self._frame)
        self._count_failure(timeout=False)
        self._suspect = False
        self._dup_naks = 0
        if self._phase is _Phase.HEADER_ACK:
            file = self._files[self._index]
            self._events.append(FileStarted(name=file.name, size=len(file.data), mtime=file.mtime, mode=file.mode))
        else:
            self._block_delivered()
        self._send_next_block()
        self._probing = snapshot if self._phase is _Phase.BLOCK_ACK else None

    def _on_timeout(self) -> None:
        if self._settling is not None:
            self._answer_request()
            return
        phase = self._phase
        if phase is _Phase.START:
            if self._first_start:
                raise ProtocolTimeoutError(
                    f"the receiver never asked for the file (no 'C' within {self._start_timeout:g} s)",
                    hint="start the receiving side first (rb --ymodem, or the IAP menu's download option)",
                )
            self._count_failure(timeout=True)  # receivers repeat their 'C' themselves
            return
        if phase is _Phase.FINAL_ACK:
            log.warning("no ACK for the end-of-batch block; every file was acknowledged, so the batch is done")
            self._events.append(BatchComplete())
            self._phase = _Phase.DONE
            return
        self._count_failure(timeout=True)
        self._suspect = True
        if phase is _Phase.BLOCK_ACK:
            self._hold_replies()
        if phase is _Phase.DATA_START:
            self._send_next_block()  # the 'C' got lost; a receiver that waits for block 1 takes it anyway
        elif phase is _Phase.EOT_ACK:
            self._out.append(EOT)
        else:
            self._out += self._frame

    # -- output -------------------------------------------------------------------------------------------
    def _send_header(self) -> None:
        if self._index < len(self._files):
            file = self._files[self._index]
            info = encode_header(file.name, len(file.data), file.mtime, file.mode)
            self._phase = _Phase.HEADER_ACK
        else:
            info = b""
            self._phase = _Phase.FINAL_ACK
        size = BLOCK_128 if len(info) <= BLOCK_128 else BLOCK_1K
        self._seq = 0
        self._offset = 0
        self._cur_len = 0
        self._probing = None
        self._frame = _frame(0, info.ljust(size, b"\0"), self._crc)
        self._out += self._frame

    def _send_next_block(self) -> None:
        """Send the block after the last delivered one, or EOT at the end of the file."""
        self._probing = None
        data = self._files[self._index].data
        remaining = len(data) - self._offset
        if remaining <= 0:
            self._phase = _Phase.EOT_ACK
            self._out.append(EOT)
            return
        size = BLOCK_128 if (self._block_size == BLOCK_128 or remaining <= BLOCK_128) else BLOCK_1K
        chunk = data[self._offset : self._offset + size]
        self._cur_len = len(chunk)
        if self._cur_len < size:
            chunk = chunk + bytes([PAD]) * (size - self._cur_len)
        self._seq += 1
        self._frame = _frame(self._seq, chunk, self._crc)
        self._phase = _Phase.BLOCK_ACK
        self._out += self._frame

    def _block_delivered(self) -> None:
        self._offset += self._cur_len
        self._done_bytes += self._cur_len
        self._cur_len = 0
        self._events.append(Progress(phase="transfer", done=self._done_bytes, total=self._total))

    def _reset_errors(self) -> None:
        self._retries = 0
        self._suspect = False
        self._dup_naks = 0
        self._probing = None

    def _count_failure(self, *, timeout: bool) -> None:
        self._retries += 1
        self._last_fail_was_timeout = timeout
        if self._retries < self._max_retries:
            return
        what = {
            _Phase.START: "the request for the next file",
            _Phase.HEADER_ACK: "block 0",
            _Phase.DATA_START: "the request for the first data block",
            _Phase.EOT_ACK: "the end of file (EOT)",
            _Phase.FINAL_ACK: "the end-of-batch block",
        }.get(self._phase, f"block {self._seq}")
        if timeout:
            raise ProtocolTimeoutError(
                f"no answer from the receiver for {what} after {self._retries} tries",
                hint="check the cable and the baud rate; is the receiver still running?",
            )
        raise RemoteProtocolError(
            f"the receiver refused {what} {self._retries} times",
            hint="the line may be noisy: try a lower baud rate or --block-size 128",
        )


# =============================================================================================================
class YmodemReceiver(_Core):
    """Receives a batch of files.  Works as the host (``stm32ota receive``) and as the device side of the
    emulated AN4657 IAP bootloader.

    It asks with 'C' (CRC-16), and after ``crc_requests`` unanswered requests falls back to NAK (8-bit
    checksum), so plain XMODEM senders work too (a transfer that starts with block 1 is taken as one XMODEM
    file with no name or size).  ``start_requests`` start requests in all (``None``: ask forever) before
    giving up, one every ``request_interval`` seconds of silence.

    Events: :class:`FileStarted`, :class:`FileData` (in order), ``Progress(phase="transfer", done, total)``
    over the batch, :class:`FileReceived`, :class:`BatchComplete`.

    Quirk switches (each independent; the defaults follow the spec and lrzsz):

    ``nak_duplicates``
        NAK a duplicate block instead of re-ACKing it (AN4657 does).
    ``ack_first_eot``
        ACK the first EOT at once instead of NAKing it and waiting for a second.
    ``max_errors``
        consecutive errors (timeouts, bad blocks, duplicates) tolerated; the ``max_errors``-th aborts with
        CAN CAN.
    ``keep_padding``
        deliver whole blocks in :class:`FileData`, padding included (the IAP writes it to flash).
    ``c_on_error``
        ask for a block again with 'C' instead of NAK (AN4657 does); only in CRC mode.
    ``hold_header_ack``
        after :class:`FileStarted`, hold block 0's ACK until the owner calls :meth:`accept_file` (say, after
        erasing flash) or :meth:`reject_file` (say, the file is too big).  ``timeout`` is ``None`` meanwhile;
        bytes arriving meanwhile are dropped (a busy MCU does not read its UART), except CAN CAN.
    ``hold_data_ack``
        the same after each :class:`FileData`: :meth:`accept_data` / :meth:`reject_data` (pace flash writes).
    """

    def __init__(
        self,
        *,
        nak_duplicates: bool = False,
        ack_first_eot: bool = False,
        max_errors: int = MAX_ERRORS,
        keep_padding: bool = False,
        c_on_error: bool = False,
        hold_header_ack: bool = False,
        hold_data_ack: bool = False,
        crc_requests: int | None = CRC_REQUESTS,
        start_requests: int | None = START_REQUESTS,
        request_interval: float = REQUEST_INTERVAL_S,
        block_timeout: float = BLOCK_TIMEOUT_S,
        char_timeout: float = CHAR_TIMEOUT_S,
    ) -> None:
        super().__init__()
        if max_errors < 1:
            raise ValueError("max_errors must be at least 1")
        self.nak_duplicates = nak_duplicates
        self.ack_first_eot = ack_first_eot
        self.max_errors = max_errors
        self.keep_padding = keep_padding
        self.c_on_error = c_on_error
        self.hold_header_ack = hold_header_ack
        self.hold_data_ack = hold_data_ack
        self._crc_requests = crc_requests
        self._start_requests = start_requests
        self._request_interval = request_interval
        self._block_timeout = block_timeout
        self._char_timeout = char_timeout
        self._crc = True
        self._requests_sent = 1
        self._first_start = True  # no block 0 seen yet: the start-request schedule applies
        self._errors = 0
        self._last_error_timeout = False
        self._purging = False  # a bad block: drop input until the line is quiet, then ask again
        self._xmodem = False
        self._expected = 1  # next data block number (not wrapped)
        self._eot_naked = False
        self._file: FileStarted | None = None
        self._received = 0  # payload bytes of the current file counted toward its size
        self._batch_done = 0  # bytes of files already completed
        self._out.append(CRC_REQUEST)

    @property
    def timeout(self) -> float | None:
        pending = self._pending_timeout()
        if pending is not None:
            return pending
        phase = self._phase
        if phase in (_Phase.HELD_HEADER, _Phase.HELD_DATA, _Phase.DONE, _Phase.ERROR):
            return None
        if self._purging or self._in:
            return self._char_timeout
        if phase is _Phase.START and self._first_start:
            return self._request_interval
        return self._block_timeout

    @property
    def crc(self) -> bool:
        """True while blocks carry CRC-16, False after the fall-back to the 8-bit checksum."""
        return self._crc

    # -- owner decisions (hold_header_ack / hold_data_ack) -------------------------------------------------
    def accept_file(self) -> None:
        """Release the held block-0 ACK (and ask for the first data block)."""
        if self._phase is not _Phase.HELD_HEADER:
            raise LocalProtocolError("accept_file() without a held block 0")
        self._phase = _Phase.DATA
        self._out += bytes((ACK, self._request_byte()))

    def reject_file(self, reason: str) -> None:
        """Refuse the file whose block 0 is held: CAN CAN goes out, then ``TransferAborted(by_peer=False)``
        with ``reason`` as its message is raised (see :meth:`abort`)."""
        if self._phase is not _Phase.HELD_HEADER:
            raise LocalProtocolError("reject_file() without a held block 0")
        self._fail(TransferAborted(reason, by_peer=False))

    def accept_data(self) -> None:
        """Release the held ACK of the last data block."""
        if self._phase is not _Phase.HELD_DATA:
            raise LocalProtocolError("accept_data() without a held data block")
        self._phase = _Phase.DATA
        self._out.append(ACK)

    def reject_data(self, reason: str) -> None:
        """Refuse the held data block (a flash write failed, say): CAN CAN, then
        ``TransferAborted(by_peer=False)``."""
        if self._phase is not _Phase.HELD_DATA:
            raise LocalProtocolError("reject_data() without a held data block")
        self._fail(TransferAborted(reason, by_peer=False))

    # -- input ---------------------------------------------------------------------------------------------
    def _request_byte(self) -> int:
        return CRC_REQUEST if self._crc else NAK

    def _retry_byte(self) -> int:
        return CRC_REQUEST if (self._crc and self.c_on_error) else NAK

    def _process(self) -> None:
        buf = self._in
        while not self._events and self._pending_error is None:
            phase = self._phase
            if phase in (_Phase.HELD_HEADER, _Phase.HELD_DATA):
                if b"\x18\x18" in buf:
                    raise self._peer_cancelled()
                del buf[: max(0, len(buf) - 1) if buf.endswith(b"\x18") else len(buf)]
                return
            if phase is _Phase.DONE or not buf:
                return
            if self._purging:
                buf.clear()
                return
            match = _HEADER_RE.search(buf)
            if match is None:
                buf.clear()  # noise
                return
            start = match.start()
            if start:
                del buf[:start]
            head = buf[0]
            if head == CAN:
                if len(buf) < 2:
                    return
                if buf[1] == CAN:
                    raise self._peer_cancelled()
                del buf[:1]  # a lone CAN is noise
                continue
            if head == EOT:
                del buf[:1]
                self._on_eot()
                continue
            size = BLOCK_128 if head == SOH else BLOCK_1K
            frame_len = 3 + size + (2 if self._crc else 1)
            if len(buf) < 3:
                return
            seq = buf[1]
            if seq + buf[2] != 0xFF:
                del buf[:1]  # not a block header after all: noise that looked like one
                continue
            if len(buf) < frame_len:
                return
            payload = bytes(buf[3 : 3 + size])
            if self._crc:
                good = crc16_xmodem(payload) == (buf[3 + size] << 8 | buf[4 + size])
            else:
                good = checksum8(payload) == buf[3 + size]
            if not good:
                del buf[:frame_len]
                self._purging = True
                self._count_error(f"block {seq} failed its {'CRC' if self._crc else 'checksum'}")
                return
            del buf[:frame_len]
            self._on_block(seq, payload)

    def _on_block(self, seq: int, payload: bytes) -> None:
        self._eot_naked = False
        if self._phase is _Phase.START:
            if seq == 0:
                self._on_header(payload)
                return
            if seq == 1 and self._first_start:
                log.info("block 1 without a block 0: a plain XMODEM sender")
                self._xmodem = True
                self._first_start = False
                self._file = FileStarted(name="", size=None)
                self._events.append(self._file)
                self._phase = _Phase.DATA
                self._expected = 1
                self._on_data(payload)
                return
            raise RemoteProtocolError(f"block {seq} arrived where block 0 was expected (sequence lost)")
        expected = self._expected & 0xFF
        if seq == expected:
            self._on_data(payload)
        elif seq == (expected - 1) & 0xFF:
            self._count_error(f"duplicate block {seq}", timeout=False, reply=False)
            if self.nak_duplicates:
                self._out.append(NAK)
            elif self._expected == 1 and not self._xmodem:
                self._out += bytes((ACK, self._request_byte()))  # block 0 again: its ACK and 'C' got lost
            else:
                self._out.append(ACK)
        else:
            raise RemoteProtocolError(
                f"block {seq} arrived where block {expected} was expected (sequence lost)",
                hint="the line lost data; try again, perhaps at a lower baud rate",
            )

    def _on_header(self, payload: bytes) -> None:
        header = parse_header(payload)
        self._first_start = False
        self._errors = 0
        if header is None:
            self._out.append(ACK)
            self._events.append(BatchComplete())
            self._phase = _Phase.DONE
            return
        self._file = header
        self._received = 0
        self._expected = 1
        self._events.append(header)
        if self.hold_header_ack:
            self._phase = _Phase.HELD_HEADER
        else:
            self._phase = _Phase.DATA
            self._out += bytes((ACK, self._request_byte()))

    def _on_data(self, payload: bytes) -> None:
        assert self._file is not None
        self._errors = 0
        self._expected += 1
        size = self._file.size
        if size is None:
            data = payload
            self._received += len(payload)
        else:
            room = max(0, size - self._received)
            data = payload if self.keep_padding else payload[:room]
            self._received += min(room, len(payload))
        if data:
            self._events.append(FileData(data=data))
        total = self._batch_done + (size if size is not None else 0)
        self._events.append(Progress(phase="transfer", done=self._batch_done + self._received, total=total))
        if self.hold_data_ack:
            self._phase = _Phase.HELD_DATA
        else:
            self._out.append(ACK)

    def _on_eot(self) -> None:
        if self._phase is _Phase.START:
            # the sender did not see our EOT ACK, or noise: ACK it and ask for block 0 again
            self._count_error("EOT outside a file", timeout=False, reply=False)
            self._out += bytes((ACK, self._request_byte()))
            return
        if not (self.ack_first_eot or self._eot_naked):
            self._eot_naked = True
            self._out.append(NAK)
            return
        assert self._file is not None
        size = self._file.size
        if size is not None and self._received < size:
            raise RemoteProtocolError(
                f"{self._file.name!r} ended after {self._received} of its {size} bytes",
                hint="the sender stopped early; send the file again",
            )
        self._eot_naked = False
        self._out.append(ACK)
        self._events.append(FileReceived(name=self._file.name, size=self._received))
        self._batch_done += self._received
        self._errors = 0
        if self._xmodem:
            self._events.append(BatchComplete())
            self._phase = _Phase.DONE
            return
        self._phase = _Phase.START
        self._out.append(self._request_byte())

    def _on_timeout(self) -> None:
        phase = self._phase
        if phase in (_Phase.HELD_HEADER, _Phase.HELD_DATA):
            return  # the owner decides how long it takes
        if self._purging or self._in:
            self._in.clear()
            if not self._purging:
                self._count_error("a block stopped arriving halfway", timeout=True, reply=False)
            self._purging = False
            self._out.append(self._retry_byte() if phase is _Phase.DATA else self._request_byte())
            return
        if phase is _Phase.START and self._first_start:
            if self._start_requests is not None and self._requests_sent >= self._start_requests:
                raise ProtocolTimeoutError(
                    f"no YMODEM sender answered {self._requests_sent} requests",
                    hint="start the sending side (sb --ymodem, or the IAP menu's upload option)",
                )
            self._requests_sent += 1
            if self._crc_requests is not None and self._requests_sent > self._crc_requests:
                self._crc = False
            self._out.append(self._request_byte())
            return
        self._count_error("the sender went silent", timeout=True, reply=False)
        if phase is _Phase.START or (phase is _Phase.DATA and self._expected == 1 and not self._eot_naked):
            self._out.append(self._request_byte())
        else:
            self._out.append(self._retry_byte() if not self._eot_naked else NAK)

    def _count_error(self, what: str, *, timeout: bool = False, reply: bool = True) -> None:
        """One more consecutive error; at ``max_errors`` abort.  ``reply`` asks for the block again now."""
        self._errors += 1
        self._last_error_timeout = timeout
        log.debug("receive error %d/%d: %s", self._errors, self.max_errors, what)
        if self._errors >= self.max_errors:
            if timeout:
                raise ProtocolTimeoutError(
                    f"gave up after {self._errors} errors in a row (last: {what})",
                    hint="is the sender still running? check the cable and the baud rate",
                )
            raise RemoteProtocolError(
                f"gave up after {self._errors} errors in a row (last: {what})",
                hint="the line may be noisy: try a lower baud rate",
            )
        if reply and not self._purging:
            self._out.append(self._retry_byte())
