"""Verification: each check, its typed error and reason slug, in MCUboot's order."""

from __future__ import annotations

import struct

import pytest

from protocol.errors import ImageError
from protocol.image import (
    BadSignatureError,
    BadTlvError,
    DigestMismatchError,
    HardwareTag,
    KeyFileError,
    MissingTlvError,
    PrivateKey,
    SecurityCounterError,
    Tlv,
    TlvType,
    UnknownKeyError,
    UnsupportedError,
    WrongBoardError,
    WrongChipError,
    WrongKeyTypeError,
    check_digest,
    key_hash,
    parse_image,
    public_key_der,
    sign_image,
    verify_image,
)
from protocol.image.mcuboot import IMAGE_F_ENCRYPTED_AES128, assemble_tlv_area

from .conftest import DEMO_SIGN

TAG = HardwareTag(chip_id=0x413)


@pytest.fixture(scope="module")
def good(ed_key: PrivateKey, fw_110: bytes) -> bytes:
    return sign_image(fw_110, ed_key, version="1.1.0", security_counter=2, hw_tag=TAG, **DEMO_SIGN)


def _with_tlvs(image: bytes, tlvs: list[Tlv]) -> bytes:
    parsed = parse_image(image)
    return image[: len(parsed.hashed)] + assemble_tlv_area(tlvs, protected=False) + image[parsed.end :]


def test_accepts_good_image(good: bytes, ed_key: PrivateKey) -> None:
    verified = verify_image(good, keys=[ed_key.public_key()], chip_id=0x413, board_id=5, min_security_counter=2)
    assert str(verified.version) == "1.1.0+0"
    assert verified.key_hash == key_hash(ed_key)
    assert verified.key_type == "ed25519" and verified.signature_type == "ED25519"
    assert verified.security_counter == 2 and verified.hw_tag == TAG
    assert verified.digest == parse_image(good).digest and verified.payload == parse_image(good).payload


def test_accepts_private_key_and_many_keys(
    good: bytes, ed_key: PrivateKey, ec_key: PrivateKey, other_key: PrivateKey
) -> None:
    assert verify_image(good, keys=[other_key.public_key(), ec_key, ed_key])


def test_ecdsa(ec_key: PrivateKey, fw_110: bytes) -> None:
    image = sign_image(fw_110, ec_key, version="1.1.0", **DEMO_SIGN)
    assert verify_image(image, keys=[ec_key.public_key()]).signature_type == "ECDSASIG"


def test_digest_mismatch(good: bytes, ed_key: PrivateKey) -> None:
    data = bytearray(good)
    data[0x300] ^= 0x80
    with pytest.raises(DigestMismatchError) as info:
        verify_image(bytes(data), keys=[ed_key.public_key()])
    assert info.value.reason == "digest-mismatch"
    assert "digest-mismatch" in str(info.value)


def test_tampered_header_or_protected_tlv_breaks_the_digest(good: bytes, ed_key: PrivateKey) -> None:
    image = parse_image(good)
    for offset in (20, image.protected_tlvs[0].offset):  # the version, the security counter
        data = bytearray(good)
        data[offset] ^= 1
        with pytest.raises(DigestMismatchError):
            verify_image(bytes(data), keys=[ed_key.public_key()])


def test_unknown_key(good: bytes, other_key: PrivateKey) -> None:
    with pytest.raises(UnknownKeyError) as info:
        verify_image(good, keys=[other_key.public_key()])
    assert info.value.reason == "unknown-key" and info.value.hint


def test_no_keys(good: bytes) -> None:
    with pytest.raises(UnknownKeyError):
        verify_image(good, keys=[])


def test_bad_signature_over_other_bytes(good: bytes, ed_key: PrivateKey, fw_100: bytes) -> None:
    other = parse_image(sign_image(fw_100, ed_key, version="1.1.0", **DEMO_SIGN)).find(TlvType.ED25519)[0]
    forged = _with_tlvs(good, [t if t.type != TlvType.ED25519 else other for t in parse_image(good).tlvs])
    with pytest.raises(BadSignatureError, match="bad-signature"):
        verify_image(forged, keys=[ed_key.public_key()])


def test_bad_signature_wrong_length(good: bytes, ed_key: PrivateKey) -> None:
    tlvs = [t if t.type != TlvType.ED25519 else Tlv(type=t.type, value=b"x" * 10) for t in parse_image(good).tlvs]
    with pytest.raises(BadSignatureError):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])


