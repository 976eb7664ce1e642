"""Building and signing: layout, options, and every option imgtool would refuse."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import pytest

from protocol.errors import ImageError
from protocol.image import (
    HardwareTag,
    ImageTooLargeError,
    PrivateKey,
    TlvType,
    key_hash,
    parse_custom_tlv,
    parse_image,
    public_key_der,
    sign_image,
    verify_image,
)
from protocol.image.mcuboot import BOOT_MAGIC, IMAGE_F_NON_BOOTABLE, IMAGE_F_RAM_LOAD, IMAGE_F_ROM_FIXED


def test_pad_header_prepends_erased_header(ed_key: PrivateKey, fw_100: bytes) -> None:
    data = sign_image(fw_100, ed_key, version="1.0.0", header_size=0x200, pad_header=True)
    assert data[32:0x200] == b"\xff" * (0x200 - 32)
    assert data[0x200 : 0x200 + len(fw_100)] == fw_100


def test_without_pad_header_the_input_keeps_its_zero_header(ed_key: PrivateKey, fw_100: bytes) -> None:
    data = sign_image(bytes(0x200) + fw_100, ed_key, version="1.0.0", header_size=0x200)
    assert data[32:0x200] == bytes(0x200 - 32)
    assert parse_image(data).payload == fw_100


def test_without_pad_header_nonzero_start_is_refused(ed_key: PrivateKey, fw_100: bytes) -> None:
    with pytest.raises(ImageError) as info:
        sign_image(fw_100, ed_key, version="1.0.0", header_size=0x200)
    assert info.value.hint and "--pad-header" in info.value.hint


def test_input_shorter_than_header(ed_key: PrivateKey) -> None:
    with pytest.raises(ImageError, match="shorter"):
        sign_image(bytes(16), ed_key, version="1.0.0", header_size=0x20)


def test_unsigned_has_only_the_digest(fw_100: bytes) -> None:
    image = parse_image(sign_image(fw_100, None, version="1.0.0", pad_header=True))
    assert [t.type for t in image.tlvs] == [TlvType.SHA256]
    assert image.signature_type is None and image.key_hash is None


def test_full_public_key(ed_key: PrivateKey, fw_100: bytes) -> None:
    image = parse_image(sign_image(fw_100, ed_key, version="1.0.0", pad_header=True, public_key_format="full"))
    assert image.public_key_der == public_key_der(ed_key)
    assert image.key_hash == key_hash(ed_key)
    assert verify_image(sign_image(fw_100, ed_key, version="1", pad_header=True), keys=[ed_key.public_key()])


def test_bad_public_key_format(ed_key: PrivateKey, fw_100: bytes) -> None:
    with pytest.raises(ImageError):
        sign_image(fw_100, ed_key, version="1", pad_header=True, public_key_format="pem")  # type: ignore[arg-type]


def test_ecdsa_signature_and_pad_sig(ec_key: PrivateKey, fw_100: bytes) -> None:
    plain = parse_image(sign_image(fw_100, ec_key, version="1", pad_header=True))
    sig = plain.find(TlvType.ECDSA_SIG)[0].value
    assert sig[0] == 0x30 and len(sig) == sig[1] + 2
    padded_image = sign_image(fw_100, ec_key, version="1", pad_header=True, pad_sig=True)
    assert len(parse_image(padded_image).find(TlvType.ECDSA_SIG)[0].value) == 72
    assert verify_image(padded_image, keys=[ec_key.public_key()]).key_type == "ecdsa-p256"


def test_ed25519_is_deterministic(ed_key: PrivateKey, fw_100: bytes) -> None:
    a = sign_image(fw_100, ed_key, version="1.0.0", pad_header=True)
    assert a == sign_image(fw_100, ed_key, version="1.0.0", pad_header=True)


def test_security_counter_auto(ed_key: PrivateKey, fw_100: bytes) -> None:
    image = parse_image(sign_image(fw_100, ed_key, version="1.2.3", pad_header=True, security_counter="auto"))
    assert image.security_counter == (1 << 24) + (2 << 16) + 3


def test_security_counter_out_of_range(ed_key: PrivateKey, fw_100: bytes) -> None:
    with pytest.raises(ImageError):
        sign_image(fw_100, ed_key, version="1", pad_header=True, security_counter=1 << 32)


def test_custom_tlvs_follow_the_counter_in_order(ed_key: PrivateKey, fw_100: bytes) -> None:
    image = parse_image(
        sign_image(
            fw_100,
            ed_key,
            version="1",
            pad_header=True,
            security_counter=3,
            custom_tlvs=[(0xB0, b"b"), (0xA1, b"a")],
            hw_tag=HardwareTag(chip_id=0x413, board_id=2),
        )
    )
    assert [t.type for t in image.protected_tlvs] == [TlvType.SEC_CNT, 0xB0, 0xA1, 0xA0]
    assert image.find(0xA0)[0].value == bytes.fromhex("13040200")


@pytest.mark.parametrize("tlv_type", [0x10, 0x9F, 0xFFFF])
def test_custom_tlv_type_range(ed_key: PrivateKey, fw_100: bytes, tlv_type: int) -> None:
    with pytest.raises(ImageError, match="custom TLV type"):
        sign_image(fw_100, ed_key, version="1", pad_header=True, custom_tlvs=[(tlv_type, b"x")])


def test_custom_tlv_duplicate(ed_key: PrivateKey, fw_100: bytes) -> None:
    with pytest.raises(ImageError, match="twice"):
        sign_image(
            fw_100,
            ed_key,
            version="1",
            pad_header=True,
            custom_tlvs=[(0xA0, b"x")],
            hw_tag=HardwareTag(chip_id=0x413),
        )


def test_parse_custom_tlv() -> None:
    assert parse_custom_tlv("0xa0", "0x13040000") == (0xA0, bytes.fromhex("13040000"))
    assert parse_custom_tlv("161", "hello") == (0xA1, b"hello")
    for tag, value in (("0xa0", "0x123"), ("zz", "1"), ("0xa0", "0xzz"), ("0x50", "0x00")):
        with pytest.raises(ImageError):
            parse_custom_tlv(tag, value)


def test_pad_confirm_trailer(ed_key: PrivateKey, fw_100: bytes) -> None:
    data = sign_image(fw_100, ed_key, version="1", pad_header=True, align=8, slot_size=0x20000, confirm=True)
    assert len(data) == 0x20000
    assert data[-16:] == BOOT_MAGIC
    assert data[-16 - 8] == 0x01  # image_ok, max_align before the magic
    assert set(data[-16 - 7 : -16]) == {0xFF}
    image = parse_image(data)
    assert set(data[image.end : -24]) == {0xFF}


def test_test_flag_leaves_image_ok_erased(ed_key: PrivateKey, fw_100: bytes) -> None:
    data = sign_image(fw_100, ed_key, version="1", pad_header=True, slot_size=0x20000, test=True)
    assert len(data) == 0x20000 and data[-24] == 0xFF and data[-16:] == BOOT_MAGIC


def test_pad_without_slot_size(ed_key: PrivateKey, fw_100: bytes) -> None:
    with pytest.raises(ImageError, match="slot size"):
        sign_image(fw_100, ed_key, version="1", pad_header=True, pad=True)


def test_image_bigger_than_slot(ed_key: PrivateKey, fw_100: bytes) -> None:
    with pytest.raises(ImageTooLargeError, match="exceeds"):
        sign_image(fw_100, ed_key, version="1", pad_header=True, slot_size=0x600)


def test_erased_zero(ed_key: PrivateKey, fw_100: bytes) -> None:
    data = sign_image(
        fw_100,
        ed_key,
        version="1",
        header_size=0x200,
        pad_header=True,
        slot_size=0x10000,
        pad=True,
        erased_val=0,
    )
    assert data[32:0x200] == bytes(0x200 - 32)
    assert data[parse_image(data).end : -16] == bytes(0x10000 - 16 - parse_image(data).end)
    with pytest.raises(ImageError):
        sign_image(fw_100, ed_key, version="1", pad_header=True, erased_val=0x55)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"header_size": 16}, "header size"),
        ({"align": 3}, "alignment"),
        ({"max_align": 4}, "max alignment"),
        ({"load_addr": 0x20000000, "rom_fixed": 0x08020000}, "cannot both"),
        ({"version": "x"}, "invalid version"),
    ],
)
def test_refused_options(ed_key: PrivateKey, fw_100: bytes, options: dict[str, Any], message: str) -> None:
    kwargs = {"version": "1", "pad_header": True, **options}
    with pytest.raises(ImageError, match=message):
        sign_image(fw_100, ed_key, **kwargs)


def test_flags(ed_key: PrivateKey, fw_100: bytes) -> None:
    ram = parse_image(sign_image(fw_100, ed_key, version="1", pad_header=True, load_addr=0x20001000))
    assert ram.header.flags == IMAGE_F_RAM_LOAD and ram.header.load_addr == 0x20001000
    rom = parse_image(sign_image(fw_100, ed_key, version="1", pad_header=True, rom_fixed=0x08020000))
    assert rom.header.flags == IMAGE_F_ROM_FIXED and rom.header.load_addr == 0x08020000
    nb = parse_image(sign_image(fw_100, ed_key, version="1", pad_header=True, non_bootable=True))
    assert nb.header.flags == IMAGE_F_NON_BOOTABLE


def test_digest_covers_header_payload_and_protected(ed_key: PrivateKey, fw_100: bytes) -> None:
    data = sign_image(fw_100, ed_key, version="1", pad_header=True, security_counter=1)
    image = parse_image(data)
    hashed_len = 0x20 + len(fw_100) + image.header.protected_tlv_size
    assert image.stored_digest == hashlib.sha256(data[:hashed_len]).digest()
    assert struct.unpack_from("<HH", data, hashed_len)[0] == 0x6907
