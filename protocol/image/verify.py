"""Check an MCUboot image the way MCUboot's bootutil does: digest, key, signature, counter, hardware tag.

Each failed check raises its own :class:`protocol.errors.ImageError` subclass with a stable ``reason``
(see :mod:`protocol.image.errors`); the first failing check wins, in this order: structure, unsupported
features, unprotected TLVs allowed, digest, key, signature, security counter, hardware tag.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from .compression import decompressed_image, is_compressed
from .encryption import EncryptionPrivateKey, decrypted_image, is_encrypted
from .errors import (
    BadSignatureError,
    BadTlvError,
    DigestMismatchError,
    ImageError,
    KeyFileError,
    MissingTlvError,
    NoDecryptKeyError,
    SecurityCounterError,
    UnknownKeyError,
    UnsupportedError,
    WrongBoardError,
    WrongChipError,
    WrongKeyTypeError,
)
from .hwtag import ANY_BOARD, HW_TAG_TLV, HardwareTag
from .keys import KeyType, PrivateKey, PublicKey, key_hash, key_type, public_key, public_key_from_der
from .mcuboot import (
    IMAGE_F_COMPRESSED_LZMA1,
    IMAGE_F_ENCRYPTED_AES128,
    IMAGE_F_ENCRYPTED_AES256,
    Image,
    ImageVersion,
    Tlv,
    TlvType,
    parse_image,
)

__all__ = [
    "TrustedKey",
    "VerifiedImage",
    "check_claims",
    "check_digest",
    "check_structure",
    "verify_image",
    "verify_parsed",
]

TrustedKey = PublicKey | PrivateKey | bytes
"""A public key (a private key stands for its public half), or the 32-byte SHA-256 key hash (then the image
must carry the full PUBKEY)."""

_UNSUPPORTED_FLAGS = {
    IMAGE_F_ENCRYPTED_AES128: "encrypted (AES-128)",
    IMAGE_F_ENCRYPTED_AES256: "encrypted (AES-256)",
    IMAGE_F_COMPRESSED_LZMA1: "compressed (LZMA1)",
}
# TLVs allowed outside the protected area (MCUboot rejects any other unprotected TLV: it is not signed).
_ALLOWED_UNPROTECTED = frozenset(
    {
        TlvType.KEYHASH,
        TlvType.PUBKEY,
        TlvType.SHA256,
        TlvType.SHA384,
        TlvType.SHA512,
        TlvType.RSA2048_PSS,
        TlvType.ECDSA_SIG,
        TlvType.RSA3072_PSS,
        TlvType.ED25519,
        TlvType.SIG_PURE,
        TlvType.ENC_RSA2048,
        TlvType.ENC_KW,
        TlvType.ENC_EC256,
        TlvType.ENC_X25519,
        TlvType.ENC_X25519_SHA512,
        TlvType.DECOMP_SIGNATURE,
    }
)
_SIG_KEY_TYPES: dict[int, tuple[KeyType, ...]] = {
    TlvType.ED25519: ("ed25519",),
    TlvType.ECDSA_SIG: ("ecdsa-p256", "ecdsa-p384"),
    TlvType.RSA2048_PSS: ("rsa-2048",),
    TlvType.RSA3072_PSS: ("rsa-3072",),
}
# The digests MCUboot (and imgtool verify) accept with each key type.
_KEY_DIGESTS: dict[KeyType, tuple[str, ...]] = {
    "ed25519": ("sha256", "sha512"),
    "ecdsa-p256": ("sha256",),
    "ecdsa-p384": ("sha384",),
    "rsa-2048": ("sha256",),
    "rsa-3072": ("sha256",),
}
_RSA_PSS_SALT_LEN = 32
_KEY_HASH_SIZE = 32
_ED25519_SIG_SIZE = 64
_DER_SEQUENCE = 0x30
_DER_SHORT_LEN_LIMIT = 0x80


@dataclass(frozen=True, kw_only=True)
class VerifiedImage:
    """An image that passed every check asked for."""

    image: Image
    key_hash: bytes
    key_type: KeyType
    signature_type: str
    security_counter: int | None
    hw_tag: HardwareTag | None
    decompressed: Image | None = None
    """For a compressed image: the plain image inside it, whose digest and signature were checked too."""

    @property
    def version(self) -> ImageVersion:
        return self.image.version

    @property
    def digest(self) -> bytes:
        return self.image.digest

    @property
    def payload(self) -> bytes:
        return self.image.payload


def _single(tlvs: list[Tlv], what: str) -> Tlv | None:
    if len(tlvs) > 1:
        raise BadTlvError(f"bad-tlv: the image carries {len(tlvs)} {what} TLVs")
    return tlvs[0] if tlvs else None


def _check_structure(image: Image, *, decrypted: bool = False) -> None:
    for bit, what in _UNSUPPORTED_FLAGS.items():
        if image.header.flags & bit and not (decrypted and bit in (IMAGE_F_ENCRYPTED_AES128, IMAGE_F_ENCRYPTED_AES256)):
            if bit != IMAGE_F_COMPRESSED_LZMA1:
                raise NoDecryptKeyError(
                    f"no-decrypt-key: an {what} image is checked after decrypting it: give the device's"
                    " encryption key (verify --decrypt-key KEY.pem)"
                )
            raise UnsupportedError(f"unsupported: {what} images are not supported")
    for tlv in image.tlvs:
        if tlv.type not in _ALLOWED_UNPROTECTED:
            raise BadTlvError(
                f"bad-tlv: TLV {tlv.name} (0x{tlv.type:04x}) is outside the protected area, so it is"
                " not signed; MCUboot rejects such images",
                hint="custom TLVs must be protected (imgtool --custom-tlv puts them there)",
            )
    digests = [t for t in image.tlvs if t.type in (TlvType.SHA256, TlvType.SHA384, TlvType.SHA512)]
    if len({t.type for t in digests}) > 1:
        raise BadTlvError("bad-tlv: the image carries digest TLVs of more than one algorithm")
    pure = _single(image.find(TlvType.SIG_PURE, protected=False), "SIG_PURE")
    if pure is not None and pure.value != b"\x01":
        raise BadTlvError(f"bad-tlv: the SIG_PURE TLV holds {pure.value.hex() or 'nothing'}, not 01")


def check_structure(image: Image, *, decrypted: bool = False) -> None:
    """The TLV-level checks that need no digest (only allowed TLVs unprotected, one digest algorithm, a sound
    SIG_PURE); an encrypted image passes only with ``decrypted`` (or when it is judged without its payload)."""
    _check_structure(image, decrypted=decrypted)


def _is_pure(image: Image) -> bool:
    return bool(image.find(TlvType.SIG_PURE, protected=False))


def check_digest(image: Image, *, decrypted: bool = False) -> bytes:
    """The digest TLV (SHA256, SHA384 or SHA512) matches the header, payload and protected TLVs; returns
    the digest.  ``decrypted`` says an encrypted image's payload was decrypted already."""
    _check_structure(image, decrypted=decrypted)
    tlv_type = image.digest_tlv_type
    name = image.digest_name.upper().replace("SHA", "SHA-")
    tlv = _single(image.find(tlv_type, protected=False), image.digest_name.upper())
    if tlv is None:
        raise MissingTlvError("missing-tlv: the image has no SHA256/SHA384/SHA512 digest TLV")
    if not hmac.compare_digest(tlv.value, image.digest):
        raise DigestMismatchError(
            f"digest-mismatch: {name} is {image.digest.hex()[:16]}..., the image says"
            f" {tlv.value.hex()[:16]}...: the image was altered after signing",
        )
    return image.digest


