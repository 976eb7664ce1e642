"""No byte stream makes the parser, the verifier or the loaders raise anything but our typed errors, or hang.

Bounded by construction: inputs are at most a few KiB, and declared sizes are checked against the data before
anything is allocated (a header claiming 4 GiB must fail fast, not allocate).
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.errors import ImageError
from protocol.image import (
    HardwareTag,
    generate_key,
    load_elf,
    load_firmware,
    load_hex,
    load_srec,
    parse_image,
    reason_of,
    sign_image,
    verify_image,
)
from protocol.image.mcuboot import IMAGE_MAGIC

KEY = generate_key("ed25519")
PUB = KEY.public_key()
GOOD = sign_image(
    bytes(range(256)) * 4,
    KEY,
    version="1.2.3",
    pad_header=True,
    security_counter=3,
    hw_tag=HardwareTag(chip_id=0x413),
    custom_tlvs=[(0xB0, b"hello")],
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes) -> None:
    try:
        parse_image(data)
    except ImageError as err:
        assert reason_of(err) != "invalid-image"  # every parser error names its check
    try:
        verify_image(data, keys=[PUB], chip_id=0x413, board_id=1, min_security_counter=1)
    except ImageError:
        pass


@FAST
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@FAST
@given(st.binary(min_size=28, max_size=600))
def test_random_after_valid_magic(tail: bytes) -> None:
    _check(struct.pack("<I", IMAGE_MAGIC) + tail)


@FAST
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_image(edits: list[tuple[int, int]]) -> None:
    data = bytearray(GOOD)
    for offset, value in edits:
        data[offset] = value
    changed = bytes(data) != GOOD
    try:
        verify_image(bytes(data), keys=[PUB], chip_id=0x413, min_security_counter=1)
    except ImageError:
        return
    assert not changed, "a changed image passed verification"


@FAST
@given(st.integers(0, len(GOOD)), st.binary(max_size=64))
def test_truncated_or_extended(cut: int, extra: bytes) -> None:
    data = GOOD[:cut] + extra
    try:
        verify_image(data, keys=[PUB])
    except ImageError:
        assert cut < len(GOOD)
    else:
        assert cut == len(GOOD)


_HEX_LINE = st.builds(lambda body: ":" + body.hex(), st.binary(min_size=0, max_size=24)) | st.text(
    alphabet=":0123456789ABCDEFabcdefSs \r\n", max_size=40
)


@FAST
@given(st.lists(_HEX_LINE, max_size=12))
def test_hex_and_srec_text(lines: list[str]) -> None:
    text = "\n".join(lines).encode()
    for loader in (load_hex, load_srec):
        try:
            firmware = loader(text)
        except ImageError:
            continue
        assert len(firmware.data) <= 16 * 1024 * 1024


@FAST
@given(st.binary(max_size=1024))
def test_loaders_random_bytes(data: bytes) -> None:
    for fmt in ("hex", "srec", "elf", "bin"):
        try:
            load_firmware(data, fmt)
        except ImageError:
            pass


@FAST
@given(st.binary(min_size=0, max_size=400))
def test_elf_header_then_random(tail: bytes) -> None:
    try:
        load_elf(b"\x7fELF\x01\x01\x01" + bytes(9) + tail)
    except ImageError:
        pass
