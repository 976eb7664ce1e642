"""Raw wire hexdumps for the drivers (``--trace``), logged below DEBUG so they cost nothing unless asked for.

The level, the logger and the frame records live in the core (:mod:`protocol.wirelog`); this is the drivers'
half: the bytes as they cross the port."""

from __future__ import annotations

import logging

from ..wirelog import TRACE, WIRE_LOGGER, hexdump, log_frame, tracing

__all__ = ["TRACE", "hexdump", "log_frame", "log_wire", "tracing"]

_wire_log = logging.getLogger(WIRE_LOGGER)


def log_wire(direction: str, data: bytes) -> None:
    """Log ``data`` going ``direction`` ("tx"/"rx") as a hexdump at TRACE level."""
    if _wire_log.isEnabledFor(TRACE):
        _wire_log.log(TRACE, "%s %d bytes\n%s", direction.upper(), len(data), hexdump(data))
