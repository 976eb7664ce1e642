"""The persisted device: a state folder holding ``flash.bin`` and ``state.json``.

``flash.bin`` is the raw flash contents from the flash base address (exactly the chip's flash size).
``state.json`` holds what is not flash: the chip name, and whatever the personalities keep there (the OTA
bootloader's security counter and boot counters, the resume record of a partial transfer, the IAP
personality's settings...).

The folder is the chip's non-volatile memory, so it is written as the chip would commit it: once
:meth:`DeviceState.attach_flash` made ``flash.bin`` write-through, every erase or program reaches the file
(:meth:`DeviceState.write_flash`: ``pwrite``, then ``fdatasync`` when ``durable``) before the operation
returns, and ``state.json`` is replaced atomically (temp file, ``fsync``, rename, ``fsync`` of the folder)
whenever it changed (:meth:`DeviceState.sync_data`).  Killing the emulator (SIGKILL) at any moment is
therefore a power cut at that moment; ``durable`` adds the guarantee against a crash of the host machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import Stm32OtaError

from .chips import ChipProfile

__all__ = ["FLASH_FILE", "STATE_FILE", "DeviceState", "StateError"]

FLASH_FILE = "flash.bin"
STATE_FILE = "state.json"
STATE_FORMAT = 1


class StateError(Stm32OtaError):
    """The state folder cannot be used (another chip's flash, unreadable JSON, not writable)."""


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the directory entry is data too)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


@dataclass
class DeviceState:
    """A loaded state folder.  ``flash`` is ``None`` when the folder has no ``flash.bin`` yet (a blank chip)."""

    folder: Path
    chip: ChipProfile
    flash: bytearray | None = None
    data: dict[str, Any] = field(default_factory=dict)
    durable: bool = True  # fsync every commit (else the OS has it at once: safe against SIGKILL, not a host crash)
    _fd: int | None = field(default=None, repr=False)
    _saved_text: str | None = field(default=None, repr=False)

    @classmethod
    def open(cls, folder: Path | str, chip: ChipProfile, *, durable: bool = True) -> DeviceState:
        """Load (or start) the state folder of ``chip``; :class:`StateError` if it belongs to another chip."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name in (FLASH_FILE, STATE_FILE):  # a write cut short by a kill: the old file still stands
                for stale in folder.glob(f"{name}.*.tmp"):
                    stale.unlink(missing_ok=True)
        except OSError as err:
            raise StateError(f"cannot create the state folder {folder}: {err}") from err
        data: dict[str, Any] = {}
        state_path = folder / STATE_FILE
        if state_path.is_file():
            try:
                loaded = json.loads(state_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise StateError(
                    f"cannot read {state_path}: {err}", hint="delete the file to start with a fresh device state"
                ) from err
            if not isinstance(loaded, dict):
                raise StateError(f"{state_path} does not hold a JSON object", hint="delete the file")
            data = loaded
            saved_chip = data.get("chip")
            if saved_chip is not None and saved_chip != chip.name:
                raise StateError(
                    f"the state folder {folder} belongs to an emulated {saved_chip}, not {chip.name}",
                    hint=f"use --chip {saved_chip}, or another --state folder",
                )
        flash: bytearray | None = None
        flash_path = folder / FLASH_FILE
        if flash_path.is_file():
            raw = flash_path.read_bytes()
            if len(raw) != chip.flash_size:
                raise StateError(
                    f"{flash_path} holds {len(raw)} bytes; the flash of {chip.name} is {chip.flash_size} bytes",
                    hint="the folder belongs to another chip: pick the right --chip or another --state folder",
                )
            flash = bytearray(raw)
        data["chip"] = chip.name
        data.setdefault("format", STATE_FORMAT)
        return cls(folder=folder, chip=chip, flash=flash, data=data, durable=durable)

    def save(self, flash: bytes, data: dict[str, Any] | None = None) -> None:
        """Write ``flash.bin`` and ``state.json`` (``data`` defaults to :attr:`data`)."""
        try:
            if self._fd is not None:
                self.write_flash(0, bytes(flash))
            else:
                _write_atomic(self.folder / FLASH_FILE, bytes(flash), durable=self.durable)
        except OSError as err:
            raise StateError(f"cannot write the state folder {self.folder}: {err}") from err
        self.sync_data(self.data if data is None else data, force=True)

    # -- write-through -----------------------------------------------------------------------------------------
    def attach_flash(self, flash: bytes) -> None:
        """Make ``flash.bin`` (holding ``flash`` from now on) the write-through backing of the flash: from here
        on :meth:`write_flash` updates it in place."""
        if self._fd is not None:
            return
        path = self.folder / FLASH_FILE
        try:
            if self.flash is None or not path.is_file():
                _write_atomic(path, bytes(flash), durable=self.durable)
            self._fd = os.open(path, os.O_RDWR)
        except OSError as err:
            raise StateError(f"cannot write the state folder {self.folder}: {err}") from err

    def write_flash(self, offset: int, data: bytes) -> None:
        """Commit ``data`` at ``offset`` of ``flash.bin`` (durable before this returns, when ``durable``)."""
        fd = self._fd
        if fd is None:
            raise StateError("the flash file is not attached", hint="call attach_flash() first")
        try:
            view = memoryview(data)
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
            if self.durable:
                os.fdatasync(fd)
        except OSError as err:
            raise StateError(f"cannot write the state folder {self.folder}: {err}") from err

    def sync_data(self, data: dict[str, Any], *, force: bool = False) -> bool:
        """Replace ``state.json`` atomically if ``data`` changed since the last write; True if it wrote."""
        self.data = data
        data["chip"] = self.chip.name
        try:
            text = json.dumps(data, indent=2, sort_keys=True, default=_json_default)
        except (TypeError, ValueError) as err:
            raise StateError(f"the device state cannot be saved as JSON: {err}") from err
        if text == self._saved_text and not force:
            return False
        try:
            _write_atomic(self.folder / STATE_FILE, text.encode("utf-8") + b"\n", durable=self.durable)
        except OSError as err:
            raise StateError(f"cannot write the state folder {self.folder}: {err}") from err
        self._saved_text = text
        return True

    def close(self) -> None:
        """Release ``flash.bin`` (after a final ``fsync``)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
