"""Subcommands for the device a technician has in hand: ``ports``, ``reset``, ``confirm``, ``rollback``,
``erase``, ``read``, ``terminal``.

``register()`` only builds options (this module imports argparse alone, like every ``*_cli`` module); the
``cmd_*`` handlers below import the port, the commands (:mod:`protocol.device_commands`) and the console
rendering when one of them runs, open the link, and print what the command returned.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TypeVar

from .options import add_port_arguments

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..sansio import Event

T = TypeVar("T")

_HANDLERS = "protocol.cli.device_cli"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "ports",
        help="list serial ports: description, USB VID:PID, serial number, known USB-UART bridges",
        description="Every serial port the OS lists (and any PORT named), with the USB bridge it belongs to "
        "(ST-LINK VCP, CP210x, CH340, FTDI).",
    )
    p.add_argument("names", nargs="*", metavar="PORT", help="also describe these ports (a pty, a symlink, a URL)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_ports")

    p = sub.add_parser("reset", help="reboot the device, wait until it answers again, say what it runs")
    add_port_arguments(p)
    _reporting(p)
    p.add_argument("--timeout", type=_seconds, default=60.0, help="longest wait for the device to answer (s)")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_reset")

    p = sub.add_parser("confirm", help="confirm the image under test (it then stays after every reset)")
    add_port_arguments(p)
    _reporting(p)
    p.set_defaults(handler=f"{_HANDLERS}:cmd_confirm")

    p = sub.add_parser("rollback", help="go back to the previous image at the next reset")
    add_port_arguments(p)
    _reporting(p)
    p.add_argument("--reboot", action="store_true", help="reset now and report what runs")
    p.add_argument("--timeout", type=_seconds, default=60.0, help="with --reboot: longest wait for the device (s)")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_rollback")

    p = sub.add_parser(
        "erase",
        help="erase a slot",
        description="Erase every sector of a slot.  The slot the device runs from is refused unless --force; "
        "the device then restarts into its bootloader and waits for an image.",
    )
    add_port_arguments(p)
    _reporting(p)
    p.add_argument("--slot", type=int, required=True, help="0 = primary (running), 1 = download slot")
    p.add_argument("--force", action="store_true", help="erase even the slot the running image lives in")
    p.add_argument("--timeout", type=_seconds, default=60.0, help="longest wait for a device that resets (s)")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_erase")

    p = sub.add_parser(
        "read",
        help="read a slot's image (or, --raw, the whole slot) to a file, verified by digest",
    )
    add_port_arguments(p)
    _reporting(p)
    p.add_argument("output", help="file to write")
    p.add_argument("--slot", type=int, default=0, help="slot to read (default 0, the running image)")
    p.add_argument("--raw", action="store_true", help="every byte of the slot, not just the image")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_read")

    p = sub.add_parser(
        "terminal",
        help="interactive serial terminal that also shows the device's log frames (Ctrl-] exits)",
        description="Keys go to the port; what the device prints goes to stdout, its LOG frames as log lines. "
        "Works with an AN4657 IAP menu too.  Ctrl-] exits; with piped input the session ends once the "
        "input is over and the line is quiet.",
    )
    add_port_arguments(p)
    p.add_argument("--duration", type=_seconds, default=None, help="close after this many seconds")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_terminal")


def _seconds(text: str) -> float:
    """A positive number of seconds (argparse reports anything else as a usage error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _reporting(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or device logs")


# --- handlers (imported only when one of these commands runs) ---------------------------------------------


def _on_device(args: argparse.Namespace, command: Callable[..., T], *params: Any, **options: Any) -> T:
    """Every device command's frame: open the link ``-p``/``-b`` name, run ``command(link, *params,
    on_event=..., **options)`` (a :mod:`protocol.device_commands` function) with its progress and device logs
    on the console (``-q``: none), close the link, then the console."""
    from ..console import ConsoleReporter
    from ..drivers.link import SerialLink
    from ..progress import Phase, PhaseStatus, ProgressSnapshot

    reporter = ConsoleReporter(quiet=args.quiet)

    def on_event(event: Event) -> None:
        if isinstance(event, ProgressSnapshot) and event.phase is Phase.PROBE and event.status is PhaseStatus.RUNNING:
            return  # "probing the device": not worth a line
        reporter(event)

    try:
        with SerialLink(args.port, args.baud) as link:
            return command(link, *params, on_event=on_event, **options)
    finally:
        reporter.close()


def _finish(args: argparse.Namespace, result: Any) -> int:
    import sys

    from ..console import write_json

    if args.json:
        write_json(result.to_json())
    else:
        sys.stdout.write(result.summary + "\n")
    return 0


def cmd_ports(args: argparse.Namespace) -> int:
    import sys

    from ..console import format_ports, write_json
    from ..device_commands import list_serial_ports

    ports = list_serial_ports(args.names)
    if args.json:
        write_json([p.to_json() for p in ports])
    elif ports:
        sys.stdout.write(format_ports(ports) + "\n")
    else:
        sys.stdout.write(
            "no serial ports found (USB-UART adapters appear as /dev/ttyUSB*, ST-LINK VCPs as /dev/ttyACM*)\n"
        )
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    from ..device_commands import reset

    result = _on_device(args, reset, timeout=args.timeout)
    return _finish(args, result)


def cmd_confirm(args: argparse.Namespace) -> int:
    from ..device_commands import confirm

    result = _on_device(args, confirm)
    return _finish(args, result)


def cmd_rollback(args: argparse.Namespace) -> int:
    from ..device_commands import rollback

    result = _on_device(args, rollback, reboot=args.reboot, timeout=args.timeout)
    return _finish(args, result)


def cmd_erase(args: argparse.Namespace) -> int:
    from ..device_commands import erase

    result = _on_device(args, erase, args.slot, force=args.force, timeout=args.timeout)
    return _finish(args, result)


def cmd_read(args: argparse.Namespace) -> int:
    import os
    import tempfile
    from pathlib import Path

    from ..device_commands import read_slot
    from ..errors import Stm32OtaError

    target = Path(args.output)
    if target.is_dir():
        raise Stm32OtaError(f"{target} is a folder", hint="name the file to write, e.g. slot0.bin")
    if not target.parent.is_dir():
        raise Stm32OtaError(f"the folder {target.parent} does not exist", hint="create it, or name another file")
    result = _on_device(args, read_slot, args.slot, raw=args.raw)
    try:  # the file appears whole or not at all
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(result.data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise Stm32OtaError(
            f"cannot write {target}: {err.strerror}", hint="check the path and its permissions"
        ) from err
    if args.json:
        from ..console import write_json

        write_json({**result.to_json(), "output": str(target)})
        return 0
    import sys

    sys.stdout.write(f"{result.summary}; written to {target}\n")
    return 0


def cmd_terminal(args: argparse.Namespace) -> int:
    import io
    import os
    import select
    import sys
    import time

    from ..console import format_device_log
    from ..device_commands import terminal
    from ..drivers.link import SerialLink
    from ..sansio import DeviceLog

    deadline = None if args.duration is None else time.monotonic() + args.duration
    with SerialLink(args.port, args.baud) as link:
        try:
            stdin_fd: int | None = sys.stdin.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):
            stdin_fd = None  # no keyboard: show what the device says until the line is quiet
        raw_mode = stdin_fd is not None and os.isatty(stdin_fd)
        out = sys.stdout.buffer
        newline = b"\r\n" if raw_mode else b"\n"
        at_line_start = [True]

        def on_output(data: bytes) -> None:
            out.write(data)
            out.flush()
            at_line_start[0] = data.endswith((b"\n", b"\r"))

        def on_log(event: DeviceLog) -> None:
            lead = b"" if at_line_start[0] else newline
            out.write(lead + format_device_log(event).encode("utf-8", "replace") + newline)
            out.flush()
            at_line_start[0] = True

        def keys() -> bytes | None:
            if stdin_fd is None:
                return None
            ready, _, _ = select.select([stdin_fd], [], [], 0)
            if not ready:
                return b""
            data = os.read(stdin_fd, 1024)
            return data or None

        saved = None
        if raw_mode and stdin_fd is not None:
            import termios
            import tty

            saved = termios.tcgetattr(stdin_fd)
            tty.setraw(stdin_fd)  # every key goes to the device as typed (Ctrl-C included); Ctrl-] exits
        sys.stderr.write(f"--- terminal on {args.port} at {args.baud} baud; Ctrl-] exits ---{newline.decode()}")
        sys.stderr.flush()
        try:
            result = terminal(link, keys=keys, on_output=on_output, on_log=on_log, deadline=deadline)
        finally:
            if saved is not None and stdin_fd is not None:
                import termios

                termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
    lead = "" if at_line_start[0] else "\n"
    sys.stderr.write(
        f"{lead}--- terminal closed: {result.received} bytes received, {result.sent} sent, "
        f"{result.logs} log lines ---\n"
    )
    return 0
