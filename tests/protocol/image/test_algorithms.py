"""RSA-2048/3072 (PSS), ECDSA P-256/P-384, Ed25519 with SHA-256/384/512 and --pure: sign, verify, refuse."""

from __future__ import annotations

import hashlib

import pytest

from protocol.errors import ImageError
from protocol.image import (
    BadSignatureError,
    DigestMismatchError,
    PrivateKey,
    TlvType,
    UnknownKeyError,
    WrongKeyTypeError,
    generate_key,
    key_hash,
    parse_image,
    sign_image,
    verify_image,
)
from protocol.image.mcuboot import Tlv, assemble_tlv_area
from protocol.image.sign import select_digest

from .conftest import DEMO_SIGN

CASES = [
    ("ed25519", "auto", False, "sha256", TlvType.ED25519),
    ("ed25519", "512", False, "sha512", TlvType.ED25519),
    ("ed25519", "auto", True, "sha512", TlvType.ED25519),
    ("ecdsa-p256", "256", False, "sha256", TlvType.ECDSA_SIG),
    ("ecdsa-p384", "auto", False, "sha384", TlvType.ECDSA_SIG),
    ("rsa-2048", "auto", False, "sha256", TlvType.RSA2048_PSS),
    ("rsa-3072", "256", False, "sha256", TlvType.RSA3072_PSS),
]


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {kind: generate_key(kind) for kind in {c[0] for c in CASES}}


@pytest.mark.parametrize(("kind", "sha", "pure", "digest", "sig_type"), CASES)
def test_sign_verify_round_trip(
    keys: dict[str, PrivateKey], fw_110: bytes, kind: str, sha: str, pure: bool, digest: str, sig_type: int
) -> None:
    key = keys[kind]
    data = sign_image(fw_110, key, version="1.2.3", sha=sha, pure=pure, security_counter=4, **DEMO_SIGN)
    image = parse_image(data)
    assert image.digest_name == digest
    assert image.stored_digest == hashlib.new(digest, image.hashed).digest()
    assert image.key_hash == key_hash(key, digest)
    assert [t.type for t in image.tlvs][-1] == sig_type
    assert bool(image.find(TlvType.SIG_PURE)) is pure
    verified = verify_image(data, keys=[key.public_key()], min_security_counter=4)
    assert verified.key_type == kind
    # Trusting the key by its hash works only with the image's full key, and with the image's hash size.
    full = sign_image(fw_110, key, version="1", sha=sha, pure=pure, public_key_format="full", **DEMO_SIGN)
    assert verify_image(full, keys=[key_hash(key, digest)]).key_type == kind
    with pytest.raises(UnknownKeyError):
        verify_image(data, keys=[generate_key("ed25519").public_key()])


@pytest.mark.parametrize(("kind", "sha", "pure", "digest", "sig_type"), CASES)
def test_altered_payload_or_signature_refused(
    keys: dict[str, PrivateKey], fw_110: bytes, kind: str, sha: str, pure: bool, digest: str, sig_type: int
) -> None:
    data = sign_image(fw_110, keys[kind], version="1", sha=sha, pure=pure, **DEMO_SIGN)
    bad = bytearray(data)
    bad[0x300] ^= 1
    with pytest.raises(DigestMismatchError):
        verify_image(bytes(bad), keys=[keys[kind].public_key()])
    bad = bytearray(data)
    bad[len(data) - 3] ^= 1
    with pytest.raises(BadSignatureError):
        verify_image(bytes(bad), keys=[keys[kind].public_key()])


def test_pad_sig_p384(keys: dict[str, PrivateKey], fw_110: bytes) -> None:
    lengths = set()
    for _ in range(12):  # DER lengths vary with the top bits of r and s: see both the padded and the 104-byte
        data = sign_image(fw_110, keys["ecdsa-p384"], version="1", pad_sig=True, **DEMO_SIGN)
        sig = parse_image(data).find(TlvType.ECDSA_SIG)[0]
        lengths.add(len(sig.value))
        verify_image(data, keys=[keys["ecdsa-p384"].public_key()])
    assert lengths <= {103, 104} and 103 in lengths


@pytest.mark.parametrize(
    ("kind", "sha", "pure", "match"),
    [
        ("rsa-2048", "512", False, "cannot be used with --sha 512"),
        ("ecdsa-p384", "256", False, "allowed: 384"),
        ("ecdsa-p256", "384", False, "allowed: 256"),
        ("ed25519", "384", False, "allowed: 256, 512"),
        ("ecdsa-p256", "auto", True, "--pure is not available"),
        ("ed25519", "sha1", False, "unknown digest"),
    ],
)
def test_refused_digest_pairs(keys: dict[str, PrivateKey], kind: str, sha: str, pure: bool, match: str) -> None:
    key = keys.get(kind) or generate_key(kind)
    with pytest.raises(ImageError, match=match):
        select_digest(key, sha, pure=pure)


def test_unsigned_any_digest(fw_110: bytes) -> None:
    assert parse_image(sign_image(fw_110, None, version="1", sha="384", **DEMO_SIGN)).digest_name == "sha384"
    with pytest.raises(ImageError, match="--pure needs a signing key"):
        sign_image(fw_110, None, version="1", pure=True, **DEMO_SIGN)


def test_digest_not_allowed_for_the_key_is_refused(keys: dict[str, PrivateKey], fw_110: bytes) -> None:
    # An RSA signature over a SHA-512 image is not something MCUboot checks: the verifier says so.
    unsigned = parse_image(sign_image(fw_110, None, version="1", sha="512", **DEMO_SIGN))
    key = keys["rsa-2048"]
    forged = sign_image(fw_110, key, version="1", **DEMO_SIGN)
    sig = parse_image(forged).find(TlvType.RSA2048_PSS)[0]
    tlvs = [*unsigned.tlvs, Tlv(type=TlvType.KEYHASH, value=key_hash(key, "sha512")), sig]
    data = unsigned.hashed + assemble_tlv_area(tlvs, protected=False)
    with pytest.raises(WrongKeyTypeError, match="SHA512"):
        verify_image(data, keys=[key.public_key()])
