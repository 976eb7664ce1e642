"""Every number of the stm32ota update protocol, named after what it means.

Timeouts are float seconds of *silence* (the drivers measure it from the last byte either way).  Sizes are
bytes.  ``docs/protocol.md`` quotes these values; a test keeps the two in step.
"""

from __future__ import annotations

from ..baud import DEFAULT_BAUD  # the start rate, and the rate a failed baud switch falls back to

__all__ = [
    "ACK_TIMEOUT_BASE_S",
    "BAUD_REVERT_MARGIN_S",
    "BAUD_SYNC_REPLY_TIMEOUT_S",
    "BAUD_SYNC_RETRIES",
    "BAUD_SYNC_WINDOW_S",
    "BUSY_REPORT_INTERVAL_S",
    "BUSY_TIMEOUT_S",
    "COMMAND_RETRIES",
    "COMMAND_TIMEOUT_S",
    "DATA_IDLE_TIMEOUT_S",
    "DATA_RETRIES",
    "DEFAULT_BAUD",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_DEFLATE_WBITS",
    "DEFAULT_WINDOW",
    "DIGEST_SIZE",
    "FRAME_HEADER_SIZE",
    "FRAME_OVERHEAD",
    "FRAME_STALL_TIMEOUT_S",
    "FRAME_TRAILER_SIZE",
    "INFO_PIECE_MIN",
    "INFO_PIECE_RETRIES",
    "INFO_PIECE_START",
    "INFO_RESTARTS",
    "KEY_HASH_SIZE",
    "MAX_BLOCK_RETRANSMITS",
    "MAX_BLOCK_SIZE",
    "MAX_DEFLATE_WBITS",
    "MAX_PAYLOAD",
    "MAX_WINDOW",
    "MIN_BLOCK_SIZE",
    "MIN_DEFLATE_WBITS",
    "PRIMARY_SLOT",
    "PROTOCOL_VERSION",
    "SECONDARY_SLOT",
    "SOF",
    "UID_SIZE",
]

PROTOCOL_VERSION = 0x0102  # major.minor as u16: 1.2 (1.1: the PING version and INFO in pieces; 1.2: capabilities)

# --- framing ------------------------------------------------------------------------------------------------
SOF = 0xA5  # start-of-frame marker
FRAME_HEADER_SIZE = 7  # SOF, type, seq, length (u16 LE), header CRC-16 (u16 LE)
FRAME_TRAILER_SIZE = 2  # payload CRC-16 (u16 LE)
FRAME_OVERHEAD = FRAME_HEADER_SIZE + FRAME_TRAILER_SIZE

# --- data phase ---------------------------------------------------------------------------------------------
MIN_BLOCK_SIZE = 64
DEFAULT_BLOCK_SIZE = 1024  # 1 KiB: 11 bytes of framing = 1.06 % overhead
MAX_BLOCK_SIZE = 8192
# the longest payload any frame may carry (the largest block, with room to spare); longer headers are noise
MAX_PAYLOAD = MAX_BLOCK_SIZE + 16
DEFAULT_WINDOW = 16  # blocks in flight when neither side asks for less
MAX_WINDOW = 127  # the 8-bit block number must name a block unambiguously within +-128 of the base
MAX_BLOCK_RETRANSMITS = 16  # one block resent more often than this: the link is too noisy to go on
DATA_RETRIES = 6  # consecutive data-phase timeouts with no progress before giving up

# --- deflate ------------------------------------------------------------------------------------------------
MIN_DEFLATE_WBITS = 9  # zlib cannot produce raw deflate with an 8-bit window
DEFAULT_DEFLATE_WBITS = 12  # 4 KiB history: fits a small C inflater (uzlib, miniz) on any STM32
MAX_DEFLATE_WBITS = 15

# --- timing -------------------------------------------------------------------------------------------------
COMMAND_TIMEOUT_S = 0.5  # silence before a command is sent again (same sequence number)
COMMAND_RETRIES = 5  # resends of one command before ProtocolTimeoutError
BUSY_REPORT_INTERVAL_S = 1.0  # a busy device sends a PROGRESS frame at least this often
BUSY_TIMEOUT_S = 3.0  # silence the host tolerates after a PROGRESS frame (3 missed reports)
ACK_TIMEOUT_BASE_S = 0.5  # data-phase silence, plus two block times at the current baud
BAUD_SYNC_WINDOW_S = 1.0  # device: silence at the new rate after which it reverts to the old rate
BAUD_SYNC_REPLY_TIMEOUT_S = 0.15  # host: wait for the SYNC reply at the new rate
BAUD_SYNC_RETRIES = 3  # SYNC tries at the new rate (all inside BAUD_SYNC_WINDOW_S) before falling back
BAUD_REVERT_MARGIN_S = 0.25  # host: extra silence after falling back, so the device has surely reverted
# receiver: silence with a frame half received (a torn header, a cut cable) after which the frame is given up
# and the buffer rescanned; below COMMAND_TIMEOUT_S, so the command a host resends after the tear is heard
FRAME_STALL_TIMEOUT_S = 0.25
# device: data-phase silence from the host (plus 2 block times at the current baud) after which it is taken
# for gone and the data phase ends (the resume record stays).  A live host is never quiet that long: at most a
# credit hold (a sector erase, < BUSY_TIMEOUT_S) plus its BUSY_TIMEOUT_S before it probes.
DATA_IDLE_TIMEOUT_S = 10.0

# --- the handshake (PING, then INFO in pieces) ----------------------------------------------------------------
INFO_PIECE_START = 128  # bytes of INFO record the host asks for first (a 300-byte record: three round trips)
INFO_PIECE_MIN = 32  # the host halves a piece after each failed try, down to this (63 bytes round trip)
INFO_PIECE_RETRIES = 15  # resends of one INFO piece (the device answered PING, so it is there)
INFO_RESTARTS = 3  # the record changed between pieces this often: give up

# --- INFO field sizes ---------------------------------------------------------------------------------------
UID_SIZE = 12  # the STM32 96-bit unique device id
DIGEST_SIZE = 32  # SHA-256 of the (uncompressed) image
KEY_HASH_SIZE = 32  # SHA-256 of a trusted public key

# --- slots ----------------------------------------------------------------------------------------------------
PRIMARY_SLOT = 0  # the slot the application runs from (INFO's slot table, ERASE, READ)
SECONDARY_SLOT = 1  # the slot an update is written to and swapped in from
