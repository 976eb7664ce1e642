"""Chip profiles: the flash geometry, programming rules, datasheet timings and slot layout of each emulated STM32.

Timings are the datasheets' *typical* figures (``docs/emulator.md`` cites the tables); the flash model sleeps
``typical * time_scale``.  The slot layout is the MCUboot-style partitioning the OTA bootloader uses
(bootloader, device state, primary slot, secondary slot, scratch), each area a ``(start, size)`` pair that
covers whole sectors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Self

__all__ = [
    "CHIPS",
    "DEFAULT_CHIP",
    "ChipProfile",
    "Sector",
    "SlotLayout",
    "chip_profile",
    "make_sectors",
]

KIB = 1024
FLASH_BASE = 0x0800_0000
SRAM_BASE = 0x2000_0000
DEFAULT_CHIP = "stm32f407vg"


@dataclass(frozen=True)
class Sector:
    """One erase unit (an F4 *sector* or an F1/L4 *page*): ``index`` from 0, absolute ``start``, ``size``."""

    index: int
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class SlotLayout:
    """The OTA bootloader's areas, each ``(absolute start, size)`` in bytes."""

    bootloader: tuple[int, int]
    state: tuple[int, int]
    primary: tuple[int, int]
    secondary: tuple[int, int]
    scratch: tuple[int, int]

    @classmethod
    def packed(cls, base: int, *, bootloader: int, state: int, primary: int, secondary: int, scratch: int) -> Self:
        """The five areas back to back from ``base``, in this order, each given by its size: every part's
        layout is one, so the starts are worked out here rather than by hand in each profile."""
        sizes = (bootloader, state, primary, secondary, scratch)
        starts = [base + sum(sizes[:i]) for i in range(len(sizes))]
        return cls(*zip(starts, sizes, strict=True))

    def areas(self) -> dict[str, tuple[int, int]]:
        return {
            "bootloader": self.bootloader,
            "state": self.state,
            "primary": self.primary,
            "secondary": self.secondary,
            "scratch": self.scratch,
        }


@dataclass(frozen=True, eq=False)
class ChipProfile:
    """Everything the emulator needs to know about one STM32 part.

    ``erase_time_s`` maps a sector size to its typical erase time; ``program_time_s`` is the typical time to
    program one ``write_width`` unit; ``mass_erase_time_s`` the whole-bank erase.  ``dev_id`` is the
    DBGMCU_IDCODE DEV_ID the hardware tag names; ``uid`` the 96-bit unique id (12 bytes) reported by INFO.
    ``read_while_write`` is True when the secondary slot sits in another bank than the running code, so the
    CPU (and its UART) keeps running while that bank erases.
    """

    name: str
    dev_id: int
    flash_base: int
    sectors: tuple[Sector, ...]
    write_width: int
    erase_time_s: dict[int, float]
    program_time_s: float
    mass_erase_time_s: float
    ram_size: int
    uid: bytes
    layout: SlotLayout
    board_id: int = 1
    read_while_write: bool = False
    uid_address: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.uid) != 12:
            raise ValueError("uid must be 12 bytes (96 bits)")
        if self.write_width not in (1, 2, 4, 8):
            raise ValueError("write_width must be 1, 2, 4 or 8 bytes")
        address = self.flash_base
        for i, sector in enumerate(self.sectors):
            if sector.index != i or sector.start != address:
                raise ValueError(f"sector {i} of {self.name} is not contiguous")
            if sector.size not in self.erase_time_s:
                raise ValueError(f"no erase time for {sector.size}-byte sectors of {self.name}")
            address = sector.end
        for name, (start, size) in self.layout.areas().items():
            covered = self.sectors_in(start, size)
            if not covered or covered[0].start != start or covered[-1].end != start + size:
                raise ValueError(f"{self.name}: the {name} area does not cover whole sectors")

    @property
    def flash_size(self) -> int:
        return sum(s.size for s in self.sectors)

    @property
    def flash_end(self) -> int:
        return self.flash_base + self.flash_size

    def sector_at(self, address: int) -> Sector:
        """The sector holding ``address``; :class:`ValueError` outside flash."""
        if not self.flash_base <= address < self.flash_end:
            raise ValueError(f"address 0x{address:08X} is outside the flash of {self.name}")
        lo, hi = 0, len(self.sectors) - 1
        while lo < hi:  # binary search: the L476 has 512 pages
            mid = (lo + hi + 1) // 2
            if self.sectors[mid].start <= address:
                lo = mid
            else:
                hi = mid - 1
        return self.sectors[lo]

    def sectors_in(self, address: int, size: int) -> list[Sector]:
        """The sectors that ``address .. address + size`` touches (empty for ``size <= 0``)."""
        if size <= 0:
            return []
        first = self.sector_at(address).index
        last = self.sector_at(min(address + size, self.flash_end) - 1).index
        return list(self.sectors[first : last + 1])

    def erase_time(self, sector: Sector) -> float:
        """Typical erase time of ``sector`` in seconds."""
        return self.erase_time_s[sector.size]


