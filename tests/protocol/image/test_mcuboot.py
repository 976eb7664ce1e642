"""The image format: header, version, TLV areas, trailer; parse_image whole, in prefixes, with trailing bytes."""

from __future__ import annotations

import hashlib
import struct

import pytest

from protocol.errors import ImageError
from protocol.image import (
    BadMagicError,
    BadTlvError,
    ImageHeader,
    ImageTooLargeError,
    ImageVersion,
    PrivateKey,
    Tlv,
    TlvOverrunError,
    TlvType,
    TruncatedError,
    parse_image,
    reason_of,
    sign_image,
    trailer_size,
)
from protocol.image.mcuboot import BOOT_MAGIC, IMAGE_MAGIC, align_up, assemble_tlv_area, boot_magic

from .conftest import DEMO_SIGN, FIRMWARE


@pytest.fixture(scope="module")
def signed(ed_key: PrivateKey, fw_110: bytes) -> bytes:
    return sign_image(fw_110, ed_key, version="1.1.0+7", security_counter=2, custom_tlvs=[(0xA5, b"xy")], **DEMO_SIGN)


def test_version_parse_and_str() -> None:
    assert ImageVersion.parse("1") == ImageVersion(major=1)
    assert ImageVersion.parse("1.2") == ImageVersion(major=1, minor=2)
    assert ImageVersion.parse("1.2.3+4") == ImageVersion(major=1, minor=2, revision=3, build=4)
    assert str(ImageVersion.parse("255.255.65535+4294967295")) == "255.255.65535+4294967295"
    assert ImageVersion.parse("1.10.0") > ImageVersion.parse("1.9.9")


@pytest.mark.parametrize("text", ["", "1.", "01.2", "1.2.3.4", "1.2+3", "a.b", "256.0.0", "1.0.65536", "-1"])
def test_version_rejects(text: str) -> None:
    with pytest.raises(ImageError):
        ImageVersion.parse(text)


def test_header_roundtrip() -> None:
    header = ImageHeader(
        load_addr=0x20000000,
        header_size=0x200,
        protected_tlv_size=0x14,
        image_size=1234,
        flags=0x20,
        version=ImageVersion(major=1, minor=2, revision=3, build=4),
    )
    packed = header.pack()
    assert len(packed) == 32
    assert packed[:4] == struct.pack("<I", IMAGE_MAGIC)
    assert ImageHeader.unpack(packed) == header
    assert header.flag_names == ["RAM_LOAD"]


def test_header_unpack_short() -> None:
    with pytest.raises(TruncatedError):
        ImageHeader.unpack(b"\x3d\xb8\xf3\x96")


def test_parse_fields(signed: bytes, fw_110: bytes, ed_key: PrivateKey) -> None:
    image = parse_image(signed)
    assert image.header.header_size == 0x200
    assert image.header.image_size == len(fw_110) + 0x200 - 0x200
    assert image.payload == fw_110
    assert image.version == ImageVersion(major=1, minor=1, revision=0, build=7)
    assert [t.type for t in image.protected_tlvs] == [TlvType.SEC_CNT, 0xA5]
    assert [t.type for t in image.tlvs] == [TlvType.SHA256, TlvType.KEYHASH, TlvType.ED25519]
    assert image.security_counter == 2
    assert image.custom_tlvs[0].value == b"xy" and image.custom_tlvs[0].name == "CUSTOM_0x00a5"
    assert image.digest == hashlib.sha256(signed[: len(image.hashed)]).digest() == image.stored_digest
    assert image.end == len(signed) == image.total_size
    assert image.trailer is None
    assert image.signature_type == "ED25519"
    assert image.header.protected_tlv_size == 4 + 8 + 6
    # Every TLV's offset points at its value.
    for tlv in image.all_tlvs:
        assert signed[tlv.offset : tlv.offset + len(tlv.value)] == tlv.value


def test_parse_every_prefix_is_truncated_or_typed(signed: bytes) -> None:
    """Byte by byte: a prefix of an image never parses as something else and never escapes the error tree."""
    for cut in range(len(signed)):
        with pytest.raises(ImageError) as info:
            parse_image(signed[:cut])
        assert reason_of(info.value) in {"truncated", "tlv-overrun"}


def test_parse_with_trailing_bytes(signed: bytes) -> None:
    image = parse_image(signed + b"\xff" * 100 + b"garbage")
    assert image.end == len(signed)
    assert image.total_size == len(signed) + 107
    assert image.trailer is None
    assert image.digest == parse_image(signed).digest


def test_parse_demo_images() -> None:
    for name, version in (
        ("demo-1.0.0", "1.0.0+0"),
        ("demo-1.1.0", "1.1.0+0"),
        ("demo-big-1.2.0", "1.2.0+0"),
    ):
        data = (FIRMWARE / f"{name}.signed.bin").read_bytes()
        image = parse_image(data)
        assert str(image.version) == version
        assert image.payload == (FIRMWARE / f"{name}.bin").read_bytes()
        # The vector table: initial SP in RAM, reset vector in the slot, Thumb bit set.
        sp, reset = struct.unpack_from("<II", image.payload)
        assert 0x20000000 < sp <= 0x20020000
        assert 0x08020200 <= reset < 0x08080000 and reset & 1


