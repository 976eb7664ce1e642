"""Build and sign MCUboot images the way ``imgtool sign`` does, byte for byte.

Ed25519 signatures are deterministic, so for the same key, input and options :func:`sign_image` returns
exactly what ``imgtool sign`` writes.  ECDSA signatures are randomised; they differ from imgtool's but
verify the same way.

Layout decisions copied from imgtool 2.x:

* ``pad_header`` prepends ``header_size`` erased bytes; without it the input must start with
  ``header_size`` zero bytes (room for the header the linker left).
* protected TLVs, in this order: SEC_CNT, then custom TLVs in the order given.
* unprotected TLVs: SHA256, then KEYHASH (or PUBKEY with ``public_key_format="full"``), then the signature.
* ``pad`` fills with the erased value up to ``slot_size`` and writes the boot magic at the very end;
  ``confirm`` (which implies ``pad``) also sets ``image_ok``; ``test`` leaves it erased.
"""

from __future__ import annotations

import hashlib
import logging
import lzma
import re
import struct
from collections.abc import Sequence
from typing import Any, Literal

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from .encryption import (
    EncryptionPrivateKey,
    EncryptionPublicKey,
    aes_ctr,
    encryption_flag,
    new_image_key,
    wrap_image_key,
)
from .errors import ImageError, ImageTooLargeError
from .hwtag import HW_TAG_TLV, HardwareTag
from .keys import PrivateKey, key_hash, key_type, public_key_der, signature_tlv_type
from .mcuboot import (
    DEFAULT_MAX_ALIGN,
    DEFAULT_MAX_SECTORS,
    IMAGE_F_COMPRESSED_ARM_THUMB,
    IMAGE_F_COMPRESSED_LZMA2,
    IMAGE_F_NON_BOOTABLE,
    IMAGE_F_RAM_LOAD,
    IMAGE_F_ROM_FIXED,
    IMAGE_HEADER_SIZE,
    IMAGE_OK_SET,
    TLV_VENDOR_MAX,
    TLV_VENDOR_MIN,
    VALID_ALIGNS,
    VALID_MAX_ALIGNS,
    ImageHeader,
    ImageVersion,
    Tlv,
    TlvType,
    align_up,
    assemble_tlv_area,
    boot_magic,
    parse_image,
    trailer_size,
)

__all__ = [
    "COMPRESSIONS",
    "ECDSA_PADDED_SIG_LEN",
    "PublicKeyFormat",
    "SecurityCounter",
    "VectorToSign",
    "allowed_digests",
    "lzma2_header",
    "pack_dependency",
    "parse_custom_tlv",
    "parse_dependencies",
    "select_digest",
    "sign_image",
]

log = logging.getLogger(__name__)
_SIGNATURE_TLV_TYPES = (TlvType.ED25519, TlvType.ECDSA_SIG, TlvType.RSA2048_PSS, TlvType.RSA3072_PSS)

PublicKeyFormat = Literal["hash", "full"]
SecurityCounter = int | Literal["auto"] | None
ECDSA_PADDED_SIG_LEN = 72
_ECDSA_PADDED_SIG_LEN = {"ecdsa-p256": 72, "ecdsa-p384": 103}
RSA_PSS_SALT_LEN = 32  # MCUboot's RSA-PSS: MGF1-SHA256, 32-byte salt, SHA-256 message hash
_DIGEST_TLVS = {"sha256": TlvType.SHA256, "sha384": TlvType.SHA384, "sha512": TlvType.SHA512}
# imgtool 2.5's table of the digests each key type may sign (the first is what "auto" picks).
_ALLOWED_DIGESTS: dict[str, tuple[str, ...]] = {
    "ed25519": ("sha256", "sha512"),
    "ecdsa-p256": ("sha256",),
    "ecdsa-p384": ("sha384",),
    "rsa-2048": ("sha256",),
    "rsa-3072": ("sha256",),
}
_PURE_KEY_TYPES = {"ed25519": "sha512"}
_ERASED_VALUES = (0x00, 0xFF)
_MAX_U32 = 0xFFFFFFFF


