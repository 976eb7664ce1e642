"""The ``stm32ota`` command: one dispatcher, one module per command family.

A command family is a pair of modules: a light ``*_cli`` module with ``register(subparsers)``, which adds the
family's subcommands and names each one's handler as ``"package.module:function"`` (``set_defaults(handler=)``),
and the handler module, imported only when one of its subcommands runs.  So building the parser for
``stm32ota send`` imports argparse and ``protocol.cli.ymodem_cli``, and nothing of Qt, aiohttp or pyserial.

Where the families come from:

* ``protocol``'s own, listed in :data:`FAMILIES` (module -> the subcommands its ``register()`` adds);
* every other installed package's, through the ``stm32ota.commands`` entry-point group: one entry per
  subcommand, the subcommand's name pointing at the ``register`` function that adds it::

      [project.entry-points."stm32ota.commands"]
      emulate = "emulator.cli:register"
      demo = "emulator.demo_cli:register"

  so ``protocol`` names none of the packages built on it.

Running one subcommand registers only the family that owns it (a ``protocol`` subcommand never even reads the
entry points); ``--help`` and an unknown command register every family, so the help and argparse's error list
them all.  A test keeps each family's declared names in step with what its ``register()`` adds.

``main()`` is the one place where failures become messages: a :class:`~protocol.errors.Stm32OtaError` is
``stm32ota: error: ...`` plus its hint, an OS or pyserial error one line, Ctrl-C ``interrupted``; never a
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .. import __version__
from ..errors import Stm32OtaError
from .options import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    TRACE_AFTER,
    VERBOSE_AFTER,
    add_common_options,
    add_port_arguments,
    baud_rate,
)

__all__ = ["ENTRY_POINT_GROUP", "FAMILIES", "add_port_arguments", "baud_rate", "build_parser", "main"]

ENTRY_POINT_GROUP = "stm32ota.commands"

# protocol's own command families: module -> the subcommands its register() adds.
FAMILIES: dict[str, tuple[str, ...]] = {
    "protocol.cli.ymodem_cli": ("send", "receive"),
    "protocol.cli.update_cli": ("info", "flash", "monitor"),
    "protocol.cli.image_cli": ("keygen", "getpub", "getpriv", "sign", "verify", "inspect"),
    "protocol.cli.device_cli": ("ports", "reset", "confirm", "rollback", "erase", "read", "terminal"),
}

Register = Callable[["argparse._SubParsersAction[Any]"], None]


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: an argument it does not know is *its* usage error (argparse would otherwise
    hand it back to the top-level parser, which prints the top-level usage)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs: the first word that is not an option (top-level options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _builtin_register(module_name: str) -> Register:
    register: Register = importlib.import_module(module_name).register
    return register


def plugin_families() -> dict[str, tuple[Callable[[], Register], tuple[str, ...]]]:
    """Families other packages declare in the ``stm32ota.commands`` entry-point group: the entry's value
    (``module:register``) -> (a loader of that function, the subcommand names pointing at it)."""
    from importlib.metadata import entry_points

    names: dict[str, list[str]] = {}
    loaders: dict[str, Callable[[], Register]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        names.setdefault(entry.value, []).append(entry.name)
        loaders.setdefault(entry.value, entry.load)
    return {value: (loaders[value], tuple(names[value])) for value in names}


def _families(command: str | None) -> Iterable[Callable[[], Register]]:
    """Loaders of the register functions to call for ``command`` (all of them for ``None`` or an unknown one)."""
    for module_name, names in FAMILIES.items():
        if command in names:
            return [lambda module_name=module_name: _builtin_register(module_name)]
    plugins = plugin_families()
    for loader, names in plugins.values():
        if command in names:
            return [loader]
    builtin = [lambda module_name=module_name: _builtin_register(module_name) for module_name in FAMILIES]
    return [*builtin, *(loader for loader, _ in plugins.values())]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (given the ``argv`` about to be parsed) just what that command needs."""
    command = _command_word(argv) if argv is not None else None
    parser = argparse.ArgumentParser(prog="stm32ota", description="Remote firmware updates for STM32 microcontrollers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_common_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for load in _families(command):
        try:
            register = load()
        except ModuleNotFoundError as err:
            # a family whose optional dependency is missing from this installation is left out
            logging.getLogger(__name__).debug("command family not available: %s", err)
            continue
        register(sub)
    for subparser in {id(p): p for p in sub.choices.values()}.values():
        add_common_options(subparser, after_command=True)
    return parser


def _resolve(handler: str) -> Callable[[argparse.Namespace], int]:
    module_name, _, func = handler.partition(":")
    func_obj: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module_name), func)
    return func_obj


class _StderrNow(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream of the first call: a
    program that calls :func:`main` more than once (a test run, the app) may replace stderr in between."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


@contextlib.contextmanager
def _logging_for(verbose: int, trace: bool) -> Iterator[None]:
    """Log to stderr at the level ``-v`` asks for (and the wire at TRACE with ``--trace``) for one command,
    then put logging back as it was: :func:`main` may run many times in one process (tests, the app)."""
    from ..wirelog import TRACE

    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    root, wire = logging.getLogger(), logging.getLogger("stm32ota.wire")
    saved = root.level, wire.level, wire.propagate
    added: list[tuple[logging.Logger, logging.Handler]] = []
    configure_root = not root.handlers
    if configure_root:  # as logging.basicConfig: a program that configured logging keeps its own
        handler = _StderrNow()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)
        added.append((root, handler))
    if trace:
        wire.setLevel(TRACE)
        if level > TRACE:
            handler = _StderrNow()
            handler.setFormatter(logging.Formatter("%(message)s"))
            wire.addHandler(handler)
            wire.propagate = False
            added.append((wire, handler))
    try:
        yield
    finally:
        for logger, installed in added:
            logger.removeHandler(installed)
        if configure_root:
            root.setLevel(saved[0])
        wire.setLevel(saved[1])
        wire.propagate = saved[2]


def _error(message: str, hint: str | None = None) -> int:
    sys.stderr.write(f"stm32ota: error: {message}\n")
    if hint:
        sys.stderr.write(f"  hint: {hint}\n")
    return EXIT_FAILURE


def _os_error(err: OSError) -> int:
    """An OS error that no adapter translated (a file we could not write, a closed pipe): one line."""
    what = err.strerror or str(err) or type(err).__name__
    if err.filename is not None:
        what = f"{err.filename}: {what}"
    return _error(what)


def _serial_error(err: BaseException) -> bool:
    serial = sys.modules.get("serial")  # only a command that opened a port can raise one
    return serial is not None and isinstance(err, serial.SerialException)


def _run(argv: list[str]) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    verbose = args.verbose + getattr(args, VERBOSE_AFTER, 0)
    trace = args.trace or getattr(args, TRACE_AFTER, False)
    with _logging_for(verbose, trace):
        return _run_handler(args)


def _run_handler(args: argparse.Namespace) -> int:
    log = logging.getLogger(__name__)
    log.debug("stm32ota %s, Python %s: %s (%s)", __version__, sys.version.split()[0], args.command, args.handler)
    try:
        return _resolve(args.handler)(args)
    except KeyboardInterrupt:  # before Stm32OtaError: Interrupted (Ctrl-C after a driver's cleanup) is both
        raise
    except Stm32OtaError as err:
        return _error(str(err), err.hint)
    except OSError as err:
        if _serial_error(err):  # pyserial's SerialException is an IOError
            return _error(f"serial port: {err}", "check the cable and the port name, then run the command again")
        return _os_error(err)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``stm32ota`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    try:
        return _run(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:
        sys.stderr.write("stm32ota: interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
