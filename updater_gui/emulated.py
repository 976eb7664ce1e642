"""The built-in "Emulated STM32": an emulator started by the app, so it is useful on a machine with no board.

By default the emulator runs in this process (:func:`emulator.testing.running_emulator`: threads, a pty), so
the tests can look inside the chip.  ``process="subprocess"`` runs ``stm32ota emulate`` in a child process
instead, as real hardware would be: the emulator's pacing threads then do not compete with the window for
Python's GIL (the GUI benchmark measures the app, not the emulator).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from emulator.testing import EmulatorHandle, running_emulator

__all__ = ["EmulatorPool", "EmulatorSpec"]

log = logging.getLogger(__name__)

SUBPROCESS_START_TIMEOUT_S = 20.0
SUBPROCESS_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True, kw_only=True)
class EmulatorSpec:
    mode: str = "ota"  # "ota" (our bootloader) or "iap" (a classic AN4657 menu)
    chip: str = "stm32f407vg"
    baud: int = 115200  # 0: an unthrottled line (tests)
    process: Literal["thread", "subprocess"] = "thread"


class EmulatorPool:
    """Emulators started on demand and stopped together (at exit).  Thread-safe: workers start them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self.handles: list[EmulatorHandle] = []  # the in-process ones, to look inside

    def start(self, spec: EmulatorSpec = EmulatorSpec()) -> str:
        """A new emulator; returns the port to open (blocks until it has booted: call it from a worker)."""
        if spec.process == "subprocess":
            port = self._start_subprocess(spec)
        else:
            with self._lock:
                state = self._state_dir()
                handle = self._stack.enter_context(
                    running_emulator(
                        mode=spec.mode, chip=spec.chip, baud=spec.baud, pacing=spec.baud > 0, state_dir=state
                    )
                )
                self.handles.append(handle)
            port = handle.port
        log.info("emulated %s (%s) on %s", spec.chip, spec.mode, port)
        return port

    def _state_dir(self) -> str:
        """A fresh state folder whose board has a unique id of its own (call with the lock held): a tray of
        emulated boards, or a gateway serving several, must tell them apart as it would real ones."""
        state = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="stm32ota-gui-emu-"))
        (Path(state) / "state.json").write_text(json.dumps({"uid": secrets.token_hex(12)}))
        return state

    def _start_subprocess(self, spec: EmulatorSpec) -> str:
        with self._lock:
            state = self._state_dir()
        command = [
            sys.executable,
            "-m",
            "protocol",
            "emulate",
            "--mode",
            spec.mode,
            "--chip",
            spec.chip,
            "--baud",
            str(spec.baud),
            "--time-scale",
            "0",
            "--state",
            state,
        ]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        with self._lock:
            self._stack.callback(_stop, proc)
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(proc.stdout.readline() if proc.stdout else b""))
        reader.start()
        reader.join(SUBPROCESS_START_TIMEOUT_S)
        port = got[0].decode().strip() if got else ""
        if not port:
            from protocol.errors import PortError

            raise PortError("the emulated STM32 did not start", hint="run `stm32ota emulate` to see why")
        return port

    def close(self) -> None:
        with self._lock:
            self._stack.close()
            self._stack = contextlib.ExitStack()
            self.handles.clear()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(SUBPROCESS_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
