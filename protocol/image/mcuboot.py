"""MCUboot's image format: the 32-byte header, the protected and unprotected TLV areas, the trailer.

Byte layout (little endian, as imgtool writes it for Cortex-M)::

    header (header_size bytes, the first 32 meaningful, the rest 0x00 or the erased value)
      u32 magic 0x96f3b83d | u32 load_addr | u16 hdr_size | u16 protected_tlv_size | u32 img_size
      u32 flags | u8 major | u8 minor | u16 revision | u32 build | u32 pad
    payload (img_size bytes: the application, its vector table first)
    protected TLV area (only when protected_tlv_size != 0; covered by the digest and the signature)
      u16 magic 0x6908 | u16 tlv_tot (= protected_tlv_size, info included) | records
    unprotected TLV area
      u16 magic 0x6907 | u16 tlv_tot (info included) | records: SHA256, KEYHASH or PUBKEY, signature
    [padding with the erased value up to the slot size, trailer at the end of the slot (``--pad``)]

Each TLV record is ``u16 type | u16 len | value``.  The SHA-256 digest covers header, payload and the
protected TLV area.  This module only reads and assembles bytes: no keys, no files.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .errors import (
    BadMagicError,
    BadTlvError,
    ImageError,
    ImageTooLargeError,
    TlvOverrunError,
    TruncatedError,
)

__all__ = [
    "BOOT_MAGIC",
    "BOOT_MAGIC_ALIGNED_TAIL",
    "DEFAULT_MAX_ALIGN",
    "DEFAULT_MAX_SECTORS",
    "IMAGE_F_NON_BOOTABLE",
    "IMAGE_F_RAM_LOAD",
    "IMAGE_HEADER_SIZE",
    "IMAGE_MAGIC",
    "MAX_IMAGE_SIZE",
    "TLV_INFO_MAGIC",
    "TLV_INFO_SIZE",
    "TLV_NAMES",
    "TLV_PROT_INFO_MAGIC",
    "TLV_VENDOR_MAX",
    "TLV_VENDOR_MIN",
    "Image",
    "ImageHeader",
    "ImageVersion",
    "Tlv",
    "TlvType",
    "Trailer",
    "align_up",
    "assemble_tlv_area",
    "boot_magic",
    "parse_image",
    "trailer_size",
]

IMAGE_MAGIC = 0x96F3B83D
IMAGE_HEADER_SIZE = 32
_HEADER_FORMAT = "<IIHHIIBBHII"
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
TLV_INFO_SIZE = 4
TLV_RECORD_HEADER_SIZE = 4
TLV_VENDOR_MIN = 0x00A0
TLV_VENDOR_MAX = 0xFFFE

# No STM32 has more than 16 MiB of flash: a header that declares more is corrupt, not big.
MAX_IMAGE_SIZE = 16 * 1024 * 1024

# Image header flags.
IMAGE_F_PIC = 0x0000001
IMAGE_F_ENCRYPTED_AES128 = 0x0000004
IMAGE_F_ENCRYPTED_AES256 = 0x0000008
IMAGE_F_NON_BOOTABLE = 0x0000010
IMAGE_F_RAM_LOAD = 0x0000020
IMAGE_F_ROM_FIXED = 0x0000100
IMAGE_F_COMPRESSED_LZMA1 = 0x0000200
IMAGE_F_COMPRESSED_LZMA2 = 0x0000400
IMAGE_F_COMPRESSED_ARM_THUMB = 0x0000800
FLAG_NAMES = {
    IMAGE_F_PIC: "PIC",
    IMAGE_F_ENCRYPTED_AES128: "ENCRYPTED_AES128",
    IMAGE_F_ENCRYPTED_AES256: "ENCRYPTED_AES256",
    IMAGE_F_NON_BOOTABLE: "NON_BOOTABLE",
    IMAGE_F_RAM_LOAD: "RAM_LOAD",
    IMAGE_F_ROM_FIXED: "ROM_FIXED",
    IMAGE_F_COMPRESSED_LZMA1: "COMPRESSED_LZMA1",
    IMAGE_F_COMPRESSED_LZMA2: "COMPRESSED_LZMA2",
    IMAGE_F_COMPRESSED_ARM_THUMB: "COMPRESSED_ARM_THUMB",
}

# Trailer (written by ``--pad``): swap status, swap_size/swap_info/copy_done/image_ok, boot magic.
DEFAULT_MAX_SECTORS = 128
DEFAULT_MAX_ALIGN = 8
BOOT_MAGIC_SIZE = 16
BOOT_MAGIC = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
BOOT_MAGIC_ALIGNED_TAIL = bytes.fromhex("2de15d29410b8d77679c110f1f8a")
VALID_ALIGNS = (1, 2, 4, 8, 16, 32)
VALID_MAX_ALIGNS = (8, 16, 32)
IMAGE_OK_SET = 0x01


class TlvType:
    """TLV type numbers (``bootutil/image.h``)."""

    KEYHASH = 0x01
    PUBKEY = 0x02
    SHA256 = 0x10
    SHA384 = 0x11
    SHA512 = 0x12
    RSA2048_PSS = 0x20
    ECDSA_SIG = 0x22
    RSA3072_PSS = 0x23
    ED25519 = 0x24
    SIG_PURE = 0x25
    ENC_RSA2048 = 0x30
    ENC_KW = 0x31
    ENC_EC256 = 0x32
    ENC_X25519 = 0x33
    ENC_X25519_SHA512 = 0x34
    DEPENDENCY = 0x40
    SEC_CNT = 0x50
    BOOT_RECORD = 0x60
    DECOMP_SIZE = 0x70
    DECOMP_SHA = 0x71
    DECOMP_SIGNATURE = 0x72
    COMP_DEC_SIZE = 0x73
    UUID_VID = 0x74
    UUID_CID = 0x75
    HW_TAG = 0x00A0  # stm32ota: hardware-compatibility tag (a vendor/custom TLV)


TLV_NAMES: dict[int, str] = {
    TlvType.KEYHASH: "KEYHASH",
    TlvType.PUBKEY: "PUBKEY",
    TlvType.SHA256: "SHA256",
    TlvType.SHA384: "SHA384",
    TlvType.SHA512: "SHA512",
    TlvType.RSA2048_PSS: "RSA2048",
    TlvType.ECDSA_SIG: "ECDSASIG",
    TlvType.RSA3072_PSS: "RSA3072",
    TlvType.ED25519: "ED25519",
    TlvType.SIG_PURE: "SIG_PURE",
    TlvType.ENC_RSA2048: "ENCRSA2048",
    TlvType.ENC_KW: "ENCKW",
    TlvType.ENC_EC256: "ENCEC256",
    TlvType.ENC_X25519: "ENCX25519",
    TlvType.ENC_X25519_SHA512: "ENCX25519_SHA512",
    TlvType.DEPENDENCY: "DEPENDENCY",
    TlvType.SEC_CNT: "SEC_CNT",
    TlvType.BOOT_RECORD: "BOOT_RECORD",
    TlvType.DECOMP_SIZE: "DECOMP_SIZE",
    TlvType.DECOMP_SHA: "DECOMP_SHA",
    TlvType.DECOMP_SIGNATURE: "DECOMP_SIGNATURE",
    TlvType.COMP_DEC_SIZE: "COMP_DEC_SIZE",
    TlvType.UUID_VID: "UUID_VID",
    TlvType.UUID_CID: "UUID_CID",
    TlvType.HW_TAG: "STM32OTA_HW_TAG",
}

_VERSION_RE = re.compile(r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\+(0|[1-9]\d*))?)?)?$")


def align_up(value: int, align: int) -> int:
    """``value`` rounded up to a multiple of the power of two ``align``."""
    if align <= 0 or align & (align - 1):
        raise ValueError(f"alignment must be a power of two, not {align}")
    return (value + align - 1) & ~(align - 1)


@dataclass(frozen=True, kw_only=True, order=True)
class ImageVersion:
    """``major.minor.revision+build`` as the header stores it (u8, u8, u16, u32)."""

    major: int = 0
    minor: int = 0
    revision: int = 0
    build: int = 0

    def __post_init__(self) -> None:
        limits = (("major", 0xFF), ("minor", 0xFF), ("revision", 0xFFFF), ("build", 0xFFFFFFFF))
        for name, limit in limits:
            value = getattr(self, name)
            if not 0 <= value <= limit:
                raise ImageError(f"version {name} {value} is out of range 0..{limit}")

    @classmethod
    def parse(cls, text: str) -> ImageVersion:
        """Parse imgtool's ``maj[.min[.rev[+build]]]``."""
        match = _VERSION_RE.match(text.strip())
        if match is None:
            raise ImageError(f"invalid version {text!r}: expected maj.min.rev+build with later parts optional")
        major, minor, revision, build = (int(g) if g else 0 for g in match.groups())
        return cls(major=major, minor=minor, revision=revision, build=build)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}+{self.build}"


