"""The emulated UART line between the host and the device: pacing, the RX ring, baud switches, faults.

The host opens an ordinary serial port, the line's :class:`~emulator.endpoints.Endpoint` (a pty by default, or
``socket://127.0.0.1:PORT``).  The :class:`Line` sits between that endpoint and the device and behaves like a
UART behind a USB-UART adapter:

* **pacing**: both directions carry ``baud / 10`` bytes per second (8N1); a byte reaches the far end one
  character time after the previous one.  ``pacing=False`` (or ``baud=0`` on the command line) is unthrottled.
* **turnaround latency**: the first byte of each burst (after the line was idle) is delayed by
  ``latency_s`` more; USB-UART adapters add 1-16 ms there.
* **a bounded RX buffer**: the endpoint is always drained into the line at once (the host never blocks), but
  the device consumes from a ring of ``rx_buffer`` bytes; bytes that arrive while the device is busy
  (:meth:`Line.busy`: a flash erase or program, CPU work) and do not fit the ring are lost (``overruns``
  counts them), as with a real UART overrun.  Outside busy periods the firmware keeps up with the line
  (Python's scheduling jitter in the emulator is not the firmware's fault).  An unthrottled line is
  infinitely fast only while the firmware listens: during a busy spell it carries what a line at the UART's
  rate would, and the rest stays on the wire.
* **baud changes**: the device's rate switches after its pending output has drained
  (:meth:`Line.set_baud`); the host's rate is the endpoint's (a pty's termios).  While the two differ, what
  crosses the line either way is noise (fewer characters where the sender is the faster side), including
  host bytes still on the wire when the device switches.  On a ``socket://`` endpoint there is no host rate:
  the host is assumed to follow.
* **faults** (:mod:`emulator.faults`): bit flips, drops and noise bursts on both directions, a reset after N
  received bytes, a device that falls silent after N sent bytes.

The device side (:meth:`read`, :meth:`write`, :meth:`set_baud`) is used from the device thread only.  The
line's own two threads (host to device, device to host) record an exception that kills them in
:attr:`Line.error`, as the runtime records a firmware crash; :meth:`emulator.device.Device.raise_if_crashed`
reports either.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .endpoints import Endpoint, PtyEndpoint
from .faults import FaultPlan, LineFaults

__all__ = [
    "BITS_PER_CHAR",
    "DEFAULT_BAUD",
    "DEFAULT_RX_BUFFER",
    "Line",
    "LineStats",
]

log = logging.getLogger(__name__)

DEFAULT_BAUD = 115200
DEFAULT_RX_BUFFER = 2048  # bytes the device's UART ring holds while the firmware is busy
BITS_PER_CHAR = 10  # 8N1: start + 8 data + stop
POLL_S = 0.02  # how often the line threads re-check stop flags and noise timers
MIN_WAIT_S = 0.0005  # shortest sleep while pacing (below this, sleeps are pure scheduling noise)
BAUD_SWITCH_TIMEOUT_S = 30.0
HOST_STALL_S = 0.5  # how long output waits for a host that is not reading before it is lost


@dataclass
class LineStats:
    """Counters, for tests and the CLI's exit summary."""

    host_bytes: int = 0  # bytes the host wrote (drained from the endpoint)
    rx_bytes: int = 0  # bytes that reached the device's RX ring
    tx_bytes: int = 0  # bytes the device sent that reached the host
    overruns: int = 0  # bytes lost because the RX ring was full
    rx_garbled: int = 0  # host bytes that arrived as noise (baud mismatch)
    tx_garbled: int = 0  # device bytes that arrived as noise (baud mismatch)
    tx_lost: int = 0  # device bytes nobody took (host not reading, muted)


class _Chunk:
    """Host bytes in flight: byte ``i`` reaches the device at ``start + (i + 1) * char_time``."""

    __slots__ = ("char_time", "data", "start", "taken")

    def __init__(self, start: float, char_time: float, data: bytes) -> None:
        self.start = start
        self.char_time = char_time
        self.data = data
        self.taken = 0

    def arrived(self, now: float) -> int:
        if self.char_time <= 0:
            return len(self.data) if now >= self.start else 0
        return max(0, min(len(self.data), int((now - self.start) / self.char_time)))

    @property
    def end(self) -> float:
        return self.start + len(self.data) * self.char_time


class _BaudMark:
    __slots__ = ("baud", "done")

    def __init__(self, baud: int) -> None:
        self.baud = baud
        self.done = threading.Event()


