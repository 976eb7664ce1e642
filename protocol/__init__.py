"""stm32ota's wire: YMODEM, the stm32ota update protocol and firmware images, as sans-I/O cores.

Importing this package is cheap: it never imports serial, asyncio, threading, time or Qt.  Drivers live in
:mod:`protocol.drivers.link` (blocking, pyserial) and :mod:`protocol.drivers.aio` (asyncio).
"""

from __future__ import annotations

from .errors import (
    Cancelled,
    DeviceError,
    ImageError,
    LinkTooNoisyError,
    LocalProtocolError,
    PortError,
    ProtocolError,
    ProtocolTimeoutError,
    RemoteProtocolError,
    Stm32OtaError,
    TransferAborted,
)
from .sansio import ChangeBaud, Connection, DeviceLog, Event, Progress

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "ChangeBaud",
    "Connection",
    "DeviceError",
    "DeviceLog",
    "Event",
    "ImageError",
    "LinkTooNoisyError",
    "LocalProtocolError",
    "PortError",
    "Progress",
    "ProtocolError",
    "ProtocolTimeoutError",
    "RemoteProtocolError",
    "Stm32OtaError",
    "TransferAborted",
    "__version__",
]
