"""Signing keys: Ed25519, ECDSA P-256/P-384, RSA-2048/3072, as imgtool reads, writes and hashes them.

Keys are ``cryptography`` objects.  MCUboot identifies a key by the hash of its DER encoding
(:func:`key_hash`), computed with the image's digest algorithm (SHA-256 unless the image uses SHA-384/512);
the KEYHASH TLV carries that hash, the PUBKEY TLV the DER itself.  The DER is the SubjectPublicKeyInfo for
elliptic-curve keys and the PKCS#1 ``RSAPublicKey`` for RSA keys (what MCUboot's RSA code parses).
Errors from ``cryptography`` are translated here into :class:`KeyFileError` / :class:`WrongKeyTypeError`.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Literal, TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

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

PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
KeyType: TypeAlias = Literal["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"]
KEY_TYPES: tuple[KeyType, ...] = ("ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072")
RSA_KEY_SIZES = (2048, 3072)
_RSA_EXPONENT = 65537
_CURVES: dict[str, type[ec.EllipticCurve]] = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1}


def generate_key(kind: str) -> PrivateKey:
    """A new private key of ``kind`` (one of :data:`KEY_TYPES`, the names ``imgtool keygen -t`` takes)."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind in ("rsa-2048", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=_RSA_EXPONENT, key_size=int(kind[4:]))
    raise WrongKeyTypeError(f"wrong-key-type: unsupported key type {kind!r}; use one of {', '.join(KEY_TYPES)}")


def _check_supported(key: object) -> PrivateKey | PublicKey:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise WrongKeyTypeError(
                f"wrong-key-type: ECDSA curve {key.curve.name} is not supported; use P-256 or P-384"
            )
        return key
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size not in RSA_KEY_SIZES:
            raise WrongKeyTypeError(
                f"wrong-key-type: RSA-{key.key_size} is not supported by MCUboot; use RSA-2048 or RSA-3072"
            )
        return key
    raise WrongKeyTypeError(
        f"wrong-key-type: {type(key).__name__} keys are not supported; use Ed25519, ECDSA P-256/P-384 or RSA-2048/3072",
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
    if isinstance(checked, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
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
                key = _load_der_public(data)
            except ValueError:
                return public_key(load_private_key(data))
    except ImageError:
        raise
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFileError("bad-key-file: not a readable public key (PEM or DER)") from err
    return public_key(_check_supported(key))


def _load_der_public(der: bytes) -> object:
    """SubjectPublicKeyInfo DER, or a bare PKCS#1 RSAPublicKey (what imgtool's ``getpub -e raw`` writes for RSA)."""
    try:
        return serialization.load_der_public_key(der)
    except ValueError:
        # cryptography reads PKCS#1 RSA public keys only from PEM; wrap the DER to let it parse the bytes.
        pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END RSA PUBLIC KEY-----\n"
        return serialization.load_pem_public_key(pem)


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
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return key.public_key()
    return key


def key_type(key: PrivateKey | PublicKey) -> KeyType:
    """One of :data:`KEY_TYPES`."""
    checked = _check_supported(key)
    if isinstance(checked, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(checked, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa-3072" if checked.key_size == 3072 else "rsa-2048"
    return "ecdsa-p384" if checked.curve.name == "secp384r1" else "ecdsa-p256"


def signature_tlv_type(key: PrivateKey | PublicKey) -> int:
    """The TLV type a signature by ``key`` is stored under (ED25519, ECDSASIG, RSA2048 or RSA3072)."""
    return {
        "ed25519": TlvType.ED25519,
        "ecdsa-p256": TlvType.ECDSA_SIG,
        "ecdsa-p384": TlvType.ECDSA_SIG,
        "rsa-2048": TlvType.RSA2048_PSS,
        "rsa-3072": TlvType.RSA3072_PSS,
    }[key_type(key)]


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    """What imgtool puts in the PUBKEY TLV and hashes for KEYHASH: DER SubjectPublicKeyInfo, PKCS#1 for RSA."""
    pub = public_key(_check_supported(key))
    fmt = (
        serialization.PublicFormat.PKCS1
        if isinstance(pub, rsa.RSAPublicKey)
        else serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pub.public_bytes(encoding=serialization.Encoding.DER, format=fmt)


def public_key_from_der(der: bytes) -> PublicKey:
    """The key carried by a PUBKEY TLV."""
    try:
        key = _load_der_public(der)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFileError("bad-key-file: the PUBKEY TLV is not a DER public key") from err
    checked = _check_supported(key)
    return public_key(checked)


def key_hash(key: PrivateKey | PublicKey, digest_name: str = "sha256") -> bytes:
    """The hash (SHA-256 unless ``digest_name`` says ``sha384``/``sha512``) of :func:`public_key_der`, as
    MCUboot's key table and the KEYHASH TLV hold it."""
    return hashlib.new(digest_name, public_key_der(key)).digest()


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