@dataclass(frozen=True, kw_only=True)
class ImageHeader:
    """The 32 meaningful bytes at the start of an image."""

    magic: int = IMAGE_MAGIC
    load_addr: int = 0
    header_size: int = IMAGE_HEADER_SIZE
    protected_tlv_size: int = 0
    image_size: int = 0
    flags: int = 0
    version: ImageVersion = field(default_factory=ImageVersion)

    def pack(self) -> bytes:
        v = self.version
        return struct.pack(
            _HEADER_FORMAT,
            self.magic,
            self.load_addr,
            self.header_size,
            self.protected_tlv_size,
            self.image_size,
            self.flags,
            v.major,
            v.minor,
            v.revision,
            v.build,
            0,
        )

    @classmethod
    def unpack(cls, data: bytes) -> ImageHeader:
        """Decode the first 32 bytes of ``data`` (no validation beyond length)."""
        if len(data) < IMAGE_HEADER_SIZE:
            raise TruncatedError(f"truncated: {len(data)} bytes, an image header needs {IMAGE_HEADER_SIZE}")
        magic, load, hdr, ptlv, size, flags, major, minor, rev, build, _pad = struct.unpack_from(_HEADER_FORMAT, data)
        version = ImageVersion(major=major, minor=minor, revision=rev, build=build)
        return cls(
            magic=magic,
            load_addr=load,
            header_size=hdr,
            protected_tlv_size=ptlv,
            image_size=size,
            flags=flags,
            version=version,
        )

    @property
    def flag_names(self) -> list[str]:
        return [name for bit, name in FLAG_NAMES.items() if self.flags & bit]


