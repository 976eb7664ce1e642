"""The device-side driver loop: runs a sans-I/O core on the emulated chip, as :mod:`protocol.pump` runs one on
the host.

Both personalities drive their protocol cores through one :class:`CoreDriver` (the OTA bootloader its
:class:`~protocol.update.device.DeviceConnection`, the IAP menu its YMODEM receiver and sender), so what a
core's timeouts promise holds once for every firmware and every transport (pty, ``socket://``):

* bytes the UART received go to ``receive_data`` (:meth:`CoreDriver.feed`), what the core wants sent goes to
  the UART (:meth:`CoreDriver.flush`);
* silence is measured from the later of the last byte received and the last byte sent, as the host's pump
  measures it, or from a baud switch.  A core may narrow that: ``timer_counts_output = False`` (the update
  protocol's device core: its timeouts are about the host, and a heartbeat LOG says nothing about whether the
  host is still there) and ``timer_counts_input = False`` (a deadline: received bytes do not restart the
  clock, as in the device core's baud-sync window).  When silence reaches ``core.timeout``, the core gets
  ``handle_timeout()`` (:meth:`CoreDriver.poll`,
  called from the personality's ``on_idle``).  A spell in which the firmware was busy (a blocking flash
  operation: the UART was not serviced) is not silence: the firmware could not have heard anything, so the
  clock starts again when it comes back (bytes that arrived meanwhile are in the RX ring and read first);
* ``ChangeBaud`` switches the UART (after the pending output has left), whether the core agreed a new rate
  or reverted an unfollowed switch, and flushes its receiver: bytes that arrived before the switch were sent
  at the old rate and must not pass for a good frame at the new one.

Other events go back to the personality (:meth:`CoreDriver.next_event`); exceptions a core raises from
``next_event`` (a YMODEM transfer that failed) propagate to it too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from protocol.sansio import ChangeBaud, Connection, Event

if TYPE_CHECKING:
    from .device import DeviceContext

__all__ = ["BITS_PER_BYTE", "CoreDriver"]

log = logging.getLogger(__name__)

BITS_PER_BYTE = 10  # 8N1: how long output takes to leave the UART


class CoreDriver:
    """Drives ``core`` from the device thread of ``ctx`` (see the module docstring)."""

    def __init__(self, core: Connection, ctx: DeviceContext) -> None:
        self.core = core
        self._ctx = ctx
        self.last_activity = ctx.now()
        self.tx_free_at = self.last_activity  # when the output handed to the UART so far has left it
        self.timeouts = 0  # handle_timeout() calls made (for tests and logs)
        self._counts_output = bool(getattr(core, "timer_counts_output", True))

    def feed(self, data: bytes) -> None:
        """Bytes the UART received (they restart the silence timer unless the core's ``timer_counts_input``
        says that its timeout is a deadline, as the device core's baud-sync window is)."""
        if data:
            self.core.receive_data(data)
            if getattr(self.core, "timer_counts_input", True):
                self.last_activity = self._ctx.now()

    def flush(self) -> int:
        """Hand what the core wants to send to the UART; returns how many bytes."""
        data = self.core.data_to_send()
        if data:
            ctx = self._ctx
            now = ctx.now()
            if getattr(ctx, "paced", True):  # an unthrottled line sends at once (a READ reply is 4 KiB)
                self.tx_free_at = max(now, self.tx_free_at) + len(data) * BITS_PER_BYTE / max(1, ctx.baud)
            if self._counts_output:
                self.last_activity = now
            ctx.write(data)
        return len(data)

    def next_event(self) -> Event | None:
        """The core's next event for the personality (output is flushed first; ``ChangeBaud`` is handled
        here: the UART switches once what was queued before it has left)."""
        while True:
            self.flush()
            event = self.core.next_event()
            if not isinstance(event, ChangeBaud):
                self.flush()
                return event
            self._ctx.log.info("UART switching to %d baud", event.baud)
            self._ctx.set_baud(event.baud)
            # what arrived before the switch was sent at the old rate: it must not pass for proof of the new one
            dropped = self._ctx.discard_input()
            if dropped:
                self._ctx.log.info("dropped %d bytes received before the baud switch", dropped)
            self.last_activity = self._ctx.now()

    def silence(self, now: float) -> float:
        """Seconds the line has been quiet as far as the firmware can tell."""
        return now - max(self.last_activity, self._ctx.busy_ended_at())

    def poll(self, now: float) -> bool:
        """Give the core its timeout if the line was silent for ``core.timeout``.  True if it got one."""
        timeout = self.core.timeout
        if timeout is None or self.silence(now) < timeout:
            return False
        if self._ctx.input_waiting():
            return False  # the line was not silent: the firmware was late to look (it reads them next)
        self.timeouts += 1
        self.last_activity = now
        self.core.handle_timeout()
        return True