class Line:
    """A paced, fault-injecting UART between ``endpoint`` (the host) and the device."""

    def __init__(
        self,
        endpoint: Endpoint | None = None,
        *,
        baud: int = DEFAULT_BAUD,
        pacing: bool = True,
        check_baud: bool = True,
        latency_s: float = 0.0,
        rx_buffer: int = DEFAULT_RX_BUFFER,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if baud <= 0:
            raise ValueError("baud must be positive (use pacing=False for an unthrottled line)")
        if rx_buffer <= 0:
            raise ValueError("rx_buffer must be positive")
        self._clock = clock
        self.endpoint = endpoint if endpoint is not None else PtyEndpoint()
        self.initial_baud = baud
        self._baud = baud
        self.pacing = pacing
        self.check_baud = check_baud
        self.latency_s = max(0.0, latency_s)
        self.rx_buffer = rx_buffer
        self.faults = faults if faults is not None else FaultPlan()
        self.rx_faults = LineFaults(self.faults, "rx")
        self.tx_faults = LineFaults(self.faults, "tx")
        self.stats = LineStats()
        self.on_reset_fault: Callable[[], None] | None = None
        self._reset_armed = self.faults.reset_after is not None
        self._cond = threading.Condition()
        self._inflight: collections.deque[_Chunk] = collections.deque()
        self._rx = bytearray()
        self._rx_free_at = 0.0
        self._tx_cond = threading.Condition()
        self._tx: collections.deque[tuple[bytes, float] | _BaudMark] = collections.deque()
        self._tx_free_at = 0.0
        self._sent_by_device = 0
        self._host_gone = False
        self._busy = 0
        self._busy_since = 0.0  # when the current busy spell began
        self._busy_arrived = 0  # bytes an unthrottled line delivered during it
        self._ring_base = 0  # bytes in _rx when the spell began: the firmware had already taken them
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None  # what killed a line thread, if anything did
        self.endpoint.set_host_baud(baud)

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """What the host opens."""
        return self.endpoint.url

    def start(self) -> None:
        if self._threads:
            return
        for target, name in ((self._reader, "emulator-line-rx"), (self._writer, "emulator-line-tx")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self._tx_cond:
            self._tx_cond.notify_all()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(2.0)
        self.endpoint.close()

    def __enter__(self) -> Line:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- rates -----------------------------------------------------------------------------------------------
    @property
    def baud(self) -> int:
        """The device's current rate."""
        return self._baud

    def _char_time(self) -> float:
        return BITS_PER_CHAR / self._baud if self.pacing else 0.0

    def rates_match(self) -> bool:
        """True if the host's port is at the device's rate (or the transport has no rate)."""
        return self._host_rate_if_different() is None

    def _host_rate_if_different(self) -> int | None:
        if not self.check_baud:
            return None
        host = self.endpoint.host_baud()
        return None if host is None or host == self._baud else host

    @staticmethod
    def _garbled_count(n: int, sender_rate: int, receiver_rate: int) -> int:
        """How many characters a UART at ``receiver_rate`` makes of ``n`` sent at ``sender_rate``: a faster
        sender's characters merge (one per start bit the receiver catches), a slower one's each still
        start one character."""
        if sender_rate <= receiver_rate:
            return n
        return max(1, round(n * receiver_rate / sender_rate))

    # -- device side -----------------------------------------------------------------------------------------
    def read(self, timeout: float) -> bytes:
        """What the device's UART received, waiting up to ``timeout`` seconds for the first byte."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                now = self._clock()
                self._settle(now)
                if self._rx:
                    data = bytes(self._rx)
                    self._rx.clear()
                    return data
                if now >= deadline or self._stop.is_set():
                    return b""
                wait = deadline - now
                if self._inflight:
                    chunk = self._inflight[0]
                    next_at = chunk.start + (chunk.taken + 1) * chunk.char_time
                    wait = min(wait, max(MIN_WAIT_S, next_at - now))
                self._cond.wait(wait)

    def _settle(self, now: float) -> None:
        """Move bytes that have reached the device by ``now`` into the RX ring (overflow is lost).

        An unthrottled line is infinitely fast only while the firmware services its UART: during a busy spell
        it carries what a line at the UART's rate would (``baud / 10`` bytes a second from the spell's start),
        and the rest stays on the wire until the firmware is back.  Otherwise any busy spell, however short,
        would overrun whatever the host had sent, which no line at the UART's rate can do."""
        budget: int | None = None
        if self._busy and not self.pacing:
            allowed = int((now - self._busy_since) * self._baud / BITS_PER_CHAR + 1e-6)
            budget = max(0, allowed - self._busy_arrived)
        while self._inflight:
            chunk = self._inflight[0]
            upto = chunk.arrived(now)
            if budget is not None:
                upto = min(upto, chunk.taken + budget)
                budget -= max(0, upto - chunk.taken)
                self._busy_arrived += max(0, upto - chunk.taken)
            if upto > chunk.taken:
                new = chunk.data[chunk.taken : upto]
                chunk.taken = upto
                # the ring holds what arrived during this busy spell; what came before it the firmware took
                held = max(0, len(self._rx) - self._ring_base)
                space = max(0, self.rx_buffer - held) if self._busy else len(new)
                if len(new) > space:
                    self.stats.overruns += len(new) - space
                    new = new[:space]
                self._rx += new
                self._count_rx(len(new))
            if chunk.taken < len(chunk.data):
                return
            self._inflight.popleft()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """The device firmware is busy (a flash operation, CPU work) and does not service its UART: bytes
        arriving meanwhile fill the RX ring, and what does not fit is lost (overrun).  Outside ``busy()``
        the firmware keeps up with the line."""
        with self._cond:
            now = self._clock()
            self._settle(now)
            if not self._busy:
                self._busy_since, self._busy_arrived, self._ring_base = now, 0, len(self._rx)
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._settle(self._clock())
                self._busy -= 1

    def _count_rx(self, n: int) -> None:
        before = self.stats.rx_bytes
        self.stats.rx_bytes += n
        limit = self.faults.reset_after
        if self._reset_armed and limit is not None and before < limit <= self.stats.rx_bytes:
            self._reset_armed = False
            log.warning("fault: reset after %d received bytes", limit)
            if self.on_reset_fault is not None:
                self.on_reset_fault()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the host; it leaves at the line's pace (never blocks the device)."""
        if not data:
            return
        with self._tx_cond:
            self._tx.append((bytes(data), self._clock()))
            self._tx_cond.notify()

    def set_baud(self, baud: int) -> None:
        """Switch the device's UART to ``baud`` after pending output has left (blocks until then)."""
        if baud <= 0:
            raise ValueError("baud must be positive")
        mark = _BaudMark(baud)
        with self._tx_cond:
            self._tx.append(mark)
            self._tx_cond.notify()
        if not mark.done.wait(BAUD_SWITCH_TIMEOUT_S):
            log.warning("baud switch to %d timed out waiting for output to drain", baud)
            self._baud = baud

    def reset_device_side(self) -> None:
        """A chip reset: the RX ring and unsent output are lost, the UART is back at its initial rate."""
        with self._cond:
            self._rx.clear()
        with self._tx_cond:
            for item in self._tx:
                if isinstance(item, _BaudMark):
                    item.done.set()
            self._tx.clear()
        self._baud = self.initial_baud

    def discard_input(self) -> int:
        """Drop what the device's UART has received and not read yet (a UART re-initialised at a new rate
        flushes its receiver); returns how many bytes."""
        with self._cond:
            self._settle(self._clock())
            dropped = len(self._rx)
            self._rx.clear()
            return dropped

    def rx_pending(self) -> int:
        """Bytes received by the device but not read yet (for tests)."""
        with self._cond:
            self._settle(self._clock())
            return len(self._rx)

    def tx_idle(self) -> bool:
        """True once every queued byte has left the device."""
        with self._tx_cond:
            return not self._tx and self._clock() >= self._tx_free_at

    # -- threads ---------------------------------------------------------------------------------------------
    def _reader(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.endpoint.recv(POLL_S)
                now = self._clock()
                noise = self.rx_faults.noise(now)
                host_bytes = len(data)
                if data:
                    host_rate = self._host_rate_if_different()
                    if host_rate is not None:
                        self.stats.rx_garbled += len(data)
                        data = self.rx_faults.garbage(self._garbled_count(len(data), host_rate, self._baud))
                    data = self.rx_faults.corrupt(data)
                if noise:
                    data = data + noise
                if data:
                    self._enqueue_rx(now, data)
                self.stats.host_bytes += host_bytes
        except Exception as err:
            self._crashed("host-to-device", err)

    def _crashed(self, direction: str, err: Exception) -> None:
        """A line thread died: the line is broken from here on.  Recorded (the first error wins) so that
        whoever runs the emulator reports it, not only a log line."""
        if self.error is None:
            self.error = err
        log.error("the emulated line's %s thread crashed", direction, exc_info=err)

    def _burst_start(self, line_free_at: float, now: float) -> float:
        """When bytes handed over at ``now`` start crossing: right after the previous ones while a burst
        goes on, else after the adapter's turnaround latency (a new burst)."""
        if line_free_at > now:
            return line_free_at
        return now + (self.latency_s if self.pacing else 0.0)

    def _enqueue_rx(self, now: float, data: bytes) -> None:
        char_time = self._char_time()
        with self._cond:
            start = self._burst_start(self._rx_free_at, now)
            chunk = _Chunk(start, char_time, data)
            self._rx_free_at = chunk.end
            self._inflight.append(chunk)
            self._cond.notify_all()

    def _writer(self) -> None:
        try:
            while not self._stop.is_set():
                noise = self.tx_faults.noise(self._clock())
                if noise:  # a burst on the wire towards the host, between the device's own bytes
                    self._emit(noise, from_device=False)
                    continue
                with self._tx_cond:
                    if not self._tx:
                        self._tx_cond.wait(POLL_S)
                        continue
                    item = self._tx.popleft()
                if isinstance(item, _BaudMark):
                    self._sleep_until(self._tx_free_at)
                    self._switch_rate(item.baud)
                    log.debug("device UART now at %d baud", item.baud)
                    item.done.set()
                    continue
                self._emit(item[0], queued_at=item[1])
        except Exception as err:
            self._crashed("device-to-host", err)

    def _switch_rate(self, baud: int) -> None:
        """The device's UART changes rate now: host bytes still on the wire (sent for the old rate) reach a
        receiver at the new one, so unless the host's port is at the new rate too they arrive as noise."""
        with self._cond:
            self._settle(self._clock())
            self._baud = baud
            if self._host_rate_if_different() is None:
                return
            for chunk in self._inflight:
                rest = len(chunk.data) - chunk.taken
                if rest > 0:
                    self.stats.rx_garbled += rest
                    chunk.data = chunk.data[: chunk.taken] + self.rx_faults.garbage(rest)

    def _sleep_until(self, when: float) -> None:
        while not self._stop.is_set():
            wait = when - self._clock()
            if wait <= 0:
                return
            time.sleep(min(wait, POLL_S))

    def _emit(self, data: bytes, *, queued_at: float | None = None, from_device: bool = True) -> None:
        """Send ``data`` at the line's pace.  Bytes the firmware queued while the line was still busy follow
        the previous ones back to back (however late this thread picks them up); otherwise a new burst."""
        now = self._clock()
        char_time = self._char_time()
        start = self._burst_start(self._tx_free_at, now if queued_at is None else min(queued_at, now))
        self._tx_free_at = start + len(data) * char_time
        sent = 0
        while sent < len(data) and not self._stop.is_set():
            now = self._clock()
            if char_time > 0:
                due = min(len(data), int((now - start) / char_time))
                if due <= sent:
                    time.sleep(max(MIN_WAIT_S, start + (sent + 1) * char_time - now))
                    continue
            else:
                due = len(data)
            self._deliver(data[sent:due], from_device=from_device)
            sent = due

    def _deliver(self, data: bytes, *, from_device: bool = True) -> None:
        """Bytes that just finished crossing the wire towards the host."""
        mute = self.faults.mute_after
        if mute is not None and from_device:
            room = max(0, mute - self._sent_by_device)
            self._sent_by_device += len(data)
            if room < len(data):
                self.stats.tx_lost += len(data) - room
                data = data[:room]
        if not data:
            return
        host_rate = self._host_rate_if_different()
        if host_rate is not None:
            self.stats.tx_garbled += len(data)
            data = self.tx_faults.garbage(self._garbled_count(len(data), self._baud, host_rate))
        data = self.tx_faults.corrupt(data)
        offset = 0
        stalled_since: float | None = None
        while offset < len(data) and not self._stop.is_set():
            taken = self.endpoint.send(data[offset:])
            if taken > 0:
                offset += taken
                stalled_since = None
                self._host_gone = False
                continue
            # The host's buffer is full.  A slow reader gets a grace period; a port nobody reads loses the
            # bytes, as a UART sending into the void does (and keeps losing them at once until it reads).
            now = self._clock()
            if stalled_since is None:
                stalled_since = now
            if self._host_gone or now - stalled_since > HOST_STALL_S:
                self._host_gone = True
                self.stats.tx_lost += len(data) - offset
                break
            time.sleep(MIN_WAIT_S * 4)
        self.stats.tx_bytes += offset
