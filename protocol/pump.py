"""The driver loop, once, as a generator: both drivers (blocking and asyncio) execute it.

``pump`` yields I/O requests (:class:`Write`, :class:`Read`, :class:`SetBaud`); the driver performs each and
sends back the result (for :class:`Read`, ``(data, now)`` with ``now`` a monotonic time; ``None`` otherwise).
A :class:`Read` may carry bytes to write first (``Read.out``): a block and the wait for its answer are then
one request, one trip through the generators instead of two.  It needs no clock of its own, so it is as
testable as the cores it drives.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

from .errors import LocalProtocolError
from .sansio import ChangeBaud, Connection, Event

__all__ = [
    "CANCEL_CLEANUP_S",
    "IDLE_WAIT_S",
    "POLL_INTERVAL_S",
    "IoRequest",
    "PumpResult",
    "Read",
    "SetBaud",
    "Write",
    "pump",
    "with_deadline",
]

T = TypeVar("T")

POLL_INTERVAL_S = 0.1  # longest a read blocks before the loop re-checks cancel and deadlines
IDLE_WAIT_S = 3600.0  # longest a read blocks when nothing needs control back (no poll) and the core has no timeout
# After a cancel, the driver throws Cancelled into the steps and keeps serving their I/O (an ABORT for the
# device, a switch back to the start rate) for at most this long; then it closes them.
CANCEL_CLEANUP_S = 2.0


@dataclass(slots=True)  # not frozen: built twice per block, and frozen dataclasses construct slowly
class Write:
    data: bytes


@dataclass(slots=True)
class Read:
    """Write ``out`` (if any), then read what arrives within ``wait`` seconds; reply ``(data, now)``."""

    wait: float
    out: bytes = b""


@dataclass(slots=True)
class SetBaud:
    """Drain pending output, then switch the port to ``baud``."""

    baud: int


IoRequest = Write | Read | SetBaud
PumpResult = tuple[bytes, float] | None


def pump(
    conn: Connection,
    start: float,
    *,
    until: Callable[[Event], bool] | None = None,
    on_event: Callable[[Event], None] | None = None,
    poll: float | None = POLL_INTERVAL_S,
) -> Generator[IoRequest, PumpResult, Event | None]:
    """Run ``conn`` until it finishes (returns ``None``) or an event satisfies ``until`` (returns it).

    Other events go to ``on_event``.  ``start`` is the current monotonic time.  Silence is measured from the
    last byte either way; when it reaches ``conn.timeout`` the core gets ``handle_timeout()``.  No read waits
    longer than ``poll`` seconds, so a driver can check a cancel flag and :func:`with_deadline` its deadline;
    ``poll=None`` (nobody needs control back) waits until the core's own timeout: a waiting transfer then
    costs no wake-ups at all.
    """
    # the loop runs once per block on the hot path: bind the methods once
    data_to_send, next_event, receive_data = conn.data_to_send, conn.next_event, conn.receive_data
    last_activity = now = start
    while True:
        out = data_to_send()
        if out:  # written before next_event(), which may raise once these bytes (an abort's CANs) are out
            yield Write(out)
            last_activity = now
            out = b""
        event = next_event()
        while event is not None:
            if isinstance(event, ChangeBaud):
                out = data_to_send()
                if out:
                    yield Write(out)
                yield SetBaud(event.baud)
            if until is not None and until(event):
                return event
            if on_event is not None:
                on_event(event)
            event = next_event()
        # the answer to what came in (parsing it may queue bytes with no event: a NAK): out with the next Read
        out = data_to_send()
        if out:
            last_activity = now
        if conn.finished:
            if out:
                yield Write(out)
            return None
        timeout = conn.timeout
        if timeout is None and until is not None:
            if out:
                yield Write(out)
            # An idle core expects nothing, so the event waited for can never come: fail loudly, never hang.
            raise LocalProtocolError(
                f"{type(conn).__name__} is idle while an event is awaited",
                hint="a command must be started before waiting for its completion",
            )
        wait = IDLE_WAIT_S if poll is None else poll
        if timeout is not None:
            wait = max(0.0, min(wait, last_activity + timeout - now))
        reply = yield Read(wait, out)
        assert reply is not None, "the driver must answer Read with (data, now)"
        data, now = reply
        if data:
            receive_data(data)
            last_activity = now
        elif timeout is not None and now - last_activity >= timeout:
            conn.handle_timeout()
            last_activity = now


def with_deadline(
    steps: Generator[IoRequest, PumpResult, T], deadline: float | None
) -> Generator[IoRequest, PumpResult, T | None]:
    """Run ``steps`` until it returns, or until a read reply shows the monotonic time past ``deadline``
    (then ``steps`` is closed and ``None`` returned).  ``deadline=None`` never stops it."""
    reply: PumpResult = None
    try:
        while True:
            request = steps.send(reply)
            reply = yield request
            if deadline is not None and reply is not None and reply[1] >= deadline:
                return None
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        steps.close()
