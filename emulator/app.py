"""The emulated application: what "runs" after the bootloader starts the image in the primary slot.

It behaves like a small MCUboot-based firmware: a boot banner with the version read from the image header,
a self-test shortly after start, periodic heartbeats, and ``boot_set_confirmed()`` once the self-test passed
(unless ``auto_confirm`` is off, the way a real app may wait for its server first).  Its log lines go out
through ``say(level, text)``; the OTA personality turns them into the update protocol's LOG frames.

The self-test checks what a Cortex-M would need to run the image: the first word of the payload (the initial
stack pointer) lies in the chip's SRAM and the second (the reset handler) is a Thumb address inside the
primary slot.  An image whose payload contains ``SELFTEST:FAIL`` fails on purpose (for revert tests).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from protocol.image import VerifiedImage
from protocol.update.messages import LogLevel

from .chips import SRAM_BASE, ChipProfile

__all__ = ["FAIL_MARKER", "HEARTBEAT_INTERVAL_S", "SELF_TEST_DELAY_S", "EmulatedApp", "self_test"]

SELF_TEST_DELAY_S = 0.2  # time from the banner to the self-test result
HEARTBEAT_INTERVAL_S = 5.0  # one heartbeat line this often
FAIL_MARKER = b"SELFTEST:FAIL"

Say = Callable[[int, str], None]


def self_test(image: VerifiedImage, chip: ChipProfile) -> tuple[bool, str]:
    """``(passed, detail)`` for the image in the primary slot of ``chip``."""
    payload = image.payload
    if FAIL_MARKER in payload:
        return False, "the image asked for a failing self-test"
    if len(payload) < 8:
        return False, "no vector table"
    stack, reset = struct.unpack_from("<II", payload)
    if not SRAM_BASE < stack <= SRAM_BASE + chip.ram_size:
        return False, f"initial stack pointer 0x{stack:08X} is outside SRAM"
    start, size = chip.layout.primary
    if not reset & 1 or not start <= (reset & ~1) < start + size:
        return False, f"reset vector 0x{reset:08X} is not a Thumb address in the primary slot"
    return True, f"vector table ok (sp 0x{stack:08X}, reset 0x{reset:08X})"


class EmulatedApp:
    """The running image.  Call :meth:`start` once, then :meth:`tick` periodically."""

    def __init__(
        self,
        image: VerifiedImage,
        chip: ChipProfile,
        *,
        under_test: bool,
        say: Say,
        confirm: Callable[[], bool],
        auto_confirm: bool = True,
        self_test_delay: float = SELF_TEST_DELAY_S,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.image = image
        self.chip = chip
        self.under_test = under_test
        self.auto_confirm = auto_confirm
        self.self_test_delay = self_test_delay
        self.heartbeat_interval = heartbeat_interval
        self._say = say
        self._confirm = confirm
        self.started_at: float | None = None
        self.self_test_passed: bool | None = None
        self.confirmed = not under_test
        self.heartbeats = 0
        self.hold_confirm = False  # set when the host asked for a rollback
        self._next_beat = 0.0

    @property
    def version(self) -> str:
        return str(self.image.version)

    def start(self, now: float) -> None:
        self.started_at = now
        self._next_beat = now + self.heartbeat_interval
        mode = "test boot, not confirmed yet" if self.under_test else "confirmed"
        self._say(LogLevel.INFO, f"app: demo firmware {self.version} on {self.chip.name.upper()} ({mode})")

    def tick(self, now: float) -> None:
        if self.started_at is None:
            return
        if self.self_test_passed is None and now >= self.started_at + self.self_test_delay:
            passed, detail = self_test(self.image, self.chip)
            self.self_test_passed = passed
            if passed:
                self._say(LogLevel.INFO, f"app: self-test passed: {detail}")
                if self.under_test and self.auto_confirm and not self.hold_confirm and not self.confirmed:
                    self.confirmed = self._confirm()
                    if self.confirmed:
                        self._say(LogLevel.INFO, f"app: image {self.version} confirmed (boot_set_confirmed)")
                    else:
                        self._say(LogLevel.ERROR, "app: boot_set_confirmed failed")
            else:
                self._say(LogLevel.ERROR, f"app: self-test FAILED: {detail}; not confirming (reset reverts)")
        if now >= self._next_beat:
            self.heartbeats += 1
            self._next_beat = now + self.heartbeat_interval
            uptime = now - self.started_at
            self._say(LogLevel.INFO, f"app: heartbeat {self.heartbeats}, up {uptime:.0f} s, {self.version}")