@dataclass(frozen=True, kw_only=True)
class Tlv:
    """One TLV record; ``offset`` is where its value starts in the image."""

    type: int
    value: bytes
    protected: bool = False
    offset: int = 0

    @property
    def name(self) -> str:
        if self.type in TLV_NAMES:
            return TLV_NAMES[self.type]
        if TLV_VENDOR_MIN <= self.type <= TLV_VENDOR_MAX:
            return f"CUSTOM_0x{self.type:04x}"
        return f"UNKNOWN_0x{self.type:04x}"

    def pack(self) -> bytes:
        return struct.pack("<HH", self.type, len(self.value)) + self.value


@dataclass(frozen=True, kw_only=True)
class Trailer:
    """What ``--pad``/``--confirm`` wrote at the end of the slot (``None`` fields: erased or absent)."""

    max_align: int
    magic: bytes
    image_ok: int
    copy_done: int
    swap_info: int
    swap_size: int

    @property
    def confirmed(self) -> bool:
        return self.image_ok == IMAGE_OK_SET


@dataclass(frozen=True, kw_only=True)
class Image:
    """A parsed MCUboot image.  ``digest`` is *computed* here; ``stored_digest`` is what the image claims."""

    header: ImageHeader
    payload: bytes
    protected_tlvs: tuple[Tlv, ...]
    tlvs: tuple[Tlv, ...]
    hashed: bytes  # header region + payload + protected TLV area: what SHA256 covers, ECDSA signs
    digest: bytes
    end: int  # offset just after the unprotected TLV area
    total_size: int  # length of the data given to parse_image (includes padding and trailer)
    trailer: Trailer | None = None
    digest_name: str = "sha256"  # the hash the image's SHA256/SHA384/SHA512 TLV names (SHA-256 when none)

    @property
    def digest_tlv_type(self) -> int:
        return _DIGEST_TLVS[self.digest_name]

    @property
    def version(self) -> ImageVersion:
        return self.header.version

    @property
    def all_tlvs(self) -> tuple[Tlv, ...]:
        return self.protected_tlvs + self.tlvs

    def find(self, tlv_type: int, *, protected: bool | None = None) -> list[Tlv]:
        """The TLVs of ``tlv_type`` (only the protected or unprotected ones if ``protected`` is given)."""
        pool: Iterable[Tlv] = self.all_tlvs
        if protected is True:
            pool = self.protected_tlvs
        elif protected is False:
            pool = self.tlvs
        return [t for t in pool if t.type == tlv_type]

    def _one(self, tlv_type: int, *, protected: bool | None) -> bytes | None:
        found = self.find(tlv_type, protected=protected)
        return found[0].value if found else None

    @property
    def stored_digest(self) -> bytes | None:
        return self._one(self.digest_tlv_type, protected=False)

    @property
    def key_hash(self) -> bytes | None:
        """The KEYHASH TLV, or the hash of the PUBKEY TLV (what MCUboot compares with its key table); the
        hash is the image's digest algorithm, as imgtool and bootutil use it."""
        value = self._one(TlvType.KEYHASH, protected=False)
        if value is not None:
            return value
        pub = self._one(TlvType.PUBKEY, protected=False)
        return hashlib.new(self.digest_name, pub).digest() if pub is not None else None

    @property
    def public_key_der(self) -> bytes | None:
        return self._one(TlvType.PUBKEY, protected=False)

    @property
    def signature_type(self) -> str | None:
        """``"ED25519"``, ``"ECDSASIG"``, ``"RSA2048"``... or ``None`` when unsigned."""
        for tlv in self.tlvs:
            if tlv.type in _SIGNATURE_TYPES:
                return tlv.name
        return None

    @property
    def security_counter(self) -> int | None:
        value = self._one(TlvType.SEC_CNT, protected=True)
        if value is None or len(value) != 4:
            return None
        counter: int = struct.unpack("<I", value)[0]
        return counter

    @property
    def custom_tlvs(self) -> list[Tlv]:
        return [t for t in self.protected_tlvs if TLV_VENDOR_MIN <= t.type <= TLV_VENDOR_MAX]