def test_bad_ecdsa_signature_garbage(ec_key: PrivateKey, fw_110: bytes) -> None:
    image = sign_image(fw_110, ec_key, version="1.1.0", **DEMO_SIGN)
    tlvs = [
        t if t.type != TlvType.ECDSA_SIG else Tlv(type=t.type, value=b"\x30\x05garbage")
        for t in parse_image(image).tlvs
    ]
    with pytest.raises(BadSignatureError):
        verify_image(_with_tlvs(image, tlvs), keys=[ec_key.public_key()])


def test_wrong_key_type(good: bytes, ed_key: PrivateKey, ec_key: PrivateKey) -> None:
    # The PUBKEY names the (trusted) ECDSA key but the signature is Ed25519.
    tlvs = [
        Tlv(type=TlvType.PUBKEY, value=public_key_der(ec_key)) if t.type == TlvType.KEYHASH else t
        for t in parse_image(good).tlvs
    ]
    with pytest.raises(WrongKeyTypeError) as info:
        verify_image(_with_tlvs(good, tlvs), keys=[ec_key.public_key(), ed_key.public_key()])
    assert info.value.reason == "wrong-key-type"


def test_rsa_signature_is_wrong_key_type(good: bytes, ed_key: PrivateKey) -> None:
    tlvs = [
        t if t.type != TlvType.ED25519 else Tlv(type=TlvType.RSA2048_PSS, value=bytes(256))
        for t in parse_image(good).tlvs
    ]
    with pytest.raises(WrongKeyTypeError):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])


def test_garbage_pubkey_tlv(good: bytes, ed_key: PrivateKey) -> None:
    tlvs = [Tlv(type=TlvType.PUBKEY, value=b"junk") if t.type == TlvType.KEYHASH else t for t in parse_image(good).tlvs]
    with pytest.raises(KeyFileError):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])


def test_key_hash_only_trust(ed_key: PrivateKey, fw_110: bytes) -> None:
    full = sign_image(fw_110, ed_key, version="1", public_key_format="full", **DEMO_SIGN)
    assert verify_image(full, keys=[key_hash(ed_key)]).key_hash == key_hash(ed_key)
    hashed = sign_image(fw_110, ed_key, version="1", **DEMO_SIGN)
    with pytest.raises(UnknownKeyError, match="full key"):
        verify_image(hashed, keys=[key_hash(ed_key)])
    with pytest.raises(KeyFileError):
        verify_image(hashed, keys=[b"short"])


def test_unsigned(fw_110: bytes, ed_key: PrivateKey) -> None:
    unsigned = sign_image(fw_110, None, version="1", **DEMO_SIGN)
    assert check_digest(parse_image(unsigned)) == parse_image(unsigned).digest
    with pytest.raises(MissingTlvError, match="not signed"):
        verify_image(unsigned, keys=[ed_key.public_key()])


def test_signature_without_key_tlv(good: bytes, ed_key: PrivateKey) -> None:
    tlvs = [t for t in parse_image(good).tlvs if t.type != TlvType.KEYHASH]
    with pytest.raises(MissingTlvError):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])


def test_missing_digest(good: bytes, ed_key: PrivateKey) -> None:
    tlvs = [t for t in parse_image(good).tlvs if t.type != TlvType.SHA256]
    with pytest.raises(MissingTlvError, match="SHA256"):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])


def test_duplicate_digest(good: bytes, ed_key: PrivateKey) -> None:
    tlvs = list(parse_image(good).tlvs)
    with pytest.raises(BadTlvError):
        verify_image(_with_tlvs(good, [tlvs[0], *tlvs]), keys=[ed_key.public_key()])


def test_unprotected_custom_tlv_rejected(good: bytes, ed_key: PrivateKey) -> None:
    tlvs = [*parse_image(good).tlvs, Tlv(type=0xA0, value=bytes.fromhex("13040000"))]
    with pytest.raises(BadTlvError, match="protected"):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])


def test_two_digest_algorithms_rejected(good: bytes, ed_key: PrivateKey) -> None:
    tlvs = [*parse_image(good).tlvs, Tlv(type=TlvType.SHA384, value=bytes(48))]
    with pytest.raises(BadTlvError, match="more than one"):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])


def test_sig_pure_added_breaks_the_signature(good: bytes, ed_key: PrivateKey) -> None:
    # A SIG_PURE TLV slipped into an image signed over the digest makes the verifier check the whole
    # hashed region instead, which the signature does not cover.
    tlvs = [*parse_image(good).tlvs, Tlv(type=TlvType.SIG_PURE, value=b"\x01")]
    with pytest.raises(BadSignatureError):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])
    tlvs = [*parse_image(good).tlvs, Tlv(type=TlvType.SIG_PURE, value=b"\x02")]
    with pytest.raises(BadTlvError, match="SIG_PURE"):
        verify_image(_with_tlvs(good, tlvs), keys=[ed_key.public_key()])


