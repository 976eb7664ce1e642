"""``getpriv``: the private key as the DER a bootloader embeds (its image-decryption key), as imgtool dumps it.

Formats follow imgtool: X25519 ``pkcs8``; ECDSA ``pkcs8`` (default) or ``openssl`` (SEC1); RSA ``openssl``
(PKCS#1).  ``minimal`` drops what decryption does not need, as ``imgtool getpriv --minimal``: the public key
of an EC key, the CRT parameters (dP, dQ, qInv) of an RSA key.  The DER comes from ``cryptography``; minimising
only removes elements of its SEQUENCEs and re-encodes their lengths.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from .errors import WrongKeyTypeError

__all__ = ["PRIVATE_FORMATS", "private_key_der"]

PRIVATE_FORMATS = ("openssl", "pkcs8")
_FORMATS = {"openssl": serialization.PrivateFormat.TraditionalOpenSSL, "pkcs8": serialization.PrivateFormat.PKCS8}
_SEQUENCE, _OCTET_STRING, _EC_PUBLIC_KEY_TAG = 0x30, 0x04, 0xA1
_RSA_MINIMAL_FIELDS = 6  # version, n, e, d, p, q


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def _children(der: bytes) -> list[tuple[int, bytes, bytes]]:
    """(tag, value, whole encoding) of each element inside the DER element ``der``."""

    def header(data: bytes, off: int) -> tuple[int, int, int]:
        tag, first = data[off], data[off + 1]
        if first < 0x80:
            return tag, first, off + 2
        count = first & 0x7F
        return tag, int.from_bytes(data[off + 2 : off + 2 + count], "big"), off + 2 + count

    _tag, length, start = header(der, 0)
    out = []
    off = start
    while off < start + length:
        tag, size, value_off = header(der, off)
        out.append((tag, der[value_off : value_off + size], der[off : value_off + size]))
        off = value_off + size
    return out


def _drop_ec_public(ec_private_key: bytes) -> bytes:
    kept = [whole for tag, _value, whole in _children(ec_private_key) if tag != _EC_PUBLIC_KEY_TAG]
    return _tlv(_SEQUENCE, b"".join(kept))


def private_key_der(key: object, fmt: str | None = None, *, minimal: bool = False) -> bytes:
    """The DER ``imgtool getpriv`` dumps for ``key`` (``fmt`` ``None`` picks the key type's default)."""
    if isinstance(key, ed25519.Ed25519PrivateKey) or not hasattr(key, "private_bytes"):
        raise WrongKeyTypeError(
            "wrong-key-type: getpriv dumps encryption keys (X25519, ECDSA P-256, RSA); not this key",
        )
    allowed: tuple[str, ...]
    if isinstance(key, x25519.X25519PrivateKey):
        allowed, default = ("pkcs8",), "pkcs8"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        allowed, default = ("pkcs8", "openssl"), "pkcs8"
    elif isinstance(key, rsa.RSAPrivateKey):
        allowed, default = ("openssl",), "openssl"
    else:
        raise WrongKeyTypeError(f"wrong-key-type: getpriv cannot dump a {type(key).__name__}")
    fmt = fmt or default
    if fmt not in allowed:
        raise WrongKeyTypeError(f"wrong-key-type: this key type does not support format {fmt}; use {allowed[0]}")
    der: bytes = key.private_bytes(serialization.Encoding.DER, _FORMATS[fmt], serialization.NoEncryption())
    if not minimal or isinstance(key, x25519.X25519PrivateKey):
        return der
    if isinstance(key, rsa.RSAPrivateKey):
        fields = [whole for _tag, _value, whole in _children(der)][:_RSA_MINIMAL_FIELDS]
        body = b"".join(fields)
        return bytes([_SEQUENCE, 0x82]) + len(body).to_bytes(2, "big") + body  # imgtool keeps the 2-byte length
    if fmt == "openssl":
        return _drop_ec_public(der)
    version, algorithm, (_tag, inner, _whole) = _children(der)
    return _tlv(_SEQUENCE, version[2] + algorithm[2] + _tlv(_OCTET_STRING, _drop_ec_public(inner)))