def parse_custom_tlv(tag: str, value: str) -> tuple[int, bytes]:
    """imgtool's ``--custom-tlv TAG VALUE``: ``VALUE`` is ``0x``-prefixed hex bytes or a UTF-8 string."""
    try:
        tlv_type = int(tag, 0)
    except ValueError:
        raise ImageError(f"custom TLV tag {tag!r} is not an integer (e.g. 0xa0)") from None
    _check_custom_type(tlv_type)
    if value.startswith("0x"):
        digits = value[2:]
        if len(digits) % 2:
            raise ImageError(f"custom TLV 0x{tlv_type:x} value has an odd number of hex digits")
        try:
            return tlv_type, bytes.fromhex(digits)
        except ValueError:
            raise ImageError(f"custom TLV 0x{tlv_type:x} value {value!r} is not hex") from None
    return tlv_type, value.encode("utf-8")


def _check_custom_type(tlv_type: int) -> None:
    if not TLV_VENDOR_MIN <= tlv_type <= TLV_VENDOR_MAX:
        raise ImageError(
            f"invalid custom TLV type 0x{tlv_type:04x}: allowed 0x{TLV_VENDOR_MIN:04x}..0x{TLV_VENDOR_MAX:04x}"
        )


MAX_SW_TYPE_LENGTH = 12
VectorToSign = Literal["payload", "digest"]
# PSA attestation software-component property ids, in the order imgtool writes them (measurement last:
# the bootloader overwrites it in place).
_SW_TYPE, _SW_MEASUREMENT_VALUE, _SW_VERSION, _SW_SIGNER_ID, _SW_MEASUREMENT_DESCRIPTION = 1, 2, 4, 5, 6


def pack_dependency(image_id: int, version: ImageVersion | str) -> bytes:
    """A DEPENDENCY TLV value: ``u8 image id, 3 pad bytes, u8 major, u8 minor, u16 revision, u32 build``."""
    if isinstance(version, str):
        version = ImageVersion.parse(version)
    if not 0 <= image_id <= 0xFF:
        raise ImageError(f"dependency image id {image_id} does not fit a byte (0..255)")
    return struct.pack("<B3xBBHI", image_id, version.major, version.minor, version.revision, version.build)


def parse_dependencies(text: str) -> list[tuple[int, ImageVersion]]:
    """imgtool's ``-d "(1, 1.2.3+4), (2, 0.1)"``."""
    pairs = re.findall(r"\(\s*(\d+)\s*,\s*([0-9.+]+)\s*\)", text)
    leftover = re.sub(r"\(\s*(\d+)\s*,\s*([0-9.+]+)\s*\)", "", text).replace(",", "").strip()
    if not pairs or leftover:
        raise ImageError(
            f'dependencies {text!r} are not in the form "(IMAGE_ID, VERSION), ..."',
            hint='e.g. -d "(1, 1.2.0)" : image 1 must be at least version 1.2.0',
        )
    return [(int(image_id), ImageVersion.parse(version)) for image_id, version in pairs]


def _boot_record(sw_type: str, version: ImageVersion, key: PrivateKey | None, digest_name: str) -> bytes:
    if len(sw_type) > MAX_SW_TYPE_LENGTH:
        raise ImageError(f"boot record type {sw_type!r} is {len(sw_type)} characters; at most 12")
    size = hashlib.new(digest_name).digest_size
    record = {
        _SW_TYPE: sw_type,
        _SW_VERSION: f"{version.major}.{version.minor}.{version.revision}",
        _SW_SIGNER_ID: key_hash(key, digest_name) if key is not None else bytes(32),
        _SW_MEASUREMENT_DESCRIPTION: digest_name.upper(),
        _SW_MEASUREMENT_VALUE: bytes(size),
    }
    return cbor2.dumps(record)


_AES_BLOCK = 16


