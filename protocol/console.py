"""How the command line shows progress, reports and JSON.  Commands never print; they hand events here."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

from .progress import PhaseTiming, ProgressMeter, ProgressReport
from .sansio import DeviceLog, Event, Progress

__all__ = [
    "ConsoleReporter",
    "format_bytes",
    "format_device_log",
    "format_phase_report",
    "format_ports",
    "write_json",
]

_BAR_WIDTH = 30
_REDRAW_INTERVAL_S = 0.1
_LOG_LEVELS = {0: "ERR", 1: "WRN", 2: "INF", 3: "DBG"}


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_phase_report(phases: Iterable[PhaseTiming]) -> str:
    rows = ["phase        time      bytes        rate"]
    for timing in phases:
        rows.append(
            f"{timing.phase:<10} {timing.seconds:7.2f} s {format_bytes(timing.amount):>10}"
            f" {format_bytes(timing.rate):>10}/s"
        )
    return "\n".join(rows)


def format_device_log(event: DeviceLog) -> str:
    """A device LOG frame as one line: ``[   12.345 INF] text`` (device time in seconds since its boot)."""
    return f"[{event.timestamp_ms / 1000:10.3f} {_LOG_LEVELS.get(event.level, str(event.level))}] {event.text}"


def format_ports(ports: Iterable[Any]) -> str:
    """The ``stm32ota ports`` table: port, USB VID:PID, serial number, the bridge's name and what the OS says.
    ``ports`` are :class:`protocol.device_commands.PortInfo` values."""
    rows = [("PORT", "VID:PID", "SERIAL", "DESCRIPTION")]
    for port in ports:
        description = port.description
        if port.bridge and port.bridge not in description:
            description = f"{port.bridge}: {description}" if description != "n/a" else port.bridge
        rows.append((port.device, port.vid_pid or "-", port.serial_number or "-", description))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    )


def write_json(obj: Any, stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    out.flush()


class ConsoleReporter:
    """An ``on_event`` callback: a progress bar on a terminal, plain lines otherwise, device logs as lines."""

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False, show_logs: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.show_logs = show_logs
        self.meter = ProgressMeter()
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_draw = 0.0
        self._bar_open = False
        self._last_line_phase: str | None = None
        self._last_line_decile = -1

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            if self.quiet:
                return  # nothing is shown, so nothing to measure (this runs once per block)
            now = time.monotonic()
            self.meter.record(event, now)  # per block: keep this cheap, build a report only to show it
            if self._due(event, now):
                self._draw(self.meter.report(event))
        elif isinstance(event, DeviceLog) and self.show_logs and not self.quiet:
            self._line(f"device [{_LOG_LEVELS.get(event.level, str(event.level))}] {event.text}")

    def message(self, text: str) -> None:
        if not self.quiet:
            self._line(text)

    def close(self) -> None:
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        self.stream.flush()

    def _line(self, text: str) -> None:
        if self._bar_open:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self._bar_open = False
        self.stream.flush()

    def _due(self, event: Progress, now: float) -> bool:
        """Whether ``event`` changes what is shown: the bar redraws at most every :data:`_REDRAW_INTERVAL_S`
        (and at the end), plain lines appear per tenth of a phase."""
        if self._tty:
            if event.total and event.done >= event.total:
                return True
            if now - self._last_draw < _REDRAW_INTERVAL_S:
                return False
            self._last_draw = now
            return True
        decile = int(event.done / event.total * 10) if event.total else 0
        return event.phase != self._last_line_phase or decile != self._last_line_decile

    def _draw(self, r: ProgressReport) -> None:
        complete = r.total and r.done >= r.total
        if self._tty:
            filled = int(_BAR_WIDTH * r.fraction)
            eta = f" ETA {r.eta:4.0f}s" if r.eta is not None and not complete else ""
            total = format_bytes(r.total) if r.total else "?"
            self.stream.write(
                f"\r\x1b[K{r.phase:<9}[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {r.fraction * 100:5.1f}%"
                f" {format_bytes(r.done)}/{total} {format_bytes(r.rate)}/s{eta}"
            )
            self._bar_open = True
            if complete:
                self.close()
            self.stream.flush()
            return
        decile = int(r.fraction * 10)
        if r.phase != self._last_line_phase or decile != self._last_line_decile:
            self._last_line_phase, self._last_line_decile = r.phase, decile
            self._line(f"{r.phase}: {r.fraction * 100:5.1f}% ({r.done}/{r.total} bytes)")
