"""What a bootloader can check and decrypt, and the checks that depend on it: dependencies and capabilities.

An MCUboot build verifies one signature type with the digest it was compiled for, decrypts with the one
private key it embeds (if any), and decompresses only in overwrite-only mode.  :class:`Capabilities` (the
INFO field of protocol 1.2, :mod:`protocol.update.messages`) says which of imgtool's options a device takes,
:func:`capabilities_for` builds it for a set of keys, and
:func:`check_capabilities` refuses an image that needs something else, before anything is sent.

:func:`check_dependencies` applies the DEPENDENCY TLVs (``imgtool sign -d "(ID, VERSION)"``) as bootutil's
``boot_verify_dependencies`` does: each names an image index and a minimum ``major.minor.revision`` (the build
number is not compared, as in MCUboot by default), and the image the device will run at that index after the
update must meet it.  A single-image device has image 0 only, so a dependency on any other index refuses the
image, and a dependency on image 0 is judged against the version the update installs there (the candidate's).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from ..update.messages import AES_KEY_SIZES, DIGESTS, ENCRYPTION_SCHEMES, SIGNATURE_TYPES, Capabilities
from .errors import CapabilityError, CompressedImageError, DependencyError, NoDecryptKeyError
from .mcuboot import IMAGE_F_ENCRYPTED_AES256, Image, ImageVersion, TlvType

__all__ = [
    "DIGESTS",
    "ENCRYPTION_SCHEMES",
    "SIGNATURE_TYPES",
    "Capabilities",
    "capabilities_for",
    "check_capabilities",
    "check_dependencies",
    "dependencies",
    "encryption_scheme",
    "image_signature_types",
]

_ENC_TLV_SCHEME = {
    TlvType.ENC_RSA2048: "rsa-oaep",
    TlvType.ENC_EC256: "ecies-p256",
    TlvType.ENC_X25519: "ecies-x25519",
    TlvType.ENC_X25519_SHA512: "ecies-x25519-sha512",
}
_SIG_TLV_TYPES = {
    TlvType.ED25519: ("ed25519", "ed25519-pure"),
    TlvType.ECDSA_SIG: ("ecdsa-p256", "ecdsa-p384"),
    TlvType.RSA2048_PSS: ("rsa-2048",),
    TlvType.RSA3072_PSS: ("rsa-3072",),
}
_DEPENDENCY = struct.Struct("<B3xBBHI")
# the digests MCUboot pairs with each signing key type (imgtool's --sha choices)
_KEY_DIGESTS = {"ed25519": ("sha256", "sha512"), "ecdsa-p384": ("sha384",)}


def capabilities_for(
    key_types: Iterable[str], encryption: str | None = None, *, decompress: bool = False
) -> Capabilities:
    """What a bootloader built for these signing key types verifies (each with the digests MCUboot pairs it
    with; Ed25519 also ``--pure``) and, with ``encryption`` (one of :data:`ENCRYPTION_SCHEMES`), decrypts."""
    kinds = set(key_types)
    sigs = kinds | ({"ed25519-pure"} if "ed25519" in kinds else set())
    schemes: set[str] = set()
    if encryption is not None:
        schemes.add(encryption)
        if encryption == "ecies-x25519":
            schemes.add("ecies-x25519-sha512")  # the same private key unwraps both TLVs
    return Capabilities(
        signatures=frozenset(sigs),
        digests=frozenset(d for k in kinds for d in _KEY_DIGESTS.get(k, ("sha256",))),
        encryption=frozenset(schemes),
        aes_bits=frozenset(AES_KEY_SIZES) if schemes else frozenset(),
        decompress=decompress,
    )


def encryption_scheme(image: Image) -> str | None:
    """The scheme the image's AES key is wrapped with (:data:`ENCRYPTION_SCHEMES`), or ``None``."""
    for tlv in image.tlvs:
        if tlv.type in _ENC_TLV_SCHEME:
            return _ENC_TLV_SCHEME[tlv.type]
    return None