def _check_key_pairing(key: PrivateKey | None, encrypt_key: EncryptionPublicKey | EncryptionPrivateKey) -> None:
    """imgtool's rule: an ECDSA or RSA signer encrypts for a key of its own kind (Ed25519 signs for any)."""
    if key is None:
        return
    kind = key_type(key)
    enc_rsa = isinstance(encrypt_key, rsa.RSAPublicKey | rsa.RSAPrivateKey)
    enc_p256 = isinstance(encrypt_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
    if (kind == "ecdsa-p256" and not enc_p256) or kind == "ecdsa-p384" or (kind.startswith("rsa") and not enc_rsa):
        raise ImageError(
            f"signing ({kind}) and encryption must use the same type of key",
            hint="an Ed25519 signing key pairs with any encryption key; P-384 images cannot be encrypted",
        )


def allowed_digests(kind: str, *, pure: bool = False) -> tuple[str, ...]:
    """The digests (``"sha256"``...) a key of type ``kind`` may sign, as imgtool allows them."""
    if pure:
        return (_PURE_KEY_TYPES[kind],) if kind in _PURE_KEY_TYPES else ()
    return _ALLOWED_DIGESTS[kind]


def select_digest(key: PrivateKey | None, sha: str = "auto", *, pure: bool = False) -> str:
    """imgtool's ``--sha`` choice (``auto``, ``256``, ``384``, ``512``) for ``key``: the digest name, or
    :class:`ImageError` for a pair imgtool refuses.  Without a key any digest goes; ``pure`` ignores ``sha``."""
    name = sha if sha.startswith("sha") or sha == "auto" else f"sha{sha}"
    if name != "auto" and name not in _DIGEST_TLVS:
        raise ImageError(f"unknown digest {sha!r}: one of auto, 256, 384, 512")
    if key is None:
        if pure:
            raise ImageError("--pure needs a signing key (-k)")
        return "sha256" if name == "auto" else name
    kind = key_type(key)
    allowed = allowed_digests(kind, pure=pure)
    if not allowed:
        raise ImageError(f"--pure is not available for {kind} keys: only Ed25519 signs the image itself")
    if name == "auto" or pure:
        return allowed[0]
    if name not in allowed:
        raise ImageError(
            f"a {kind} key cannot be used with --sha {name[3:]}; allowed: {', '.join(a[3:] for a in allowed)}"
        )
    return name


def _sign(key: PrivateKey, hashed: bytes, digest: bytes, digest_name: str, *, pure: bool, pad_sig: bool) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        # imgtool (and MCUboot) sign the digest with Ed25519, not the image itself -- unless "pure".
        return key.sign(hashed if pure else digest)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(
            digest,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=RSA_PSS_SALT_LEN),
            utils.Prehashed(hashes.SHA256()),
        )
    algorithm = hashes.SHA384() if digest_name == "sha384" else hashes.SHA256()
    signature = key.sign(digest, ec.ECDSA(utils.Prehashed(algorithm)))
    if pad_sig:
        # imgtool pads up to 72/103 bytes; a P-384 DER signature of 104 bytes stays as it is (as in imgtool)
        signature += bytes(max(0, _ECDSA_PADDED_SIG_LEN[key_type(key)] - len(signature)))
    return signature


