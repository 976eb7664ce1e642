"""Every byte and number of classic YMODEM, named after what it means (timeouts are float seconds of silence)."""

from __future__ import annotations

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
FINAL_ACK_RESENDS = 1  # times the end-of-batch block is sent again after that silence, before it ends the batch
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
