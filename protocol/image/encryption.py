"""Encrypted images as ``imgtool sign -E`` makes them, and their decryption with the device's key.

The payload (header region excluded, padded with zeros to a multiple of 16 before hashing) is encrypted with
AES-CTR (128 or 256 bits, nonce 0) under a random key.  That key travels in one unprotected TLV, wrapped for
the device's key:

* ``ENCRSA2048``: RSA-OAEP (SHA-256, MGF1-SHA-256) under an RSA-2048 public key;
* ``ENCEC256`` / ``ENCX25519`` (``ENCX25519_SHA512``): ECIES -- an ephemeral P-256 / X25519 key agreement,
  HKDF (SHA-256, or SHA-512 for X25519 with ``--hmac-sha 512``; info ``MCUBoot_ECIES_v1``) into an AES-CTR
  key that wraps the image key and an HMAC key that authenticates it; the TLV is
  ``ephemeral public key | HMAC | wrapped key``.

The digest and signature cover the plaintext, so an encrypted image is checked after decrypting it, as MCUboot
does while it copies the image into the primary slot.  All cryptography is ``cryptography``'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import BadTlvError, KeyFileError, MissingTlvError, UnsupportedError, WrongKeyTypeError
from .mcuboot import IMAGE_F_ENCRYPTED_AES128, IMAGE_F_ENCRYPTED_AES256, Image, TlvType, assemble_tlv_area, parse_image

__all__ = [
    "ENC_TLV_TYPES",
    "EncryptionPrivateKey",
    "EncryptionPrivateKeyTypes",
    "EncryptionPublicKey",
    "aes_ctr",
    "aes_ctr_at",
    "decrypted_image",
    "encryption_flag",
    "is_encrypted",
    "load_encryption_key",
    "new_image_key",
    "unwrap_image_key",
    "wrap_image_key",
]

EncryptionPublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | x25519.X25519PublicKey
EncryptionPrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey
EncryptionPrivateKeyTypes = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, x25519.X25519PrivateKey)
ENC_TLV_TYPES = (TlvType.ENC_RSA2048, TlvType.ENC_EC256, TlvType.ENC_X25519, TlvType.ENC_X25519_SHA512)
_ECIES_INFO = b"MCUBoot_ECIES_v1"
_NONCE = bytes(16)
_P256_POINT = 65
_X25519_POINT = 32
_RSA_BITS = 2048


@dataclass(frozen=True)
class _Layout:
    point: int
    mac: int
    algorithm: type[hashes.HashAlgorithm]


_ECIES: dict[int, _Layout] = {
    TlvType.ENC_EC256: _Layout(_P256_POINT, 32, hashes.SHA256),
    TlvType.ENC_X25519: _Layout(_X25519_POINT, 32, hashes.SHA256),
    TlvType.ENC_X25519_SHA512: _Layout(_X25519_POINT, 64, hashes.SHA512),
}


def aes_ctr(key: bytes, data: bytes) -> bytes:
    """AES-CTR with MCUboot's all-zero initial counter (encrypts and decrypts alike)."""
    encryptor = Cipher(algorithms.AES(key), modes.CTR(_NONCE)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def aes_ctr_at(key: bytes, offset: int, data: bytes) -> bytes:
    """AES-CTR of ``data`` that sits ``offset`` bytes into the encrypted payload (MCUboot's counter block is
    the payload offset / 16, big endian): what a bootloader does to one flash chunk while it copies."""
    block, skip = divmod(offset, 16)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(block.to_bytes(16, "big"))).encryptor()
    return (encryptor.update(bytes(skip) + data) + encryptor.finalize())[skip:]


def encryption_flag(key_bits: int) -> int:
    if key_bits == 128:
        return IMAGE_F_ENCRYPTED_AES128
    if key_bits == 256:
        return IMAGE_F_ENCRYPTED_AES256
    raise UnsupportedError(f"unsupported: AES-{key_bits}; use 128 or 256")


def _check_encryption_key(key: object) -> EncryptionPublicKey | EncryptionPrivateKey:
    if isinstance(key, x25519.X25519PublicKey | x25519.X25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey) and key.key_size == _RSA_BITS:
        return key
    raise WrongKeyTypeError(
        f"wrong-key-type: {type(key).__name__} cannot wrap an image key; use an X25519, P-256 or RSA-2048 key",
        hint="generate one with: stm32ota keygen -k enc.pem -t x25519",
    )