_DIGEST_TLVS = {"sha256": TlvType.SHA256, "sha384": TlvType.SHA384, "sha512": TlvType.SHA512}


def digest_name_of(tlvs: Sequence[Tlv]) -> str:
    """The digest algorithm named by the first SHA256/SHA384/SHA512 TLV (SHA-256 when there is none)."""
    for tlv in tlvs:
        for name, tlv_type in _DIGEST_TLVS.items():
            if tlv.type == tlv_type:
                return name
    return "sha256"


_SIGNATURE_TYPES = frozenset({TlvType.RSA2048_PSS, TlvType.ECDSA_SIG, TlvType.RSA3072_PSS, TlvType.ED25519})


def boot_magic(max_align: int) -> bytes:
    """The 16-byte trailer magic imgtool writes for ``max_align`` (8: the classic magic)."""
    if max_align == DEFAULT_MAX_ALIGN:
        return BOOT_MAGIC
    return struct.pack("<H", max_align) + BOOT_MAGIC_ALIGNED_TAIL


def trailer_size(
    *,
    align: int,
    max_align: int,
    max_sectors: int = DEFAULT_MAX_SECTORS,
    overwrite_only: bool = False,
    enc_key_len: int = 0,
) -> int:
    """Size of the swap trailer at the end of a slot, as imgtool computes it.  ``enc_key_len`` is the size of
    what the bootloader saves per slot for an encrypted image (16, imgtool's figure for either AES size, or
    the ENC TLV's length with ``--save-enctlv``); 0 for a plain image."""
    if align not in VALID_ALIGNS:
        raise ImageError(f"invalid alignment {align}: one of {', '.join(map(str, VALID_ALIGNS))}")
    magic_area = align_up(BOOT_MAGIC_SIZE, max_align)
    if overwrite_only:
        return max_align * 2 + magic_area
    keys = 2 * align_up(enc_key_len, max_align) if enc_key_len else 0
    return max_sectors * 3 * align + keys + max_align * 4 + magic_area


