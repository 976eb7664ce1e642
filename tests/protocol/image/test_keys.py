"""Keys: generate, PEM/DER in and out, key hashes as imgtool computes them, unsupported kinds refused."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519

from protocol.image import (
    KeyFileError,
    WrongKeyTypeError,
    generate_key,
    key_hash,
    key_type,
    load_key,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key_der,
    public_key_to_pem,
)
from protocol.image.keys import public_key_from_der, signature_tlv_type
from protocol.image.mcuboot import TlvType

from .conftest import DEV_ECDSA, DEV_ED25519, KEYS

# Published in assets/keys/README.md; computed independently by `imgtool getpubhash -e raw`.
DEV_ED25519_HASH = "ca4f13e143202e7622c8f747fe8927e11c695ea7ba8b976744dcf0a9fcaa201c"
DEV_ECDSA_HASH = "2664e56fdff49dc6b7cf840c24bcba4e2385842801580c4436ae4bc6a5cedd30"


def test_dev_key_hashes() -> None:
    assert key_hash(load_private_key(DEV_ED25519.read_bytes())).hex() == DEV_ED25519_HASH
    assert key_hash(load_private_key(DEV_ECDSA.read_bytes())).hex() == DEV_ECDSA_HASH
    pub = load_public_key((KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem").read_bytes())
    assert key_hash(pub).hex() == DEV_ED25519_HASH


def test_dev_keys_are_marked() -> None:
    readme = (KEYS / "README.md").read_text()
    assert "DO NOT USE IN PRODUCTION" in readme
    for path in KEYS.glob("*.pem"):
        assert "DO-NOT-USE" in path.name


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_generate_roundtrip(kind: str) -> None:
    key = generate_key(kind)
    assert key_type(key) == kind
    pem = private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_private_key(pem)
    assert key_hash(again) == key_hash(key)
    assert key_hash(load_public_key(public_key_to_pem(key))) == key_hash(key)
    assert key_hash(load_public_key(pem)) == key_hash(key)  # a private key file gives its public half
    assert key_hash(public_key_from_der(public_key_der(key))) == key_hash(key)
    # DER works too, private and public.
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert key_hash(load_private_key(der)) == key_hash(key)
    assert key_hash(load_public_key(der)) == key_hash(key)
    assert key_hash(load_public_key(public_key_der(key))) == key_hash(key)
    assert key_hash(load_key(der)) == key_hash(key)
    assert key_hash(load_key(public_key_der(key))) == key_hash(key)
    assert key_hash(load_key(public_key_to_pem(key))) == key_hash(key)


def test_encrypted_key() -> None:
    key = generate_key("ed25519")
    pem = private_key_to_pem(key, b"secret")
    assert key_hash(load_private_key(pem, b"secret")) == key_hash(key)
    with pytest.raises(KeyFileError):
        load_private_key(pem)
    with pytest.raises(KeyFileError):
        load_private_key(pem, b"wrong")


def test_signature_tlv_types() -> None:
    assert signature_tlv_type(generate_key("ed25519")) == TlvType.ED25519
    assert signature_tlv_type(generate_key("ecdsa-p256")) == TlvType.ECDSA_SIG
    assert signature_tlv_type(generate_key("ecdsa-p384")) == TlvType.ECDSA_SIG
    assert signature_tlv_type(generate_key("rsa-2048")) == TlvType.RSA2048_PSS
    assert signature_tlv_type(generate_key("rsa-3072")) == TlvType.RSA3072_PSS


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"])
def test_every_kind_round_trips(kind: str) -> None:
    key = generate_key(kind)
    assert key_type(key) == kind
    again = load_private_key(private_key_to_pem(key))
    assert key_hash(again) == key_hash(key)
    # The PUBKEY TLV's DER (PKCS#1 for RSA, as MCUboot embeds it) reads back as the same key, raw or as a file.
    der = public_key_der(key)
    assert key_hash(public_key_from_der(der)) == key_hash(key)
    assert key_hash(load_public_key(der)) == key_hash(key)
    assert key_hash(key, "sha384") == hashlib.sha384(der).digest()
    if kind.startswith("rsa"):
        assert der[0] == 0x30 and len(der) < 400 + int(kind[4:]) // 8  # a bare RSAPublicKey, not an SPKI


@pytest.mark.parametrize("kind", ["rsa-1024", "x25519", "ecdsa-p521", ""])
def test_unknown_kind(kind: str) -> None:
    with pytest.raises(WrongKeyTypeError):
        generate_key(kind)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
        lambda: ec.generate_private_key(ec.SECP521R1()),
        x25519.X25519PrivateKey.generate,
    ],
    ids=["rsa-1024", "p521", "x25519"],
)
def test_unsupported_key_kinds(
    make: Callable[[], rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey],
) -> None:
    pem = _pem(make())
    with pytest.raises(WrongKeyTypeError) as info:
        load_private_key(pem)
    assert info.value.reason == "wrong-key-type"
    with pytest.raises(WrongKeyTypeError):
        load_public_key(pem)


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_garbage_key_files(data: bytes) -> None:
    with pytest.raises(KeyFileError) as info:
        load_private_key(data)
    assert info.value.reason == "bad-key-file"
    with pytest.raises(KeyFileError):
        load_public_key(data)


def test_public_key_cannot_sign() -> None:
    with pytest.raises(KeyFileError):
        load_private_key(public_key_to_pem(generate_key("ed25519")))
    with pytest.raises(KeyFileError):
        load_private_key(public_key_der(generate_key("ecdsa-p256")))