def _trusted_hashes(keys: Sequence[TrustedKey], digest_name: str = "sha256") -> dict[bytes, PublicKey | None]:
    size = len(hashlib.new(digest_name).digest())
    table: dict[bytes, PublicKey | None] = {}
    for entry in keys:
        if isinstance(entry, bytes | bytearray):
            if len(entry) not in (_KEY_HASH_SIZE, 48, 64):
                raise KeyFileError(f"bad-key-file: a key hash has 32, 48 or 64 bytes, not {len(entry)}")
            if len(entry) == size:
                table.setdefault(bytes(entry), None)
        else:
            pub = public_key(entry)
            table[key_hash(pub, digest_name)] = pub
    return table


def _verify_signature(pub: PublicKey, sig_tlv: Tlv, image: Image) -> None:
    """Raise :class:`BadSignatureError` unless ``sig_tlv`` verifies with ``pub``."""
    signature = sig_tlv.value
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey):
            if len(signature) != _ED25519_SIG_SIZE:
                raise BadSignatureError(f"bad-signature: an Ed25519 signature has 64 bytes, not {len(signature)}")
            pub.verify(signature, image.hashed if _is_pure(image) else image.digest)
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(
                signature,
                image.digest,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=_RSA_PSS_SALT_LEN),
                utils.Prehashed(hashes.SHA256()),
            )
        else:
            # imgtool --pad-sig pads the DER signature with zeros (to 72 bytes for P-256, 103 for P-384); the
            # DER length says how much is real.  Only short-form DER lengths occur for these curves.
            if len(signature) >= 2 and signature[0] == _DER_SEQUENCE and signature[1] < _DER_SHORT_LEN_LIMIT:
                signature = signature[: signature[1] + 2]
            algorithm = hashes.SHA384() if image.digest_name == "sha384" else hashes.SHA256()
            pub.verify(signature, image.digest, ec.ECDSA(utils.Prehashed(algorithm)))
    except (InvalidSignature, ValueError) as err:
        raise BadSignatureError(
            "bad-signature: the signature does not match the image and key",
            hint="the image was signed over different bytes or with another key",
        ) from err