def assemble_tlv_area(tlvs: Sequence[Tlv], *, protected: bool) -> bytes:
    """A TLV area (info header + records); ``b""`` when ``tlvs`` is empty, as imgtool does."""
    if not tlvs:
        return b""
    body = b"".join(t.pack() for t in tlvs)
    total = TLV_INFO_SIZE + len(body)
    if total > 0xFFFF:
        raise ImageError(f"TLV area of {total} bytes does not fit the 16-bit length field")
    magic = TLV_PROT_INFO_MAGIC if protected else TLV_INFO_MAGIC
    return struct.pack("<HH", magic, total) + body


def _parse_area(data: bytes, start: int, total: int, *, protected: bool) -> tuple[Tlv, ...]:
    """Records between ``start + TLV_INFO_SIZE`` and ``start + total`` (bounds already checked)."""
    records: list[Tlv] = []
    off = start + TLV_INFO_SIZE
    end = start + total
    kind = "protected" if protected else "unprotected"
    while off < end:
        if off + TLV_RECORD_HEADER_SIZE > end:
            raise TlvOverrunError(
                f"tlv-overrun: a {kind} TLV header at offset 0x{off:x} runs past the area end 0x{end:x}"
            )
        tlv_type, length = struct.unpack_from("<HH", data, off)
        value_off = off + TLV_RECORD_HEADER_SIZE
        if value_off + length > end:
            raise TlvOverrunError(
                f"tlv-overrun: {kind} TLV 0x{tlv_type:04x} at offset 0x{off:x} declares {length} bytes,"
                f" past the area end 0x{end:x}"
            )
        records.append(
            Tlv(
                type=tlv_type,
                value=bytes(data[value_off : value_off + length]),
                protected=protected,
                offset=value_off,
            )
        )
        off = value_off + length
    return tuple(records)


def _parse_trailer(data: bytes, end: int) -> Trailer | None:
    """Read the trailer at the end of ``data`` when ``--pad`` wrote one after the TLVs."""
    if len(data) - end < BOOT_MAGIC_SIZE:
        return None
    magic = bytes(data[-BOOT_MAGIC_SIZE:])
    if magic == BOOT_MAGIC:
        max_align = DEFAULT_MAX_ALIGN
    elif magic[2:] == BOOT_MAGIC_ALIGNED_TAIL:
        max_align = struct.unpack("<H", magic[:2])[0]
        if max_align not in VALID_MAX_ALIGNS:
            return None
    else:
        return None
    magic_area = align_up(BOOT_MAGIC_SIZE, max_align)
    image_ok_off = len(data) - magic_area - max_align
    copy_done_off = image_ok_off - max_align
    swap_info_off = copy_done_off - max_align
    swap_size_off = swap_info_off - max_align
    if swap_size_off < end:
        return None
    return Trailer(
        max_align=max_align,
        magic=magic,
        image_ok=data[image_ok_off],
        copy_done=data[copy_done_off],
        swap_info=data[swap_info_off],
        swap_size=struct.unpack_from("<I", data, swap_size_off)[0],
    )


