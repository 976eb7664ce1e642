"""The blocking driver: a sans-I/O :class:`~protocol.sansio.Connection` on a pyserial port.

Ports are opened only through :func:`serial.serial_for_url`, so a tty path, ``socket://``, ``rfc2217://``
and ``loop://`` all work.  pyserial errors are translated here, once, into :class:`~protocol.errors.PortError`
with a hint a technician can act on.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, TypeVar

import serial

from .errors import Cancelled, PortError
from .pump import POLL_INTERVAL_S, IoRequest, PumpResult, Read, SetBaud, Write, pump
from .sansio import Connection, Event
from .trace import log_wire, tracing

__all__ = ["POLL_INTERVAL_S", "CancelToken", "SerialLink", "open_port"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_READ_CHUNK = 65536  # one read takes whatever the tty buffered, up to this

DEFAULT_BAUD = 115200


class CancelToken:
    """A cooperative cancel flag, safe to set from another thread (a GUI button, a signal handler)."""

    def __init__(self) -> None:
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        if self._cancelled:
            raise Cancelled("cancelled by the user")


def _hint_for(err: BaseException, url: str) -> tuple[str, str | None]:
    code = err.errno if isinstance(err, OSError) else None
    if code is None and err.args and isinstance(err.args[0], int):
        code = err.args[0]
    text = str(err)
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return (
            f"permission denied opening {url}",
            "add your user to the 'dialout' group (sudo usermod -aG dialout $USER), then log in again",
        )
    if code == errno.EBUSY or "busy" in text.lower() or "Could not exclusively lock" in text:
        return (f"{url} is busy", "close the other program using the port (terminal, monitor, ModemManager)")
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
        return (f"no such port: {url}", "check the cable and the port name (ls /dev/ttyUSB* /dev/ttyACM*)")
    if code == errno.ECONNREFUSED or "refused" in text.lower():
        return (f"connection refused by {url}", "is the emulator or the serial server running?")
    return (f"cannot use {url}: {text}", None)


def open_port(url: str, baud: int = DEFAULT_BAUD, *, exclusive: bool = True) -> serial.SerialBase:
    """Open ``url`` (any pyserial URL or a device path) raw, 8N1, with no flow control."""
    try:
        port = serial.serial_for_url(url, do_not_open=True)
        port.baudrate = baud
        port.timeout = POLL_INTERVAL_S
        port.write_timeout = None
        if exclusive and isinstance(port, serial.Serial) and hasattr(port, "exclusive"):
            port.exclusive = True
        port.open()
    except (serial.SerialException, OSError, ValueError) as err:
        message, hint = _hint_for(err, url)
        raise PortError(message, hint=hint) from err
    return port


class SerialLink:
    """Drives cores over one open port.  Use as a context manager."""

    def __init__(
        self,
        url: str,
        baud: int = DEFAULT_BAUD,
        *,
        port: serial.SerialBase | None = None,
        exclusive: bool = True,
    ) -> None:
        self.url = url
        self.initial_baud = baud
        self._port = port if port is not None else open_port(url, baud, exclusive=exclusive)
        self._timeout: float | None = self._port.timeout
        self._fd = self._nonblocking_fd(self._port)
        self._trace = tracing()  # see check_tracing()

    @staticmethod
    def _nonblocking_fd(port: serial.SerialBase) -> int | None:
        """The port's file descriptor when it has one (POSIX ttys): reads then select and never block."""
        if not isinstance(port, serial.Serial) or not hasattr(select, "select"):
            return None
        try:
            fd = port.fileno()
        except (AttributeError, OSError, serial.SerialException):
            return None
        port.timeout = 0  # the select above does the waiting
        return int(fd)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):  # closing a vanished USB device is not worth failing on
            log.debug("error closing %s", self.url, exc_info=True)

    def __enter__(self) -> SerialLink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def port(self) -> serial.SerialBase:
        return self._port

    @property
    def baud(self) -> int:
        return int(self._port.baudrate)

    def set_baud(self, baud: int) -> None:
        self._guard(self._port.flush)
        self._port.baudrate = baud

    def check_tracing(self) -> None:
        """Re-read whether wire tracing (``--trace``) is on.  Drivers call it when they start executing, so
        reads and writes, twice per block, test a flag instead of asking the logging system."""
        self._trace = tracing()

    # -- raw I/O, errors translated once --------------------------------------------------------------------
    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (serial.SerialException, OSError) as err:
            message, hint = _hint_for(err, self.url)
            raise PortError(message, hint=hint) from err

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._trace:
            log_wire("tx", data)
        fd = self._fd
        if fd is None:
            self._guard(self._port.write, data)
            return
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    select.select([], [fd], [], POLL_INTERVAL_S)  # the tty's output buffer is full: wait
        except OSError as err:
            message, hint = _hint_for(err, self.url)
            raise PortError(message, hint=hint) from err

    def read(self, timeout: float) -> bytes:
        """Whatever arrives within ``timeout`` seconds (``b""`` on silence: a timeout, never end-of-data).

        On a port with a file descriptor (a tty, a pty) the wait is one ``select`` and the read never blocks;
        setting pyserial's ``timeout`` per call would reconfigure the tty (a ``tcsetattr``) on every read,
        which cost more CPU than the protocol itself.  Other transports get the timeout set only when it
        changes."""
        fd = self._fd
        if fd is not None:
            try:
                ready, _, _ = select.select([fd], [], [], max(timeout, 0.0))
            except (OSError, ValueError) as err:
                message, hint = _hint_for(err, self.url)
                raise PortError(message, hint=hint) from err
            if not ready:
                return b""
            try:
                data: bytes = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                return b""
            except OSError as err:
                message, hint = _hint_for(err, self.url)
                raise PortError(message, hint=hint) from err
            if not data:
                raise PortError(
                    f"{self.url} reported data but returned none: the device was unplugged",
                    hint="reconnect the cable and run the command again",
                )
        else:
            if timeout != self._timeout:
                self._port.timeout = self._timeout = timeout
            waiting = self._guard(lambda: self._port.in_waiting)
            data = self._guard(self._port.read, max(1, int(waiting)))
            if data:
                more = self._guard(lambda: self._port.in_waiting)
                if more:
                    data += self._guard(self._port.read, int(more))
        if data and self._trace:
            log_wire("rx", data)
        return data

    def exchange(self, out: bytes, wait: float) -> bytes:
        """A :class:`~protocol.pump.Read` request: write ``out`` (if any), then read for ``wait`` seconds
        (``wait <= 0``: do not read)."""
        if out:
            self.write(out)
        return self.read(wait) if wait > 0 else b""

    def discard_input(self) -> None:
        self._guard(self._port.reset_input_buffer)

    # -- the driver loop ----------------------------------------------------------------------------------
    def run(
        self,
        conn: Connection,
        *,
        until: Callable[[Event], bool] | None = None,
        on_event: Callable[[Event], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Event | None:
        """Run ``conn`` until it is finished, or until an event satisfies ``until`` (that event is returned).

        Every other event goes to ``on_event``.  :class:`~protocol.sansio.ChangeBaud` switches the port after
        the bytes before it have drained.  Errors raised by the core propagate unchanged; port errors become
        ``PortError``.  ``cancel`` is checked at least every :data:`~protocol.pump.POLL_INTERVAL_S`; without one
        nothing needs control back, so reads wait for the core's own timeout (Ctrl-C still interrupts them).
        """
        poll = POLL_INTERVAL_S if cancel is not None else None
        return self.execute(pump(conn, time.monotonic(), until=until, on_event=on_event, poll=poll), cancel=cancel)

    def execute(self, steps: Generator[IoRequest, PumpResult, T], *, cancel: CancelToken | None = None) -> T:
        """Perform the I/O requests of ``steps`` (a :func:`~protocol.pump.pump` or a flow built from pumps)
        and return what the generator returns."""
        self.check_tracing()
        reply: PumpResult = None
        send, read, write, monotonic = steps.send, self.read, self.write, time.monotonic  # once per block
        try:
            while True:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                request = send(reply)
                reply = None
                if type(request) is Read:  # exchange(), inlined: this runs once per block
                    if request.out:
                        write(request.out)
                    wait = request.wait
                    reply = (read(wait) if wait > 0 else b"", monotonic())
                elif type(request) is Write:
                    write(request.data)
                else:
                    assert isinstance(request, SetBaud)
                    self.set_baud(request.baud)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            steps.close()