def sign_image(
    firmware: bytes,
    key: PrivateKey | None,
    *,
    version: ImageVersion | str = "0",
    header_size: int = IMAGE_HEADER_SIZE,
    pad_header: bool = False,
    align: int = 1,
    max_align: int | None = None,
    slot_size: int = 0,
    pad: bool = False,
    confirm: bool = False,
    test: bool = False,
    security_counter: SecurityCounter = None,
    custom_tlvs: Sequence[tuple[int, bytes]] = (),
    hw_tag: HardwareTag | None = None,
    public_key_format: PublicKeyFormat = "hash",
    max_sectors: int = DEFAULT_MAX_SECTORS,
    overwrite_only: bool = False,
    erased_val: int = 0xFF,
    load_addr: int = 0,
    rom_fixed: int | None = None,
    non_bootable: bool = False,
    pad_sig: bool = False,
    sha: str = "auto",
    pure: bool = False,
    dependencies: Sequence[tuple[int, ImageVersion | str]] = (),
    boot_record: str | None = None,
    vector_to_sign: VectorToSign | None = None,
    encrypt_key: EncryptionPublicKey | EncryptionPrivateKey | None = None,
    encrypt_keylen: int = 128,
    clear: bool = False,
    save_enctlv: bool = False,
    hmac_sha: str = "auto",
    compression: str | None = None,
    _extra_protected: Sequence[Tlv] = (),
    _extra_flags: int = 0,
    _dont_encrypt: bool = False,
) -> bytes:
    """The signed image for ``firmware`` (raw bytes of the application, as flat binary).

    ``key=None`` builds an unsigned image (digest TLV only), like ``imgtool sign`` without ``-k``.
    ``sha`` is imgtool's ``--sha`` (``auto``/``256``/``384``/``512``, checked against the key type as imgtool
    does); ``pure`` is ``--pure`` (Ed25519 signs the hashed region itself, with a SIG_PURE TLV).
    ``dependencies`` are ``-d`` pairs ``(image id, minimum version)``, a DEPENDENCY TLV each; ``boot_record``
    is ``--boot-record SW_TYPE`` (a CBOR PSA software-component record, its measurement left zero for the
    bootloader to fill in).  ``vector_to_sign`` (``"payload"`` or ``"digest"``) returns what an external
    signer must sign -- the hashed region or its digest -- instead of the image, padded like an image.
    ``encrypt_key`` is ``-E``: the payload is padded to 16 bytes, hashed and signed in the clear, then
    encrypted with a random AES-``encrypt_keylen`` key wrapped for ``encrypt_key`` (``clear`` keeps the
    payload plain but marks and wraps as if encrypted, as ``imgtool -c``); ``save_enctlv`` sizes the trailer
    for a bootloader that saves the ENC TLV.
    ``hw_tag`` adds the stm32ota hardware-compatibility tag after ``custom_tlvs``.
    ``compression`` is ``--compression lzma2|lzma2armthumb`` (:func:`_compressed_image`).
    Raises :class:`ImageError` for options imgtool would refuse.
    """
    if compression not in (None, "disabled"):
        options = dict(locals())
        return _compressed_image(options)
    if isinstance(version, str):
        version = ImageVersion.parse(version)
    digest_name = select_digest(key, sha, pure=pure)
    if header_size < IMAGE_HEADER_SIZE or header_size > 0xFFFF:
        raise ImageError(f"header size {header_size:#x} must be between {IMAGE_HEADER_SIZE} and 0xffff")
    if align not in VALID_ALIGNS:
        raise ImageError(f"invalid alignment {align}: one of {', '.join(map(str, VALID_ALIGNS))}")
    effective_max_align = max(DEFAULT_MAX_ALIGN, align) if max_align is None else max_align
    if effective_max_align not in VALID_MAX_ALIGNS:
        raise ImageError(f"invalid max alignment {effective_max_align}: one of 8, 16, 32")
    if erased_val not in _ERASED_VALUES:
        raise ImageError("erased value must be 0x00 or 0xff")
    if load_addr and rom_fixed:
        raise ImageError("load address (RAM load) and ROM-fixed address cannot both be set")
    if confirm or test:
        pad = True  # a confirmed image needs a trailer to carry image_ok
    if pad and slot_size <= 0:
        raise ImageError("--pad needs the slot size (-S)")

    if encrypt_key is not None:
        encryption_flag(encrypt_keylen)  # 128 or 256
        _check_key_pairing(key, encrypt_key)
    body = bytes(firmware)
    if pad_header:
        body = bytes([erased_val]) * header_size + body
    elif any(body[:header_size]):
        raise ImageError(
            f"the input does not start with {header_size:#x} zero bytes for the header",
            hint="add --pad-header, or link the application to leave room for the header",
        )
    if len(body) < header_size:
        raise ImageError("the input is shorter than the header it should hold; use --pad-header")
    if encrypt_key is not None and not _dont_encrypt and len(body) % _AES_BLOCK:
        body += bytes(_AES_BLOCK - len(body) % _AES_BLOCK)  # as imgtool: AES-CTR over whole blocks
    image_size = len(body) - header_size
    if image_size > _MAX_U32:
        raise ImageTooLargeError("too-large: the image does not fit the 32-bit size field")

    # Protected TLVs: security counter, then custom TLVs (the hardware tag last).
    protected: list[Tlv] = []
    if security_counter is not None:
        counter = (
            (version.major << 24) + (version.minor << 16) + version.revision
            if security_counter == "auto"
            else security_counter
        )
        if not 0 <= counter <= _MAX_U32:
            raise ImageError(f"security counter {counter} does not fit 32 bits")
        protected.append(Tlv(type=TlvType.SEC_CNT, value=struct.pack("<I", counter), protected=True))
    if boot_record is not None:
        record = _boot_record(boot_record, version, key, digest_name)
        protected.append(Tlv(type=TlvType.BOOT_RECORD, value=record, protected=True))
    for image_id, dep_version in dependencies:
        protected.append(Tlv(type=TlvType.DEPENDENCY, value=pack_dependency(image_id, dep_version), protected=True))
    protected.extend(_extra_protected)
    seen: set[int] = set()
    customs = list(custom_tlvs)
    if hw_tag is not None:
        customs.append((HW_TAG_TLV, hw_tag.pack()))
    for tlv_type, value in customs:
        _check_custom_type(tlv_type)
        if tlv_type in seen:
            raise ImageError(f"custom TLV 0x{tlv_type:x} given twice")
        seen.add(tlv_type)
        protected.append(Tlv(type=tlv_type, value=bytes(value), protected=True))
    protected_area = assemble_tlv_area(protected, protected=True)

    flags = 0
    if load_addr:
        flags |= IMAGE_F_RAM_LOAD
    if rom_fixed:
        flags |= IMAGE_F_ROM_FIXED
    if non_bootable:
        flags |= IMAGE_F_NON_BOOTABLE
    if encrypt_key is not None:
        flags |= encryption_flag(encrypt_keylen)
    flags |= _extra_flags
    header = ImageHeader(
        load_addr=rom_fixed or load_addr,
        header_size=header_size,
        protected_tlv_size=len(protected_area),
        image_size=image_size,
        flags=flags,
        version=version,
    )
    packed = header.pack()
    hashed = packed + body[len(packed) :] + protected_area
    digest = hashlib.new(digest_name, hashed).digest()

    unprotected = [Tlv(type=_DIGEST_TLVS[digest_name], value=digest)]
    if pure:
        unprotected.append(Tlv(type=TlvType.SIG_PURE, value=b"\x01"))
    if vector_to_sign is not None:
        if vector_to_sign not in ("payload", "digest"):
            raise ImageError(f"--vector-to-sign is 'payload' or 'digest', not {vector_to_sign!r}")
        image = hashed if vector_to_sign == "payload" else digest
        key = None  # nothing is signed: the vector goes to an external signer
        unprotected = []
    if key is not None:
        if public_key_format == "hash":
            unprotected.append(Tlv(type=TlvType.KEYHASH, value=key_hash(key, digest_name)))
        elif public_key_format == "full":
            unprotected.append(Tlv(type=TlvType.PUBKEY, value=public_key_der(key)))
        else:
            raise ImageError(f"public key format must be 'hash' or 'full', not {public_key_format!r}")
        signature = _sign(key, hashed, digest, digest_name, pure=pure, pad_sig=pad_sig)
        unprotected.append(Tlv(type=signature_tlv_type(key), value=signature))
    enc_key_len = 0
    if vector_to_sign is None:
        stored = hashed
        if encrypt_key is not None and not _dont_encrypt:
            image_key = new_image_key(encrypt_keylen)
            enc_type, enc_value = wrap_image_key(encrypt_key, image_key, hmac_sha=hmac_sha)
            unprotected.append(Tlv(type=enc_type, value=enc_value))
            enc_key_len = len(enc_value) if save_enctlv else _AES_BLOCK
            if not clear:
                end = header_size + image_size
                stored = hashed[:header_size] + aes_ctr(image_key, hashed[header_size:end]) + hashed[end:]
        image = stored + assemble_tlv_area(unprotected, protected=False)

    if slot_size > 0:
        tsize = trailer_size(
            align=align,
            max_align=effective_max_align,
            max_sectors=max_sectors,
            overwrite_only=overwrite_only,
            enc_key_len=enc_key_len,
        )
        if len(image) + tsize > slot_size:
            raise ImageTooLargeError(
                f"too-large: image size ({len(image):#x}) + trailer ({tsize:#x}) exceeds the slot size {slot_size:#x}"
            )
        if pad:
            image += _trailer_padding(
                slot_size - len(image),
                tsize,
                max_align=effective_max_align,
                erased_val=erased_val,
                confirm=confirm,
                test=test,
                overwrite_only=overwrite_only,
            )
    return image


