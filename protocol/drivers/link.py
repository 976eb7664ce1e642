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
import stat
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Self, TypeVar

import serial
from serial.urlhandler.protocol_socket import Serial as SocketSerial

from ..baud import DEFAULT_BAUD, MAX_BAUD, MIN_BAUD, check_baud
from ..errors import Cancelled, Interrupted, PortError, Stm32OtaError
from ..pump import CANCEL_CLEANUP_S, POLL_INTERVAL_S, IoRequest, PumpResult, Read, SetBaud, Write, pump
from ..sansio import Connection, Event
from .trace import log_wire, tracing

__all__ = [
    "CANCEL_CLEANUP_S",
    "DEFAULT_BAUD",
    "MAX_BAUD",
    "MIN_BAUD",
    "POLL_INTERVAL_S",
    "CancelToken",
    "SerialLink",
    "check_baud",
    "open_port",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
_READ_CHUNK = 65536  # one read takes whatever the tty buffered, up to this
# A transport without a descriptor (rfc2217://, loop://) waits in pyserial reads of this fixed timeout: setting
# pyserial's timeout per read renegotiates every port setting with an rfc2217 server (a round trip, >= 50 ms).
_READ_SLICE_S = 0.02


class CancelToken:
    """A cooperative cancel flag, safe to set from another thread (a GUI button, a signal handler).

    The first :meth:`cancel` makes the driver run the steps' own cleanup (see :meth:`SerialLink.execute`); a
    second one, while that cleanup runs, stops it at once."""

    def __init__(self) -> None:
        self._count = 0

    def cancel(self) -> None:
        self._count += 1

    @property
    def cancelled(self) -> bool:
        return self._count > 0

    @property
    def count(self) -> int:
        """How many times :meth:`cancel` was called."""
        return self._count

    def raise_if_cancelled(self) -> None:
        if self._count:
            raise Cancelled("cancelled by the user")


def cleanup_after_cancel(
    steps: Generator[IoRequest, PumpResult, object],
    error: Cancelled,
    *,
    stop: Callable[[], bool],
    again: type[BaseException],
    again_note: str,
    clock: Callable[[], float] = time.monotonic,
    logger: logging.Logger = log,
) -> Generator[tuple[IoRequest, float], PumpResult, None]:
    """The cancel contract's second half, for either driver: throw ``error`` into ``steps`` at their pending
    yield, then yield ``(request, deadline)`` for whatever they still yield (their cleanup: an ABORT for the
    device, a switch back to the start rate) and send them what the driver's I/O returned, until they return
    or raise, for at most :data:`~protocol.pump.CANCEL_CLEANUP_S`, or until ``stop()`` says a second cancel
    came.  The driver performs each request by the deadline and throws what that raised back in here.  Errors
    of the cleanup, and ``again`` (the driver's own second interrupt: Ctrl-C, a task cancel), are logged
    to ``logger``, never raised: the caller raises ``error`` afterwards, the cancel is never swallowed."""
    deadline = clock() + CANCEL_CLEANUP_S
    try:
        request = steps.throw(error)
        while True:
            if stop():
                logger.info("second cancel: cleanup stopped")
                return
            if clock() >= deadline:
                logger.warning("cleanup after a cancel took longer than %.1f s: stopped", CANCEL_CLEANUP_S)
                return
            request = steps.send((yield request, deadline))
    except StopIteration:
        return
    except Cancelled as err:
        if err is not error:
            logger.debug("cleanup raised another cancel: %s", err)
    except again:
        logger.info(again_note)
    except Stm32OtaError as err:
        logger.warning("cleanup after a cancel failed: %s", err)
    finally:
        steps.close()


def _clean_up_after_cancel(
    steps: Generator[IoRequest, PumpResult, object],
    error: Cancelled,
    perform: Callable[[IoRequest, float], PumpResult],
    *,
    stop: Callable[[], bool],
) -> None:
    """:func:`cleanup_after_cancel` with blocking I/O (``perform(request, deadline)``)."""
    cleanup = cleanup_after_cancel(
        steps, error, stop=stop, again=KeyboardInterrupt, again_note="interrupted again: cleanup stopped"
    )
    try:
        request, deadline = next(cleanup)
        while True:
            try:
                reply = perform(request, deadline)
            except BaseException as err:  # judged by the cleanup's rules, as if its steps had raised it
                request, deadline = cleanup.throw(err)
            else:
                request, deadline = cleanup.send(reply)
    except StopIteration:
        return


_PORT_HINT = (
    "give the serial adapter's device (ls /dev/ttyUSB* /dev/ttyACM*) or a pyserial URL such as "
    "socket://HOST:PORT or rfc2217://HOST:PORT"
)


def _describe_path(url: str) -> str:
    try:
        mode = os.stat(url).st_mode
    except OSError:
        return "not a terminal device"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device that is not a terminal"
    return "not a terminal device"


def end_of_line_error(url: str) -> PortError:
    """The port reported data but returned none: a USB adapter unplugged, or a server that hung up."""
    if "://" in url:
        return PortError(
            f"the connection to {url} was closed by the other end",
            hint="check that the serial server (or the emulator) is still running, then run the command again",
        )
    return PortError(
        f"{url} reported data but returned none: the device was unplugged",
        hint="reconnect the cable and run the command again",
    )


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
    if code == errno.EIO:  # a tty whose other end is gone: a USB adapter unplugged, a pty's master closed
        return (
            f"{url} failed with an I/O error: the device was unplugged or hung up the line",
            "reconnect the cable and run the command again",
        )
    if code in (errno.ENOTTY, errno.EISDIR) or "Inappropriate ioctl" in text or "Is a directory" in text:
        return (f"{url} is not a serial port ({_describe_path(url)})", _PORT_HINT)
    if (
        code in (errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ESHUTDOWN)
        or "Broken pipe" in text
        or "reader thread died" in text
        or "connection failed" in text
        or "closed by the remote" in text.lower()
    ):
        return (
            f"the connection to {url} was closed by the other end",
            "check that the serial server (ser2net, the RFC 2217 server, the emulator) is still running and "
            "reachable, then run the command again",
        )
    return (f"cannot use {url}: {text}", None)


def port_error(err: BaseException, url: str) -> PortError:
    """``err`` (a pyserial or OS error on ``url``) as the :class:`~protocol.errors.PortError` a technician
    reads: what happened to which port, and what to do about it.  Both drivers translate through this, once,
    at the call that failed (``raise port_error(err, url) from err``)."""
    message, hint = _hint_for(err, url)
    return PortError(message, hint=hint)


def open_port(url: str, baud: int = DEFAULT_BAUD, *, exclusive: bool = True) -> serial.SerialBase:
    """Open ``url`` (any pyserial URL or a device path) raw, 8N1, with no flow control."""
    check_baud(baud)
    try:
        port = serial.serial_for_url(url, do_not_open=True)
        port.baudrate = baud
        port.timeout = _READ_SLICE_S  # set once: see SerialLink.read
        port.write_timeout = None
        if exclusive and isinstance(port, serial.Serial) and hasattr(port, "exclusive"):
            port.exclusive = True
        port.open()
    except (serial.SerialException, OSError, ValueError) as err:
        raise port_error(err, url) from err
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
        self._fd = self._nonblocking_fd(self._port)
        self._trace = tracing()  # see check_tracing()

    @staticmethod
    def _nonblocking_fd(port: serial.SerialBase) -> int | None:
        """The port's non-blocking file descriptor when it has one (POSIX ttys and ptys, ``socket://``): reads
        then select and never block, and the asyncio driver watches it on the event loop."""
        if os.name != "posix":  # Windows: no select() on a COM port, no os.read() on a socket
            return None
        sock = getattr(port, "_socket", None)
        if isinstance(port, SocketSerial) and sock is not None:
            return int(sock.fileno())  # pyserial made it non-blocking; os.read/os.write work on sockets too
        if not isinstance(port, serial.Serial):
            return None
        try:
            fd = port.fileno()
        except (AttributeError, OSError, serial.SerialException):
            return None
        port.timeout = 0  # the select above does the waiting
        return int(fd)

    @property
    def fd(self) -> int | None:
        """The non-blocking file descriptor reads and writes go through, or ``None`` (``rfc2217://``,
        ``loop://``: pyserial's own blocking calls)."""
        return self._fd

    # -- lifecycle -------------------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):  # closing a vanished USB device is not worth failing on
            log.debug("error closing %s", self.url, exc_info=True)

    def __enter__(self) -> Self:
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
        """Drain what was written (it must leave at the old rate), then switch."""
        check_baud(baud)
        self._guard(self._port.flush)
        self._guard(setattr, self._port, "baudrate", baud)

    @property
    def tracing(self) -> bool:
        """Whether wire tracing was on at the last :meth:`check_tracing`."""
        return self._trace

    def check_tracing(self) -> None:
        """Re-read whether wire tracing (``--trace``) is on.  Drivers call it when they start executing, so
        reads and writes, twice per block, test a flag instead of asking the logging system."""
        self._trace = tracing()

    # -- raw I/O, errors translated once --------------------------------------------------------------------
    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (serial.SerialException, OSError) as err:
            raise port_error(err, self.url) from err

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
        interrupted: KeyboardInterrupt | None = None
        deadline = 0.0
        try:
            while view:
                try:
                    try:
                        view = view[os.write(fd, view) :]
                    except BlockingIOError:
                        select.select([], [fd], [], POLL_INTERVAL_S)  # the tty's output buffer is full: wait
                except KeyboardInterrupt as err:
                    # Ctrl-C with half a frame written: that half would swallow the ABORT the cleanup sends
                    # next, so the frame is finished first, for at most CANCEL_CLEANUP_S (a second Ctrl-C
                    # stops at once)
                    if interrupted is not None:
                        raise
                    interrupted, deadline = err, time.monotonic() + CANCEL_CLEANUP_S
                if interrupted is not None and time.monotonic() >= deadline:
                    break
        except OSError as err:
            raise port_error(err, self.url) from err
        if interrupted is not None:
            raise interrupted

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
                raise port_error(err, self.url) from err
            if not ready:
                return b""
            try:
                data: bytes = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                return b""
            except OSError as err:
                raise port_error(err, self.url) from err
            if not data:
                raise end_of_line_error(self.url)
        else:
            end = time.monotonic() + timeout
            while True:  # slices of _READ_SLICE_S: a wait ends at most one slice late
                waiting = self._guard(lambda: self._port.in_waiting)
                data = self._guard(self._port.read, max(1, int(waiting)))
                if data or time.monotonic() >= end:
                    break
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
        and return what the generator returns.

        The cancel contract: when ``cancel`` is set (checked before each step) or Ctrl-C interrupts the wait,
        :class:`~protocol.errors.Cancelled` is thrown into ``steps`` at their pending yield, and whatever they
        yield after that (their cleanup) is still performed, with no further cancel checks, until they return
        or raise, for at most :data:`~protocol.pump.CANCEL_CLEANUP_S`; a second cancel or Ctrl-C stops the
        cleanup at once.  Then ``Cancelled`` is raised (:class:`~protocol.errors.Interrupted`, also a
        ``KeyboardInterrupt``, for Ctrl-C): the cancel is never swallowed."""
        self.check_tracing()
        reply: PumpResult = None
        send, read, write, monotonic = steps.send, self.read, self.write, time.monotonic  # once per block
        error: Cancelled
        try:
            while True:
                if cancel is not None and cancel.cancelled:
                    break
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
            steps.close()
            return result
        except KeyboardInterrupt:
            error = Interrupted("interrupted (Ctrl-C)")
            _clean_up_after_cancel(steps, error, self._perform, stop=lambda: False)
            raise error from None
        except BaseException:
            steps.close()
            raise
        assert cancel is not None
        error = Cancelled("cancelled by the user")
        seen = cancel.count
        _clean_up_after_cancel(steps, error, self._perform, stop=lambda: cancel.count > seen)
        raise error

    def _perform(self, request: IoRequest, deadline: float) -> PumpResult:
        """One request during a cleanup: reads wait no longer than ``deadline``."""
        if type(request) is Read:
            if request.out:
                self.write(request.out)
            wait = min(request.wait, deadline - time.monotonic())
            return (self.read(wait) if wait > 0 else b"", time.monotonic())
        if type(request) is Write:
            self.write(request.data)
        else:
            assert isinstance(request, SetBaud)
            self.set_baud(request.baud)
        return None
