"""The hardware-compatibility tag (custom TLV 0xa0)."""

from __future__ import annotations

import pytest

from protocol.errors import ImageError
from protocol.image import BadTlvError, HardwareTag, chip_id_from_name, parse_custom_tlv


def test_pack_layout() -> None:
    tag = HardwareTag(chip_id=0x413, board_id=0x0102)
    assert tag.pack() == bytes([0x13, 0x04, 0x02, 0x01])
    assert HardwareTag.unpack(tag.pack()) == tag
    assert str(HardwareTag(chip_id=0x413)) == "chip 0x413, any board"
    assert str(tag) == "chip 0x413, board 258"


def test_imgtool_args_round_trip() -> None:
    tag = HardwareTag(chip_id=0x415, board_id=3)
    args = tag.imgtool_args()
    assert args[0] == "--custom-tlv"
    assert parse_custom_tlv(args[1], args[2]) == (0xA0, tag.pack())


@pytest.mark.parametrize("value", [b"", b"\x13\x04", b"\x13\x04\x00\x00\x00"])
def test_unpack_wrong_length(value: bytes) -> None:
    with pytest.raises(BadTlvError):
        HardwareTag.unpack(value)


def test_range() -> None:
    with pytest.raises(ImageError):
        HardwareTag(chip_id=0x10000)
    with pytest.raises(ImageError):
        HardwareTag(chip_id=1, board_id=-1)


@pytest.mark.parametrize(
    ("text", "dev_id"),
    [
        ("stm32f407", 0x413),
        ("F407", 0x413),
        ("STM32L476", 0x415),
        ("f103", 0x410),
        ("0x413", 0x413),
        ("1043", 0x413),
        ("STM32F407VGT6", 0x413),
        ("stm32f407vg", 0x413),
        ("stm32f405rg", 0x413),
        ("STM32L476RG", 0x415),
        ("stm32f103c8", 0x410),
        ("STM32F103RBT6", 0x410),
        ("stm32f103c6", 0x412),
        ("stm32f103ze", 0x414),
        ("stm32f103vg", 0x430),
    ],
)
def test_chip_names(text: str, dev_id: int) -> None:
    assert chip_id_from_name(text) == dev_id


@pytest.mark.parametrize("text", ["stm32h999", "0x10000", "banana", "stm32f103cx"])
def test_unknown_chip(text: str) -> None:
    with pytest.raises(ImageError):
        chip_id_from_name(text)