def make_sectors(base: int, sizes: list[int]) -> tuple[Sector, ...]:
    """Contiguous sectors of the given sizes from ``base``."""
    out: list[Sector] = []
    address = base
    for index, size in enumerate(sizes):
        out.append(Sector(index, address, size))
        address += size
    return tuple(out)


def _uid(name: str) -> bytes:
    """A stable per-part 96-bit UID (silicon: wafer x/y, wafer number, lot number)."""
    return hashlib.sha256(b"stm32ota-emulator-uid:" + name.encode()).digest()[:12]


# STM32F407VG (RM0090 table 5; DS8626 table 42 "Flash memory programming", typical at x32 / 2.7-3.6 V)
_F407 = ChipProfile(
    name="stm32f407vg",
    dev_id=0x413,
    flash_base=FLASH_BASE,
    sectors=make_sectors(FLASH_BASE, [16 * KIB] * 4 + [64 * KIB] + [128 * KIB] * 7),
    write_width=4,
    erase_time_s={16 * KIB: 0.250, 64 * KIB: 0.550, 128 * KIB: 1.0},
    program_time_s=16e-6,
    mass_erase_time_s=8.0,
    ram_size=128 * KIB,  # SRAM1 + SRAM2, contiguous at 0x20000000 (the 64 KiB CCM sits elsewhere)
    uid=_uid("stm32f407vg"),
    layout=SlotLayout.packed(
        FLASH_BASE, bootloader=64 * KIB, state=64 * KIB, primary=384 * KIB, secondary=384 * KIB, scratch=128 * KIB
    ),
    uid_address=0x1FFF_7A10,
    description="STM32F407VG: 1 MiB single-bank flash, 4x16K + 1x64K + 7x128K sectors, 32-bit programming",
)

# STM32F103C8 (PM0075; DS5319 table 28 "Flash memory characteristics")
_F103 = ChipProfile(
    name="stm32f103c8",
    dev_id=0x410,
    flash_base=FLASH_BASE,
    sectors=make_sectors(FLASH_BASE, [1 * KIB] * 64),
    write_width=2,
    erase_time_s={1 * KIB: 0.020},
    program_time_s=52.5e-6,
    mass_erase_time_s=0.020,
    ram_size=20 * KIB,
    uid=_uid("stm32f103c8"),
    layout=SlotLayout.packed(
        FLASH_BASE, bootloader=16 * KIB, state=2 * KIB, primary=22 * KIB, secondary=22 * KIB, scratch=2 * KIB
    ),
    uid_address=0x1FFF_F7E8,
    description="STM32F103C8: 64 KiB flash, 1 KiB pages, 16-bit programming",
)

# STM32L476RG (RM0351; DS10198 table 48 "Flash memory characteristics")
_L476 = ChipProfile(
    name="stm32l476rg",
    dev_id=0x415,
    flash_base=FLASH_BASE,
    sectors=make_sectors(FLASH_BASE, [2 * KIB] * 512),
    write_width=8,
    erase_time_s={2 * KIB: 0.02202},
    program_time_s=81.69e-6,
    mass_erase_time_s=0.02213,
    ram_size=96 * KIB,  # SRAM1 (SRAM2 is aliased elsewhere)
    uid=_uid("stm32l476rg"),
    layout=SlotLayout.packed(
        FLASH_BASE,
        bootloader=64 * KIB,
        state=64 * KIB,
        primary=384 * KIB,  # the rest of bank 1
        secondary=384 * KIB,  # bank 2 (from 0x0808_0000): erased and written while bank 1 runs
        scratch=128 * KIB,
    ),
    read_while_write=True,
    uid_address=0x1FFF_7590,
    description="STM32L476RG: 1 MiB dual-bank flash, 2 KiB pages, 64-bit programming",
)

CHIPS: dict[str, ChipProfile] = {chip.name: chip for chip in (_F407, _F103, _L476)}


def chip_profile(name: str) -> ChipProfile:
    """The profile called ``name`` (case-insensitive); :class:`KeyError` naming the choices otherwise."""
    try:
        return CHIPS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown chip {name!r}; choose one of {', '.join(sorted(CHIPS))}") from None
