"""MCUboot's rules about where an image sits: bootable flag, fixed ROM address, fit, padding and trailer.

The signature checks (:mod:`.verify`) say whether an image is genuine; these say whether it belongs in a
given slot of a given device, the way MCUboot's ``bootutil`` decides it (``boot_validate_slot`` and
``boot_rom_address_check`` in ``loader.c``, the trailer layout of ``docs/design.md``):

* ``IMAGE_F_NON_BOOTABLE`` (``imgtool sign --non-bootable``): never booted, never swapped in;
* ``IMAGE_F_ROM_FIXED`` (``imgtool sign --rom-fixed ADDR``): the header's address must be where the image
  runs.  A swapping device runs every image from its primary slot, so that is the address compared (the
  absolute address, ``0x08020000``, or its offset from the flash base, ``0x20000``: MCUboot compares flash
  area offsets and STM32 users write addresses);
* the image (header, payload, TLVs) must end before the trailer MCUboot keeps at the slot's end;
* bytes after the TLVs are slot padding: only a file padded to exactly this slot's size
  (``imgtool sign --pad -S <slot size>``) puts its trailer where MCUboot looks for it, at the slot's end.
  Padding for another size puts a trailer in the middle of the slot, so it is refused.

Both the host's pre-flight check (:mod:`protocol.preflight`) and the emulated bootloader call
:func:`check_slot_rules`, so the host refuses exactly what the device would.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ImageTooLargeError, MisplacedTrailerError, NonBootableError, RomAddressError
from .mcuboot import (
    DEFAULT_MAX_ALIGN,
    DEFAULT_MAX_SECTORS,
    IMAGE_F_NON_BOOTABLE,
    IMAGE_F_ROM_FIXED,
    Image,
    trailer_size,
)

__all__ = [
    "DEFAULT_WRITE_UNIT",
    "WRITE_UNITS",
    "SlotGeometry",
    "check_slot_rules",
    "flash_write_unit",
    "slot_trailer_reserve",
]

# Bytes the flash of each STM32 family programs at once (DEV_ID -> bytes): MCUboot sizes the swap status in
# the trailer with it.  F1: half-words; F4: words (x32 parallelism at 2.7-3.6 V); L4: double-words.
WRITE_UNITS: dict[int, int] = {
    0x410: 2,
    0x412: 2,
    0x414: 2,
    0x418: 2,
    0x420: 2,
    0x428: 2,
    0x430: 2,
    0x413: 4,
    0x419: 4,
    0x421: 4,
    0x423: 4,
    0x431: 4,
    0x433: 4,
    0x434: 4,
    0x441: 4,
    0x458: 4,
    0x463: 4,
    0x415: 8,
    0x435: 8,
    0x461: 8,
    0x462: 8,
    0x464: 8,
    0x470: 8,
}
DEFAULT_WRITE_UNIT = 8  # an unknown chip: assume the largest unit, so the reserve is never too small


def flash_write_unit(chip_id: int) -> int:
    """The flash programming unit of chip ``chip_id`` (DEV_ID), :data:`DEFAULT_WRITE_UNIT` if unknown."""
    return WRITE_UNITS.get(chip_id, DEFAULT_WRITE_UNIT)


def slot_trailer_reserve(write_unit: int) -> int:
    """Bytes MCUboot keeps at the end of a slot for its trailer (swap status for 128 sectors, the flags, the
    magic), as imgtool computes it with ``--align write_unit`` and the default ``--max-sectors``."""
    return trailer_size(align=write_unit, max_align=DEFAULT_MAX_ALIGN, max_sectors=DEFAULT_MAX_SECTORS)


@dataclass(frozen=True, kw_only=True)
class SlotGeometry:
    """Where an image is written and where it runs.

    ``address``/``size``: the slot the image is written to; ``trailer_reserve``: bytes kept for the trailer at
    its end; ``run_address``: the slot the image executes from (a swapping device's primary slot);
    ``flash_base``: the flash's base address (a ROM-fixed address may be given relative to it)."""

    address: int
    size: int
    trailer_reserve: int
    run_address: int
    flash_base: int = 0x0800_0000

    @property
    def capacity(self) -> int:
        """The largest image (header, payload, TLVs) the slot takes."""
        return self.size - self.trailer_reserve


def check_slot_rules(image: Image, slot: SlotGeometry, *, data_size: int | None = None) -> None:
    """Raise the typed :class:`~protocol.errors.ImageError` of the first MCUboot slot rule ``image`` breaks.

    ``data_size`` is the length of the file or transfer the image came in (``None``: the image is read from the
    slot itself, so there is no padding to judge)."""
    header = image.header
    if header.flags & IMAGE_F_NON_BOOTABLE:
        raise NonBootableError(
            "non-bootable: the image is marked non-bootable (imgtool sign --non-bootable); MCUboot never boots it",
        )
    if header.flags & IMAGE_F_ROM_FIXED:
        fixed = header.load_addr
        if fixed not in (slot.run_address, slot.run_address - slot.flash_base):
            raise RomAddressError(
                f"rom-fixed: the image is built to run at 0x{fixed:08x} (ROM_FIXED), but this device runs images"
                f" from 0x{slot.run_address:08x}",
            )
    if image.end > slot.capacity:
        raise ImageTooLargeError(
            f"too-large: the image takes {image.end} bytes; the {slot.size}-byte slot takes {slot.capacity}"
            f" (its last {slot.trailer_reserve} bytes are MCUboot's trailer)",
        )
    if data_size is None or data_size <= image.end:
        return
    if data_size > slot.size:
        raise MisplacedTrailerError(
            f"misplaced-trailer: the file is padded to {data_size} bytes (0x{data_size:x}), more than the"
            f" {slot.size}-byte (0x{slot.size:x}) slot",
        )
    if data_size == slot.size:
        return  # padded to this slot's size: the trailer (if any) is where MCUboot reads it
    if image.trailer is not None:
        raise MisplacedTrailerError(
            f"misplaced-trailer: the file is padded for a 0x{data_size:x}-byte slot (imgtool sign --pad"
            f" -S 0x{data_size:x}); this slot has 0x{slot.size:x} bytes, and MCUboot reads the trailer only at"
            " its end",
        )
    raise MisplacedTrailerError(
        f"misplaced-trailer: the file has {data_size - image.end} bytes after the image's TLV area that are"
        f" neither nothing nor padding to this slot's size (0x{slot.size:x})",
    )
