"""The drivers: the sans-I/O cores on real ports.  :mod:`.link` is the blocking driver (pyserial),
:mod:`.aio` the asyncio one; both execute the same generators (:mod:`protocol.pump`).  :mod:`.trace` dumps
the bytes they move.  Nothing in the core imports this package."""

from __future__ import annotations

from .link import DEFAULT_BAUD, CancelToken, SerialLink, open_port

__all__ = ["DEFAULT_BAUD", "AsyncSerialLink", "CancelToken", "SerialLink", "open_port"]


def __getattr__(name: str) -> object:
    if name == "AsyncSerialLink":  # asyncio is imported only by those who ask for it
        from .aio import AsyncSerialLink

        return AsyncSerialLink
    raise AttributeError(name)
