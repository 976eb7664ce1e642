"""Output files: Intel HEX, written exactly as imgtool (via the ``intelhex`` package) writes signed images.

``imgtool sign`` writes Intel HEX when OUT ends in ``.hex``: the image at its flash address (from a HEX input,
or ``--hex-addr``), and with ``--pad`` not the padding itself but only the trailer's boot magic (and the
``image_ok`` field when ``--confirm``/``--test``) at the end of the slot.  :func:`padded_image_pieces` picks
those pieces out of a padded image; :func:`to_intel_hex` writes pieces as ``intelhex`` does (16 data bytes
per record, records never cross a 64 KiB boundary, an extended linear address record whenever the upper half
changes if any address is above 0xffff, no start address).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from .errors import ImageError, OverlapError
from .mcuboot import BOOT_MAGIC_SIZE, align_up, parse_image

__all__ = ["HEX_RECORD_BYTES", "padded_image_pieces", "to_intel_hex"]

HEX_RECORD_BYTES = 16
_SEGMENT = 0x10000


def _record(rtype: int, offset: int, payload: bytes) -> str:
    body = bytes([len(payload), (offset >> 8) & 0xFF, offset & 0xFF, rtype]) + payload
    return ":" + (body + bytes([(-sum(body)) & 0xFF])).hex().upper()


def to_intel_hex(pieces: Sequence[tuple[int, bytes]]) -> bytes:
    """Intel HEX text for ``(address, data)`` pieces (any order, no overlaps)."""
    ordered = sorted((addr, bytes(data)) for addr, data in pieces if data)
    for (a_addr, a_data), (b_addr, _) in itertools.pairwise(ordered):
        if b_addr < a_addr + len(a_data):
            raise OverlapError(f"overlap: data at 0x{b_addr:08x} overlaps data before it")
    merged: list[tuple[int, bytes]] = []
    for addr, data in ordered:  # intelhex sees bytes, not pieces: adjacent pieces run on in one record
        if merged and merged[-1][0] + len(merged[-1][1]) == addr:
            merged[-1] = (merged[-1][0], merged[-1][1] + data)
        else:
            merged.append((addr, data))
    ordered = merged
    if ordered and ordered[-1][0] + len(ordered[-1][1]) > 1 << 32:
        raise ImageError("the data does not fit 32-bit Intel HEX addresses")
    lines: list[str] = []
    extended = bool(ordered) and ordered[-1][0] + len(ordered[-1][1]) - 1 > 0xFFFF
    high: int | None = None
    for addr, data in ordered:
        pos, end = addr, addr + len(data)
        while pos < end:
            if extended and pos >> 16 != high:
                high = pos >> 16
                lines.append(_record(0x04, 0, high.to_bytes(2, "big")))
            count = min(HEX_RECORD_BYTES, _SEGMENT - (pos & 0xFFFF), end - pos)
            lines.append(_record(0x00, pos & 0xFFFF, data[pos - addr : pos - addr + count]))
            pos += count
    lines.append(":00000001FF")
    return ("\n".join(lines) + "\n").encode("ascii")


def padded_image_pieces(
    image: bytes, *, base: int, slot_size: int, max_align: int, image_ok: bool, overwrite_only: bool = False
) -> list[tuple[int, bytes]]:
    """What imgtool puts in a HEX file for a padded image: the image, the ``image_ok`` field, the boot magic.

    ``image`` is the full padded image from :func:`protocol.image.sign_image`; ``base`` its flash address.
    """
    if len(image) != slot_size:
        raise ImageError("the image is not padded to the slot size")
    end = parse_image(image).end
    pieces = [(base, image[:end])]
    if image_ok and not overwrite_only:
        ok_off = slot_size - (align_up(BOOT_MAGIC_SIZE, max_align) + max_align)
        pieces.append((base + ok_off, image[ok_off : ok_off + max_align]))
    pieces.append((base + slot_size - BOOT_MAGIC_SIZE, image[-BOOT_MAGIC_SIZE:]))
    return pieces
