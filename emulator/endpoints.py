"""The host-facing end of the emulated line: what the host opens.

* :class:`PtyEndpoint` (the default): a pty pair in raw mode; the host opens the slave (its path is the
  first line ``stm32ota emulate`` prints), and the host's baud rate is read from the pty's termios
  (``TCGETS2``, so non-standard rates work too);
* :class:`SocketEndpoint`: ``socket://127.0.0.1:PORT``, one client at a time (a new one replaces the old); a
  socket has no rate, so the host is assumed to follow the device's.

An endpoint only moves bytes (never blocking the line's threads); pacing, faults and the RX ring are the
line's (:mod:`emulator.line`).
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import pty
import select
import socket
import struct
import termios
import threading
import time
import tty
from abc import ABC, abstractmethod

__all__ = ["READ_CHUNK", "Endpoint", "PtyEndpoint", "SocketEndpoint", "host_baud_of"]

READ_CHUNK = 65536

# Linux termios2 (arbitrary baud rates): struct termios2 is 4 x u32 flags, c_line, c_cc[19], 2 x u32 speeds.
_TCGETS2 = 0x802C542A
_TCSETS2 = 0x402C542B
_TERMIOS2 = struct.Struct("=4IB19s2I")
_BOTHER = 0o010000
_CBAUD = 0o010017


def _std_speeds() -> dict[int, int]:
    speeds: dict[int, int] = {}
    for name in dir(termios):
        if name.startswith("B") and name[1:].isdigit():
            speeds[int(getattr(termios, name))] = int(name[1:])
    return speeds


_SPEED_OF_CONSTANT = _std_speeds()


def host_baud_of(fd: int) -> int | None:
    """The line rate the tty ``fd`` is set to (termios2 where available, else the Bxxx constants)."""
    try:
        buf = bytearray(_TERMIOS2.size)
        fcntl.ioctl(fd, _TCGETS2, buf, True)
        fields = _TERMIOS2.unpack(buf)
        ospeed = int(fields[-1])
        if ospeed:
            return ospeed
    except OSError:
        pass
    try:
        attrs = termios.tcgetattr(fd)
    except termios.error:
        return None
    return _SPEED_OF_CONSTANT.get(int(attrs[5]))


def _set_tty_baud(fd: int, baud: int) -> None:
    constant = getattr(termios, f"B{baud}", None)
    if constant is not None:
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = constant
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        return
    buf = bytearray(_TERMIOS2.size)
    fcntl.ioctl(fd, _TCGETS2, buf, True)
    iflag, oflag, cflag, lflag, line, cc, _, _ = _TERMIOS2.unpack(buf)
    cflag = (cflag & ~_CBAUD) | _BOTHER
    fcntl.ioctl(fd, _TCSETS2, _TERMIOS2.pack(iflag, oflag, cflag, lflag, line, cc, baud, baud))


class Endpoint(ABC):
    """The host-facing end of the line."""

    @property
    @abstractmethod
    def url(self) -> str:
        """What the host opens (a device path or ``socket://127.0.0.1:PORT``)."""

    @abstractmethod
    def recv(self, timeout: float) -> bytes:
        """Bytes the host wrote, waiting up to ``timeout`` (``b""`` if none)."""

    @abstractmethod
    def send(self, data: bytes) -> int:
        """Hand bytes to the host without blocking; returns how many were taken (the rest is lost)."""

    @abstractmethod
    def host_baud(self) -> int | None:
        """The rate the host's side is set to, ``None`` if the transport has none."""

    def set_host_baud(self, baud: int) -> None:  # noqa: B027 - optional for transports without a rate
        """Preset the host side's rate (what a port reads as before the host configures it)."""

    @abstractmethod
    def close(self) -> None: ...


class PtyEndpoint(Endpoint):
    """A pty pair in raw mode: the host opens :attr:`url` (the slave), the line owns the master.

    The line keeps its own descriptor of the slave open, so the pty survives hosts coming and going and its
    termios (the host's baud rate) can be read at any time."""

    def __init__(self) -> None:
        self._master, self._slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._path = os.ttyname(self._slave)

    @property
    def url(self) -> str:
        return self._path

    def recv(self, timeout: float) -> bytes:
        try:
            ready, _, _ = select.select([self._master], [], [], timeout)
            if not ready:
                return b""
            return os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return b""
        except OSError as err:
            if err.errno in (errno.EIO, errno.EBADF):
                time.sleep(timeout)
                return b""
            raise

    def send(self, data: bytes) -> int:
        try:
            return os.write(self._master, data)
        except BlockingIOError:
            return 0
        except OSError as err:
            if err.errno in (errno.EIO, errno.EBADF):
                return 0
            raise

    def host_baud(self) -> int | None:
        return host_baud_of(self._slave)

    def set_host_baud(self, baud: int) -> None:
        _set_tty_baud(self._slave, baud)

    def pending_to_host(self) -> int:
        """Bytes written to the host that it has not read yet."""
        buf = array.array("i", [0])
        try:
            fcntl.ioctl(self._slave, termios.FIONREAD, buf, True)
        except OSError:
            return 0
        return int(buf[0])

    def close(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class SocketEndpoint(Endpoint):
    """``socket://127.0.0.1:PORT``: a TCP server that serves one client at a time (``port=0`` picks one)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((host, port))
        self._server.listen(1)
        self._server.setblocking(False)
        self._host, self.port = self._server.getsockname()[:2]
        self._client: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"socket://{self._host}:{self.port}"

    def recv(self, timeout: float) -> bytes:
        client = self._client
        watch: list[socket.socket] = [self._server] if client is None else [self._server, client]
        try:
            ready, _, _ = select.select(watch, [], [], timeout)
        except (OSError, ValueError):
            return b""
        if self._server in ready:
            try:
                conn, _ = self._server.accept()
            except OSError:
                conn = None
            if conn is not None:
                if client is not None:  # one client at a time: a new one replaces a stale one
                    with contextlib.suppress(OSError):
                        client.close()
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._lock:
                    self._client = client = conn
        if client is not None and client in ready:
            try:
                data = client.recv(READ_CHUNK)
            except BlockingIOError:
                return b""
            except OSError:
                data = b""
            if not data:
                self._drop_client(client)
            return data
        return b""

    def _drop_client(self, client: socket.socket) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        with contextlib.suppress(OSError):
            client.close()

    def send(self, data: bytes) -> int:
        client = self._client
        if client is None:
            return len(data)  # nobody listening: the bytes go into the void
        try:
            return client.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            self._drop_client(client)
            return len(data)

    def host_baud(self) -> int | None:
        return None

    def close(self) -> None:
        if self._client is not None:
            self._drop_client(self._client)
        with contextlib.suppress(OSError):
            self._server.close()
