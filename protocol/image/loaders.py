"""Firmware input files: raw .bin, Intel HEX, Motorola S-record and ELF, turned into one flat binary.

Intel HEX and S-records are read by ``bincopy``, ELF files by ``pyelftools`` (the libraries the field
uses); around them we keep what a flasher needs and they do not do: an end record required last (a cut file
is an error, never a shorter firmware), an address span limit, and typed errors naming the line.

Every loader takes bytes and returns a :class:`Firmware`: the lowest address (``None`` for a .bin without
one) and the bytes from there on, gaps filled with 0xFF (erased flash).  Overlapping records are an
:class:`OverlapError`; an address span above ``max_span`` (default 16 MiB, more than any STM32's flash) is a
:class:`SparseInputError` instead of a giant allocation.  Malformed input is an :class:`InputFormatError`
naming the line or offset.  Only :func:`load_file` touches the file system.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import bincopy
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import Segment

from .errors import InputFormatError, OverlapError, SparseInputError
from .mcuboot import MAX_IMAGE_SIZE

__all__ = [
    "DEFAULT_FILL",
    "DEFAULT_MAX_SPAN",
    "INPUT_FORMATS",
    "Firmware",
    "flatten",
    "guess_format",
    "load_bin",
    "load_elf",
    "load_file",
    "load_firmware",
    "load_hex",
    "load_srec",
]

INPUT_FORMATS = ("bin", "hex", "srec", "elf")
DEFAULT_FILL = 0xFF
DEFAULT_MAX_SPAN = MAX_IMAGE_SIZE
# An ELF with debug information can be tens of MiB; anything above this is the wrong file.
MAX_INPUT_FILE_SIZE = 256 * 1024 * 1024
_EXTENSIONS = {
    ".bin": "bin",
    ".img": "bin",
    ".signed": "bin",
    ".hex": "hex",
    ".ihex": "hex",
    ".ihx": "hex",
    ".srec": "srec",
    ".s19": "srec",
    ".s28": "srec",
    ".s37": "srec",
    ".mot": "srec",
    ".elf": "elf",
    ".axf": "elf",
    ".out": "elf",
}
_ELF_MAGIC = b"\x7fELF"
_ELF_HEADER_MIN = 52  # an ELF32 header; pyelftools reads the rest


@dataclass(frozen=True, kw_only=True)
class Firmware:
    """A flat firmware binary: ``data`` starts at ``address`` (``None`` when the input had no address)."""

    address: int | None
    data: bytes
    entry: int | None = None
    segments: tuple[tuple[int, int], ...] = ()  # (address, length) of each piece the input defined

    @property
    def end(self) -> int | None:
        return None if self.address is None else self.address + len(self.data)


def flatten(
    pieces: Iterable[tuple[int, bytes]], *, fill: int = DEFAULT_FILL, max_span: int = DEFAULT_MAX_SPAN
) -> tuple[int, bytes, tuple[tuple[int, int], ...]]:
    """Join ``(address, data)`` pieces into ``(lowest address, bytes, segments)``; gaps get ``fill``.

    Adjacent pieces merge into one segment; overlapping ones raise :class:`OverlapError`.
    """
    ordered = sorted(((addr, bytes(data)) for addr, data in pieces if data), key=lambda p: p[0])
    if not ordered:
        raise InputFormatError("bad-input: the file defines no data")
    start = ordered[0][0]
    end = max(addr + len(data) for addr, data in ordered)
    if end - start > max_span:
        raise SparseInputError(
            f"sparse-input: the data spans 0x{start:08x}..0x{end:08x} ({end - start} bytes), more than"
            f" {max_span}; is there a RAM or option-byte section in the file?",
            hint="remove sections that are not in flash (objcopy -R), or load the parts separately",
        )
    segments: list[list[int]] = []
    for addr, data in ordered:
        if segments and addr < segments[-1][0] + segments[-1][1]:
            raise OverlapError(
                f"overlap: data at 0x{addr:08x} overlaps data before it (up to"
                f" 0x{segments[-1][0] + segments[-1][1]:08x})"
            )
        if segments and addr == segments[-1][0] + segments[-1][1]:
            segments[-1][1] += len(data)
        else:
            segments.append([addr, len(data)])
    out = bytearray([fill]) * (end - start)
    for addr, data in ordered:
        out[addr - start : addr - start + len(data)] = data
    return start, bytes(out), tuple((a, n) for a, n in segments)


def load_bin(data: bytes, address: int | None = None) -> Firmware:
    """A raw binary; ``address`` is where its first byte goes (unknown if ``None``)."""
    if not data:
        raise InputFormatError("bad-input: the binary is empty")
    segments = ((address, len(data)),) if address is not None else ()
    return Firmware(address=address, data=bytes(data), segments=segments)


def _text(data: bytes, kind: str) -> list[tuple[int, str]]:
    """The non-blank lines of a text firmware file, numbered from 1."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as err:
        raise InputFormatError(f"bad-input: {kind} file has a non-ASCII byte at offset {err.start}") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _bincopy_add(
    lines: list[tuple[int, str]], add: Callable[[bincopy.BinFile, str], None], kind: str
) -> bincopy.BinFile:
    """Records parsed by bincopy; its errors become :class:`InputFormatError` naming the line (a record is
    checked on its own, so the first line bincopy refuses alone is the culprit) and overlaps
    :class:`OverlapError`."""
    image = bincopy.BinFile()
    try:
        add(image, "\n".join(line for _, line in lines))
    except bincopy.AddDataError as err:
        raise OverlapError(f"overlap: two {kind} records write the same address ({err})") from None
    except (bincopy.Error, ValueError) as err:
        for number, line in lines:
            try:
                add(bincopy.BinFile(), line)
            except (bincopy.Error, ValueError) as line_err:
                raise InputFormatError(f"bad-input: line {number}: {line_err}") from None
        raise InputFormatError(f"bad-input: {kind}: {err}") from None
    return image


