"""Wire hexdumps (``--trace``), logged below DEBUG so they cost nothing unless asked for."""

from __future__ import annotations

import logging

__all__ = ["TRACE", "hexdump", "log_frame", "log_wire", "tracing"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")
_wire_log = logging.getLogger("stm32ota.wire")


def hexdump(data: bytes, width: int = 16) -> str:
    """Classic offset / hex / ASCII dump, one line per ``width`` bytes."""
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexpart:<{width * 3}} |{text}|")
    return "\n".join(lines)


def log_wire(direction: str, data: bytes) -> None:
    """Log ``data`` going ``direction`` ("tx"/"rx") as a hexdump at TRACE level."""
    if _wire_log.isEnabledFor(TRACE):
        _wire_log.log(TRACE, "%s %d bytes\n%s", direction.upper(), len(data), hexdump(data))


def tracing() -> bool:
    """True when wire tracing is on (``--trace``): callers skip building trace text otherwise."""
    return _wire_log.isEnabledFor(TRACE)


def log_frame(direction: str, kind: str, seq: int, payload: bytes) -> None:
    """Log one decoded protocol frame (``kind`` is its type name) with its payload dumped."""
    if _wire_log.isEnabledFor(TRACE):
        dump = f"\n{hexdump(payload)}" if payload else ""
        _wire_log.log(TRACE, "%s frame %s seq=%d len=%d%s", direction.upper(), kind, seq, len(payload), dump)
