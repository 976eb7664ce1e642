"""LZMA2-compressed images as ``imgtool sign --compression lzma2|lzma2armthumb`` makes them.

imgtool first builds and signs the plain image, then compresses its payload (raw LZMA2, optionally behind the
ARM Thumb branch filter) and builds a second image around it: the payload is a 2-byte LZMA2 header
(dictionary-size byte, ``lc/lp/pb`` properties byte) and the raw stream, the header carries
``COMPRESSED_LZMA2`` (and ``COMPRESSED_ARM_THUMB``), and the protected TLVs gain ``DECOMP_SIZE``,
``DECOMP_SHA`` and ``DECOMP_SIGNATURE`` -- the size, digest and signature of the plain image.

:func:`decompressed_image` rebuilds that plain signed image from a compressed one, so it is checked with the
very same code as any other image (MCUboot checks it after decompressing, before it runs).  Decompression
is the standard library's ``lzma`` (the library imgtool itself uses); it stops at ``DECOMP_SIZE`` bytes, so
a hostile stream cannot inflate without bound.
"""

from __future__ import annotations

import lzma
import struct

from .errors import BadTlvError, MissingTlvError, UnsupportedError
from .mcuboot import (
    IMAGE_F_COMPRESSED_ARM_THUMB,
    IMAGE_F_COMPRESSED_LZMA1,
    IMAGE_F_COMPRESSED_LZMA2,
    IMAGE_HEADER_SIZE,
    MAX_IMAGE_SIZE,
    Image,
    ImageHeader,
    Tlv,
    TlvType,
    assemble_tlv_area,
    parse_image,
)

__all__ = ["COMPRESSION_TLVS", "compression_name", "decompress_payload", "decompressed_image", "is_compressed"]

COMPRESSION_TLVS = frozenset({TlvType.DECOMP_SIZE, TlvType.DECOMP_SHA, TlvType.DECOMP_SIGNATURE, TlvType.COMP_DEC_SIZE})
_COMPRESSION_FLAGS = IMAGE_F_COMPRESSED_LZMA1 | IMAGE_F_COMPRESSED_LZMA2 | IMAGE_F_COMPRESSED_ARM_THUMB
_LZMA2_HEADER_SIZE = 2
_MAX_DICT_BYTE = 40
_MAX_PROPS = (4 * 5 + 4) * 9 + 8  # pb <= 4, lp <= 4, lc <= 8
_SIGNATURE_TLVS = (TlvType.ED25519, TlvType.ECDSA_SIG, TlvType.RSA2048_PSS, TlvType.RSA3072_PSS)


def is_compressed(image: Image) -> bool:
    return bool(image.header.flags & _COMPRESSION_FLAGS)


def compression_name(image: Image) -> str | None:
    """``"lzma2"``, ``"lzma2armthumb"`` (imgtool's ``--compression`` names), ``"lzma1"`` or ``None``."""
    flags = image.header.flags
    if flags & IMAGE_F_COMPRESSED_LZMA2:
        return "lzma2armthumb" if flags & IMAGE_F_COMPRESSED_ARM_THUMB else "lzma2"
    if flags & IMAGE_F_COMPRESSED_LZMA1:
        return "lzma1"
    return None


def _one(image: Image, tlv_type: int, what: str) -> bytes:
    found = image.find(tlv_type, protected=True)
    if not found:
        raise MissingTlvError(f"missing-tlv: the compressed image has no protected {what} TLV")
    if len(found) > 1:
        raise BadTlvError(f"bad-tlv: the compressed image carries {len(found)} {what} TLVs")
    return found[0].value


def decompressed_size(image: Image) -> int:
    value = _one(image, TlvType.DECOMP_SIZE, "DECOMP_SIZE")
    if len(value) != 4:
        raise BadTlvError(f"bad-tlv: the DECOMP_SIZE TLV has {len(value)} bytes, not 4")
    size: int = struct.unpack("<I", value)[0]
    return size


def decompress_payload(image: Image) -> bytes:
    """The plain payload of a compressed image (exactly ``DECOMP_SIZE`` bytes) or a typed error."""
    name = compression_name(image)
    if name is None:
        raise UnsupportedError("unsupported: the image is not compressed")
    if name == "lzma1":
        raise UnsupportedError("unsupported: LZMA1-compressed images are not supported (imgtool makes LZMA2)")
    size = decompressed_size(image)
    if size > MAX_IMAGE_SIZE:
        raise BadTlvError(f"bad-tlv: DECOMP_SIZE {size} is beyond any slot")
    payload = image.payload
    if len(payload) < _LZMA2_HEADER_SIZE or payload[0] > _MAX_DICT_BYTE or payload[1] > _MAX_PROPS:
        raise BadTlvError("bad-tlv: the compressed payload does not start with an LZMA2 header")
    dict_size = (2 | (payload[0] & 1)) << (payload[0] // 2 + 11)
    filters: list[dict[str, int]] = [{"id": lzma.FILTER_LZMA2, "dict_size": dict_size}]
    if name == "lzma2armthumb":
        filters.insert(0, {"id": lzma.FILTER_ARMTHUMB})
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)
    try:
        plain = decompressor.decompress(payload[_LZMA2_HEADER_SIZE:], max_length=size + 1)
    except lzma.LZMAError as err:
        raise BadTlvError(f"bad-tlv: the compressed payload does not decompress: {err}") from err
    if len(plain) != size:
        raise BadTlvError(f"bad-tlv: the payload decompresses to {len(plain)}+ bytes, DECOMP_SIZE says {size}")
    return plain


def decompressed_image(image: Image) -> Image:
    """The plain signed image imgtool built before compressing: the header without the compression flags
    and with the plain size, the protected TLVs without the compression TLVs, the plain payload, and an
    unprotected area of DECOMP_SHA, the key TLV and DECOMP_SIGNATURE."""
    plain = decompress_payload(image)
    digest = _one(image, TlvType.DECOMP_SHA, "DECOMP_SHA")
    protected = [t for t in image.protected_tlvs if t.type not in COMPRESSION_TLVS]
    protected_area = assemble_tlv_area(protected, protected=True) if protected else b""
    h = image.header
    header = ImageHeader(
        load_addr=h.load_addr,
        header_size=h.header_size,
        protected_tlv_size=len(protected_area),
        image_size=len(plain),
        flags=h.flags & ~_COMPRESSION_FLAGS,
        version=h.version,
    )
    digest_type = {32: TlvType.SHA256, 48: TlvType.SHA384, 64: TlvType.SHA512}.get(len(digest))
    if digest_type is None:
        raise BadTlvError(f"bad-tlv: DECOMP_SHA has {len(digest)} bytes, not a SHA-256/384/512 digest")
    unprotected = [Tlv(type=digest_type, value=digest)]
    unprotected += [t for t in image.tlvs if t.type in (TlvType.KEYHASH, TlvType.PUBKEY, TlvType.SIG_PURE)]
    signature = image.find(TlvType.DECOMP_SIGNATURE, protected=True)
    outer = [t for t in image.tlvs if t.type in _SIGNATURE_TLVS]
    if signature and outer:
        unprotected.append(Tlv(type=outer[0].type, value=_one(image, TlvType.DECOMP_SIGNATURE, "DECOMP_SIGNATURE")))
    header_region = image.hashed[IMAGE_HEADER_SIZE : h.header_size]
    data = header.pack() + header_region + plain + protected_area + assemble_tlv_area(unprotected, protected=False)
    return parse_image(data)