COMPRESSIONS = ("lzma2", "lzma2armthumb")
# imgtool 2.5's LZMA2 settings (its comp_default_*): preset 9, a 128 KiB dictionary, lc 3, lp 1, pb 2
_LZMA_PRESET, _LZMA_DICT, _LZMA_LC, _LZMA_LP, _LZMA_PB = 9, 128 * 1024, 3, 1, 2


def lzma2_header(dict_size: int = _LZMA_DICT, *, lc: int = _LZMA_LC, lp: int = _LZMA_LP, pb: int = _LZMA_PB) -> bytes:
    """The 2-byte header imgtool puts before the raw LZMA2 stream: the dictionary-size byte (the smallest
    ``(2 | (i & 1)) << (i // 2 + 11)`` that holds ``dict_size``) and the ``lc/lp/pb`` properties byte."""
    index = next(i for i in range(40) if dict_size <= (2 | (i & 1)) << (i // 2 + 11))
    return bytes([index, (pb * 5 + lp) * 9 + lc])


def _compressed_image(options: dict[str, Any]) -> bytes:
    """``imgtool sign --compression``: sign the plain image first (not encrypted, not padded to 16), compress
    the application with LZMA2 (behind the ARM Thumb branch filter for ``lzma2armthumb``) as imgtool does,
    and build a second image around the stream whose protected TLVs carry the plain image's size, digest
    and signature (``DECOMP_SIZE``, ``DECOMP_SHA``, ``DECOMP_SIGNATURE``; ``COMP_DEC_SIZE`` too when
    encrypted) -- byte-identical to imgtool for a deterministic signer.  As imgtool, the second image does
    not carry ``--test`` or ``--non-bootable``; when compressing does not make the image smaller, the plain
    image is returned (imgtool then returns its unencrypted first image; we return the image asked for)."""
    compression = options.pop("compression")
    if compression not in COMPRESSIONS:
        raise ImageError(f"unknown compression {compression!r}: one of disabled, {', '.join(COMPRESSIONS)}")
    if options["vector_to_sign"] is not None:
        raise ImageError("--vector-to-sign cannot be combined with --compression")
    firmware = bytes(options.pop("firmware"))
    header_size = int(options["header_size"])
    plain = parse_image(
        sign_image(firmware, **{**options, "pad": False, "confirm": False, "test": False, "_dont_encrypt": True})
    )
    data = firmware if options["pad_header"] else firmware[header_size:]
    filters: list[dict[str, int]] = [
        {"id": lzma.FILTER_LZMA2, "preset": _LZMA_PRESET, "dict_size": _LZMA_DICT, "lp": _LZMA_LP, "lc": _LZMA_LC}
    ]
    flags = IMAGE_F_COMPRESSED_LZMA2
    if compression == "lzma2armthumb":
        filters.insert(0, {"id": lzma.FILTER_ARMTHUMB})
        flags |= IMAGE_F_COMPRESSED_ARM_THUMB
    stream = lzma.compress(data, format=lzma.FORMAT_RAW, filters=filters)
    extra = [
        Tlv(type=TlvType.DECOMP_SIZE, value=struct.pack("<I", plain.header.image_size), protected=True),
        Tlv(type=TlvType.DECOMP_SHA, value=plain.digest, protected=True),
    ]
    signature = next((t for t in plain.tlvs if t.type in _SIGNATURE_TLV_TYPES), None)
    if signature is not None:
        extra.append(Tlv(type=TlvType.DECOMP_SIGNATURE, value=signature.value, protected=True))
    if len(stream) + sum(len(t.value) for t in extra) >= len(data):
        log.info("compressing does not make the image smaller: the image is not compressed")
        return sign_image(firmware, **options)
    payload = lzma2_header() + stream
    if options["encrypt_key"] is not None:
        extra.append(Tlv(type=TlvType.COMP_DEC_SIZE, value=struct.pack("<I", len(payload)), protected=True))
    if not options["pad_header"]:
        payload = bytes(header_size) + payload  # imgtool fills the header room with zeros here
    return sign_image(
        payload, **{**options, "test": False, "non_bootable": False, "_extra_protected": extra, "_extra_flags": flags}
    )


def _trailer_padding(
    padding: int,
    tsize: int,
    *,
    max_align: int,
    erased_val: int,
    confirm: bool,
    test: bool,
    overwrite_only: bool,
) -> bytes:
    """Erased bytes up to the end of the slot, the boot magic last, ``image_ok`` set when confirmed."""
    magic = boot_magic(max_align)
    out = bytearray([erased_val]) * (padding - tsize)
    out += bytearray([erased_val]) * (tsize - len(magic))
    out += magic
    if confirm and not overwrite_only:
        image_ok_index = -(align_up(len(magic), max_align) + max_align)
        out[image_ok_index] = IMAGE_OK_SET
    return bytes(out)
