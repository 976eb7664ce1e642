"""Signing keys: Ed25519 and ECDSA P-256, as imgtool reads, writes and hashes them.

Keys are ``cryptography`` objects.  MCUboot identifies a key by the SHA-256 of its DER
SubjectPublicKeyInfo (:func:`key_hash`); the KEYHASH TLV carries that hash, the PUBKEY TLV the DER itself.
Errors from ``cryptography`` are translated here into :class:`KeyFileError` / :class:`WrongKeyTypeError`.
"""

from __future__ import annotations

import hashlib
from typing import Literal, TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .errors import ImageError, KeyFileError, WrongKeyTypeError
from .mcuboot import TlvType

__all__ = [
    "KEY_TYPES",
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "generate_key",
    "key_hash",
    "key_type",
    "load_key",
    "load_private_key",
    "load_public_key",
    "private_key_to_pem",
    "public_key",
    "public_key_der",
    "public_key_from_der",
    "public_key_to_pem",
    "signature_tlv_type",
]

PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
KeyType: TypeAlias = Literal["ed25519", "ecdsa-p256"]
KEY_TYPES: tuple[KeyType, ...] = ("ed25519", "ecdsa-p256")


def generate_key(kind: str) -> PrivateKey:
    """A new private key of ``kind`` (``"ed25519"`` or ``"ecdsa-p256"``)."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise WrongKeyTypeError(f"wrong-key-type: unsupported key type {kind!r}; use one of {', '.join(KEY_TYPES)}")


def _check_supported(key: object) -> PrivateKey | PublicKey:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise WrongKeyTypeError(
                f"wrong-key-type: ECDSA curve {key.curve.name} is not supported; use P-256 (secp256r1)"
            )
        return key
    raise WrongKeyTypeError(
        f"wrong-key-type: {type(key).__name__} keys are not supported; use Ed25519 or ECDSA P-256",
        hint="generate one with: stm32ota keygen -k KEY.pem -t ed25519",
    )


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """A private key from PEM or DER bytes (PKCS#8 or traditional OpenSSL)."""
    try:
        if data.lstrip().startswith(b"-----"):
            key: object = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except TypeError as err:  # password missing or given for an unencrypted key
        raise KeyFileError(f"bad-key-file: {err}") from err
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFileError(
            "bad-key-file: not a readable private key (PEM or DER)",
            hint="a public key cannot sign; use the private key file from keygen",
        ) from err
    checked = _check_supported(key)
    if isinstance(checked, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise KeyFileError("bad-key-file: expected a private key")
    return checked


def load_public_key(data: bytes) -> PublicKey:
    """A public key from PEM/DER bytes; a private key file gives its public half."""
    try:
        if data.lstrip().startswith(b"-----"):
            if b"PRIVATE KEY" in data:
                return public_key(load_private_key(data))
            key: object = serialization.load_pem_public_key(data)
        else:
            try:
                key = serialization.load_der_public_key(data)
            except ValueError:
                return public_key(load_private_key(data))
    except ImageError:
        raise
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFileError("bad-key-file: not a readable public key (PEM or DER)") from err
    checked = _check_supported(key)
    if isinstance(checked, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        return checked.public_key()
    return checked


def load_key(data: bytes, password: bytes | None = None) -> PrivateKey | PublicKey:
    """Whatever key ``data`` holds: the private key if it is one, else the public key."""
    stripped = data.lstrip()
    if stripped.startswith(b"-----") and b"PRIVATE KEY" not in stripped:
        return load_public_key(data)
    if not stripped.startswith(b"-----"):
        try:
            return load_private_key(data, password)
        except KeyFileError:
            return load_public_key(data)
    return load_private_key(data, password)


def public_key(key: PrivateKey | PublicKey) -> PublicKey:
    """The public half of ``key`` (``key`` itself when it is public)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        return key.public_key()
    return key


def key_type(key: PrivateKey | PublicKey) -> KeyType:
    """``"ed25519"`` or ``"ecdsa-p256"``."""
    checked = _check_supported(key)
    if isinstance(checked, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    return "ecdsa-p256"


def signature_tlv_type(key: PrivateKey | PublicKey) -> int:
    """The TLV type a signature by ``key`` is stored under (ED25519 or ECDSASIG)."""
    return TlvType.ED25519 if key_type(key) == "ed25519" else TlvType.ECDSA_SIG


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    """DER SubjectPublicKeyInfo, what imgtool puts in the PUBKEY TLV and hashes for KEYHASH."""
    return public_key(_check_supported(key)).public_bytes(
        encoding=serialization.Encoding.DER, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_from_der(der: bytes) -> PublicKey:
    """The key carried by a PUBKEY TLV."""
    try:
        key: object = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFileError("bad-key-file: the PUBKEY TLV is not a DER public key") from err
    checked = _check_supported(key)
    return public_key(checked)


def key_hash(key: PrivateKey | PublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo, as MCUboot's key table and the KEYHASH TLV hold it."""
    return hashlib.sha256(public_key_der(key)).digest()


def private_key_to_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM, as ``imgtool keygen`` writes it."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=encryption,
    )


def public_key_to_pem(key: PrivateKey | PublicKey) -> bytes:
    return public_key(key).public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
