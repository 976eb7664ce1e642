"""The flash model: erase to 0xFF, program only clears bits, write width and alignment, datasheet timings, power cuts.

Rules (as on the STM32 flash controllers the chip profiles describe):

* An erase sets a whole sector (F4) or page (F1, L4) to ``0xFF``.
* :meth:`Flash.program` writes whole ``write_width`` units at aligned addresses (PGAERR otherwise).  A unit
  that is not erased cannot be programmed again: that is :class:`FlashProgramError` (PGSERR on the F4, PGERR
  on the F1, PROGERR on the L4).  Programming a unit with all-``0xFF`` data changes nothing and is allowed.
* Every operation takes its datasheet-typical time times ``time_scale`` (``sleep`` is called with it).
* Flash is non-volatile: after each operation changed the contents (completely, or half when power went),
  ``on_store(offset, size)`` commits that range (the runtime writes it through to the state folder) before the
  operation returns.  The time the commit takes is part of the operation's time (a datasheet-timed
  operation hides it), so making the emulated flash durable does not make the chip slower.
* Operations are numbered from 1 (:attr:`Flash.ops`).  Before each one ``on_op(number)`` runs; if it raises
  :class:`PowerCut`, the operation is left *half done* and the cut propagates:

  - a program keeps its first half of units, and the unit after them is partly programmed (some of its
    0-bits are set, some are not);
  - an interrupted erase is a sector-wide process stopped early: each programmed (0) bit of the sector reads
    back as 0 or 1 at random (seeded by the operation number, so a cut is reproducible).  Whatever the
    sector held is then neither its old content nor erased.

``PowerCut`` derives from :class:`BaseException` so that no ``except Exception`` in firmware code can swallow it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from .chips import ChipProfile, Sector

__all__ = [
    "ERASED",
    "Flash",
    "FlashAddressError",
    "FlashAlignmentError",
    "FlashError",
    "FlashProgramError",
    "PowerCut",
]

log = logging.getLogger(__name__)

ERASED = 0xFF


class PowerCut(BaseException):
    """Power was cut during a flash operation (which was left half done)."""


class FlashError(RuntimeError):
    """A flash operation the controller refuses; ``status`` names the controller flag."""

    status = "ERR"


class FlashProgramError(FlashError):
    """Programming a unit that is not erased (PGSERR/PGERR/PROGERR)."""

    status = "PGSERR"


class FlashAlignmentError(FlashError):
    """Address or length not a multiple of the write width (PGAERR/PGPERR)."""

    status = "PGAERR"


class FlashAddressError(FlashError):
    """The operation leaves the flash (a bus fault on silicon)."""

    status = "ADDR"


def _and(a: bytes, b: bytes) -> bytes:
    """Bitwise AND of two equal-length byte strings (programming only clears bits)."""
    return (int.from_bytes(a, "little") & int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _no_sleep(seconds: float) -> None:
    del seconds


class Flash:
    """The emulated flash of ``chip``; ``data`` (the raw contents from the flash base) is used in place.

    ``sleep`` receives each operation's scaled duration (the runtime passes a sleep that also marks the UART
    busy); ``on_op`` is called before each operation with its 1-based number and may raise :class:`PowerCut`.
    """

    def __init__(
        self,
        chip: ChipProfile,
        data: bytearray | None = None,
        *,
        time_scale: float = 0.0,
        sleep: Callable[[float], None] | None = None,
        on_op: Callable[[int], None] | None = None,
        on_store: Callable[[int, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chip = chip
        size = chip.flash_size
        if data is None:
            data = bytearray([ERASED]) * size
        if len(data) != size:
            raise ValueError(f"flash image of {len(data)} bytes; {chip.name} has {size} bytes of flash")
        self.data = data
        self.time_scale = time_scale
        self.sleep = sleep if sleep is not None else (time.sleep if time_scale > 0 else _no_sleep)
        self.on_op = on_op
        self.on_store = on_store
        self.clock = clock
        self.ops = 0
        self.erases = 0
        self.programs = 0
        self.bytes_programmed = 0
        self._busy_until = 0.0

    # -- geometry --------------------------------------------------------------------------------------------
    @property
    def base(self) -> int:
        return self.chip.flash_base

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sectors(self) -> tuple[Sector, ...]:
        return self.chip.sectors

    def sector_at(self, addr: int) -> Sector:
        """The sector holding ``addr``."""
        try:
            return self.chip.sector_at(addr)
        except ValueError as err:
            raise FlashAddressError(str(err)) from None

    def sectors_in(self, addr: int, size: int) -> list[Sector]:
        """The sectors ``addr .. addr + size`` touches."""
        self._check_range(addr, size)
        return self.chip.sectors_in(addr, size)

    def _check_range(self, addr: int, size: int) -> int:
        offset = addr - self.base
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise FlashAddressError(f"0x{addr:08X}+{size} is outside the flash of {self.chip.name}")
        return offset

    # -- reading ---------------------------------------------------------------------------------------------
    def read(self, addr: int, size: int) -> bytes:
        """``size`` bytes at ``addr``."""
        offset = self._check_range(addr, size)
        return bytes(self.data[offset : offset + size])

    def is_erased(self, addr: int, size: int) -> bool:
        """True if ``addr .. addr + size`` reads all ``0xFF``."""
        offset = self._check_range(addr, size)
        return self.data.count(ERASED, offset, offset + size) == size

    # -- busy state ------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while an operation started with ``wait=False`` is still running."""
        return self.clock() < self._busy_until

    def busy_remaining(self) -> float:
        """Seconds (real time) until the flash controller is idle."""
        return max(0.0, self._busy_until - self.clock())

    def wait_idle(self) -> None:
        """Wait (via ``sleep``) until a background erase finished (the firmware polling BSY)."""
        remaining = self.busy_remaining()
        if remaining > 0:
            self.sleep(remaining)
        self._busy_until = 0.0

    # -- operations ------------------------------------------------------------------------------------------
    def _commit(self, offset: int, size: int) -> float:
        """Make ``offset .. offset + size`` non-volatile; returns the seconds it took."""
        if self.on_store is None:
            return 0.0
        started = time.perf_counter()
        self.on_store(offset, size)
        return time.perf_counter() - started

    def _begin(self) -> int:
        """Count the next operation and give the power-cut hook its chance; returns the op number."""
        self.wait_idle()
        self.ops += 1
        return self.ops

    def erase_sector(self, index: int, *, wait: bool = True) -> None:
        """Erase sector ``index`` (typical time x ``time_scale``).

        ``wait=False`` starts the erase and returns at once (the CPU runs on: code in RAM, or another bank);
        the contents read erased at once, and the next operation waits until the erase time has passed."""
        if not 0 <= index < len(self.chip.sectors):
            raise FlashAddressError(f"{self.chip.name} has no sector {index}")
        sector = self.chip.sectors[index]
        offset = sector.start - self.base
        op = self._begin()
        if self.on_op is not None:
            try:
                self.on_op(op)
            except PowerCut:
                self._half_erase(offset, sector.size, op)
                self._commit(offset, sector.size)
                raise
        duration = self.chip.erase_time(sector) * self.time_scale
        self.data[offset : offset + sector.size] = bytes([ERASED]) * sector.size
        self.erases += 1
        duration = max(0.0, duration - self._commit(offset, sector.size))
        if duration > 0:
            if wait:
                self.sleep(duration)
            else:
                self._busy_until = self.clock() + duration
        log.debug("erase sector %d (0x%08X, %d bytes)", index, sector.start, sector.size)

    def program(self, addr: int, data: bytes, *, wait: bool = True) -> None:
        """Program ``data`` at ``addr``: whole, aligned, erased ``write_width`` units only.

        ``wait=False``: the CPU runs on while the flash programs (code running from the other bank); the next
        operation waits for it, as for a background erase."""
        width = self.chip.write_width
        if addr % width or len(data) % width:
            raise FlashAlignmentError(
                f"program of {len(data)} bytes at 0x{addr:08X}: {self.chip.name} programs aligned {width}-byte units"
            )
        offset = self._check_range(addr, len(data))
        if not data:
            return
        current = bytes(self.data[offset : offset + len(data)])
        if current.count(ERASED) != len(current):
            for pos in range(0, len(data), width):
                unit = data[pos : pos + width]
                if current[pos : pos + width].count(ERASED) != width and unit.count(ERASED) != width:
                    raise FlashProgramError(
                        f"programming 0x{addr + pos:08X}: the {width}-byte unit is not erased"
                        f" (reads {current[pos : pos + width].hex()})"
                    )
        op = self._begin()
        if self.on_op is not None:
            try:
                self.on_op(op)
            except PowerCut:
                self._half_program(offset, bytes(data), op)
                self._commit(offset, len(data))
                raise
        self.data[offset : offset + len(data)] = _and(current, bytes(data))
        self.programs += 1
        self.bytes_programmed += len(data)
        duration = (len(data) // width) * self.chip.program_time_s * self.time_scale
        duration = max(0.0, duration - self._commit(offset, len(data)))
        if duration > 0:
            if wait:
                self.sleep(duration)
            else:
                self._busy_until = self.clock() + duration

    def program_padded(self, addr: int, data: bytes, *, wait: bool = True) -> None:
        """Program ``data`` (any length) at aligned ``addr``, padding the last unit with ``0xFF``."""
        tail = -len(data) % self.chip.write_width
        self.program(addr, bytes(data) + b"\xff" * tail, wait=wait)

    # -- half-done operations --------------------------------------------------------------------------------
    def _half_program(self, offset: int, data: bytes, op: int) -> None:
        width = self.chip.write_width
        units = len(data) // width
        done = units // 2
        end = offset + done * width
        for i in range(done * width):
            self.data[offset + i] &= data[i]
        if done < units:  # the unit being programmed when power went: some of its bits made it
            rng = random.Random(op)
            for i in range(width):
                mask = data[done * width + i] | rng.getrandbits(8)
                self.data[end + i] &= mask

    def _half_erase(self, offset: int, size: int, op: int) -> None:
        rng = random.Random(op)
        noise = rng.randbytes(size)
        chunk = bytes(self.data[offset : offset + size])
        merged = int.from_bytes(chunk, "little") | int.from_bytes(noise, "little")
        self.data[offset : offset + size] = merged.to_bytes(size, "little")
