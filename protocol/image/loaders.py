"""Firmware input files: raw .bin, Intel HEX, Motorola S-record and ELF, turned into one flat binary.

Every loader takes bytes and returns a :class:`Firmware`: the lowest address (``None`` for a .bin without
one) and the bytes from there on, gaps filled with 0xFF (erased flash).  Overlapping records are an
:class:`OverlapError`; an address span above ``max_span`` (default 16 MiB, more than any STM32's flash) is a
:class:`SparseInputError` instead of a giant allocation.  Malformed input is an :class:`InputFormatError`
naming the line or offset.  Only :func:`load_file` touches the file system.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass

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
_PT_LOAD = 1
_ELFCLASS32 = 1
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_ELFDATA2MSB = 2
_SHF_ALLOC = 0x2
_SHT_NOBITS = 8


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


def _text_lines(data: bytes, kind: str) -> Iterable[tuple[int, str]]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as err:
        raise InputFormatError(f"bad-input: {kind} file has a non-ASCII byte at offset {err.start}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def _hex_bytes(text: str, where: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputFormatError(f"bad-input: {where}: not hexadecimal") from None


def load_hex(data: bytes, *, fill: int = DEFAULT_FILL, max_span: int = DEFAULT_MAX_SPAN) -> Firmware:
    """Intel HEX (record types 00-05), checksums checked, an end-of-file record required."""
    pieces: list[tuple[int, bytes]] = []
    base = 0
    entry: int | None = None
    seen_eof = False
    for number, line in _text_lines(data, "Intel HEX"):
        where = f"line {number}"
        if seen_eof:
            raise InputFormatError(f"bad-input: {where}: data after the end-of-file record")
        if not line.startswith(":") or len(line) < 11 or len(line) % 2 == 0:
            raise InputFormatError(f"bad-input: {where}: not an Intel HEX record")
        record = _hex_bytes(line[1:], where)
        count, offset, rtype = record[0], (record[1] << 8) | record[2], record[3]
        if len(record) != count + 5:
            raise InputFormatError(f"bad-input: {where}: record length {count} does not match the line")
        if sum(record) & 0xFF:
            raise InputFormatError(f"bad-input: {where}: checksum mismatch")
        payload = record[4:-1]
        if rtype == 0x00:
            pieces.append((base + offset, payload))
        elif rtype == 0x01:
            seen_eof = True
        elif rtype == 0x02 and count == 2:
            base = ((payload[0] << 8) | payload[1]) << 4
        elif rtype == 0x04 and count == 2:
            base = ((payload[0] << 8) | payload[1]) << 16
        elif rtype == 0x03 and count == 4:
            entry = (((payload[0] << 8) | payload[1]) << 4) + ((payload[2] << 8) | payload[3])
        elif rtype == 0x05 and count == 4:
            entry = struct.unpack(">I", payload)[0]
        else:
            raise InputFormatError(f"bad-input: {where}: unknown or malformed record type {rtype:02x}")
    if not seen_eof:
        raise InputFormatError("bad-input: Intel HEX file has no end-of-file record (truncated?)")
    start, flat, segments = flatten(pieces, fill=fill, max_span=max_span)
    return Firmware(address=start, data=flat, entry=entry, segments=segments)


_SREC_ADDRESS_BYTES = {"0": 2, "1": 2, "2": 3, "3": 4, "5": 2, "6": 3, "7": 4, "8": 3, "9": 2}


def load_srec(data: bytes, *, fill: int = DEFAULT_FILL, max_span: int = DEFAULT_MAX_SPAN) -> Firmware:
    """Motorola S-record (S0-S3, S5-S9), checksums checked, a termination record (S7/S8/S9) required."""
    pieces: list[tuple[int, bytes]] = []
    entry: int | None = None
    terminated = False
    for number, line in _text_lines(data, "S-record"):
        where = f"line {number}"
        if terminated:
            raise InputFormatError(f"bad-input: {where}: data after the termination record")
        if len(line) < 4 or line[0] not in "Ss" or line[1] not in _SREC_ADDRESS_BYTES or len(line) % 2:
            raise InputFormatError(f"bad-input: {where}: not an S-record")
        rtype = line[1]
        record = _hex_bytes(line[2:], where)
        count = record[0]
        addr_len = _SREC_ADDRESS_BYTES[rtype]
        if len(record) != count + 1 or count < addr_len + 1:
            raise InputFormatError(f"bad-input: {where}: byte count {count} does not match the line")
        if (sum(record) & 0xFF) != 0xFF:
            raise InputFormatError(f"bad-input: {where}: checksum mismatch")
        address = int.from_bytes(record[1 : 1 + addr_len], "big")
        payload = record[1 + addr_len : -1]
        if rtype in "123":
            pieces.append((address, payload))
        elif rtype in "789":
            entry = address
            terminated = True
    if not terminated:
        raise InputFormatError("bad-input: S-record file has no termination record (S7/S8/S9; truncated?)")
    start, flat, segments = flatten(pieces, fill=fill, max_span=max_span)
    return Firmware(address=start, data=flat, entry=entry, segments=segments)


def _elf_section_ranges(data: bytes, e: str, elf_class: int) -> list[tuple[int, int]] | None:
    """File ranges of the allocated sections with contents, or ``None`` without a usable section table."""
    if elf_class == _ELFCLASS32:
        shoff = struct.unpack_from(e + "I", data, 32)[0]
        shentsize, shnum = struct.unpack_from(e + "HH", data, 46)
        sh_format, sh_size = e + "IIIIII", 40
    else:
        shoff = struct.unpack_from(e + "Q", data, 40)[0]
        shentsize, shnum = struct.unpack_from(e + "HH", data, 58)
        sh_format, sh_size = e + "IIQQQQ", 64
    if shoff == 0 or shnum == 0 or shentsize < sh_size or shoff + shnum * shentsize > len(data):
        return None
    ranges = []
    for index in range(shnum):
        _name, sh_type, flags, _addr, offset, size = struct.unpack_from(sh_format, data, shoff + index * shentsize)
        if flags & _SHF_ALLOC and sh_type != _SHT_NOBITS and size:
            ranges.append((offset, offset + size))
    return ranges


def load_elf(data: bytes, *, fill: int = DEFAULT_FILL, max_span: int = DEFAULT_MAX_SPAN) -> Firmware:
    """The PT_LOAD segments of an ELF file (32 or 64 bit), placed at their physical (load) addresses.

    Like ``objcopy -O binary``, only the allocated sections count: when the linker put the ELF and program
    headers into the first segment (it does when there is room below the first section in the same page),
    those header bytes are not firmware and are trimmed off.
    """
    if len(data) < 64 or data[:4] != _ELF_MAGIC:
        raise InputFormatError("bad-input: not an ELF file (bad magic or too short)")
    elf_class, encoding = data[4], data[5]
    if elf_class not in (_ELFCLASS32, _ELFCLASS64) or encoding not in (_ELFDATA2LSB, _ELFDATA2MSB):
        raise InputFormatError("bad-input: unknown ELF class or byte order")
    e = "<" if encoding == _ELFDATA2LSB else ">"
    if elf_class == _ELFCLASS32:
        entry, phoff = struct.unpack_from(e + "II", data, 24)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 42)
        ph_format, ph_size = e + "IIIIIIII", 32
    else:
        entry, phoff = struct.unpack_from(e + "QQ", data, 24)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 54)
        ph_format, ph_size = e + "IIQQQQQQ", 56
    if phnum == 0:
        raise InputFormatError("bad-input: the ELF file has no program headers (an object file, not linked?)")
    if phentsize < ph_size or phoff + phnum * phentsize > len(data):
        raise InputFormatError("bad-input: ELF program header table runs past the end of the file")
    sections = _elf_section_ranges(data, e, elf_class)
    pieces: list[tuple[int, bytes]] = []
    for index in range(phnum):
        fields = struct.unpack_from(ph_format, data, phoff + index * phentsize)
        if elf_class == _ELFCLASS32:
            p_type, p_offset, p_paddr, p_filesz = fields[0], fields[1], fields[3], fields[4]
        else:
            p_type, p_offset, p_paddr, p_filesz = fields[0], fields[2], fields[4], fields[5]
        if p_type != _PT_LOAD or p_filesz == 0:
            continue
        if p_offset + p_filesz > len(data):
            raise InputFormatError(f"bad-input: ELF segment {index} runs past the end of the file")
        start, end = p_offset, p_offset + p_filesz
        if sections is not None:
            inside = [(max(a, start), min(b, end)) for a, b in sections if a < end and b > start]
            if not inside:
                continue  # only headers in this segment
            start, end = min(a for a, _ in inside), max(b for _, b in inside)
        pieces.append((p_paddr + start - p_offset, data[start:end]))
    first, flat, segments = flatten(pieces, fill=fill, max_span=max_span)
    return Firmware(address=first, data=flat, entry=entry, segments=segments)


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
