"""Intel HEX output: the same text as the ``intelhex`` package (which imgtool uses), and the padded-image pieces."""

from __future__ import annotations

import io
import random

import pytest

from protocol.errors import ImageError
from protocol.image import (
    OverlapError,
    PrivateKey,
    load_hex,
    padded_image_pieces,
    parse_image,
    sign_image,
    to_intel_hex,
)
from protocol.image.mcuboot import BOOT_MAGIC


def _intelhex_text(pieces: list[tuple[int, bytes]]) -> bytes:
    intelhex = pytest.importorskip("intelhex")
    ih = intelhex.IntelHex()
    for addr, data in pieces:
        ih.puts(addr, data)
    out = io.StringIO()
    ih.write_hex_file(out)
    return out.getvalue().encode()


@pytest.mark.parametrize("seed", range(40))
def test_same_text_as_intelhex(seed: int) -> None:
    rng = random.Random(seed)
    addr = rng.choice([0, 0xFFF0, 0x08020000, 0x0801FFE0])
    pieces = []
    for _ in range(rng.randint(1, 4)):
        data = rng.randbytes(rng.randint(1, 300))
        pieces.append((addr, data))
        addr += len(data) + rng.choice([0, 0, 3, 0x10000, 0x1FFF0])
    rng.shuffle(pieces)
    assert to_intel_hex(pieces) == _intelhex_text(pieces)


def test_round_trip() -> None:
    pieces = [(0x08020000, b"\x01" * 40), (0x08030000, b"\x02" * 3)]
    firmware = load_hex(to_intel_hex(pieces))
    assert firmware.segments == ((0x08020000, 40), (0x08030000, 3))


def test_empty_and_errors() -> None:
    assert to_intel_hex([]) == b":00000001FF\n"
    with pytest.raises(OverlapError):
        to_intel_hex([(0, b"ab"), (1, b"c")])
    with pytest.raises(ImageError):
        to_intel_hex([(0xFFFFFFFF, b"ab")])


def test_padded_image_pieces(ed_key: PrivateKey, fw_100: bytes) -> None:
    image = sign_image(fw_100, ed_key, version="1", pad_header=True, align=8, slot_size=0x20000, confirm=True)
    pieces = padded_image_pieces(image, base=0x08020000, slot_size=0x20000, max_align=8, image_ok=True)
    end = parse_image(image).end
    assert pieces == [
        (0x08020000, image[:end]),
        (0x08020000 + 0x20000 - 24, b"\x01" + b"\xff" * 7),
        (0x08020000 + 0x20000 - 16, BOOT_MAGIC),
    ]
    assert load_hex(to_intel_hex(pieces)).data == image  # gaps come back as 0xff
    assert len(padded_image_pieces(image, base=0, slot_size=0x20000, max_align=8, image_ok=False)) == 2
    with pytest.raises(ImageError):
        padded_image_pieces(image[:-1], base=0, slot_size=0x20000, max_align=8, image_ok=True)
