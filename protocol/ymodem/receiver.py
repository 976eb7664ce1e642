"""The YMODEM receiver core: a batch of files (or one plain XMODEM file) from a sender."""

from __future__ import annotations

import logging
import re

from ..crc import checksum8, crc16_xmodem
from ..errors import LocalProtocolError, ProtocolTimeoutError, RemoteProtocolError, TransferAborted
from ..sansio import Progress
from ._core import _Core
from ._state import RECEIVER_TRANSITIONS, Phase
from .constants import (
    ACK,
    BLOCK_1K,
    BLOCK_128,
    BLOCK_TIMEOUT_S,
    CAN,
    CHAR_TIMEOUT_S,
    CRC_REQUEST,
    CRC_REQUESTS,
    EOT,
    MAX_ERRORS,
    NAK,
    REQUEST_INTERVAL_S,
    SOH,
    START_REQUESTS,
)
from .events import BatchComplete, FileData, FileReceived, FileStarted
from .header import parse_header

__all__ = ["YmodemReceiver"]

log = logging.getLogger(__name__)

_HEADER_RE = re.compile(rb"[\x01\x02\x04\x18]")  # bytes that can start a frame (noise before them is skipped)


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

    _TRANSITIONS = RECEIVER_TRANSITIONS

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
        if phase in (Phase.HELD_HEADER, Phase.HELD_DATA, Phase.DONE, Phase.ERROR):
            return None
        if self._purging or self._in:
            return self._char_timeout
        if phase is Phase.START and self._first_start:
            return self._request_interval
        return self._block_timeout

    @property
    def crc(self) -> bool:
        """True while blocks carry CRC-16, False after the fall-back to the 8-bit checksum."""
        return self._crc

    # -- owner decisions (hold_header_ack / hold_data_ack) -------------------------------------------------
    def accept_file(self) -> None:
        """Release the held block-0 ACK (and ask for the first data block)."""
        if self._phase is not Phase.HELD_HEADER:
            raise LocalProtocolError("accept_file() without a held block 0")
        self._enter(Phase.DATA)
        self._out += bytes((ACK, self._request_byte()))

    def reject_file(self, reason: str) -> None:
        """Refuse the file whose block 0 is held: CAN CAN goes out, then ``TransferAborted(by_peer=False)``
        with ``reason`` as its message is raised (see :meth:`abort`)."""
        if self._phase is not Phase.HELD_HEADER:
            raise LocalProtocolError("reject_file() without a held block 0")
        self._fail(TransferAborted(reason, by_peer=False))

    def accept_data(self) -> None:
        """Release the held ACK of the last data block."""
        if self._phase is not Phase.HELD_DATA:
            raise LocalProtocolError("accept_data() without a held data block")
        self._enter(Phase.DATA)
        self._out.append(ACK)

    def reject_data(self, reason: str) -> None:
        """Refuse the held data block (a flash write failed, say): CAN CAN, then
        ``TransferAborted(by_peer=False)``."""
        if self._phase is not Phase.HELD_DATA:
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
            if phase in (Phase.HELD_HEADER, Phase.HELD_DATA):
                if b"\x18\x18" in buf:
                    raise self._peer_cancelled()
                del buf[: max(0, len(buf) - 1) if buf.endswith(b"\x18") else len(buf)]
                return
            if phase is Phase.DONE or not buf:
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
        if self._phase is Phase.START:
            if seq == 0:
                self._on_header(payload)
                return
            if seq == 1 and self._first_start:
                log.info("block 1 without a block 0: a plain XMODEM sender")
                self._xmodem = True
                self._first_start = False
                self._file = FileStarted(name="", size=None)
                self._events.append(self._file)
                self._enter(Phase.DATA)
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
            self._enter(Phase.DONE)
            return
        self._file = header
        self._received = 0
        self._expected = 1
        self._events.append(header)
        if self.hold_header_ack:
            self._enter(Phase.HELD_HEADER)
        else:
            self._enter(Phase.DATA)
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
            self._enter(Phase.HELD_DATA)
        else:
            self._out.append(ACK)

    def _on_eot(self) -> None:
        if self._phase is Phase.START:
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
            self._enter(Phase.DONE)
            return
        self._enter(Phase.START)
        self._out.append(self._request_byte())

    def _on_timeout(self) -> None:
        phase = self._phase
        if phase in (Phase.HELD_HEADER, Phase.HELD_DATA):
            return  # the owner decides how long it takes
        if self._purging or self._in:
            self._in.clear()
            if not self._purging:
                self._count_error("a block stopped arriving halfway", timeout=True, reply=False)
            self._purging = False
            self._out.append(self._retry_byte() if phase is Phase.DATA else self._request_byte())
            return
        if phase is Phase.START and self._first_start:
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
        if phase is Phase.START or (phase is Phase.DATA and self._expected == 1 and not self._eot_naked):
            self._out.append(self._request_byte())
        else:
            self._out.append(self._retry_byte() if not self._eot_naked else NAK)

    def _count_error(self, what: str, *, timeout: bool = False, reply: bool = True) -> None:
        """One more consecutive error; at ``max_errors`` abort.  ``reply`` asks for the block again now."""
        self._errors += 1
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
