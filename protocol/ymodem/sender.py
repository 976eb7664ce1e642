"""The YMODEM sender core: a batch of files to a receiver that asks for them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..errors import ProtocolTimeoutError, RemoteProtocolError
from ..sansio import Progress
from ._core import _Core
from ._state import SENDER_TRANSITIONS, Phase
from .constants import (
    ACK,
    ACK_TIMEOUT_S,
    BLOCK_1K,
    BLOCK_128,
    CAN,
    CRC_REQUEST,
    DUPLICATE_NAKS_BEFORE_SKIP,
    EOT,
    FINAL_ACK_RESENDS,
    FINAL_ACK_TIMEOUT_S,
    HEADER_ACK_TIMEOUT_S,
    LOSSES_BEFORE_HOLDING,
    MAX_RETRIES,
    NAK,
    PAD,
    REPLY_DELAY_S,
    REQUEST_SETTLE_QUIET_S,
    REQUEST_SETTLE_S,
    START_TIMEOUT_S,
)
from .events import BatchComplete, FileSent, FileStarted
from .header import YmodemFile, encode_block, encode_header

__all__ = ["YmodemSender"]

log = logging.getLogger(__name__)


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
    ``FINAL_ACK_TIMEOUT_S`` after it is answered by sending it again (``rb`` may have flushed it with its
    input), :data:`FINAL_ACK_RESENDS` times; silence after that completes the batch (with a warning in the
    log): lrzsz's ``rb`` sometimes exits before its last ACK leaves the tty.

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

    _TRANSITIONS = SENDER_TRANSITIONS

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
        self._final_resends = 0  # the end-of-batch block sent again after silence
        self._suspect = False  # this block's ACK may have been lost
        self._dup_naks = 0
        self._probing: tuple[Phase, int, int, int, bytes] | None = None  # state to step back to
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
        if phase is Phase.START:
            return self._start_timeout if self._first_start else self._ack_timeout
        if phase is Phase.HEADER_ACK:
            return self._header_ack_timeout
        if phase is Phase.FINAL_ACK:
            return min(self._ack_timeout, FINAL_ACK_TIMEOUT_S)
        if phase in (Phase.DONE, Phase.ERROR):
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
        if len(buf) == 1 and buf[0] == ACK and self._phase is Phase.BLOCK_ACK and not self._held:
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
        while i < n and not self._events and self._phase not in (Phase.DONE, Phase.ERROR):
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
            if phase in (Phase.START, Phase.DATA_START):
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
        if phase is Phase.HEADER_ACK:
            file = self._files[self._index]
            self._events.append(FileStarted(name=file.name, size=len(file.data), mtime=file.mtime, mode=file.mode))
            self._reset_errors()
            self._enter(Phase.DATA_START)
        elif phase is Phase.BLOCK_ACK:
            self._next_after_ack()
            return True
        elif phase is Phase.EOT_ACK:
            file = self._files[self._index]
            self._events.append(FileSent(name=file.name, size=len(file.data)))
            self._index += 1
            self._reset_errors()
            self._enter(Phase.START)
        elif phase is Phase.FINAL_ACK:
            self._events.append(BatchComplete())
            self._enter(Phase.DONE)
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
        if self._phase is Phase.START:
            self._first_start = False
            self._send_header()
        else:
            self._send_next_block()

    def _on_request(self, *, clean: bool) -> None:
        """A NAK (``clean``) or a 'C' while a block or EOT is outstanding."""
        self._answering_request = True
        if self._phase is Phase.EOT_ACK:  # first EOT NAKed (normal), or a 'C' while our EOT is unanswered
            self._count_failure(timeout=False)
            self._out.append(EOT)
            return
        if self._phase is Phase.BLOCK_ACK:
            self._hold_replies()
        if not clean:
            self._suspect = True
        elif self._probing is not None and self._phase is Phase.BLOCK_ACK:
            # the block after a skipped one was refused: the skip was wrong, send the previous block again
            phase, self._seq, self._offset, self._cur_len, self._frame = self._probing
            self._enter(phase)
            self._probing = None
            self._suspect = False
            self._dup_naks = 0
            self._done_bytes -= self._cur_len
        elif self._suspect and self._skip_after and self._phase in (Phase.HEADER_ACK, Phase.BLOCK_ACK):
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
        if self._phase is Phase.HEADER_ACK:
            file = self._files[self._index]
            self._events.append(FileStarted(name=file.name, size=len(file.data), mtime=file.mtime, mode=file.mode))
        else:
            self._block_delivered()
        self._send_next_block()
        self._probing = snapshot if self._phase is Phase.BLOCK_ACK else None

    def _on_timeout(self) -> None:
        if self._settling is not None:
            self._answer_request()
            return
        phase = self._phase
        if phase is Phase.START:
            if self._first_start:
                raise ProtocolTimeoutError(
                    f"the receiver never asked for the file (no 'C' within {self._start_timeout:g} s)",
                    hint="start the receiving side first (rb --ymodem, or the IAP menu's download option)",
                )
            self._count_failure(timeout=True)  # receivers repeat their 'C' themselves
            return
        if phase is Phase.FINAL_ACK and self._final_resends < FINAL_ACK_RESENDS:
            # rb flushes its input right after its 'C': under load the block can land before the flush and
            # vanish, and rb then waits 10 s before asking again; a resend reaches it while it waits
            self._final_resends += 1
            self._out += self._frame
            return
        if phase is Phase.FINAL_ACK:
            log.warning("no ACK for the end-of-batch block; every file was acknowledged, so the batch is done")
            self._events.append(BatchComplete())
            self._enter(Phase.DONE)
            return
        self._count_failure(timeout=True)
        self._suspect = True
        if phase is Phase.BLOCK_ACK:
            self._hold_replies()
        if phase is Phase.DATA_START:
            self._send_next_block()  # the 'C' got lost; a receiver that waits for block 1 takes it anyway
        elif phase is Phase.EOT_ACK:
            self._out.append(EOT)
        else:
            self._out += self._frame

    # -- output -------------------------------------------------------------------------------------------
    def _send_header(self) -> None:
        if self._index < len(self._files):
            file = self._files[self._index]
            info = encode_header(file.name, len(file.data), file.mtime, file.mode)
            self._enter(Phase.HEADER_ACK)
        else:
            info = b""
            self._enter(Phase.FINAL_ACK)
        size = BLOCK_128 if len(info) <= BLOCK_128 else BLOCK_1K
        self._seq = 0
        self._offset = 0
        self._cur_len = 0
        self._probing = None
        self._frame = encode_block(0, info.ljust(size, b"\0"), self._crc)
        self._out += self._frame

    def _send_next_block(self) -> None:
        """Send the block after the last delivered one, or EOT at the end of the file."""
        self._probing = None
        data = self._files[self._index].data
        remaining = len(data) - self._offset
        if remaining <= 0:
            self._enter(Phase.EOT_ACK)
            self._out.append(EOT)
            return
        size = BLOCK_128 if (self._block_size == BLOCK_128 or remaining <= BLOCK_128) else BLOCK_1K
        chunk = data[self._offset : self._offset + size]
        self._cur_len = len(chunk)
        if self._cur_len < size:
            chunk = chunk + bytes([PAD]) * (size - self._cur_len)
        self._seq += 1
        self._frame = encode_block(self._seq, chunk, self._crc)
        self._enter(Phase.BLOCK_ACK)
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
        if self._retries < self._max_retries:
            return
        what = {
            Phase.START: "the request for the next file",
            Phase.HEADER_ACK: "block 0",
            Phase.DATA_START: "the request for the first data block",
            Phase.EOT_ACK: "the end of file (EOT)",
            Phase.FINAL_ACK: "the end-of-batch block",
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
