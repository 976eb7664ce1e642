"""The contract between a sans-I/O protocol core and the drivers that put it on a wire.

A core never touches a port, a clock or a thread.  The driver loop is::

    while not conn.finished:
        port.write(conn.data_to_send())
        while (event := conn.next_event()) is not None:
            ...                                  # dispatch
        data = port.read(until=silence >= conn.timeout)
        if data:
            conn.receive_data(data)
        else:
            conn.handle_timeout()                # never receive_data(b"")

``timeout`` is the silence the core tolerates *now* (it changes per phase: a block-0 ACK that waits for a
flash erase is allowed far longer than a data ACK).  Silence is measured from the later of the last byte
received and the last byte written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ChangeBaud", "Connection", "DeviceLog", "Event", "Progress"]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event a core emits."""


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    """Work advanced.  ``phase`` names the work ("erase", "transfer", "verify", ...); ``total`` may be 0 when
    unknown.  Rates and ETAs need a clock, so drivers add them (see :mod:`protocol.progress`)."""

    phase: str
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class DeviceLog(Event):
    """A log line the device emitted (may arrive between any two frames)."""

    level: int
    text: str
    timestamp_ms: int = 0


@dataclass(frozen=True, kw_only=True)
class ChangeBaud(Event):
    """Both ends agreed on a new line rate.  The driver drains its output, then switches the port."""

    baud: int


@runtime_checkable
class Connection(Protocol):
    """What every sans-I/O core offers a driver."""

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the wire.  Never called with ``b""``."""

    def handle_timeout(self) -> None:
        """The wire was silent for :attr:`timeout` seconds."""

    def data_to_send(self) -> bytes:
        """Bytes the core wants written now (``b""`` if none)."""

    def next_event(self) -> Event | None:
        """The next event, or ``None`` when the core needs more data (or a timeout) to go on."""

    @property
    def timeout(self) -> float | None:
        """Seconds of silence tolerated in the current phase; ``None`` waits forever."""

    @property
    def finished(self) -> bool:
        """True once the conversation is over (successfully or not)."""
