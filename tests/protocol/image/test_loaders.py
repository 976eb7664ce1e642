"""Input files: .bin, Intel HEX, S-record, ELF — equal flat binaries, gaps, overlaps, sparse and broken input."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from protocol.image import (
    InputFormatError,
    OverlapError,
    SparseInputError,
    guess_format,
    load_bin,
    load_elf,
    load_file,
    load_firmware,
    load_hex,
    load_srec,
)
from protocol.image.loaders import flatten

from .conftest import FIRMWARE

SLOT_APP = 0x08020200


def _hex_record(rtype: int, address: int, payload: bytes) -> str:
    body = bytes([len(payload), (address >> 8) & 0xFF, address & 0xFF, rtype]) + payload
    return ":" + (body + bytes([(-sum(body)) & 0xFF])).hex().upper()


def _srec(rtype: str, address: int, payload: bytes) -> str:
    addr_len = {"0": 2, "1": 2, "2": 3, "3": 4, "5": 2, "7": 4, "8": 3, "9": 2}[rtype]
    body = bytes([addr_len + len(payload) + 1]) + address.to_bytes(addr_len, "big") + payload
    return f"S{rtype}" + (body + bytes([0xFF - (sum(body) & 0xFF)])).hex().upper()


@pytest.mark.parametrize("name", ["demo-1.0.0.elf", "demo-1.0.0.hex", "demo-1.0.0.srec", "demo-big-1.2.0.elf"])
def test_committed_inputs_equal_the_objcopy_bin(name: str) -> None:
    firmware = load_file(FIRMWARE / name)
    assert firmware.address == SLOT_APP
    assert firmware.data == (FIRMWARE / (name.rsplit(".", 1)[0] + ".bin")).read_bytes()
    assert firmware.entry is not None and firmware.entry & 1  # Thumb reset handler


def test_elf_with_data_segment_uses_load_address() -> None:
    """The demo has initialised .data: its segment lives at 0x20000000 but loads from flash (LMA)."""
    firmware = load_file(FIRMWARE / "demo-1.0.0.elf")
    assert firmware.end == SLOT_APP + len(firmware.data)
    assert all(0x08020000 <= a < 0x08080000 for a, _ in firmware.segments)


def test_intelhex_generated_input(fw_100: bytes) -> None:
    intelhex = pytest.importorskip("intelhex")
    ih = intelhex.IntelHex()
    ih.frombytes(fw_100, offset=SLOT_APP)
    ih.start_addr = {"EIP": SLOT_APP | 1}
    out = io.StringIO()
    ih.write_hex_file(out)
    firmware = load_hex(out.getvalue().encode())
    assert firmware.address == SLOT_APP and firmware.data == fw_100 and firmware.entry == SLOT_APP | 1


def test_hex_gaps_are_erased_and_segments_reported() -> None:
    text = "\n".join(
        [
            _hex_record(0x04, 0, b"\x08\x02"),
            _hex_record(0x00, 0x0000, b"\x01\x02"),
            _hex_record(0x00, 0x0002, b"\x03"),
            _hex_record(0x00, 0x0010, b"\x04"),
            _hex_record(0x01, 0, b""),
        ]
    )
    firmware = load_hex(text.encode())
    assert firmware.address == 0x08020000
    assert firmware.data == b"\x01\x02\x03" + b"\xff" * 13 + b"\x04"
    assert firmware.segments == ((0x08020000, 3), (0x08020010, 1))


def test_hex_segment_address_and_start_records() -> None:
    text = "\r\n".join(
        [
            _hex_record(0x02, 0, b"\x10\x00"),  # segment base 0x10000
            _hex_record(0x00, 0x0004, b"\xaa"),
            _hex_record(0x03, 0, b"\x00\x01\x00\x02"),
            _hex_record(0x01, 0, b""),
            "",
        ]
    )
    firmware = load_hex(text.encode())
    # bincopy gives record 03's CS:IP as one 32-bit value (CS 0x0001, IP 0x0002)
    assert firmware.address == 0x10004 and firmware.data == b"\xaa" and firmware.entry == 0x00010002


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([":0100000001FF"], "line 1: expected crc"),
        (["0100000001FF"], "not starting with a ':'"),
        ([":01000000zzFF"], "non-hexadecimal"),
        ([":0200000001FF"], "wrong size"),
        ([":00000007F9", ":00000001FF"], "line 1: expected type"),
        ([_hex_record(0, 0, b"\x01")], "end-of-file"),
        ([":00000001FF", _hex_record(0, 0, b"\x01")], "after the end"),
        ([":00000001FF"], "no data"),
    ],
)
def test_hex_errors(lines: list[str], message: str) -> None:
    with pytest.raises(InputFormatError, match=message) as info:
        load_hex("\n".join(lines).encode())
    assert info.value.reason == "bad-input"


def test_hex_non_ascii() -> None:
    with pytest.raises(InputFormatError, match="non-ASCII"):
        load_hex(b":00\xff")


def test_hex_overlap() -> None:
    text = "\n".join([_hex_record(0, 0, b"\x01\x02"), _hex_record(0, 1, b"\x03"), ":00000001FF"])
    with pytest.raises(OverlapError) as info:
        load_hex(text.encode())
    assert info.value.reason == "overlap"


def test_hex_sparse() -> None:
    text = "\n".join(
        [
            _hex_record(0x04, 0, b"\x08\x00"),
            _hex_record(0, 0, b"\x01"),
            _hex_record(0x04, 0, b"\x20\x00"),  # RAM: 0x20000000
            _hex_record(0, 0, b"\x02"),
            ":00000001FF",
        ]
    )
    with pytest.raises(SparseInputError) as info:
        load_hex(text.encode())
    assert info.value.reason == "sparse-input" and info.value.hint


def test_srec_records() -> None:
    text = "\n".join(
        [
            _srec("0", 0, b"hdr"),
            _srec("1", 0x1000, b"\x01"),
            _srec("2", 0x001001, b"\x02"),
            _srec("3", 0x00001002, b"\x03"),
            _srec("5", 3, b""),
            _srec("9", 0x1000, b""),
        ]
    )
    firmware = load_srec(text.encode())
    assert firmware.address == 0x1000 and firmware.data == b"\x01\x02\x03" and firmware.entry == 0x1000


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["S1040000010A"], "expected crc"),
        (["X1040000010A"], "not starting with an 'S'"),
        (["S4040000010A"], "expected record type"),
        (["S105000001FA"], "wrong size"),
        ([_srec("1", 0, b"\x01")], "termination"),
        ([_srec("9", 0, b""), _srec("1", 0, b"\x01")], "after the termination"),
        ([_srec("9", 0, b"")], "no data"),
    ],
)
def test_srec_errors(lines: list[str], message: str) -> None:
    with pytest.raises(InputFormatError, match=message):
        load_srec("\n".join(lines).encode())


def test_srec_overlap() -> None:
    text = "\n".join([_srec("1", 0, b"\x01\x02"), _srec("1", 1, b"\x03"), _srec("9", 0, b"")])
    with pytest.raises(OverlapError):
        load_srec(text.encode())


def _elf32(segments: list[tuple[int, int, bytes]], *, phentsize: int = 32) -> bytes:
    """A minimal little-endian ELF32 with PT_LOAD program headers (type, paddr, data) and no sections."""
    header_size, ph_count = 52, len(segments)
    offset = header_size + ph_count * phentsize
    phdrs, blobs = b"", b""
    for p_type, paddr, data in segments:
        phdrs += struct.pack("<IIIIIIII", p_type, offset + len(blobs), paddr, paddr, len(data), len(data), 5, 4)
        phdrs += bytes(phentsize - 32)
        blobs += data
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    header = ident + struct.pack(
        "<HHIIIIIHHHHHH", 2, 40, 1, segments[0][1] | 1, header_size, 0, 0, header_size, phentsize, ph_count, 40, 0, 0
    )
    return header + phdrs + blobs


def test_elf_segments_by_physical_address() -> None:
    elf = _elf32([(1, 0x08000010, b"\x03\x04"), (1, 0x08000000, b"\x01\x02"), (4, 0x0, b"note")])
    firmware = load_elf(elf)
    assert firmware.address == 0x08000000
    assert firmware.data == b"\x01\x02" + b"\xff" * 14 + b"\x03\x04"


def test_elf_overlap_and_sparse() -> None:
    with pytest.raises(OverlapError):
        load_elf(_elf32([(1, 0x100, b"\x01\x02"), (1, 0x101, b"\x03")]))
    with pytest.raises(SparseInputError):
        load_elf(_elf32([(1, 0x08000000, b"\x01"), (1, 0x20000000, b"\x02")]))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x7fELF", "too short"),
        (b"\x7fELF" + bytes([3, 1]) + bytes(60), "EI_CLASS"),
        (b"\x7fELF" + bytes([1, 1]) + bytes(60), "no program headers"),
    ],
)
def test_elf_errors(data: bytes, message: str) -> None:
    with pytest.raises(InputFormatError, match=message):
        load_elf(data)


def test_elf_truncated_segment() -> None:
    elf = _elf32([(1, 0x100, b"\x01\x02\x03\x04")])
    with pytest.raises(InputFormatError, match="past the end"):
        load_elf(elf[:-2])
    with pytest.raises(InputFormatError, match="program header"):
        load_elf(elf[:70])


def test_elf_real_file_truncated() -> None:
    data = (FIRMWARE / "demo-1.0.0.elf").read_bytes()
    for cut in (64, 100, len(data) // 2, len(data) - 1):
        try:
            firmware = load_elf(data[:cut])
        except InputFormatError:
            continue
        assert len(firmware.data) <= len(data)


def test_bin() -> None:
    assert load_bin(b"\x01", 0x08020200).segments == ((0x08020200, 1),)
    assert load_bin(b"\x01").address is None
    with pytest.raises(InputFormatError):
        load_bin(b"")


def test_load_firmware_dispatch(fw_100: bytes) -> None:
    assert load_firmware(fw_100, "bin", address=1).data == fw_100
    with pytest.raises(InputFormatError, match="unknown input format"):
        load_firmware(fw_100, "uf2")


def test_guess_format() -> None:
    assert guess_format("x.bin", b"\x7fELF...") == "elf"
    assert guess_format("x.txt", b":10000000") == "hex"
    assert guess_format("x.txt", b"S00F0000") == "srec"
    assert guess_format("x.bin", b":10000000") == "bin"
    assert guess_format("x.s19", b"") == "srec"
    assert guess_format("x.axf", b"") == "elf"
    assert guess_format("noext", b"\x00\x01") == "bin"


def test_load_file_missing(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="cannot read"):
        load_file(tmp_path / "nope.hex")


def test_flatten_limits() -> None:
    with pytest.raises(SparseInputError):
        flatten([(0, b"\x01"), (100, b"\x02")], max_span=50)
    assert flatten([(0, b"\x01"), (1, b"\x02")]) == (0, b"\x01\x02", ((0, 2),))
    assert flatten([(0, b"\x01"), (2, b"\x02")], fill=0) == (0, b"\x01\x00\x02", ((0, 1), (2, 1)))


@pytest.mark.parametrize("name", ["demo-1.0.0.hex", "demo-1.0.0.srec"])
def test_every_prefix_of_a_text_file_is_refused(name: str) -> None:
    """Byte by byte: a cut HEX/S-record file is an error (no end record), never a shorter firmware."""
    data = (FIRMWARE / name).read_bytes()
    loader = load_hex if name.endswith(".hex") else load_srec
    whole = loader(data)
    end_record = data.rstrip().rfind(b"\n") + 1
    for cut in range(0, len(data), 3):
        if cut >= end_record and data[end_record:cut].strip() and len(data[end_record:cut].strip()) >= 10:
            continue  # inside the final record: either a broken line or (when complete) the whole file
        with pytest.raises(InputFormatError):
            loader(data[:cut])
    assert loader(data + b"\n\n").data == whole.data  # trailing blank lines are fine
    with pytest.raises(InputFormatError):
        loader(data + b"junk\n")


def test_load_file_refuses_absurd_files(tmp_path: Path) -> None:
    from protocol.image.loaders import MAX_INPUT_FILE_SIZE

    huge = tmp_path / "huge.bin"
    with huge.open("wb") as handle:
        handle.truncate(MAX_INPUT_FILE_SIZE + 1)  # sparse: nothing is written or read
    with pytest.raises(InputFormatError, match="no firmware file is that big"):
        load_file(huge)
