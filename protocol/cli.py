"""The ``stm32ota`` command.

This module stays light: it imports only argparse and the small ``*_cli`` modules each package contributes.
Each of those has ``register(subparsers)`` and names its handler as ``"package.module:function"``; the handler
module (which may import Qt, aiohttp or pyserial) is imported only when that subcommand runs, so
``stm32ota send`` never imports Qt or aiohttp.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import Stm32OtaError

__all__ = ["COMMAND_MODULES", "add_port_arguments", "main"]

# Each package owns its subcommands: module -> the subcommands its register() adds (a test keeps the two in
# step).  Running one command registers only its module (building every command's options costs more than
# parsing); --help and unknown commands register them all.  A module missing from an installation is skipped.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "protocol.ymodem_cli": ("send", "receive"),
    "protocol.update_cli": ("info", "flash", "monitor"),
    "protocol.image_cli": ("keygen", "getpub", "sign", "verify", "inspect"),
    "emulator.cli": ("emulate",),
    "emulator.demo_cli": ("demo",),
    "relay.gateway_cli": ("gateway",),
    "relay.cli": (),
    "updater_gui.cli": (),
}

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_port_arguments(parser: argparse.ArgumentParser, *, baud: int = 115200) -> None:
    """The options every command that talks to a device shares."""
    parser.add_argument(
        "-p", "--port", required=True, help="serial port: /dev/ttyUSB0, socket://host:port, rfc2217://, loop://"
    )
    parser.add_argument("-b", "--baud", type=int, default=baud, help=f"line rate (default {baud})")


def _owner(argv: Sequence[str]) -> str | None:
    """The module that registers the command ``argv`` runs (the first word that is not an option)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    return next((module for module, names in COMMAND_MODULES.items() if command in names), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (given the ``argv`` about to be parsed) just what that command needs."""
    owner = _owner(argv) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="stm32ota", description="Remote firmware updates for STM32 microcontrollers."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--trace", action="store_true", help="hex-dump every byte on the wire, both ways")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES if owner is None else (owner,):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        module.register(sub)
    return parser


def _resolve(handler: str) -> Callable[[argparse.Namespace], int]:
    module_name, _, func = handler.partition(":")
    func_obj: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module_name), func)
    return func_obj


def _configure_logging(verbose: int, trace: bool) -> None:
    from .trace import TRACE

    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if trace:
        wire = logging.getLogger("stm32ota.wire")
        wire.setLevel(TRACE)
        if level > TRACE:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            wire.addHandler(handler)
            wire.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose, args.trace)
    try:
        return _resolve(args.handler)(args)
    except Stm32OtaError as err:
        sys.stderr.write(f"stm32ota: error: {err}\n")
        if err.hint:
            sys.stderr.write(f"  hint: {err.hint}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        sys.stderr.write("stm32ota: interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