def check_claims(
    image: Image,
    *,
    chip_id: int | None = None,
    board_id: int | None = None,
    min_security_counter: int | None = None,
) -> tuple[int | None, HardwareTag | None]:
    """The checks of the protected TLVs: security counter and hardware tag (the signature is
    :func:`verify_parsed`'s job).  Returns ``(security counter, hardware tag)``, each ``None`` when absent."""
    counter_tlv = _single(image.find(TlvType.SEC_CNT, protected=True), "security counter")
    counter: int | None = None
    if counter_tlv is not None:
        if len(counter_tlv.value) != 4:
            raise BadTlvError(f"bad-tlv: the security counter TLV has {len(counter_tlv.value)} bytes, not 4")
        counter = struct.unpack("<I", counter_tlv.value)[0]
    if min_security_counter is not None:
        if counter is None:
            raise MissingTlvError("missing-tlv: the image has no security counter; rollback protection needs one")
        if counter < min_security_counter:
            raise SecurityCounterError(
                f"security-counter: the image's security counter {counter} is below the device's"
                f" {min_security_counter} (a rollback to older firmware)",
            )

    tag_tlv = _single(image.find(HW_TAG_TLV, protected=True), "hardware tag")
    tag = HardwareTag.unpack(tag_tlv.value) if tag_tlv is not None else None
    if chip_id is not None:
        if tag is None:
            raise MissingTlvError(
                f"missing-tlv: the image has no hardware tag (TLV 0x{HW_TAG_TLV:04x}); the device needs"
                f" chip 0x{chip_id:03x}",
                hint="sign with --chip (or --custom-tlv 0xa0 ...)",
            )
        if tag.chip_id != chip_id:
            raise WrongChipError(
                f"wrong-chip: the image is built for chip 0x{tag.chip_id:03x}, the device is 0x{chip_id:03x}"
            )
    if board_id is not None and tag is not None and tag.board_id not in (ANY_BOARD, board_id):
        raise WrongBoardError(
            f"wrong-board: the image is built for board {tag.board_id}, the device is board {board_id}"
        )
    return counter, tag