def image_signature_types(image: Image) -> set[str]:
    """The signature types that could have made the image's signature TLVs (ECDSA: by the digest size)."""
    pure = bool(image.find(TlvType.SIG_PURE, protected=False))
    out: set[str] = set()
    for tlv in image.tlvs:
        kinds = _SIG_TLV_TYPES.get(tlv.type)
        if kinds is None:
            continue
        if tlv.type == TlvType.ED25519:
            out.add("ed25519-pure" if pure else "ed25519")
        elif tlv.type == TlvType.ECDSA_SIG:
            out.add("ecdsa-p384" if image.digest_name == "sha384" else "ecdsa-p256")
        else:
            out.update(kinds)
    return out


def check_capabilities(image: Image, caps: Capabilities, *, encrypted: bool, compressed: bool) -> None:
    """Refuse ``image`` if the device cannot check, decrypt or install it (typed errors, reason slugs
    ``unsupported-digest``, ``unsupported-signature``, ``no-decrypt-key``, ``compressed``)."""
    listed = ", ".join(d.upper() for d in DIGESTS if d in caps.digests) or "none"
    if caps.digests and image.digest_name not in caps.digests:
        raise CapabilityError(
            f"unsupported-digest: the image is hashed with {image.digest_name.upper()}, the device verifies {listed}",
            reason="unsupported-digest",
        )
    sigs = image_signature_types(image)
    if caps.signatures and sigs and not sigs & caps.signatures:
        have = ", ".join(s for s in SIGNATURE_TYPES if s in caps.signatures)
        raise CapabilityError(
            f"unsupported-signature: the image is signed {'/'.join(sorted(sigs))}, the device verifies {have}",
            reason="unsupported-signature",
        )
    if encrypted:
        scheme = encryption_scheme(image)
        bits = 256 if image.header.flags & IMAGE_F_ENCRYPTED_AES256 else 128
        if not caps.encryption:
            raise NoDecryptKeyError("no-decrypt-key: the image is encrypted and the device decrypts no image")
        if scheme not in caps.encryption:
            have = ", ".join(e for e in ENCRYPTION_SCHEMES if e in caps.encryption)
            raise NoDecryptKeyError(
                f"no-decrypt-key: the image key is wrapped with {scheme or 'no ENC TLV'}, the device decrypts {have}"
            )
        if caps.aes_bits and bits not in caps.aes_bits:
            have = "/".join(str(b) for b in sorted(caps.aes_bits))
            raise NoDecryptKeyError(f"no-decrypt-key: the image is AES-{bits}, the device decrypts AES-{have}")
    if compressed and not caps.decompress:
        raise CompressedImageError(
            "compressed: the image is LZMA2-compressed and the device's swapping bootloader does not decompress"
            " (MCUboot decompresses only in overwrite-only mode)"
        )


def dependencies(image: Image) -> list[tuple[int, ImageVersion]]:
    """The image's DEPENDENCY TLVs (protected, as imgtool writes them): ``(image index, minimum version)``."""
    out: list[tuple[int, ImageVersion]] = []
    for tlv in image.find(TlvType.DEPENDENCY, protected=True):
        if len(tlv.value) != _DEPENDENCY.size:
            raise DependencyError(f"dependency: a DEPENDENCY TLV has {len(tlv.value)} bytes, not {_DEPENDENCY.size}")
        image_id, major, minor, revision, build = _DEPENDENCY.unpack(tlv.value)
        out.append((image_id, ImageVersion(major=major, minor=minor, revision=revision, build=build)))
    return out


def check_dependencies(image: Image, installed: Mapping[int, ImageVersion]) -> None:
    """Raise :class:`DependencyError` unless every DEPENDENCY of ``image`` is met by ``installed`` (image
    index -> the version that will run there; for a single-image device ``{0: image.version}``)."""
    for image_id, minimum in dependencies(image):
        have = installed.get(image_id)
        want = f"{minimum.major}.{minimum.minor}.{minimum.revision}"
        if have is None:
            indexes = ", ".join(str(i) for i in sorted(installed)) or "none"
            raise DependencyError(
                f"dependency: the image needs image {image_id} at {want} or later; the device has no image"
                f" {image_id} (its images: {indexes})"
            )
        if (have.major, have.minor, have.revision) < (minimum.major, minimum.minor, minimum.revision):
            raise DependencyError(
                f"dependency: the image needs image {image_id} at {want} or later; it would be"
                f" {have.major}.{have.minor}.{have.revision}"
            )