def parse_image(data: bytes) -> Image:
    """Parse an MCUboot image (header, payload, protected and unprotected TLVs, trailer if padded).

    Checks structure only: magic, sizes, TLV bounds.  Digest, signature, key, chip tag and security counter
    are :func:`protocol.image.verify_image`'s job.  ``data`` may carry trailing padding and a trailer.
    Raises :class:`TruncatedError`, :class:`BadMagicError`, :class:`ImageTooLargeError`,
    :class:`BadTlvError` or :class:`TlvOverrunError`; never reads outside ``data``.
    """
    data = bytes(data)
    header = ImageHeader.unpack(data)
    if header.magic != IMAGE_MAGIC:
        raise BadMagicError(
            f"bad-magic: header magic is 0x{header.magic:08x}, not MCUboot's 0x{IMAGE_MAGIC:08x}",
            hint="this is not a signed MCUboot image; sign it first (stm32ota sign)",
        )
    if header.header_size < IMAGE_HEADER_SIZE:
        raise BadMagicError(f"bad-magic: header size {header.header_size} is below {IMAGE_HEADER_SIZE}")
    if header.image_size > MAX_IMAGE_SIZE:
        raise ImageTooLargeError(
            f"too-large: header declares an image of {header.image_size} bytes (over {MAX_IMAGE_SIZE})"
        )
    tlv_off = header.header_size + header.image_size
    if tlv_off > len(data):
        raise TruncatedError(
            f"truncated: header declares {tlv_off} bytes of header and payload, the file has {len(data)}"
        )
    protected: tuple[Tlv, ...] = ()
    prot_size = header.protected_tlv_size
    if prot_size:
        if tlv_off + TLV_INFO_SIZE > len(data):
            raise TruncatedError("truncated: the file ends before the protected TLV area")
        magic, total = struct.unpack_from("<HH", data, tlv_off)
        if magic != TLV_PROT_INFO_MAGIC:
            raise BadMagicError(
                f"bad-magic: protected TLV info magic is 0x{magic:04x}, not 0x{TLV_PROT_INFO_MAGIC:04x}"
            )
        if total != prot_size or total < TLV_INFO_SIZE:
            raise BadTlvError(f"bad-tlv: protected TLV area says {total} bytes, the header says {prot_size}")
        if tlv_off + total > len(data):
            raise TruncatedError("truncated: the file ends inside the protected TLV area")
        protected = _parse_area(data, tlv_off, total, protected=True)
    hashed_end = tlv_off + prot_size
    unprot_off = hashed_end
    if unprot_off + TLV_INFO_SIZE > len(data):
        raise TruncatedError("truncated: the file ends before the TLV area (no digest, no signature)")
    magic, total = struct.unpack_from("<HH", data, unprot_off)
    if magic != TLV_INFO_MAGIC:
        raise BadMagicError(f"bad-magic: TLV info magic is 0x{magic:04x}, not 0x{TLV_INFO_MAGIC:04x}")
    if total < TLV_INFO_SIZE:
        raise BadTlvError(f"bad-tlv: TLV area length {total} is smaller than its own info header")
    if unprot_off + total > len(data):
        raise TruncatedError(
            f"truncated: the TLV area needs {total} bytes at 0x{unprot_off:x}, the file has {len(data)}"
        )
    tlvs = _parse_area(data, unprot_off, total, protected=False)
    end = unprot_off + total
    hashed = data[:hashed_end]
    digest_name = digest_name_of(tlvs)
    return Image(
        header=header,
        payload=data[header.header_size : header.header_size + header.image_size],
        protected_tlvs=protected,
        tlvs=tlvs,
        hashed=hashed,
        digest=hashlib.new(digest_name, hashed).digest(),
        end=end,
        total_size=len(data),
        trailer=_parse_trailer(data, end),
        digest_name=digest_name,
    )