def test_encrypted_flag_unsupported(good: bytes, ed_key: PrivateKey) -> None:
    data = bytearray(good)
    struct.pack_into("<I", data, 16, IMAGE_F_ENCRYPTED_AES128)
    with pytest.raises(UnsupportedError, match="encrypted"):
        verify_image(bytes(data), keys=[ed_key.public_key()])


def test_security_counter(good: bytes, ed_key: PrivateKey) -> None:
    keys = [ed_key.public_key()]
    assert verify_image(good, keys=keys, min_security_counter=2).security_counter == 2
    with pytest.raises(SecurityCounterError) as info:
        verify_image(good, keys=keys, min_security_counter=3)
    assert info.value.reason == "security-counter"


def test_missing_security_counter(ed_key: PrivateKey, fw_110: bytes) -> None:
    image = sign_image(fw_110, ed_key, version="1", **DEMO_SIGN)
    assert verify_image(image, keys=[ed_key.public_key()]).security_counter is None
    with pytest.raises(MissingTlvError, match="security counter"):
        verify_image(image, keys=[ed_key.public_key()], min_security_counter=0)


def test_bad_security_counter_length(ed_key: PrivateKey, fw_110: bytes) -> None:
    # A 2-byte SEC_CNT cannot be made with sign_image; build the protected area by hand and re-sign via TLVs.
    image = sign_image(fw_110, ed_key, version="1", custom_tlvs=[(0xA2, b"ab")], **DEMO_SIGN)
    data = bytearray(image)
    tlv = parse_image(image).find(0xA2)[0]
    struct.pack_into("<H", data, tlv.offset - 4, TlvType.SEC_CNT)
    # The digest now fails first: MCUboot's order (digest before counter).
    with pytest.raises(DigestMismatchError):
        verify_image(bytes(data), keys=[ed_key.public_key()], min_security_counter=0)


def test_wrong_chip(good: bytes, ed_key: PrivateKey) -> None:
    with pytest.raises(WrongChipError) as info:
        verify_image(good, keys=[ed_key.public_key()], chip_id=0x410)
    assert info.value.reason == "wrong-chip" and "0x410" in str(info.value)


def test_missing_tag(ed_key: PrivateKey, fw_110: bytes) -> None:
    image = sign_image(fw_110, ed_key, version="1", **DEMO_SIGN)
    assert verify_image(image, keys=[ed_key.public_key()]).hw_tag is None
    with pytest.raises(MissingTlvError, match="hardware tag"):
        verify_image(image, keys=[ed_key.public_key()], chip_id=0x413)


def test_board(ed_key: PrivateKey, fw_110: bytes) -> None:
    image = sign_image(fw_110, ed_key, version="1", hw_tag=HardwareTag(chip_id=0x413, board_id=3), **DEMO_SIGN)
    keys = [ed_key.public_key()]
    assert verify_image(image, keys=keys, chip_id=0x413, board_id=3)
    with pytest.raises(WrongBoardError):
        verify_image(image, keys=keys, chip_id=0x413, board_id=4)


def test_bad_tag_length(ed_key: PrivateKey, fw_110: bytes) -> None:
    image = sign_image(fw_110, ed_key, version="1", custom_tlvs=[(0xA0, b"\x13\x04")], **DEMO_SIGN)
    with pytest.raises(BadTlvError):
        verify_image(image, keys=[ed_key.public_key()], chip_id=0x413)


def test_errors_are_image_errors_and_value_errors(good: bytes) -> None:
    with pytest.raises(ValueError):
        verify_image(good[:10], keys=[])
    with pytest.raises(ImageError):
        verify_image(good[:10], keys=[])


def test_second_signature_by_a_trusted_key(ed_key: PrivateKey, other_key: PrivateKey, fw_110: bytes) -> None:
    """As in bootutil, each KEYHASH names the key of the signature after it; one trusted, valid pair is enough."""
    mine = parse_image(sign_image(fw_110, ed_key, version="1", **DEMO_SIGN))
    theirs = parse_image(sign_image(fw_110, other_key, version="1", **DEMO_SIGN))
    both = [*theirs.tlvs, *mine.tlvs[1:]]
    image = _with_tlvs(sign_image(fw_110, ed_key, version="1", **DEMO_SIGN), both)
    assert verify_image(image, keys=[ed_key.public_key()]).key_hash == key_hash(ed_key)
    with pytest.raises(UnknownKeyError):
        verify_image(_with_tlvs(image, list(theirs.tlvs)), keys=[ed_key.public_key()])
