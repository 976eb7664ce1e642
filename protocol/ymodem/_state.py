"""The one place that knows which phase may follow which, for both YMODEM roles (h11's ``_state.py`` is the model).

A core changes phase only through ``_Core._enter``, which checks the table of its role; any other change is
a bug of ours and raises :class:`~protocol.errors.LocalProtocolError`.  ``ERROR`` may follow any phase.
"""

from __future__ import annotations

from enum import Enum, auto

__all__ = ["RECEIVER_TRANSITIONS", "SENDER_TRANSITIONS", "Phase"]


class Phase(Enum):
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


_ = Phase
SENDER_TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    # a 'C'/NAK arrived and the line settled: block 0 of the next file, or the empty one that ends the batch
    _.START: frozenset({_.HEADER_ACK, _.FINAL_ACK}),
    # ACKed: wait for the 'C' before block 1; or NAKed as a duplicate after a lost ACK: go on with the data
    _.HEADER_ACK: frozenset({_.DATA_START, _.BLOCK_ACK, _.EOT_ACK}),
    # the 'C' (or silence): block 1, or EOT at once for an empty file
    _.DATA_START: frozenset({_.BLOCK_ACK, _.EOT_ACK}),
    # ACKed (or skipped as a duplicate): the next block or EOT; a wrong skip steps back to the previous block
    _.BLOCK_ACK: frozenset({_.BLOCK_ACK, _.EOT_ACK, _.HEADER_ACK}),
    # the file is acknowledged: wait for the 'C' that asks for the next block 0
    _.EOT_ACK: frozenset({_.START}),
    # ACKed, or silence after it (every file was acknowledged already)
    _.FINAL_ACK: frozenset({_.DONE}),
    _.DONE: frozenset(),
}

RECEIVER_TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    # block 0: into the file (or hold its ACK for the owner); the empty block 0 ends the batch; block 1 with no
    # block 0 before it: a plain XMODEM file
    _.START: frozenset({_.DATA, _.HELD_HEADER, _.DONE}),
    # a block held for the owner; the file's EOT: the next block 0 (or, for XMODEM, the end)
    _.DATA: frozenset({_.HELD_DATA, _.START, _.DONE}),
    _.HELD_HEADER: frozenset({_.DATA}),  # accept_file()
    _.HELD_DATA: frozenset({_.DATA}),  # accept_data()
    _.DONE: frozenset(),
}
