"""``stm32ota send`` and ``stm32ota receive``: a YMODEM core on a :class:`~protocol.drivers.link.SerialLink`.

Commands never print: progress and messages go through :class:`~protocol.console.ConsoleReporter` (stderr),
results through :func:`~protocol.console.write_json` (stdout, ``--json``).  Errors propagate as
:class:`~protocol.errors.Stm32OtaError` for ``main()`` to render; before they do, the peer gets CAN CAN.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import stat
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from ..console import ConsoleReporter, format_bytes, write_json
from ..drivers.link import SerialLink
from ..errors import PortError, Stm32OtaError
from ..pump import IoRequest, PumpResult, Write, pump
from ..sansio import Event, Progress
from ..ymodem import (
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
from ..ymodem.iap import IAP_DOWNLOAD_KEY, LineProbe, is_iap_menu, is_start_request

__all__ = ["cmd_receive", "cmd_send", "load_files"]

log = logging.getLogger(__name__)
_PART_SUFFIX = ".part"
_XMODEM_NAME = "xmodem.bin"  # a plain XMODEM sender sends no name
# quiet line send waits for a receiver's 'C' before it probes for an IAP menu: rb asks about 1 s after it
# starts, an IAP menu never asks by itself (and a receiver need not see our probe byte at all)
LISTEN_BEFORE_PROBE_S = 1.5


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


def reach_receiver(
    sender: YmodemSender, clock: Callable[[], float], say: Callable[[str], None]
) -> Generator[IoRequest, PumpResult, bool]:
    """Before a batch: find the receiver, and pick an AN4657 IAP menu's download option if that is what waits.

    Listen first (a receiver already asking with 'C' is answered at once, nothing written); on a quiet line,
    or text, probe with the byte that makes a menu print itself (a YMODEM receiver ignores it).  Either wait
    ends at a read of nothing but start requests, so a waiting receiver costs no probe time.  A menu gets
    its download key; anything else heard is handed to ``sender``, whose own start logic judges it.  Returns
    True when a menu was found."""
    listen = LineProbe(LISTEN_BEFORE_PROBE_S, send=b"", until_request=True)
    yield from pump(listen, clock())
    heard = bytes(listen.received)
    if not is_start_request(heard) and not is_iap_menu(heard):
        probe = LineProbe(until_request=True)
        yield from pump(probe, clock())
        heard = bytes(probe.received)
    if is_iap_menu(heard):
        say("an IAP bootloader menu answered: choosing 'Download image'")
        yield Write(IAP_DOWNLOAD_KEY)
        return True
    if heard:
        sender.receive_data(heard)
    return False


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
            try:
                link.execute(reach_receiver(core, time.monotonic, reporter.message))
                link.run(core, on_event=on_event)
            except PortError:
                if not core.files_delivered:
                    raise
                log.info("the receiver closed the line after acknowledging every file: the batch is complete")
        elapsed = time.monotonic() - started
    reporter.close()
    summary = _summary("sent", sum(f["size"] for f in sent), elapsed)
    summary["files"] = sent
    if args.json:
        write_json(summary)
    else:
        reporter.message(_report_line(summary, len(sent)))
    return 0


class _Store:
    """Writes received files into one directory, never anywhere else.

    A file is written to ``NAME.part``, created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: a symlink planted
    there is refused, never followed, and a leftover regular ``.part`` of an interrupted run is removed first.
    When the file is complete it is flushed to disk and takes its final name atomically: ``os.link`` without
    ``--overwrite`` (so a file that appeared meanwhile is not replaced either), ``os.replace`` with it, which
    replaces whatever is at ``NAME`` (a symlink included) and never writes through it.
    """

    def __init__(self, directory: Path, overwrite: bool) -> None:
        self.directory = directory
        self.overwrite = overwrite
        self.received: list[dict[str, Any]] = []
        self._fd: int | None = None
        self._target: Path | None = None
        self._part: Path | None = None
        self._mtime: int | None = None

    def start(self, event: FileStarted) -> Path:
        name = safe_filename(event.name) if event.name else _XMODEM_NAME
        target = self.directory / name
        if not self.overwrite and _exists(target):
            raise Stm32OtaError(f"{target} already exists", hint="use --overwrite, or -d to pick another directory")
        part = target.with_name(target.name + _PART_SUFFIX)
        self._fd = _create_exclusive(part)
        self._target, self._part, self._mtime = target, part, event.mtime
        return target

    def write(self, data: bytes) -> None:
        assert self._fd is not None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as err:
            raise Stm32OtaError(f"cannot write {self._part}: {err.strerror or err}") from err

    def finish(self, event: FileReceived) -> None:
        assert self._fd is not None and self._part is not None and self._target is not None
        part, target = self._part, self._target
        try:
            if self._mtime:
                os.utime(self._fd, (self._mtime, self._mtime))
            os.fsync(self._fd)
        except OSError as err:
            raise Stm32OtaError(f"cannot write {part}: {err.strerror or err}") from err
        finally:
            os.close(self._fd)
            self._fd = None
        try:
            if self.overwrite:
                os.replace(part, target)
            else:
                _link_new(part, target)
        except FileExistsError:
            raise Stm32OtaError(
                f"{target} appeared while it was being received", hint="use --overwrite, or -d to pick another"
            ) from None
        except OSError as err:
            raise Stm32OtaError(f"cannot store {target}: {err.strerror or err}") from err
        self.received.append({"name": event.name, "path": str(target), "size": event.size})
        self._part = self._target = None

    def discard(self) -> None:
        """Remove a partial file after a failure."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._part is not None:
            with contextlib.suppress(OSError):
                self._part.unlink()
            self._part = None


def _exists(path: Path) -> bool:
    """Anything at ``path``, a dangling symlink included."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise Stm32OtaError(f"cannot check {path}: {err.strerror or err}") from err
    return True


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _create_exclusive(part: Path) -> int:
    """A new, empty ``part``, which is ours alone: created here, not reached through a link."""
    for attempt in range(2):
        try:
            return os.open(part, _CREATE_FLAGS, 0o644)
        except FileExistsError:
            st = os.lstat(part)
            if attempt or not stat.S_ISREG(st.st_mode):
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                raise Stm32OtaError(
                    f"{part} is in the way ({kind}); refusing to write through it",
                    hint=f"remove {part}, or -d to pick another directory",
                ) from None
            part.unlink()  # a partial file left by an interrupted receive: start it afresh
        except OSError as err:
            raise Stm32OtaError(f"cannot create {part}: {err.strerror or err}") from err
    raise AssertionError("unreachable")


def _link_new(part: Path, target: Path) -> None:
    """Give ``part`` the name ``target`` only if nothing has it, atomically; then drop the ``.part`` name."""
    try:
        os.link(part, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # a file system without hard links (FAT, some network shares): check, then rename
        if _exists(target):
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from err
        os.rename(part, target)
        return
    part.unlink()


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
                link.run(core, on_event=on_event)
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
    return 0
