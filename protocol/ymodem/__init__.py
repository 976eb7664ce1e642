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

from .constants import (
    ABORT_SEQUENCE,
    ACK,
    ACK_TIMEOUT_S,
    BLOCK_1K,
    BLOCK_128,
    BLOCK_TIMEOUT_S,
    CAN,
    CHAR_TIMEOUT_S,
    CRC_REQUEST,
    CRC_REQUESTS,
    DUPLICATE_NAKS_BEFORE_SKIP,
    EOT,
    FINAL_ACK_RESENDS,
    FINAL_ACK_TIMEOUT_S,
    HEADER_ACK_TIMEOUT_S,
    LOSSES_BEFORE_HOLDING,
    MAX_ERRORS,
    MAX_RETRIES,
    NAK,
    PAD,
    REPLY_DELAY_S,
    REQUEST_INTERVAL_S,
    REQUEST_SETTLE_QUIET_S,
    REQUEST_SETTLE_S,
    SOH,
    START_REQUESTS,
    START_TIMEOUT_S,
    STX,
)
from .events import BatchComplete, FileData, FileReceived, FileSent, FileStarted
from .header import YmodemFile, encode_header, parse_header, safe_filename
from .receiver import YmodemReceiver
from .sender import YmodemSender

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
    "FINAL_ACK_RESENDS",
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