def load_encryption_key(data: bytes) -> EncryptionPublicKey | EncryptionPrivateKey:
    """An image-encryption key from PEM or DER: the public key encrypts, the private key decrypts."""
    loaders = (
        (serialization.load_pem_private_key, serialization.load_pem_public_key)
        if data.lstrip().startswith(b"-----")
        else (serialization.load_der_private_key, serialization.load_der_public_key)
    )
    key: object = None
    try:
        key = loaders[0](data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            key = loaders[1](data)
        except (ValueError, UnsupportedAlgorithm) as err:
            raise KeyFileError("bad-key-file: not a readable encryption key (PEM or DER)") from err
    return _check_encryption_key(key)


def _kdf(tlv_type: int, shared: bytes, key_len: int) -> tuple[bytes, bytes]:
    layout = _ECIES[tlv_type]
    algorithm = layout.algorithm()
    derived = HKDF(algorithm=algorithm, length=key_len + algorithm.digest_size, salt=None, info=_ECIES_INFO).derive(
        shared
    )
    return derived[:key_len], derived[key_len:]


def wrap_image_key(
    key: EncryptionPublicKey | EncryptionPrivateKey, image_key: bytes, *, hmac_sha: str = "auto"
) -> tuple[int, bytes]:
    """``(TLV type, TLV value)`` carrying ``image_key`` for the holder of ``key``'s private half."""
    pub = _check_encryption_key(key)
    if isinstance(pub, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey):
        pub = pub.public_key()
    if hmac_sha not in ("auto", "256", "512"):
        raise UnsupportedError(f"unsupported: HMAC-SHA{hmac_sha}; use 256 or 512")
    if isinstance(pub, rsa.RSAPublicKey):
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        return TlvType.ENC_RSA2048, pub.encrypt(image_key, oaep)
    if hmac_sha == "512" and not isinstance(pub, x25519.X25519PublicKey):
        raise UnsupportedError("unsupported: only ECIES-X25519 supports HMAC-SHA512")
    if isinstance(pub, ec.EllipticCurvePublicKey):
        ephemeral_ec = ec.generate_private_key(ec.SECP256R1())
        shared = ephemeral_ec.exchange(ec.ECDH(), pub)
        point = ephemeral_ec.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        tlv_type = TlvType.ENC_EC256
    else:
        ephemeral_x = x25519.X25519PrivateKey.generate()
        shared = ephemeral_x.exchange(pub)
        point = ephemeral_x.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        tlv_type = TlvType.ENC_X25519_SHA512 if hmac_sha == "512" else TlvType.ENC_X25519
    wrap_key, mac_key = _kdf(tlv_type, shared, len(image_key))
    wrapped = aes_ctr(wrap_key, image_key)
    mac = hmac.HMAC(mac_key, _ECIES[tlv_type].algorithm())
    mac.update(wrapped)
    return tlv_type, point + mac.finalize() + wrapped


def new_image_key(bits: int) -> bytes:
    encryption_flag(bits)
    return os.urandom(bits // 8)


def unwrap_image_key(image: Image, key: EncryptionPrivateKey) -> bytes:
    """The AES key of an encrypted ``image``, unwrapped with the device's private ``key``; a typed error when
    the image carries no key TLV for this kind of key or the TLV does not authenticate."""
    priv = _check_encryption_key(key)
    bits = 256 if image.header.flags & IMAGE_F_ENCRYPTED_AES256 else 128
    key_len = bits // 8
    found = [t for t in image.tlvs if t.type in ENC_TLV_TYPES]
    if not found:
        raise MissingTlvError("missing-tlv: the encrypted image carries no ENC* TLV with its key")
    if isinstance(priv, rsa.RSAPrivateKey):
        tlv = next((t for t in found if t.type == TlvType.ENC_RSA2048), None)
        if tlv is None:
            raise WrongKeyTypeError(f"wrong-key-type: the image key is wrapped as {found[0].name}, not for RSA")
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        try:
            plain = priv.decrypt(tlv.value, oaep)
        except ValueError as err:
            raise BadTlvError("bad-tlv: ENCRSA2048 does not decrypt with this key (another device's key?)") from err
        if len(plain) != key_len:
            raise BadTlvError(f"bad-tlv: ENCRSA2048 holds a {len(plain)}-byte key, the header says AES-{bits}")
        return plain
    wanted = (TlvType.ENC_EC256,) if isinstance(priv, ec.EllipticCurvePrivateKey) else _X25519_TYPES
    if not isinstance(priv, ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey):
        raise WrongKeyTypeError("wrong-key-type: a public key cannot decrypt; give the private key")
    tlv = next((t for t in found if t.type in wanted), None)
    if tlv is None:
        raise WrongKeyTypeError(
            f"wrong-key-type: the image key is wrapped as {found[0].name}, not for this {type(priv).__name__}"
        )
    layout = _ECIES[tlv.type]
    if len(tlv.value) != layout.point + layout.mac + key_len:
        raise BadTlvError(f"bad-tlv: {tlv.name} has {len(tlv.value)} bytes, not {layout.point + layout.mac + key_len}")
    point, mac, wrapped = (
        tlv.value[: layout.point],
        tlv.value[layout.point : layout.point + layout.mac],
        tlv.value[layout.point + layout.mac :],
    )
    try:
        if isinstance(priv, ec.EllipticCurvePrivateKey):
            shared = priv.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point))
        else:
            shared = priv.exchange(x25519.X25519PublicKey.from_public_bytes(point))
    except ValueError as err:
        raise BadTlvError(f"bad-tlv: {tlv.name} does not hold a valid ephemeral public key") from err
    wrap_key, mac_key = _kdf(tlv.type, shared, key_len)
    check = hmac.HMAC(mac_key, layout.algorithm())
    check.update(wrapped)
    try:
        check.verify(mac)
    except InvalidSignature as err:
        raise BadTlvError(
            f"bad-tlv: {tlv.name} does not authenticate with this key (wrapped for another device, or altered)"
        ) from err
    return aes_ctr(wrap_key, wrapped)


_X25519_TYPES = (TlvType.ENC_X25519, TlvType.ENC_X25519_SHA512)


def is_encrypted(image: Image) -> bool:
    return bool(image.header.flags & (IMAGE_F_ENCRYPTED_AES128 | IMAGE_F_ENCRYPTED_AES256))


def decrypted_image(image: Image, key: EncryptionPrivateKey) -> Image:
    """``image`` with its payload decrypted (header, flags and TLVs as they are): what MCUboot hashes."""
    plain = aes_ctr(unwrap_image_key(image, key), image.payload)
    h = image.header
    data = (
        image.hashed[: h.header_size]
        + plain
        + image.hashed[h.header_size + h.image_size :]
        + assemble_tlv_area(image.tlvs, protected=False)
    )
    return parse_image(data)
