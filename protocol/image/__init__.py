"""MCUboot-compatible firmware images: parse, build, sign and verify, plus .bin/.hex/.srec/.elf loaders.

A sans-I/O library: bytes in, bytes or typed results out (only :func:`load_file` reads a file).  Images are
byte-compatible with ``imgtool`` 2.x, so users sign with the tool they know.  Every failed check raises a
subclass of :class:`protocol.errors.ImageError` with a stable ``reason`` slug (:mod:`.errors`).

The emulated bootloader needs three calls::

    image = parse_image(data)                      # structure only
    verified = verify_image(data, keys=[pub], chip_id=0x413, board_id=None, min_security_counter=2)
    key_hash(pub)                                  # what KEYHASH holds and MCUboot's key table compares
"""

from __future__ import annotations

from .errors import (
    BadMagicError,
    BadSignatureError,
    BadTlvError,
    DigestMismatchError,
    ImageError,
    ImageTooLargeError,
    InputFormatError,
    KeyFileError,
    MissingTlvError,
    OverlapError,
    SecurityCounterError,
    SparseInputError,
    TlvOverrunError,
    TruncatedError,
    UnknownKeyError,
    UnsupportedError,
    WrongBoardError,
    WrongChipError,
    WrongKeyTypeError,
    reason_of,
)
from .hwtag import ANY_BOARD, CHIP_IDS, HW_TAG_TLV, HardwareTag, chip_id_from_name
from .info import describe_image, format_image
from .keys import (
    KEY_TYPES,
    KeyType,
    PrivateKey,
    PublicKey,
    generate_key,
    key_hash,
    key_type,
    load_key,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key,
    public_key_der,
    public_key_to_pem,
)
from .loaders import (
    INPUT_FORMATS,
    Firmware,
    guess_format,
    load_bin,
    load_elf,
    load_file,
    load_firmware,
    load_hex,
    load_srec,
)
from .mcuboot import (
    IMAGE_HEADER_SIZE,
    IMAGE_MAGIC,
    TLV_NAMES,
    Image,
    ImageHeader,
    ImageVersion,
    Tlv,
    TlvType,
    Trailer,
    parse_image,
    trailer_size,
)
from .sign import parse_custom_tlv, sign_image
from .verify import TrustedKey, VerifiedImage, check_digest, verify_image, verify_parsed
from .writers import padded_image_pieces, to_intel_hex

__all__ = [
    "ANY_BOARD",
    "CHIP_IDS",
    "HW_TAG_TLV",
    "IMAGE_HEADER_SIZE",
    "IMAGE_MAGIC",
    "INPUT_FORMATS",
    "KEY_TYPES",
    "TLV_NAMES",
    "BadMagicError",
    "BadSignatureError",
    "BadTlvError",
    "DigestMismatchError",
    "Firmware",
    "HardwareTag",
    "Image",
    "ImageError",
    "ImageHeader",
    "ImageTooLargeError",
    "ImageVersion",
    "InputFormatError",
    "KeyFileError",
    "KeyType",
    "MissingTlvError",
    "OverlapError",
    "PrivateKey",
    "PublicKey",
    "SecurityCounterError",
    "SparseInputError",
    "Tlv",
    "TlvOverrunError",
    "TlvType",
    "Trailer",
    "TruncatedError",
    "TrustedKey",
    "UnknownKeyError",
    "UnsupportedError",
    "VerifiedImage",
    "WrongBoardError",
    "WrongChipError",
    "WrongKeyTypeError",
    "check_digest",
    "chip_id_from_name",
    "describe_image",
    "format_image",
    "generate_key",
    "guess_format",
    "key_hash",
    "key_type",
    "load_bin",
    "load_elf",
    "load_file",
    "load_firmware",
    "load_hex",
    "load_key",
    "load_private_key",
    "load_public_key",
    "load_srec",
    "padded_image_pieces",
    "parse_custom_tlv",
    "parse_image",
    "private_key_to_pem",
    "public_key",
    "public_key_der",
    "public_key_to_pem",
    "reason_of",
    "sign_image",
    "to_intel_hex",
    "trailer_size",
    "verify_image",
    "verify_parsed",
]