def _firmware(image: bincopy.BinFile, *, fill: int, max_span: int) -> Firmware:
    pieces = [(segment.minimum_address, bytes(segment.data)) for segment in image.segments]
    start, flat, segments = flatten(pieces, fill=fill, max_span=max_span)
    return Firmware(address=start, data=flat, entry=image.execution_start_address, segments=segments)


def _check_end(lines: list[tuple[int, str]], is_end: Callable[[str], bool], kind: str, what: str) -> None:
    """The end record must be there and be last: a cut file is an error, never a shorter firmware."""
    ends = [index for index, (_, line) in enumerate(lines) if is_end(line)]
    if not ends:
        raise InputFormatError(f"bad-input: {kind} file has no {what} record (truncated?)")
    if ends[0] != len(lines) - 1:
        number = lines[ends[0] + 1][0]
        raise InputFormatError(f"bad-input: line {number}: data after the {what} record")


def load_hex(data: bytes, *, fill: int = DEFAULT_FILL, max_span: int = DEFAULT_MAX_SPAN) -> Firmware:
    """Intel HEX (record types 00-05) read by ``bincopy``: checksums checked, an end-of-file record required
    (last), overlapping records refused.  The start address is bincopy's (record 05's EIP; record 03's CS:IP
    as one 32-bit value)."""
    lines = _text(data, "Intel HEX")
    image = _bincopy_add(lines, lambda f, text: f.add_ihex(text, overwrite=False), "Intel HEX")
    _check_end(lines, lambda line: line[7:9] == "01" and line.startswith(":"), "Intel HEX", "end-of-file")
    return _firmware(image, fill=fill, max_span=max_span)


def load_srec(data: bytes, *, fill: int = DEFAULT_FILL, max_span: int = DEFAULT_MAX_SPAN) -> Firmware:
    """Motorola S-record (S0-S3, S5-S9) read by ``bincopy``: checksums checked, a termination record
    (S7/S8/S9) required (last), overlapping records refused."""
    lines = _text(data, "S-record")
    image = _bincopy_add(lines, lambda f, text: f.add_srec(text, overwrite=False), "S-record")
    _check_end(lines, lambda line: line[:2].upper() in ("S7", "S8", "S9"), "S-record", "termination (S7/S8/S9)")
    return _firmware(image, fill=fill, max_span=max_span)


