"""A plain description of an image (for ``stm32ota inspect``, the GUI and the relay): dicts and text."""

from __future__ import annotations

import hmac
import struct
from typing import Any

import cbor2

from ..errors import ImageError
from .compression import compression_name, decompressed_image
from .errors import BadTlvError
from .hwtag import HW_TAG_TLV, HardwareTag
from .mcuboot import IMAGE_F_ENCRYPTED_AES128, IMAGE_F_ENCRYPTED_AES256, Image, Tlv, TlvType

__all__ = ["describe_image", "format_image"]


def _tlv_dict(tlv: Tlv) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": tlv.type,
        "type_name": tlv.name,
        "len": len(tlv.value),
        "data": tlv.value.hex(),
        "protected": tlv.protected,
    }
    if (tlv.type == TlvType.SEC_CNT and len(tlv.value) == 4) or (
        tlv.type in (TlvType.DECOMP_SIZE, TlvType.COMP_DEC_SIZE) and len(tlv.value) == 4
    ):
        entry["value"] = int.from_bytes(tlv.value, "little")
    elif tlv.type == TlvType.DEPENDENCY and len(tlv.value) == 12:
        image_id, major, minor, revision, build = struct.unpack("<B3xBBHI", tlv.value)
        entry["value"] = f"image {image_id} >= {major}.{minor}.{revision}+{build}"
    elif tlv.type == TlvType.BOOT_RECORD:
        try:
            record = cbor2.loads(tlv.value)
        except (cbor2.CBORDecodeError, ValueError):
            record = None
        if isinstance(record, dict):
            entry["value"] = f"{record.get(1)} {record.get(4)} ({record.get(6)})"
    elif tlv.type == HW_TAG_TLV and tlv.protected:
        try:
            tag = HardwareTag.unpack(tlv.value)
        except BadTlvError:
            pass
        else:
            entry["value"] = {"chip_id": tag.chip_id, "board_id": tag.board_id}
    return entry


def _compression(image: Image) -> dict[str, Any] | None:
    """What the compressed image holds: its plain size and whether the plain image matches DECOMP_SHA
    (``None`` with the reason when it could not be computed)."""
    name = compression_name(image)
    if name is None:
        return None
    out: dict[str, Any] = {"type": name, "decompressed_size": None, "decompressed_digest": None}
    out["decompressed_digest_ok"] = None
    out["not_computed"] = None
    if image.header.flags & (IMAGE_F_ENCRYPTED_AES128 | IMAGE_F_ENCRYPTED_AES256):
        out["not_computed"] = "the compressed payload is encrypted; decompressing needs the encryption key"
        return out
    try:
        plain = decompressed_image(image)
    except ImageError as err:
        out["not_computed"] = str(err)
        return out
    out["decompressed_size"] = plain.header.image_size
    out["decompressed_digest"] = plain.digest.hex()
    stored = plain.stored_digest
    out["decompressed_digest_ok"] = stored is not None and hmac.compare_digest(stored, plain.digest)
    return out


def describe_image(image: Image) -> dict[str, Any]:
    """Everything ``inspect --json`` shows: header, sizes, digest (computed and stored), TLVs, trailer."""
    h = image.header
    stored = image.stored_digest
    tag_tlvs = image.find(HW_TAG_TLV, protected=True)
    hw_tag: dict[str, int] | None = None
    if len(tag_tlvs) == 1 and len(tag_tlvs[0].value) == 4:
        tag = HardwareTag.unpack(tag_tlvs[0].value)
        hw_tag = {"chip_id": tag.chip_id, "board_id": tag.board_id}
    trailer = image.trailer
    key_hash = image.key_hash
    encryption = (
        "aes256" if h.flags & IMAGE_F_ENCRYPTED_AES256 else "aes128" if h.flags & IMAGE_F_ENCRYPTED_AES128 else None
    )
    return {
        "header": {
            "magic": h.magic,
            "load_addr": h.load_addr,
            "hdr_size": h.header_size,
            "protected_tlv_size": h.protected_tlv_size,
            "img_size": h.image_size,
            "flags": h.flags,
            "flag_names": h.flag_names,
            "version": str(h.version),
        },
        "sizes": {
            "header": h.header_size,
            "payload": h.image_size,
            "protected_tlvs": h.protected_tlv_size,
            "tlvs": image.end - h.header_size - h.image_size - h.protected_tlv_size,
            "image": image.end,
            "file": image.total_size,
        },
        "digest_algorithm": image.digest_name,
        "digest": None if encryption else image.digest.hex(),
        "stored_digest": stored.hex() if stored is not None else None,
        "digest_ok": None if encryption else stored is not None and hmac.compare_digest(stored, image.digest),
        "not_computed": (
            f"digest: the payload is encrypted ({encryption.upper().replace('AES', 'AES-')}) and the digest"
            " covers the plaintext;"
            " decrypting needs the device's encryption key"
            if encryption
            else None
        ),
        "encryption": encryption,
        "compression": _compression(image),
        "protected_tlvs": [_tlv_dict(t) for t in image.protected_tlvs],
        "tlvs": [_tlv_dict(t) for t in image.tlvs],
        "signature_type": image.signature_type,
        "key_hash": key_hash.hex() if key_hash is not None else None,
        "security_counter": image.security_counter,
        "hw_tag": hw_tag,
        "trailer": None
        if trailer is None
        else {
            "max_align": trailer.max_align,
            "magic": trailer.magic.hex(),
            "image_ok": trailer.image_ok,
            "copy_done": trailer.copy_done,
            "swap_info": trailer.swap_info,
            "swap_size": trailer.swap_size,
            "confirmed": trailer.confirmed,
        },
    }


