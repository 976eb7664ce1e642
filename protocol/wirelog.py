"""The wire log (``--trace``): the TRACE level below DEBUG, the ``stm32ota.wire`` logger, hexdumps, and the
decoded-frame records the cores write.  Logging only (no I/O), so the sans-I/O cores may use it; the drivers'
raw byte dumps (:mod:`protocol.drivers.trace`) build on it, never the other way round."""

from __future__ import annotations

import logging

__all__ = ["TRACE", "WIRE_LOGGER", "hexdump", "log_frame", "tracing"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")
WIRE_LOGGER = "stm32ota.wire"
_wire_log = logging.getLogger(WIRE_LOGGER)


def hexdump(data: bytes, width: int = 16) -> str:
    """Classic offset / hex / ASCII dump, one line per ``width`` bytes."""
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexpart:<{width * 3}} |{text}|")
    return "\n".join(lines)


def tracing() -> bool:
    """True when wire tracing is on (``--trace``): callers skip building trace text otherwise."""
    return _wire_log.isEnabledFor(TRACE)


def log_frame(direction: str, kind: str, seq: int, payload: bytes) -> None:
    """Log one decoded protocol frame (``kind`` is its type name) with its payload dumped."""
    if _wire_log.isEnabledFor(TRACE):
        dump = f"\n{hexdump(payload)}" if payload else ""
        _wire_log.log(TRACE, "%s frame %s seq=%d len=%d%s", direction.upper(), kind, seq, len(payload), dump)
