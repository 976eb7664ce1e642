"""One error tree for the whole project.

Every error a user can hit is a subclass of :class:`Stm32OtaError`.  Subclasses also inherit the builtin they
resemble (``TimeoutError``, ``OSError``, ``ValueError``) so generic handlers still work.  Library exceptions
(pyserial, cryptography, OS errors) are translated once, at the adapter that calls the library, with
``raise ... from err``.  Each error carries a message a technician can act on and an optional ``hint``.
"""

from __future__ import annotations

__all__ = [
    "BaudRateError",
    "Cancelled",
    "DeviceError",
    "ImageError",
    "Interrupted",
    "LinkTooNoisyError",
    "LocalProtocolError",
    "PortError",
    "ProtocolError",
    "ProtocolTimeoutError",
    "RemoteProtocolError",
    "Stm32OtaError",
    "TransferAborted",
]


class Stm32OtaError(Exception):
    """Root of every error raised by stm32ota."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ProtocolError(Stm32OtaError):
    """The conversation broke a protocol rule; afterwards a sans-I/O core is in a sticky error state."""


class LocalProtocolError(ProtocolError):
    """We (the caller of the core) broke the rules: an API call that is illegal in the current state."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the rules, or the link corrupted the conversation beyond the retry limits."""


class LinkTooNoisyError(RemoteProtocolError):
    """One data block failed too often: the link corrupts blocks of this size faster than retries help.
    A new transfer with smaller blocks (resuming where this one stopped) may still get through."""

    def __init__(self, message: str, *, block_size: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.block_size = block_size


class TransferAborted(ProtocolError):
    """A transfer ended by an abort: CAN CAN, an ABORT frame, or our own abort."""

    def __init__(self, message: str, *, by_peer: bool, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.by_peer = by_peer


class ProtocolTimeoutError(ProtocolError, TimeoutError):
    """The peer stayed silent longer than the current phase allows, after all retries."""


class PortError(Stm32OtaError, OSError):
    """The serial port could not be opened, read or written (busy, missing, no permission, unplugged)."""


class DeviceError(Stm32OtaError):
    """The device answered with a failure status code."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ImageError(Stm32OtaError, ValueError):
    """A firmware image or input file is malformed, or fails a check (digest, signature, tag, counter)."""


class Cancelled(Stm32OtaError):
    """The caller cancelled the operation (cooperative cancel, Ctrl-C)."""


class Interrupted(Cancelled, KeyboardInterrupt):
    """Ctrl-C, raised by a driver once the interrupted steps have cleaned up (told the device).  It is both a
    :class:`Cancelled` and a :class:`KeyboardInterrupt`, so either handler sees it."""


class BaudRateError(PortError, ValueError):
    """A line rate no serial port can be set to (zero, negative, or beyond what any UART runs at)."""
