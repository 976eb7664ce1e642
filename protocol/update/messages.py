"""Payloads of the stm32ota update protocol: commands, replies and the INFO record, with encode/decode.

Every integer is little-endian.  Decoders accept (and ignore) bytes after the fields they know, so a newer
peer can append fields; a payload shorter than its fields raises
:class:`~protocol.errors.RemoteProtocolError`.  ``docs/protocol.md`` gives each layout with byte offsets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from ..errors import RemoteProtocolError
from .constants import DIGEST_SIZE, KEY_HASH_SIZE, PROTOCOL_VERSION, UID_SIZE

__all__ = [
    "LOG_OFF",
    "PHASES",
    "Ack",
    "BeginReply",
    "BeginRequest",
    "Capabilities",
    "DeviceInfo",
    "EndRequest",
    "EraseReply",
    "EraseRequest",
    "FlashLayout",
    "InfoPiece",
    "InfoPieceRequest",
    "LogLevel",
    "LogRecord",
    "Nak",
    "Option",
    "PartialTransfer",
    "ProgressReport",
    "ReadDigestReply",
    "ReadReply",
    "ReadRequest",
    "Reply",
    "SectorRun",
    "SlotInfo",
    "SlotRegion",
    "SlotState",
    "decode_data_block",
    "encode_data_block",
]

LOG_OFF = 0xFF  # SET_LOG level that silences the device


class SlotState(IntEnum):
    """What a slot holds (MCUboot's image states, as one byte)."""

    EMPTY = 0  # erased, or no valid image
    INACTIVE = 1  # a complete image that is not scheduled to run
    PENDING_TEST = 2  # will be booted once for a test at the next reset
    PENDING_PERMANENT = 3  # will be booted permanently at the next reset
    ACTIVE = 4  # running under test: CONFIRM it, or the next reset rolls back
    CONFIRMED = 5  # running, confirmed (permanent)


class Option(IntFlag):
    """Options a device offers (INFO ``options``)."""

    NONE = 0
    DEFLATE = 0x01  # data phase may be a raw deflate stream
    RESUME = 0x02  # an interrupted transfer of the same digest continues where it stopped
    BAUD_SWITCH = 0x04  # CHANGE_BAUD is supported for the rates in ``baud_rates``


class LogLevel(IntEnum):
    """Device log levels (LOG frames and SET_LOG).  ``SET_LOG`` level ``n`` sends levels ``<= n``."""

    ERROR = 0
    WARNING = 1
    INFO = 2
    DEBUG = 3


# PROGRESS frame phase codes
PHASES: dict[int, str] = {0: "erase", 1: "program", 2: "verify", 3: "copy", 4: "busy"}
_PHASE_CODES = {name: code for code, name in PHASES.items()}


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise RemoteProtocolError(
                f"{self._what}: payload too short ({len(self._data)} bytes)",
                hint="the device and host may speak different protocol versions",
            )
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def unpack(self, fmt: str) -> tuple[int, ...]:
        s = struct.Struct("<" + fmt)
        values: tuple[int, ...] = s.unpack(self.take(s.size))
        return values

    def u8(self) -> int:
        return self.unpack("B")[0]

    def u16(self) -> int:
        return self.unpack("H")[0]

    def u32(self) -> int:
        return self.unpack("I")[0]

    def rest(self) -> bytes:
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out


def _check_digest(digest: bytes, size: int = DIGEST_SIZE) -> None:
    if len(digest) != size:
        raise ValueError(f"digest must be {size} bytes, not {len(digest)}")


# --- INFO ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SectorRun:
    """``count`` consecutive flash sectors of ``size`` bytes."""

    count: int
    size: int


@dataclass(frozen=True, kw_only=True)
class SlotRegion:
    """Where slot ``index`` lives in flash."""

    index: int
    address: int
    size: int


@dataclass(frozen=True, kw_only=True)
class FlashLayout:
    """The chip's flash: base address, total size, sector map (runs of equal sectors) and slot regions."""

    base: int
    size: int
    sectors: tuple[SectorRun, ...]
    slots: tuple[SlotRegion, ...]

    def sector_sizes(self) -> list[int]:
        return [run.size for run in self.sectors for _ in range(run.count)]

    def sector_at(self, address: int) -> tuple[int, int, int]:
        """``(index, start address, size)`` of the sector holding ``address``."""
        start = self.base
        for index, size in enumerate(self.sector_sizes()):
            if start <= address < start + size:
                return index, start, size
            start += size
        raise ValueError(f"address 0x{address:08X} is outside flash")

    def slot(self, index: int) -> SlotRegion:
        for region in self.slots:
            if region.index == index:
                return region
        raise KeyError(index)

    def encode(self) -> bytes:
        out = [struct.pack("<IIB", self.base, self.size, len(self.sectors))]
        out += [struct.pack("<HI", run.count, run.size) for run in self.sectors]
        out.append(struct.pack("<B", len(self.slots)))
        out += [struct.pack("<BII", s.index, s.address, s.size) for s in self.slots]
        return b"".join(out)

    @classmethod
    def _read(cls, r: _Reader) -> FlashLayout:
        base, size, nruns = r.unpack("IIB")
        runs = tuple(SectorRun(count=c, size=s) for c, s in (r.unpack("HI") for _ in range(nruns)))
        nslots = r.u8()
        slots = tuple(SlotRegion(index=i, address=a, size=s) for i, a, s in (r.unpack("BII") for _ in range(nslots)))
        return cls(base=base, size=size, sectors=runs, slots=slots)


@dataclass(frozen=True, kw_only=True)
class SlotInfo:
    """One row of the slot table.  ``version`` is MCUboot's (major, minor, revision, build)."""

    index: int
    state: SlotState
    version: tuple[int, int, int, int] = (0, 0, 0, 0)
    image_size: int = 0
    digest: bytes = bytes(DIGEST_SIZE)
    security_counter: int = 0

    def __post_init__(self) -> None:
        _check_digest(self.digest)

    @property
    def version_text(self) -> str:
        major, minor, rev, build = self.version
        return f"{major}.{minor}.{rev}+{build}"

    def encode(self) -> bytes:
        return struct.pack("<BBBBHII", self.index, self.state, *self.version, self.image_size) + (
            self.digest + struct.pack("<I", self.security_counter)
        )

    @classmethod
    def _read(cls, r: _Reader) -> SlotInfo:
        index, state, major, minor, rev, build, image_size = r.unpack("BBBBHII")
        digest = r.take(DIGEST_SIZE)
        counter = r.u32()
        try:
            slot_state = SlotState(state)
        except ValueError:
            raise RemoteProtocolError(f"INFO: unknown slot state {state}") from None
        return cls(
            index=index,
            state=slot_state,
            version=(major, minor, rev, build),
            image_size=image_size,
            digest=digest,
            security_counter=counter,
        )


@dataclass(frozen=True, kw_only=True)
class PartialTransfer:
    """An interrupted transfer the device can resume: target slot, image size and digest, bytes written."""

    slot: int
    size: int
    written: int
    digest: bytes

    def __post_init__(self) -> None:
        _check_digest(self.digest)


# Wire order of the INFO capability bits (protocol 1.2): never reorder, only append.
SIGNATURE_TYPES: tuple[str, ...] = ("ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "ed25519-pure")
DIGESTS: tuple[str, ...] = ("sha256", "sha384", "sha512")
ENCRYPTION_SCHEMES: tuple[str, ...] = ("rsa-oaep", "ecies-p256", "ecies-x25519", "ecies-x25519-sha512")
AES_KEY_SIZES: tuple[int, ...] = (128, 256)
_CAPS = struct.Struct("<HBBBB")
CAPABILITIES_VERSION = 0x0102  # the protocol version that added them
_CAP_DECOMPRESS = 0x01


def _bits(names: frozenset[str] | frozenset[int], order: tuple[object, ...]) -> int:
    return sum(1 << i for i, name in enumerate(order) if name in names)


def _names(bits: int, order: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name for i, name in enumerate(order) if bits >> i & 1)


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What the device's bootloader verifies, decrypts and installs (INFO, protocol 1.2): signature types
    (imgtool key types, and ``ed25519-pure``), digests, encryption schemes (empty: it decrypts nothing), AES
    key sizes, and whether it decompresses LZMA2 images."""

    signatures: frozenset[str] = frozenset()
    digests: frozenset[str] = frozenset()
    encryption: frozenset[str] = frozenset()
    aes_bits: frozenset[int] = frozenset()
    decompress: bool = False

    def encode(self) -> bytes:
        body = _CAPS.pack(
            _bits(self.signatures, SIGNATURE_TYPES),
            _bits(self.digests, DIGESTS),
            _bits(self.encryption, ENCRYPTION_SCHEMES),
            _bits(self.aes_bits, AES_KEY_SIZES),
            _CAP_DECOMPRESS if self.decompress else 0,
        )
        return struct.pack("<B", len(body)) + body

    @classmethod
    def decode(cls, body: bytes) -> Capabilities:
        """The capability bytes after their length byte (a shorter body from an early peer leaves the missing
        fields empty; a longer one from a later peer has fields this side does not know)."""
        signatures, digests, encryption, aes, flags = _CAPS.unpack((body + bytes(_CAPS.size))[: _CAPS.size])
        return cls(
            signatures=_names(signatures, SIGNATURE_TYPES),
            digests=_names(digests, DIGESTS),
            encryption=_names(encryption, ENCRYPTION_SCHEMES),
            aes_bits=frozenset(b for i, b in enumerate(AES_KEY_SIZES) if aes >> i & 1),
            decompress=bool(flags & _CAP_DECOMPRESS),
        )

    def describe(self) -> dict[str, object]:
        """Lists in wire order, for ``stm32ota info`` and its ``--json``."""
        return {
            "signatures": [s for s in SIGNATURE_TYPES if s in self.signatures],
            "digests": [d for d in DIGESTS if d in self.digests],
            "encryption": [e for e in ENCRYPTION_SCHEMES if e in self.encryption],
            "aes_bits": sorted(self.aes_bits),
            "decompress": self.decompress,
        }


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    """What INFO reports."""

    protocol_version: int = PROTOCOL_VERSION
    bootloader_version: str = ""
    chip_id: int = 0
    board_id: int = 0
    uid: bytes = bytes(UID_SIZE)
    flash: FlashLayout = field(default_factory=lambda: FlashLayout(base=0x08000000, size=0, sectors=(), slots=()))
    slots: tuple[SlotInfo, ...] = ()
    max_block: int = 1024
    max_window: int = 16
    ram_buffer: int = 16384
    options: Option = Option.NONE
    deflate_wbits: int = 0  # largest raw-deflate window (log2) the inflater takes; 0 when DEFLATE is off
    baud_rates: tuple[int, ...] = ()
    key_hashes: tuple[bytes, ...] = ()
    partial: PartialTransfer | None = None
    capabilities: Capabilities | None = None  # None: a 1.0/1.1 device, which does not say

    def __post_init__(self) -> None:
        if len(self.uid) != UID_SIZE:
            raise ValueError(f"uid must be {UID_SIZE} bytes")
        for key in self.key_hashes:
            _check_digest(key, KEY_HASH_SIZE)
        if len(self.bootloader_version.encode()) > 255:
            raise ValueError("bootloader_version is longer than 255 bytes")

    @property
    def uid_hex(self) -> str:
        return self.uid.hex()

    def slot(self, index: int) -> SlotInfo:
        for info in self.slots:
            if info.index == index:
                return info
        raise KeyError(index)

    def encode(self) -> bytes:
        version = self.bootloader_version.encode()
        out = [
            struct.pack("<HHH", self.protocol_version, self.chip_id, self.board_id),
            self.uid,
            struct.pack(
                "<HBBIB",
                self.max_block,
                self.max_window,
                int(self.options),
                self.ram_buffer,
                self.deflate_wbits,
            ),
            struct.pack("<B", len(self.baud_rates)),
            *(struct.pack("<I", b) for b in self.baud_rates),
            self.flash.encode(),
            struct.pack("<B", len(self.slots)),
            *(s.encode() for s in self.slots),
            struct.pack("<B", len(self.key_hashes)),
            *self.key_hashes,
        ]
        if self.partial is None:
            out.append(b"\x00")
        else:
            p = self.partial
            out.append(struct.pack("<BBII", 1, p.slot, p.size, p.written) + p.digest)
        out.append(struct.pack("<B", len(version)) + version)
        if self.capabilities is not None:
            out.append(self.capabilities.encode())
        elif self.protocol_version >= CAPABILITIES_VERSION:
            out.append(b"\x00")  # a 1.2 record that states none (length 0), so appended fields stay apart
        return b"".join(out)

    @classmethod
    def decode(cls, data: bytes) -> DeviceInfo:
        r = _Reader(data, "INFO")
        protocol_version, chip_id, board_id = r.unpack("HHH")
        uid = r.take(UID_SIZE)
        max_block, max_window, options, ram_buffer, wbits = r.unpack("HBBIB")
        bauds = tuple(r.u32() for _ in range(r.u8()))
        flash = FlashLayout._read(r)
        slots = tuple(SlotInfo._read(r) for _ in range(r.u8()))
        keys = tuple(r.take(KEY_HASH_SIZE) for _ in range(r.u8()))
        partial = None
        if r.u8():
            slot, size, written = r.unpack("BII")
            partial = PartialTransfer(slot=slot, size=size, written=written, digest=r.take(DIGEST_SIZE))
        try:
            version = r.take(r.u8()).decode("utf-8")
        except UnicodeDecodeError as err:
            raise RemoteProtocolError(
                f"INFO: the bootloader version is not valid UTF-8 ({err.reason} at byte {err.start})",
                hint="the bootloader sends a malformed INFO record: report it with `stm32ota --trace info`",
            ) from None
        # protocol 1.2: the capabilities (u8 length, then the fields); a 1.0/1.1 record has none, and bytes a
        # 1.1 peer appended after its version string are not capabilities
        tail = r.rest()
        capabilities = None
        if tail and tail[0] and protocol_version >= CAPABILITIES_VERSION:
            capabilities = Capabilities.decode(tail[1 : 1 + tail[0]])
        return cls(
            protocol_version=protocol_version,
            bootloader_version=version,
            chip_id=chip_id,
            board_id=board_id,
            uid=uid,
            flash=flash,
            slots=slots,
            max_block=max_block,
            max_window=max_window,
            ram_buffer=ram_buffer,
            options=Option(options & 0xFF),
            deflate_wbits=wbits,
            baud_rates=bauds,
            key_hashes=keys,
            partial=partial,
            capabilities=capabilities,
        )


@dataclass(frozen=True, kw_only=True)
class InfoPieceRequest:
    """INFO with a payload (protocol 1.1): ``length`` bytes of the encoded INFO record from ``offset``."""

    offset: int
    length: int

    _S = struct.Struct("<HH")

    def encode(self) -> bytes:
        return self._S.pack(self.offset, self.length)

    @classmethod
    def decode(cls, data: bytes) -> InfoPieceRequest:
        offset, length = _Reader(data, "INFO request").unpack("HH")
        return cls(offset=offset, length=length)


@dataclass(frozen=True, kw_only=True)
class InfoPiece:
    """The reply to :class:`InfoPieceRequest`: the whole record's size and CRC-16, the piece's offset, its bytes."""

    total: int
    crc: int
    offset: int
    data: bytes

    _S = struct.Struct("<HHH")

    def encode(self) -> bytes:
        return self._S.pack(self.total, self.crc, self.offset) + self.data

    @classmethod
    def decode(cls, data: bytes) -> InfoPiece:
        r = _Reader(data, "INFO piece")
        total, crc, offset = r.unpack("HHH")
        return cls(total=total, crc=crc, offset=offset, data=r.rest())


# --- commands and replies -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Reply:
    """REPLY payload: the command type it answers, a status, then the command's reply body."""

    command: int
    status: int
    body: bytes = b""

    _S = struct.Struct("<BH")

    def encode(self) -> bytes:
        return self._S.pack(self.command, self.status) + self.body

    @classmethod
    def decode(cls, data: bytes) -> Reply:
        r = _Reader(data, "REPLY")
        command, status = r.unpack("BH")
        return cls(command=command, status=status, body=r.rest())


_BEGIN_COMPRESSED = 0x01
_BEGIN_RESUME = 0x02


@dataclass(frozen=True, kw_only=True)
class BeginRequest:
    """BEGIN: start a transfer of ``size`` uncompressed bytes with SHA-256 ``digest`` into ``slot``.

    ``window`` and ``block_size`` are proposals (0: device default); ``wbits`` is the deflate window the host
    compresses with (0 when not compressed)."""

    slot: int
    size: int
    digest: bytes
    compressed: bool = False
    resume: bool = True
    window: int = 0
    block_size: int = 0
    wbits: int = 0

    _S = struct.Struct("<BBBBHHI")

    def __post_init__(self) -> None:
        _check_digest(self.digest)

    def encode(self) -> bytes:
        flags = (_BEGIN_COMPRESSED if self.compressed else 0) | (_BEGIN_RESUME if self.resume else 0)
        return self._S.pack(self.slot, flags, self.window, self.wbits, self.block_size, 0, self.size) + self.digest

    @classmethod
    def decode(cls, data: bytes) -> BeginRequest:
        r = _Reader(data, "BEGIN")
        slot, flags, window, wbits, block_size, _reserved, size = r.unpack("BBBBHHI")
        return cls(
            slot=slot,
            size=size,
            digest=r.take(DIGEST_SIZE),
            compressed=bool(flags & _BEGIN_COMPRESSED),
            resume=bool(flags & _BEGIN_RESUME),
            window=window,
            block_size=block_size,
            wbits=wbits,
        )


@dataclass(frozen=True, kw_only=True)
class BeginReply:
    """BEGIN's reply body: where the data phase starts (uncompressed offset) and the agreed window/block."""

    resume_offset: int
    window: int
    block_size: int

    _S = struct.Struct("<IBBH")

    def encode(self) -> bytes:
        return self._S.pack(self.resume_offset, self.window, 0, self.block_size)

    @classmethod
    def decode(cls, data: bytes) -> BeginReply:
        offset, window, _reserved, block = _Reader(data, "BEGIN reply").unpack("IBBH")
        return cls(resume_offset=offset, window=window, block_size=block)


@dataclass(frozen=True, kw_only=True)
class EndRequest:
    """END: the host has sent ``blocks`` data blocks carrying ``stream_bytes`` bytes (compressed size)."""

    blocks: int
    stream_bytes: int

    def encode(self) -> bytes:
        return struct.pack("<II", self.blocks, self.stream_bytes)

    @classmethod
    def decode(cls, data: bytes) -> EndRequest:
        blocks, stream_bytes = _Reader(data, "END").unpack("II")
        return cls(blocks=blocks, stream_bytes=stream_bytes)


_ERASE_FORCE = 0x01
_ERASE_RESETTING = 0x01
_READ_DIGEST = 0x01


@dataclass(frozen=True, kw_only=True)
class EraseRequest:
    """ERASE: erase every sector of ``slot``.  ``force`` allows the slot the running image lives in."""

    slot: int
    force: bool = False

    def encode(self) -> bytes:
        return struct.pack("<BB", self.slot, _ERASE_FORCE if self.force else 0)

    @classmethod
    def decode(cls, data: bytes) -> EraseRequest:
        slot, flags = _Reader(data, "ERASE").unpack("BB")
        return cls(slot=slot, force=bool(flags & _ERASE_FORCE))


@dataclass(frozen=True, kw_only=True)
class EraseReply:
    """ERASE's reply body: ``erased`` bytes of the slot now read 0xFF; ``resetting``: the device resets as soon
    as this reply has left (it erased the image it was running, and restarts into its bootloader)."""

    erased: int
    resetting: bool = False

    def encode(self) -> bytes:
        return struct.pack("<IB", self.erased, _ERASE_RESETTING if self.resetting else 0)

    @classmethod
    def decode(cls, data: bytes) -> EraseReply:
        erased, flags = _Reader(data, "ERASE reply").unpack("IB")
        return cls(erased=erased, resetting=bool(flags & _ERASE_RESETTING))


@dataclass(frozen=True, kw_only=True)
class ReadRequest:
    """READ: ``length`` bytes of ``slot`` from slot-relative ``offset``; with ``digest`` the SHA-256 of that
    range instead of its bytes (then ``length`` may span the whole slot)."""

    slot: int
    offset: int
    length: int
    digest: bool = False

    _S = struct.Struct("<BBHII")

    def encode(self) -> bytes:
        return self._S.pack(self.slot, _READ_DIGEST if self.digest else 0, 0, self.offset, self.length)

    @classmethod
    def decode(cls, data: bytes) -> ReadRequest:
        slot, flags, _reserved, offset, length = _Reader(data, "READ").unpack("BBHII")
        return cls(slot=slot, offset=offset, length=length, digest=bool(flags & _READ_DIGEST))


@dataclass(frozen=True, kw_only=True)
class ReadReply:
    """READ's reply body: the slot-relative ``offset`` echoed, then the bytes."""

    offset: int
    data: bytes

    def encode(self) -> bytes:
        return struct.pack("<I", self.offset) + self.data

    @classmethod
    def decode(cls, data: bytes) -> ReadReply:
        r = _Reader(data, "READ reply")
        offset = r.u32()
        return cls(offset=offset, data=r.rest())


@dataclass(frozen=True, kw_only=True)
class ReadDigestReply:
    """READ's reply body with the digest flag: the range echoed and its SHA-256."""

    offset: int
    length: int
    digest: bytes

    def __post_init__(self) -> None:
        _check_digest(self.digest)

    def encode(self) -> bytes:
        return struct.pack("<II", self.offset, self.length) + self.digest

    @classmethod
    def decode(cls, data: bytes) -> ReadDigestReply:
        r = _Reader(data, "READ digest reply")
        offset, length = r.unpack("II")
        return cls(offset=offset, length=length, digest=r.take(DIGEST_SIZE))


@dataclass(frozen=True, kw_only=True)
class Ack:
    """ACK: blocks ``< next`` arrived; the host may send blocks ``< limit``; ``written`` uncompressed bytes of
    the image (absolute offset) are in flash."""

    next: int
    limit: int
    written: int

    _S = struct.Struct("<III")

    def encode(self) -> bytes:
        return self._S.pack(self.next, self.limit, self.written)

    @classmethod
    def decode(cls, data: bytes) -> Ack:
        nxt, limit, written = _Reader(data, "ACK").unpack("III")
        return cls(next=nxt, limit=limit, written=written)


@dataclass(frozen=True, kw_only=True)
class Nak:
    """NAK: these blocks (absolute numbers) are missing or arrived damaged; send them again."""

    blocks: tuple[int, ...]

    def encode(self) -> bytes:
        return struct.pack(f"<{len(self.blocks)}I", *self.blocks)

    @classmethod
    def decode(cls, data: bytes) -> Nak:
        n = len(data) // 4
        return cls(blocks=struct.unpack_from(f"<{n}I", data))


@dataclass(frozen=True, kw_only=True)
class ProgressReport:
    """PROGRESS: the device is busy with ``phase``; it has done ``done`` of ``total`` (bytes)."""

    phase: str
    done: int
    total: int

    def encode(self) -> bytes:
        return struct.pack("<BII", _PHASE_CODES.get(self.phase, 4), self.done, self.total)

    @classmethod
    def decode(cls, data: bytes) -> ProgressReport:
        code, done, total = _Reader(data, "PROGRESS").unpack("BII")
        return cls(phase=PHASES.get(code, "busy"), done=done, total=total)


@dataclass(frozen=True, kw_only=True)
class LogRecord:
    """LOG: one device log line (UTF-8; invalid bytes are replaced)."""

    level: int
    timestamp_ms: int
    text: str

    def encode(self) -> bytes:
        return struct.pack("<BI", self.level & 0xFF, self.timestamp_ms & 0xFFFFFFFF) + self.text.encode()

    @classmethod
    def decode(cls, data: bytes) -> LogRecord:
        r = _Reader(data, "LOG")
        level, timestamp = r.unpack("BI")
        return cls(level=level, timestamp_ms=timestamp, text=r.rest().decode("utf-8", "replace"))


def encode_data_block(number: int, data: bytes) -> bytes:
    """DATA payload: YMODEM's block number and its complement, then the data."""
    n = number & 0xFF
    return bytes((n, n ^ 0xFF)) + data


def decode_data_block(payload: bytes) -> tuple[int, bytes] | None:
    """``(block number, data)``, or ``None`` when the complement does not match or there is no data."""
    if len(payload) < 3 or payload[0] ^ payload[1] != 0xFF:
        return None
    return payload[0], payload[2:]
