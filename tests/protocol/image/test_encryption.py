"""Encrypted images: sign -E and decrypt for each key wrap and AES size; every broken piece is a typed error."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from protocol.errors import ImageError
from protocol.image import (
    BadTlvError,
    DigestMismatchError,
    KeyFileError,
    MissingTlvError,
    PrivateKey,
    UnsupportedError,
    WrongKeyTypeError,
    generate_key,
    parse_image,
    sign_image,
    verify_image,
)
from protocol.image.encryption import (
    EncryptionPrivateKey,
    decrypted_image,
    is_encrypted,
    load_encryption_key,
)
from protocol.image.mcuboot import Tlv, TlvType, assemble_tlv_area

from .conftest import DEMO_SIGN

WRAPS = {
    "x25519": (x25519.X25519PrivateKey.generate, TlvType.ENC_X25519),
    "p256": (lambda: ec.generate_private_key(ec.SECP256R1()), TlvType.ENC_EC256),
    "rsa": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), TlvType.ENC_RSA2048),
}


@pytest.fixture(scope="module")
def enc_keys() -> dict[str, EncryptionPrivateKey]:
    return {
        "x25519": x25519.X25519PrivateKey.generate(),
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


@pytest.mark.parametrize("bits", [128, 256])
@pytest.mark.parametrize("wrap", list(WRAPS))
def test_round_trip(
    enc_keys: dict[str, EncryptionPrivateKey], ed_key: PrivateKey, fw_110: bytes, wrap: str, bits: int
) -> None:
    key = enc_keys[wrap]
    data = sign_image(fw_110, ed_key, version="1", encrypt_key=key.public_key(), encrypt_keylen=bits, **DEMO_SIGN)
    image = parse_image(data)
    assert is_encrypted(image)
    assert image.find(WRAPS[wrap][1])
    assert fw_110[:64] not in data
    verified = verify_image(data, keys=[ed_key.public_key()], decrypt_key=key)
    assert verified.payload[: len(fw_110)] == fw_110
    assert len(verified.payload) % 16 == 0  # padded to whole AES blocks before signing, as imgtool
    with pytest.raises(UnsupportedError, match="--decrypt-key"):
        verify_image(data, keys=[ed_key.public_key()])


def test_other_device_key_refused(enc_keys: dict[str, EncryptionPrivateKey], ed_key: PrivateKey, fw_110: bytes) -> None:
    data = sign_image(fw_110, ed_key, version="1", encrypt_key=enc_keys["x25519"].public_key(), **DEMO_SIGN)
    with pytest.raises(BadTlvError, match="authenticate"):
        verify_image(data, keys=[ed_key.public_key()], decrypt_key=x25519.X25519PrivateKey.generate())
    with pytest.raises(WrongKeyTypeError, match="ENCX25519"):
        verify_image(data, keys=[ed_key.public_key()], decrypt_key=enc_keys["p256"])
    with pytest.raises(WrongKeyTypeError):
        verify_image(data, keys=[ed_key.public_key()], decrypt_key=enc_keys["rsa"])
    rsa_data = sign_image(fw_110, ed_key, version="1", encrypt_key=enc_keys["rsa"].public_key(), **DEMO_SIGN)
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(BadTlvError, match="ENCRSA2048"):
        verify_image(rsa_data, keys=[ed_key.public_key()], decrypt_key=other_rsa)


def _replace_enc(data: bytes, value: bytes | None) -> bytes:
    image = parse_image(data)
    tlvs = [t for t in image.tlvs if t.type != TlvType.ENC_X25519]
    if value is not None:
        tlvs.append(Tlv(type=TlvType.ENC_X25519, value=value))
    return image.hashed + assemble_tlv_area(tlvs, protected=False)


def test_broken_enc_tlv(enc_keys: dict[str, EncryptionPrivateKey], ed_key: PrivateKey, fw_110: bytes) -> None:
    key = enc_keys["x25519"]
    data = sign_image(fw_110, ed_key, version="1", encrypt_key=key.public_key(), **DEMO_SIGN)
    enc = parse_image(data).find(TlvType.ENC_X25519)[0].value
    flipped = bytearray(enc)
    flipped[-1] ^= 1  # the wrapped key: the HMAC catches it
    with pytest.raises(BadTlvError, match="authenticate"):
        verify_image(_replace_enc(data, bytes(flipped)), keys=[ed_key.public_key()], decrypt_key=key)
    with pytest.raises(BadTlvError, match="bytes"):
        verify_image(_replace_enc(data, enc[:-1]), keys=[ed_key.public_key()], decrypt_key=key)
    with pytest.raises(MissingTlvError, match="ENC"):
        verify_image(_replace_enc(data, None), keys=[ed_key.public_key()], decrypt_key=key)


def test_tampered_ciphertext_fails_the_digest(
    enc_keys: dict[str, EncryptionPrivateKey], ed_key: PrivateKey, fw_110: bytes
) -> None:
    key = enc_keys["p256"]
    data = bytearray(sign_image(fw_110, ed_key, version="1", encrypt_key=key.public_key(), **DEMO_SIGN))
    data[0x210] ^= 1
    with pytest.raises(DigestMismatchError):
        verify_image(bytes(data), keys=[ed_key.public_key()], decrypt_key=key)


def test_clear_images_are_plain_but_marked(
    enc_keys: dict[str, EncryptionPrivateKey], ed_key: PrivateKey, fw_110: bytes
) -> None:
    key = enc_keys["x25519"]
    data = sign_image(fw_110, ed_key, version="1", encrypt_key=key.public_key(), clear=True, **DEMO_SIGN)
    assert is_encrypted(parse_image(data)) and fw_110[:64] in data


def test_key_pairing(enc_keys: dict[str, EncryptionPrivateKey], fw_110: bytes) -> None:
    with pytest.raises(ImageError, match="same type of key"):
        sign_image(fw_110, generate_key("ecdsa-p256"), version="1", encrypt_key=enc_keys["x25519"], **DEMO_SIGN)
    with pytest.raises(ImageError, match="same type of key"):
        sign_image(fw_110, generate_key("rsa-2048"), version="1", encrypt_key=enc_keys["p256"], **DEMO_SIGN)
    with pytest.raises(UnsupportedError, match="HMAC-SHA512"):
        sign_image(fw_110, None, version="1", encrypt_key=enc_keys["p256"], hmac_sha="512", **DEMO_SIGN)
    with pytest.raises(UnsupportedError, match="AES-192"):
        sign_image(fw_110, None, version="1", encrypt_key=enc_keys["p256"], encrypt_keylen=192, **DEMO_SIGN)


def test_load_encryption_key_errors(enc_keys: dict[str, EncryptionPrivateKey]) -> None:
    with pytest.raises(KeyFileError):
        load_encryption_key(b"garbage")
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(WrongKeyTypeError):
        load_encryption_key(ed_pem)
    pub_der = (
        enc_keys["x25519"]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert isinstance(load_encryption_key(pub_der), x25519.X25519PublicKey)


def test_decrypted_image_keeps_header_and_tlvs(
    enc_keys: dict[str, EncryptionPrivateKey], ed_key: PrivateKey, fw_110: bytes
) -> None:
    key = enc_keys["rsa"]
    image = parse_image(sign_image(fw_110, ed_key, version="1", encrypt_key=key.public_key(), **DEMO_SIGN))
    plain = decrypted_image(image, key)
    assert plain.header == image.header and plain.tlvs == image.tlvs
    assert plain.stored_digest == plain.digest
