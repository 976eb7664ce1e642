"""The YMODEM phase tables (``protocol/ymodem/_state.py``): complete, and the only way a core changes phase."""

from __future__ import annotations

import pytest

from protocol.errors import LocalProtocolError
from protocol.ymodem import YmodemFile, YmodemReceiver, YmodemSender
from protocol.ymodem._state import RECEIVER_TRANSITIONS, SENDER_TRANSITIONS, Phase


def test_every_phase_a_table_leads_to_has_its_own_row() -> None:
    for table in (SENDER_TRANSITIONS, RECEIVER_TRANSITIONS):
        for targets in table.values():
            assert targets <= set(table), targets - set(table)
        assert Phase.ERROR not in table  # ERROR may follow anything and leads nowhere
        assert table[Phase.DONE] == frozenset()


def test_a_phase_change_the_table_does_not_allow_is_refused() -> None:
    sender = YmodemSender([YmodemFile("a", b"x")])
    with pytest.raises(LocalProtocolError, match="START -> DONE"):
        sender._enter(Phase.DONE)
    receiver = YmodemReceiver()
    with pytest.raises(LocalProtocolError, match="START -> BLOCK_ACK"):
        receiver._enter(Phase.BLOCK_ACK)
    receiver._enter(Phase.ERROR)  # always allowed
