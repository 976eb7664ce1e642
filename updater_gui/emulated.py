"""The built-in "Emulated STM32": an emulator running in this process, so the app is useful with no board."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass

from emulator.testing import EmulatorHandle, running_emulator

__all__ = ["EmulatorSpec", "EmulatorPool"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EmulatorSpec:
    mode: str = "ota"  # "ota" (our bootloader) or "iap" (a classic AN4657 menu)
    chip: str = "stm32f407vg"
    baud: int = 115200  # 0: an unthrottled line (tests)
    log_rate: float = 0.0  # (benchmarks) device log lines per second; 0 for none


class EmulatorPool:
    """Emulators started on demand and stopped together (at exit).  Thread-safe: workers start them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self.handles: list[EmulatorHandle] = []

    def start(self, spec: EmulatorSpec = EmulatorSpec()) -> EmulatorHandle:
        """A new emulator (blocks until it has booted: call it from a worker)."""
        with self._lock:
            handle = self._stack.enter_context(
                running_emulator(mode=spec.mode, chip=spec.chip, baud=spec.baud, pacing=spec.baud > 0)
            )
            self.handles.append(handle)
        log.info("emulated %s (%s) on %s", spec.chip, spec.mode, handle.port)
        return handle

    def close(self) -> None:
        with self._lock:
            self._stack.close()
            self.handles.clear()
