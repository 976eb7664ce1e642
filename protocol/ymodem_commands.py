"""``stm32ota send`` and ``stm32ota receive``: a YMODEM core on a :class:`~protocol.drivers.link.SerialLink`.

Commands never print: progress and messages go through :class:`~protocol.console.ConsoleReporter` (stderr),
results through :func:`~protocol.console.write_json` (stdout, ``--json``).  Errors propagate as
:class:`~protocol.errors.Stm32OtaError` for ``main()`` to render; before they do, the peer gets CAN CAN.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .console import ConsoleReporter, format_bytes, write_json
from .drivers.link import SerialLink
from .errors import Stm32OtaError
from .sansio import Connection, Event, Progress
from .ymodem import (
    REQUEST_INTERVAL_S,
    BatchComplete,
    FileData,
    FileReceived,
    FileSent,
    FileStarted,
    YmodemFile,
    YmodemReceiver,
    YmodemSender,
    safe_filename,
)

__all__ = ["cmd_receive", "cmd_send", "load_files"]

EXIT_OK = 0
_PART_SUFFIX = ".part"
_XMODEM_NAME = "xmodem.bin"  # a plain XMODEM sender sends no name


def load_files(paths: list[str]) -> list[YmodemFile]:
    """Read the files to send; the receiver sees each one's base name, size and mtime."""
    files = []
    for name in paths:
        path = Path(name)
        try:
            data = path.read_bytes()
            st = path.stat()
        except OSError as err:
            raise Stm32OtaError(
                f"cannot read {name}: {err.strerror or err}", hint="check the file name and its permissions"
            ) from err
        try:
            # no mode: Debian's rb 0.12.21rc intermittently dies of a double free when block 0 carries one
            files.append(YmodemFile(path.name, data, mtime=int(st.st_mtime)))
        except ValueError as err:
            raise Stm32OtaError(f"cannot send {name}: {err}") from err
    return files


@contextlib.contextmanager
def _aborting(link: SerialLink, core: YmodemSender | YmodemReceiver) -> Iterator[None]:
    """On any failure of ours (Ctrl-C, a file we cannot write), tell the peer with CAN CAN before leaving."""
    try:
        yield
    except BaseException:
        if not core.finished:
            core.abort("transfer aborted on this side")
            with contextlib.suppress(Stm32OtaError, OSError):
                link.run(core)  # sends the CANs, then raises the abort (suppressed: we are leaving anyway)
        raise


def _summary(action: str, nbytes: int, seconds: float) -> dict[str, Any]:
    rate = nbytes / seconds if seconds > 0 else 0.0
    return {"action": action, "bytes": nbytes, "seconds": round(seconds, 3), "bytes_per_s": round(rate)}


def _report_line(summary: dict[str, Any], count: int) -> str:
    return (
        f"{summary['action']} {count} file{'s' if count != 1 else ''}, {format_bytes(summary['bytes'])}"
        f" in {summary['seconds']:.2f} s ({format_bytes(summary['bytes_per_s'])}/s)"
    )


def _run(link: SerialLink, core: Connection, on_event: Any) -> None:
    link.run(core, on_event=on_event)


def cmd_send(args: argparse.Namespace) -> int:
    files = load_files(args.files)
    reporter = ConsoleReporter(quiet=args.quiet or args.json)
    core = YmodemSender(files, block_size=args.block_size)
    sent: list[dict[str, Any]] = []

    def on_event(event: Event) -> None:
        if type(event) is Progress:  # one per block: first, and straight to the reporter
            reporter(event)
        elif isinstance(event, FileStarted):
            reporter.message(f"sending {event.name} ({format_bytes(event.size or 0)})")
        elif isinstance(event, FileSent):
            sent.append({"name": event.name, "size": event.size})
        elif not isinstance(event, BatchComplete):
            reporter(event)

    with SerialLink(args.port, args.baud) as link:
        reporter.message(f"waiting for the receiver on {args.port} ...")
        started = time.monotonic()
        with _aborting(link, core):
            _run(link, core, on_event)
        elapsed = time.monotonic() - started
    reporter.close()
    summary = _summary("sent", sum(f["size"] for f in sent), elapsed)
    summary["files"] = sent
    if args.json:
        write_json(summary)
    else:
        reporter.message(_report_line(summary, len(sent)))
    return EXIT_OK


class _Store:
    """Writes received files into a directory: ``name.part`` while receiving, renamed when complete."""

    def __init__(self, directory: Path, overwrite: bool) -> None:
        self.directory = directory
        self.overwrite = overwrite
        self.received: list[dict[str, Any]] = []
        self._file: IO[bytes] | None = None
        self._target: Path | None = None
        self._part: Path | None = None
        self._mtime: int | None = None

    def start(self, event: FileStarted) -> Path:
        name = safe_filename(event.name) if event.name else _XMODEM_NAME
        target = self.directory / name
        if target.exists() and not self.overwrite:
            raise Stm32OtaError(f"{target} already exists", hint="use --overwrite, or -d to pick another directory")
        part = target.with_name(target.name + _PART_SUFFIX)
        try:
            self._file = part.open("wb")
        except OSError as err:
            raise Stm32OtaError(f"cannot create {part}: {err.strerror or err}") from err
        self._target, self._part, self._mtime = target, part, event.mtime
        return target

    def write(self, data: bytes) -> None:
        assert self._file is not None
        try:
            self._file.write(data)
        except OSError as err:
            raise Stm32OtaError(f"cannot write {self._part}: {err.strerror or err}") from err

    def finish(self, event: FileReceived) -> None:
        assert self._file is not None and self._part is not None and self._target is not None
        self._file.close()
        self._file = None
        os.replace(self._part, self._target)
        if self._mtime:
            with contextlib.suppress(OSError):
                os.utime(self._target, (self._mtime, self._mtime))
        self.received.append({"name": event.name, "path": str(self._target), "size": event.size})
        self._part = self._target = None

    def discard(self) -> None:
        """Remove a partial file after a failure."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._part is not None:
            with contextlib.suppress(OSError):
                self._part.unlink()
            self._part = None


def cmd_receive(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Stm32OtaError(f"cannot create {directory}: {err.strerror or err}") from err
    reporter = ConsoleReporter(quiet=args.quiet or args.json)
    store = _Store(directory, args.overwrite)
    requests = max(1, math.ceil(args.wait / REQUEST_INTERVAL_S))
    core = YmodemReceiver(start_requests=requests)

    def on_event(event: Event) -> None:
        if isinstance(event, FileData):
            store.write(event.data)
        elif isinstance(event, FileStarted):
            target = store.start(event)
            size = "unknown size" if event.size is None else format_bytes(event.size)
            reporter.message(f"receiving {target} ({size})")
        elif isinstance(event, FileReceived):
            store.finish(event)
        elif not isinstance(event, BatchComplete):
            reporter(event)

    with SerialLink(args.port, args.baud) as link:
        reporter.message(f"waiting for the sender on {args.port} ...")
        started = time.monotonic()
        try:
            with _aborting(link, core):
                _run(link, core, on_event)
        except BaseException:
            store.discard()
            raise
        elapsed = time.monotonic() - started
    reporter.close()
    summary = _summary("received", sum(f["size"] for f in store.received), elapsed)
    summary["files"] = store.received
    if args.json:
        write_json(summary)
    else:
        reporter.message(_report_line(summary, len(store.received)))
    return EXIT_OK
