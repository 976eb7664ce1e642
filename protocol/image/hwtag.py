"""The hardware-compatibility tag: a protected custom TLV naming the chip and board an image is built for.

TLV type ``0x00A0`` (the first vendor type imgtool's ``--custom-tlv`` accepts), value 4 bytes little endian:
``u16 chip DEV_ID`` (the DBGMCU_IDCODE device id) and ``u16 board id`` (0 = any board).  Being protected, it
is covered by the digest and the signature.  With imgtool the same tag is ``--custom-tlv 0xa0 0x13040000``
(the value hex string is the little-endian bytes: 0x413 -> ``1304``, board 0 -> ``0000``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import BadTlvError, ImageError
from .mcuboot import TlvType

__all__ = ["ANY_BOARD", "CHIP_IDS", "HW_TAG_SIZE", "HW_TAG_TLV", "HardwareTag", "chip_id_from_name"]

HW_TAG_TLV = TlvType.HW_TAG
HW_TAG_SIZE = 4
ANY_BOARD = 0

# DBGMCU_IDCODE DEV_ID of the chips we know by name.
CHIP_IDS: dict[str, int] = {
    "stm32f407": 0x413,
    "stm32f405": 0x413,
    "stm32f103": 0x410,
    "stm32l476": 0x415,
}


# STM32F103 DEV_IDs by flash-size letter (the character after the package letter: STM32F103C8 -> "8").
_F103_DENSITY: dict[str, int] = {
    **dict.fromkeys("46", 0x412),  # low density
    **dict.fromkeys("8b", 0x410),  # medium density
    **dict.fromkeys("cde", 0x414),  # high density
    **dict.fromkeys("fg", 0x430),  # XL density
}
_F103_FLASH_LETTER_INDEX = len("stm32f103") + 1


def chip_id_from_name(text: str) -> int:
    """A DEV_ID from ``"stm32f407"``, a full part number (``"STM32F407VGT6"``, ``"stm32f103rc"``), ``"F407"``
    or a number (``"0x413"``)."""
    name = text.strip().lower()
    if not name.startswith("stm32") and not name.startswith("0x") and not name.isdigit():
        name = "stm32" + name
    if name in CHIP_IDS:
        return CHIP_IDS[name]
    if name.startswith("stm32f103") and len(name) > _F103_FLASH_LETTER_INDEX:
        density = _F103_DENSITY.get(name[_F103_FLASH_LETTER_INDEX])
        if density is not None:
            return density
    for prefix, dev_id in CHIP_IDS.items():
        if name.startswith(prefix) and prefix != "stm32f103":
            return dev_id
    try:
        value = int(text, 0)
    except ValueError:
        known = ", ".join(sorted(CHIP_IDS))
        raise ImageError(f"unknown chip {text!r}: give a DEV_ID (0x413) or one of {known}") from None
    if not 0 <= value <= 0xFFFF:
        raise ImageError(f"chip id {text} does not fit 16 bits")
    return value


@dataclass(frozen=True, kw_only=True)
class HardwareTag:
    """Chip DEV_ID and board id (``0`` = any board)."""

    chip_id: int
    board_id: int = ANY_BOARD

    def __post_init__(self) -> None:
        for name in ("chip_id", "board_id"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFF:
                raise ImageError(f"hardware tag {name} {value} does not fit 16 bits")

    def pack(self) -> bytes:
        return struct.pack("<HH", self.chip_id, self.board_id)

    @classmethod
    def unpack(cls, value: bytes) -> HardwareTag:
        if len(value) != HW_TAG_SIZE:
            raise BadTlvError(
                f"bad-tlv: hardware tag TLV 0x{HW_TAG_TLV:04x} has {len(value)} bytes, expected {HW_TAG_SIZE}"
            )
        chip, board = struct.unpack("<HH", value)
        return cls(chip_id=chip, board_id=board)

    def imgtool_args(self) -> list[str]:
        """The equivalent imgtool options: ``["--custom-tlv", "0xa0", "0x13040000"]``."""
        return ["--custom-tlv", f"0x{HW_TAG_TLV:x}", "0x" + self.pack().hex()]

    def __str__(self) -> str:
        board = "any board" if self.board_id == ANY_BOARD else f"board {self.board_id}"
        return f"chip 0x{self.chip_id:03x}, {board}"