def verify_parsed(
    image: Image,
    *,
    keys: Sequence[TrustedKey],
    chip_id: int | None = None,
    board_id: int | None = None,
    min_security_counter: int | None = None,
    decrypt_key: EncryptionPrivateKey | None = None,
    decrypted: bool = False,
    _decrypted: bool = False,
) -> VerifiedImage:
    """:func:`verify_image` for an already parsed :class:`Image`.  ``decrypted`` says the payload of an
    image flagged encrypted is in the clear already (the primary slot of a bootloader that decrypted it)."""
    _decrypted = _decrypted or decrypted
    if is_encrypted(image) and not _decrypted and decrypt_key is not None:
        image = decrypted_image(image, decrypt_key)
        _decrypted = True
    check_digest(image, decrypted=_decrypted)
    trusted = _trusted_hashes(keys, image.digest_name)
    if not keys:
        raise UnknownKeyError("unknown-key: no trusted key given, so no signature can be accepted")

    # Walk the unprotected TLVs as bootutil does: a KEYHASH/PUBKEY names the key for the signature after it.
    current_hash: bytes | None = None
    current_key: PublicKey | None = None
    failure: ImageError | None = None
    signed_by: tuple[bytes, PublicKey, Tlv] | None = None
    for tlv in image.tlvs:
        if tlv.type == TlvType.KEYHASH:
            current_hash, current_key = tlv.value, trusted.get(tlv.value)
        elif tlv.type == TlvType.PUBKEY:
            current_hash = None
            try:
                carried = public_key_from_der(tlv.value)
            except (KeyFileError, WrongKeyTypeError) as err:
                failure = failure or err
                continue
            current_hash = key_hash(carried, image.digest_name)
            current_key = carried if current_hash in trusted else None
        elif tlv.type in _SIG_KEY_TYPES:
            if current_hash is None:
                failure = failure or MissingTlvError(
                    "missing-tlv: the signature is not preceded by a KEYHASH or PUBKEY TLV"
                )
                continue
            if current_key is None:
                known_hash_only = current_hash in trusted
                failure = failure or UnknownKeyError(
                    f"unknown-key: the image was signed by key {current_hash.hex()[:16]}..., which is not"
                    " among the trusted keys"
                    + (" (only its hash is known; the image must carry the full key)" if known_hash_only else ""),
                    hint="check -k: the image was signed with another key",
                )
                continue
            kind = key_type(current_key)
            if kind not in _SIG_KEY_TYPES[tlv.type]:
                failure = failure or WrongKeyTypeError(
                    f"wrong-key-type: a {tlv.name} signature cannot be checked with the"
                    f" {kind} key {current_hash.hex()[:16]}..."
                )
                continue
            if image.digest_name not in _KEY_DIGESTS[kind]:
                failure = failure or WrongKeyTypeError(
                    f"wrong-key-type: a {kind} key does not sign {image.digest_name.upper()} images"
                    f" (MCUboot pairs it with {', '.join(d.upper() for d in _KEY_DIGESTS[kind])})"
                )
                continue
            if _is_pure(image) and kind != "ed25519":
                failure = failure or WrongKeyTypeError(
                    f"wrong-key-type: a pure (SIG_PURE) signature is Ed25519 only, not {kind}"
                )
                continue
            try:
                _verify_signature(current_key, tlv, image)
            except BadSignatureError as err:
                failure = failure or err
                continue
            signed_by = (current_hash, current_key, tlv)
            break
    if signed_by is None:
        if failure is not None:
            raise failure
        raise MissingTlvError("missing-tlv: the image is not signed (no signature TLV)")
    signer_hash, signer_key, sig_tlv = signed_by

    counter, tag = check_claims(image, chip_id=chip_id, board_id=board_id, min_security_counter=min_security_counter)
    plain: Image | None = None
    if is_compressed(image):
        # MCUboot checks the image twice: as stored (compressed) and, once decompressed, as it will run.
        plain = decompressed_image(image)
        try:
            verify_parsed(plain, keys=keys, _decrypted=_decrypted)
        except DigestMismatchError as err:
            raise DigestMismatchError(
                f"digest-mismatch: the decompressed image does not match DECOMP_SHA ({err})"
            ) from err
        except BadSignatureError as err:
            raise BadSignatureError("bad-signature: DECOMP_SIGNATURE does not match the decompressed image") from err
    return VerifiedImage(
        image=image,
        key_hash=signer_hash,
        key_type=key_type(signer_key),
        signature_type=sig_tlv.name,
        security_counter=counter,
        hw_tag=tag,
        decompressed=plain,
    )


def verify_image(
    data: bytes,
    *,
    keys: Sequence[TrustedKey],
    chip_id: int | None = None,
    board_id: int | None = None,
    min_security_counter: int | None = None,
    decrypt_key: EncryptionPrivateKey | None = None,
) -> VerifiedImage:
    """Parse and fully check an image, as MCUboot would before booting it.

    ``keys`` are the trusted public keys (or their 32-byte key hashes).  ``chip_id`` (DEV_ID) requires the
    hardware tag to name that chip; ``board_id`` rejects a tag naming another board (board 0 fits all);
    ``min_security_counter`` requires a security counter at least that high.  An encrypted image is checked
    after decrypting it with ``decrypt_key`` (the device's X25519, P-256 or RSA-2048 private key); the
    result's ``image`` is then the decrypted image.  Returns the
    :class:`VerifiedImage`; raises the typed :class:`ImageError` of the first failing check.
    """
    return verify_parsed(
        parse_image(data),
        keys=keys,
        chip_id=chip_id,
        board_id=board_id,
        min_security_counter=min_security_counter,
        decrypt_key=decrypt_key,
    )
