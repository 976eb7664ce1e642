"""Options and argument types the command families share (``-p``/``-b``, ``-v``/``--trace``), and exit codes.

Light on purpose: a family's ``*_cli`` module imports this while ``stm32ota`` builds its parser, before any
port, core or GUI is imported.
"""

from __future__ import annotations

import argparse

from ..baud import DEFAULT_BAUD, MAX_BAUD, MIN_BAUD

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "add_common_options",
    "add_port_arguments",
    "baud_rate",
]

EXIT_FAILURE = 1  # a Stm32OtaError, an OS or port error: one line on stderr
EXIT_USAGE = 2  # argparse's code for a usage error
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT

VERBOSE_AFTER = "verbose_after_command"  # -v counted after the subcommand, added to the one before it
TRACE_AFTER = "trace_after_command"


def baud_rate(text: str) -> int:
    """argparse type of ``-b``: a whole number of baud a port can be opened at, refused before anything runs."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a baud rate (a whole number, like {DEFAULT_BAUD})") from None
    if not MIN_BAUD <= value <= MAX_BAUD:
        raise argparse.ArgumentTypeError(f"{value} is not a supported baud rate (use {MIN_BAUD} to {MAX_BAUD})")
    return value


def add_port_arguments(parser: argparse.ArgumentParser, *, baud: int = DEFAULT_BAUD) -> None:
    """The options every command that talks to a device shares."""
    parser.add_argument(
        "-p", "--port", required=True, help="serial port: /dev/ttyUSB0, socket://host:port, rfc2217://, loop://"
    )
    parser.add_argument("-b", "--baud", type=baud_rate, default=baud, help=f"line rate (default {baud})")


def add_common_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """``-v``/``--verbose`` and ``--trace``: on the top-level parser, and again on every subcommand, so they
    work before or after it.  After it they count into their own destinations (added up by ``main``), so a
    subcommand's parse never resets what came before it.  A subcommand that already uses ``-v`` for something
    else (``sign -v VERSION``, as imgtool has it) keeps it and gets only ``--verbose``."""
    verbose, trace = (VERBOSE_AFTER, TRACE_AFTER) if after_command else ("verbose", "trace")
    default: object = argparse.SUPPRESS if after_command else 0
    taken = parser._option_string_actions
    flags = [flag for flag in ("-v", "--verbose") if flag not in taken]
    if flags:
        parser.add_argument(
            *flags, dest=verbose, action="count", default=default, help="more log output (-vv for debug)"
        )
    if "--trace" not in taken:
        parser.add_argument(
            "--trace",
            dest=trace,
            action="store_true",
            default=argparse.SUPPRESS if after_command else False,
            help="hex-dump every byte on the wire, both ways",
        )
