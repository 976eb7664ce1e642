"""The persisted device: a state folder holding ``flash.bin`` and ``state.json``.

``flash.bin`` is the raw flash contents from the flash base address (exactly the chip's flash size).
``state.json`` holds what is not flash: the chip name, and whatever the personalities keep there (the OTA
bootloader's security counter and boot counters, the resume record of a partial transfer, the IAP
personality's settings...).  Both files are written atomically (temp file + rename), so a folder is never
left half written, even when the emulator is killed while flushing.
"""

from __future__ import annotations

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


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class DeviceState:
    """A loaded state folder.  ``flash`` is ``None`` when the folder has no ``flash.bin`` yet (a blank chip)."""

    folder: Path
    chip: ChipProfile
    flash: bytearray | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, folder: Path | str, chip: ChipProfile) -> DeviceState:
        """Load (or start) the state folder of ``chip``; :class:`StateError` if it belongs to another chip."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
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
        return cls(folder=folder, chip=chip, flash=flash, data=data)

    def save(self, flash: bytes, data: dict[str, Any] | None = None) -> None:
        """Write ``flash.bin`` and ``state.json`` (``data`` defaults to :attr:`data`)."""
        if data is not None:
            self.data = data
        self.data["chip"] = self.chip.name
        try:
            _write_atomic(self.folder / FLASH_FILE, bytes(flash))
            text = json.dumps(self.data, indent=2, sort_keys=True, default=_json_default)
            _write_atomic(self.folder / STATE_FILE, text.encode("utf-8") + b"\n")
        except OSError as err:
            raise StateError(f"cannot write the state folder {self.folder}: {err}") from err


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
