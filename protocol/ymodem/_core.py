"""What both YMODEM roles share: buffers, the event queue, aborting, and the sticky error state."""

from __future__ import annotations

from collections import deque

from ..errors import LocalProtocolError, ProtocolError, ProtocolTimeoutError, TransferAborted
from ..sansio import Event
from ._state import Phase
from .constants import ABORT_SEQUENCE


class _Core:
    """What both roles share: buffers, event queue, abort handling and the sticky error state."""

    def __init__(self) -> None:
        self._in = bytearray()
        self._out = bytearray()
        self._held = bytearray()  # a reply waiting for the line to settle (sender)
        self._hold_delay = 0.0  # how long the line must be quiet before a reply goes out (0: at once)
        self._held_for = 0.0  # how long the line must be quiet before what is in _held goes out
        self._events: deque[Event] = deque()
        self._phase = Phase.START
        self._pending_error: ProtocolError | None = None
        self._last_can = False

    # -- Connection --------------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the wire (never ``b""``).  Parsing happens in :meth:`next_event`."""
        if self._phase is Phase.ERROR:
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
        if self._pending_error is not None or self._phase is Phase.ERROR:
            if self._phase is Phase.ERROR:
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
        if self._phase is Phase.ERROR:
            raise LocalProtocolError("the YMODEM transfer already failed; start a new one")
        if self._held:  # the line settled: release the reply (or the abort) that waited for it
            self._out += self._held
            self._held.clear()
            return
        self._raise_pending()
        if self._phase is Phase.DONE:
            return
        try:
            self._on_timeout()
        except ProtocolError as err:
            self._fail(err)
        self._raise_pending()

    @property
    def finished(self) -> bool:
        """True after the batch completed or the transfer failed (the error has been raised)."""
        return self._phase in (Phase.DONE, Phase.ERROR)

    @property
    def trailing_data(self) -> bytes:
        """Bytes that arrived after the batch completed (an IAP prints its menu again, say)."""
        return bytes(self._in) if self._phase is Phase.DONE else b""

    def abort(self, reason: str = "transfer aborted") -> None:
        """Abort: queue CAN CAN for the peer.  Once ``data_to_send()`` has handed them out, the next
        ``next_event()`` / ``handle_timeout()`` raises ``TransferAborted(by_peer=False)``.  A no-op once
        finished.  The sender, like any reply of its, holds the CANs for ``reply_delay`` of quiet line first
        (so keep driving it: ``link.run(core)`` after ``abort()`` sends them and raises)."""
        if self.finished or self._pending_error is not None:
            return
        self._fail(TransferAborted(reason, by_peer=False))

    # -- shared machinery --------------------------------------------------------------------------------
    _TRANSITIONS: dict[Phase, frozenset[Phase]] = {}  # the role's table, from _state

    def _enter(self, phase: Phase) -> None:
        """Change phase, as the role's table allows (``ERROR`` always may)."""
        if phase is not Phase.ERROR and phase not in self._TRANSITIONS.get(self._phase, ()):
            raise LocalProtocolError(f"YMODEM internal error: no transition {self._phase.name} -> {phase.name}")
        self._phase = phase

    def _fail(self, err: ProtocolError) -> None:
        """Enter the error path.  Errors of our own making tell the peer with CAN CAN first."""
        if self._pending_error is not None or self._phase is Phase.ERROR:
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
            self._enter(Phase.ERROR)
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
        return self._phase is Phase.START and bool(getattr(self, "_first_start", False))

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