_DIGEST_LABELS = {"sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512"}


def _digest_line(info: dict[str, Any]) -> str:
    label = f"digest ({_DIGEST_LABELS.get(info['digest_algorithm'], info['digest_algorithm'])}):"
    if info["digest_ok"] is None and info.get("not_computed"):
        return f"{label} not computed: {info['not_computed'].split(': ', 1)[1]}"
    return f"{label} {info['digest']} ({'matches' if info['digest_ok'] else 'DOES NOT MATCH'})"


def _short(data: str, limit: int = 64) -> str:
    return data if len(data) <= limit else data[:limit] + "..."


def format_image(info: dict[str, Any]) -> str:
    """Human-readable lines for :func:`describe_image`'s result."""
    h = info["header"]
    s = info["sizes"]
    flags = ", ".join(h["flag_names"]) or "none"
    lines = [
        f"version:          {h['version']}",
        f"magic:            0x{h['magic']:08x}",
        f"header size:      0x{h['hdr_size']:x}",
        f"payload size:     0x{h['img_size']:x} ({h['img_size']} bytes)",
        f"protected TLVs:   0x{h['protected_tlv_size']:x}",
        f"load address:     0x{h['load_addr']:08x}",
        f"flags:            0x{h['flags']:x} ({flags})",
        f"image end:        0x{s['image']:x} (file {s['file']} bytes)",
        _digest_line(info),
        f"signature:        {info['signature_type'] or 'none (unsigned)'}",
        f"key hash:         {info['key_hash'] or '-'}",
        f"security counter: {info['security_counter'] if info['security_counter'] is not None else '-'}",
    ]
    comp = info["compression"]
    if comp is not None:
        if comp["decompressed_digest"] is None:
            lines.append(f"compression:      {comp['type']}; not decompressed: {comp['not_computed']}")
        else:
            verdict = "matches DECOMP_SHA" if comp["decompressed_digest_ok"] else "DOES NOT MATCH DECOMP_SHA"
            lines.append(
                f"compression:      {comp['type']}, 0x{comp['decompressed_size']:x} bytes decompressed, {verdict}"
            )
    tag = info["hw_tag"]
    if tag is not None:
        board = "any" if tag["board_id"] == 0 else str(tag["board_id"])
        lines.append(f"hardware tag:     chip 0x{tag['chip_id']:03x}, board {board}")
    for title, key in (("protected TLVs", "protected_tlvs"), ("TLVs", "tlvs")):
        lines.append(f"{title}:")
        for t in info[key]:
            value = t.get("value")
            if isinstance(value, dict):
                value = f"chip 0x{value['chip_id']:03x}, board {value['board_id']}"
            value = f" = {value}" if value is not None else ""
            lines.append(f"  0x{t['type']:04x} {t['type_name']:<16} len {t['len']:>3}  {_short(t['data'])}{value}")
        if not info[key]:
            lines.append("  (none)")
    trailer = info["trailer"]
    if trailer is not None:
        ok = "confirmed" if trailer["confirmed"] else f"image_ok 0x{trailer['image_ok']:02x}"
        lines.append(f"trailer:          boot magic (max align {trailer['max_align']}), {ok}")
    return "\n".join(lines)