def test_bad_magic(signed: bytes) -> None:
    with pytest.raises(BadMagicError, match="bad-magic"):
        parse_image(b"\x00" * 4 + signed[4:])


def test_bad_protected_info_magic(signed: bytes) -> None:
    image = parse_image(signed)
    off = image.header.header_size + image.header.image_size
    data = bytearray(signed)
    data[off] ^= 0xFF
    with pytest.raises(BadMagicError):
        parse_image(bytes(data))


def test_bad_unprotected_info_magic(signed: bytes) -> None:
    image = parse_image(signed)
    off = len(image.hashed)
    data = bytearray(signed)
    data[off] ^= 0xFF
    with pytest.raises(BadMagicError):
        parse_image(bytes(data))


def test_protected_size_disagrees(signed: bytes) -> None:
    data = bytearray(signed)
    struct.pack_into("<H", data, 10, parse_image(signed).header.protected_tlv_size + 4)
    with pytest.raises(BadTlvError):
        parse_image(bytes(data))


def test_small_header_size(signed: bytes) -> None:
    data = bytearray(signed)
    struct.pack_into("<H", data, 8, 16)
    with pytest.raises(BadMagicError):
        parse_image(bytes(data))


def test_huge_declared_size(signed: bytes) -> None:
    data = bytearray(signed)
    struct.pack_into("<I", data, 12, 0xFFFFFFFF)
    with pytest.raises(ImageTooLargeError) as info:
        parse_image(bytes(data))
    assert info.value.reason == "too-large"


def test_declared_size_past_end(signed: bytes) -> None:
    data = bytearray(signed)
    struct.pack_into("<I", data, 12, len(signed))
    with pytest.raises(TruncatedError):
        parse_image(bytes(data))


def test_tlv_length_overrun(signed: bytes) -> None:
    image = parse_image(signed)
    sig = image.find(TlvType.ED25519)[0]
    data = bytearray(signed)
    struct.pack_into("<H", data, sig.offset - 2, 0xFFFF)
    with pytest.raises(TlvOverrunError, match="tlv-overrun"):
        parse_image(bytes(data))


def test_tlv_header_straddles_area_end() -> None:
    area = struct.pack("<HH", 0x6907, 4 + 2) + b"\x10\x00"
    header = ImageHeader(header_size=32, image_size=0).pack()
    with pytest.raises(TlvOverrunError):
        parse_image(header + area)


def test_unprotected_area_too_small() -> None:
    header = ImageHeader(header_size=32, image_size=0).pack()
    with pytest.raises(BadTlvError):
        parse_image(header + struct.pack("<HH", 0x6907, 2))


def test_unknown_tlv_types_are_parsed() -> None:
    header = ImageHeader(header_size=32, image_size=0).pack()
    image = parse_image(header + assemble_tlv_area([Tlv(type=0x0077, value=b"?")], protected=False))
    assert image.tlvs[0].name == "UNKNOWN_0x0077"


def test_empty_area_is_empty() -> None:
    assert assemble_tlv_area([], protected=True) == b""


def test_area_too_big() -> None:
    with pytest.raises(ImageError):
        assemble_tlv_area([Tlv(type=0xA0, value=bytes(0xFFFF))], protected=True)


@pytest.mark.parametrize("max_align", [8, 16, 32])
def test_trailer_of_padded_image(ed_key: PrivateKey, fw_110: bytes, max_align: int) -> None:
    data = sign_image(
        fw_110,
        ed_key,
        version="1.1.0",
        header_size=0x200,
        pad_header=True,
        align=8,
        max_align=max_align,
        slot_size=0x60000,
        confirm=True,
    )
    assert len(data) == 0x60000
    image = parse_image(data)
    assert image.trailer is not None
    assert image.trailer.max_align == max_align
    assert image.trailer.confirmed
    assert image.trailer.magic == boot_magic(max_align)
    assert image.trailer.copy_done == 0xFF and image.trailer.swap_size == 0xFFFFFFFF


def test_trailer_sizes() -> None:
    assert trailer_size(align=8, max_align=8) == 128 * 3 * 8 + 8 * 4 + 16
    assert trailer_size(align=1, max_align=32) == 128 * 3 + 32 * 4 + 32
    assert trailer_size(align=8, max_align=8, overwrite_only=True) == 8 * 2 + 16
    with pytest.raises(ImageError):
        trailer_size(align=3, max_align=8)


def test_boot_magic() -> None:
    assert boot_magic(8) == BOOT_MAGIC
    assert boot_magic(16)[:2] == b"\x10\x00" and len(boot_magic(16)) == 16


def test_align_up() -> None:
    assert align_up(13, 8) == 16 and align_up(16, 8) == 16
    with pytest.raises(ValueError):
        align_up(1, 3)