def load_elf(data: bytes, *, fill: int = DEFAULT_FILL, max_span: int = DEFAULT_MAX_SPAN) -> Firmware:
    """An ELF file (32 or 64 bit) read by ``pyelftools``, placed at its load (physical) addresses.

    As ``objcopy -O binary`` does, the allocated sections with contents count, each at its load address (its
    address moved by its PT_LOAD segment's ``p_paddr - p_vaddr``), so ELF and program headers the linker put
    into the first segment are not firmware.  Without a section table, the PT_LOAD segments count.  Gaps
    between the pieces are filled with ``fill`` (0xFF: what objcopy's .hex or .srec of the same ELF gives once
    loaded into erased flash; ``objcopy -O binary`` itself fills with 0x00)."""
    if len(data) < _ELF_HEADER_MIN or data[:4] != _ELF_MAGIC:
        raise InputFormatError("bad-input: not an ELF file (bad magic or too short)")
    try:
        elf = ELFFile(io.BytesIO(data))
        loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0]
        if elf.num_segments() == 0:
            raise InputFormatError("bad-input: the ELF file has no program headers (an object file, not linked?)")
        for seg in loads:
            if seg["p_offset"] + seg["p_filesz"] > len(data):
                raise InputFormatError("bad-input: an ELF segment runs past the end of the file")
        pieces = _elf_section_pieces(elf, loads, len(data))
        if pieces is None:
            pieces = [(seg["p_paddr"], seg.data()) for seg in loads]
        entry = int(elf.header["e_entry"])
    except InputFormatError:
        raise
    except (ELFError, struct.error, ValueError, OverflowError, KeyError, AttributeError, TypeError) as err:
        raise InputFormatError(f"bad-input: unreadable ELF file (program header or section table): {err}") from None
    first, flat, segments = flatten(pieces, fill=fill, max_span=max_span)
    return Firmware(address=first, data=flat, entry=entry, segments=segments)


def _elf_section_pieces(elf: ELFFile, loads: list[Segment], size: int) -> list[tuple[int, bytes]] | None:
    """``(load address, bytes)`` of each allocated section with contents, or ``None`` without a section table."""
    if elf.num_sections() == 0 or elf.header["e_shoff"] == 0:
        return None
    pieces: list[tuple[int, bytes]] = []
    for section in elf.iter_sections():
        if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC or section["sh_type"] == "SHT_NOBITS":
            continue
        length, offset = section["sh_size"], section["sh_offset"]
        if not length:
            continue
        if offset + length > size:
            raise InputFormatError(f"bad-input: ELF section {section.name} runs past the end of the file")
        home = next(
            (s for s in loads if s["p_offset"] <= offset and offset + length <= s["p_offset"] + s["p_filesz"]), None
        )
        if home is None:
            continue  # not loaded by any segment (objcopy skips it too)
        pieces.append((home["p_paddr"] + offset - home["p_offset"], section.data()))
    return pieces


def guess_format(name: str, data: bytes = b"") -> str:
    """``"bin"``, ``"hex"``, ``"srec"`` or ``"elf"`` from the file's contents, else its extension."""
    if data.startswith(_ELF_MAGIC):
        return "elf"
    head = data[:1]
    ext = os.path.splitext(name)[1].lower()
    if head == b":" and ext not in (".bin", ".img"):
        return "hex"
    if head in (b"S", b"s") and data[1:2].isdigit() and ext not in (".bin", ".img"):
        return "srec"
    return _EXTENSIONS.get(ext, "bin")


def load_firmware(
    data: bytes,
    fmt: str,
    *,
    address: int | None = None,
    fill: int = DEFAULT_FILL,
    max_span: int = DEFAULT_MAX_SPAN,
) -> Firmware:
    """Load ``data`` in format ``fmt`` (one of :data:`INPUT_FORMATS`); ``address`` is for ``bin`` only."""
    if fmt == "bin":
        return load_bin(data, address)
    if fmt == "hex":
        return load_hex(data, fill=fill, max_span=max_span)
    if fmt == "srec":
        return load_srec(data, fill=fill, max_span=max_span)
    if fmt == "elf":
        return load_elf(data, fill=fill, max_span=max_span)
    raise InputFormatError(f"bad-input: unknown input format {fmt!r}; one of {', '.join(INPUT_FORMATS)}")


def load_file(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    address: int | None = None,
    fill: int = DEFAULT_FILL,
    max_span: int = DEFAULT_MAX_SPAN,
) -> Firmware:
    """Read and load a file; the format is guessed from its contents and extension unless ``fmt`` is given."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_INPUT_FILE_SIZE:
                raise InputFormatError(
                    f"bad-input: {os.fspath(path)} has {size} bytes; no firmware file is that big"
                    f" (limit {MAX_INPUT_FILE_SIZE})"
                )
            data = handle.read()
    except OSError as err:
        raise InputFormatError(f"bad-input: cannot read {os.fspath(path)}: {err.strerror}") from err
    return load_firmware(
        data, fmt or guess_format(os.fspath(path), data), address=address, fill=fill, max_span=max_span
    )
