"""How the command line shows progress, reports and JSON.  Commands never print; they hand events here.

The flow's :class:`~protocol.progress.ProgressSnapshot` events are rendered as they are (a bar on a
terminal, a line per tenth of a phase otherwise, the steps' messages as lines); raw
:class:`~protocol.sansio.Progress` from a bare core (``send``, ``receive``) goes through the same
:class:`~protocol.progress.ProgressMeter` first, so every bar shows the same numbers the same way.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from .progress import PhaseStatus, PhaseTiming, ProgressMeter, ProgressSnapshot
from .sansio import DeviceLog, Event, Progress

if TYPE_CHECKING:
    from .flow import FlashResult

__all__ = [
    "NEXT_STEP_COMMANDS",
    "ConsoleReporter",
    "format_bytes",
    "format_device_log",
    "format_flash_summary",
    "format_next_steps",
    "format_phase_report",
    "format_ports",
    "next_step_commands",
    "write_json",
]

_BAR_WIDTH = 30
_REDRAW_INTERVAL_S = 0.1
_LOG_LEVELS = {0: "ERR", 1: "WRN", 2: "INF", 3: "DBG"}

# What finishes an update stopped early on purpose (the device commands of `stm32ota`), by NextStep value.
NEXT_STEP_COMMANDS = {
    "reboot": ("stm32ota reset -p {port}", "restart it: the bootloader installs the new image"),
    "confirm": (
        "stm32ota confirm -p {port}",
        "keep the image running under test (`stm32ota rollback -p {port}` goes back instead)",
    ),
}


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_phase_report(phases: Iterable[PhaseTiming], total_seconds: float | None = None) -> str:
    """One row per phase, in the order they ran, and the total (``total_seconds``, or the rows' sum); bytes
    and rate only where bytes moved."""
    rows = [f"{'phase':<10} {'time':>9} {'bytes':>10} {'rate':>12}"]
    total = 0.0
    for timing in phases:
        total += timing.seconds
        row = f"{timing.phase.value:<10} {timing.seconds:7.2f} s"
        if timing.amount:
            row += f" {format_bytes(timing.amount):>10} {format_bytes(timing.rate):>10}/s"
        rows.append(row)
    total = total if total_seconds is None else total_seconds
    rows.append(f"{'total':<10} {total:7.2f} s")
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


def next_step_commands(result: FlashResult, port: str) -> list[str]:
    """The commands that finish what ``result`` left to do, for ``port``."""
    return [NEXT_STEP_COMMANDS[step.value][0].format(port=port) for step in result.left_to_do]


def format_next_steps(result: FlashResult, port: str) -> str:
    """The verdict: ``update complete`` only when it is; otherwise what is left and the command for each."""
    after = result.info_after
    primary = next((s for s in after.slots if s.index == 0), None) if after is not None else None
    running = f"{primary.version_text} ({primary.state.name.lower()})" if primary is not None else "?"
    if result.protocol == "ymodem":
        return "update complete: the IAP menu wrote the image; it runs at the next reset or from the menu"
    if result.complete:
        return f"update complete: running {running}"
    if result.left_to_do and result.left_to_do[0].value == "reboot":
        head = f"update not complete: the new image is staged; the device still runs {running} until it restarts"
    else:
        head = f"update not complete: running {running} under test; the next reset goes back unless confirmed"
    lines = [head]
    for n, step in enumerate(result.left_to_do):
        command, why = NEXT_STEP_COMMANDS[step.value]
        label = "next:" if n == 0 else "then:"
        lines.append(f"  {label} {command.format(port=port)}  ({why.format(port=port)})")
    return "\n".join(lines)


def format_flash_summary(result: FlashResult) -> str:
    """The phase table, then the transfer in one line: sizes, compression, wire bytes, line rate."""
    parts = [f"{format_bytes(result.image_size)} image"]
    if result.resumed_from:
        parts.append(f"resumed at {format_bytes(result.resumed_from)}, {format_bytes(result.sent_bytes)} sent")
    if result.compressed and result.sent_bytes:
        parts.append(f"deflated to {format_bytes(result.payload_bytes)} ({result.compression_ratio * 100:.0f} % of it)")
    elif result.protocol == "ota":
        parts.append("uncompressed")
    parts.append(f"{format_bytes(result.wire_bytes)} on the wire at {result.baud} baud")
    parts.append(f"{result.retransmits} blocks resent" if result.protocol == "ota" else "YMODEM")
    return format_phase_report(result.phases, result.total_seconds) + "\n" + ", ".join(parts)


def write_json(obj: Any, stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    out.flush()


class ConsoleReporter:
    """An ``on_event`` callback: a progress bar on a terminal, plain lines otherwise, device logs and the
    steps' messages as lines.  ``messages=False`` shows only notes (e.g. "busy, retrying"), not the phases'
    outcomes (for commands that print a result of their own, like ``info``)."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        quiet: bool = False,
        show_logs: bool = True,
        messages: bool = True,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.show_logs = show_logs
        self.messages = messages
        self.meter = ProgressMeter()  # only for raw progress from a bare core; the flow measures its own
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_draw = 0.0
        self._bar_open = False
        self._last_line_phase: str | None = None
        self._last_line_decile = -1

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return  # nothing is shown, so nothing to measure (this runs once per block)
        if isinstance(event, ProgressSnapshot):
            self._snapshot(event)
        elif isinstance(event, Progress):
            snapshot = self.meter.progress(event, time.monotonic())
            if snapshot is not None:
                self._snapshot(snapshot)
        elif isinstance(event, DeviceLog) and self.show_logs:
            self._line(f"device [{_LOG_LEVELS.get(event.level, str(event.level))}] {event.text}")

    def message(self, text: str) -> None:
        if not self.quiet:
            self._line(text)

    def close(self) -> None:
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        self.stream.flush()

    def _snapshot(self, s: ProgressSnapshot) -> None:
        if s.status is PhaseStatus.STARTED:
            if self._tty and s.message:  # a transient status line until the phase draws or ends
                self.stream.write(f"\r\x1b[K{s.phase.value:<9}{s.message}")
                self._bar_open = True
                self.stream.flush()
            self._last_line_phase, self._last_line_decile = None, -1
            return
        if s.status is PhaseStatus.FAILED:  # the command's error line says it
            self.close()
            return
        if s.message:
            if s.status is PhaseStatus.RUNNING or self.messages:
                self._line(s.message)
            elif self._bar_open:
                self.stream.write("\r\x1b[K")
                self._bar_open = False
            return
        if s.total and self._due(s, time.monotonic()):
            self._draw(s)

    def _line(self, text: str) -> None:
        if self._bar_open:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self._bar_open = False
        self.stream.flush()

    def _due(self, s: ProgressSnapshot, now: float) -> bool:
        """Whether ``s`` changes what is shown: the bar redraws at most every :data:`_REDRAW_INTERVAL_S`
        (and at the end), plain lines appear per tenth of a phase."""
        if self._tty:
            if s.done >= s.total:
                return True
            if now - self._last_draw < _REDRAW_INTERVAL_S:
                return False
            self._last_draw = now
            return True
        decile = int(s.fraction * 10)
        return s.phase.value != self._last_line_phase or decile != self._last_line_decile

    def _draw(self, s: ProgressSnapshot) -> None:
        complete = s.done >= s.total
        if self._tty:
            filled = int(_BAR_WIDTH * s.fraction)
            eta = f" ETA {s.eta:4.0f}s" if s.eta is not None and not complete else ""
            self.stream.write(
                f"\r\x1b[K{s.phase.value:<9}[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {s.fraction * 100:5.1f}%"
                f" {format_bytes(s.done)}/{format_bytes(s.total)} {format_bytes(s.rate)}/s{eta}"
            )
            self._bar_open = True
            if complete:
                self.close()
            self.stream.flush()
            return
        self._last_line_phase, self._last_line_decile = s.phase.value, int(s.fraction * 10)
        self._line(f"{s.phase.value}: {s.fraction * 100:5.1f}% ({s.done}/{s.total} bytes)")
